package queue

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

// sweepIfDue runs the orphan sweep (loop step 8) when OrphanSweepPeriod has passed since the
// last one, and at the first poll after start-up that finds any.
func (d *Dispatcher) sweepIfDue(ctx context.Context) {
	now := d.now()
	d.mu.Lock()
	last := d.lastSweep
	d.mu.Unlock()
	if !last.IsZero() && now.Sub(last) < d.cfg.OrphanSweepPeriod {
		return
	}
	if n := d.sweep(ctx, now); n > 0 || !last.IsZero() {
		d.mu.Lock()
		d.lastSweep = now
		d.mu.Unlock()
	}
}

// sweep reads the containers of our cluster-named jobs that the poller has not reported on
// (watcher.Unreported), and of the orphans still alive from the last sweep, in batches, and
// reports them: final, Queued or missing → unwanted (the watcher cancels the job); locked
// by our token → tracked (adopted); locked by another token → left alone. It returns how
// many it looked at.
func (d *Dispatcher) sweep(ctx context.Context, now time.Time) int {
	uuids := d.w.Unreported()
	d.mu.Lock()
	var cands []string
	for _, u := range uuids {
		if d.trackers[u] == nil {
			cands = append(cands, u)
		}
	}
	for u := range d.orphans {
		if d.w.Presence(u).Kind == squeue.Present && d.trackers[u] == nil {
			cands = append(cands, u)
		}
	}
	d.mu.Unlock()
	if len(cands) == 0 {
		d.mu.Lock()
		clear(d.orphans)
		d.mu.Unlock()
		return 0
	}
	found, err := d.readBatch(ctx, cands, pollFields)
	if err != nil {
		d.log.Warn("orphan sweep: reading containers failed; trying again next poll", zap.Error(err))
		return 0
	}
	d.mu.Lock()
	orphans := map[string]squeue.UnwantedReason{}
	for _, u := range cands {
		c, ok := found[u]
		reason, report := squeue.ContainerCancelled, true
		switch {
		case !ok:
			d.log.Info("orphan sweep: a job of ours names a container that does not exist; cancelling it",
				zap.String("container", u), zap.String("action", "cancel-orphan"))
		case d.ours(c):
			if d.trackers[u] == nil && d.adoptable(c) {
				t := &tracker{uuid: u, adopted: true, since: now}
				d.trackers[u] = t
				d.update(t, c, now, false)
				d.log.Info("orphan sweep: adopting a container locked by our token", zap.String("container", u),
					zap.String("action", "adopt"))
			}
			report = false
		case c.State == arvados.Complete:
			reason = squeue.ContainerComplete
		case c.State == arvados.Cancelled:
		case c.State == arvados.Queued:
			reason = squeue.ContainerQueued
		default:
			// Locked or Running under another token: another dispatcher's business.
			d.skipOnce(u, "orphan sweep: a job named after a container locked by another token; left alone")
			report = false
		}
		if report {
			orphans[u] = reason
			if ok {
				d.log.Info("orphan sweep: cancelling the job of a container that is not ours", zap.String("container", u),
					zap.String("state", string(c.State)), zap.String("action", "cancel-orphan"), zap.String("reason", string(reason)))
			}
		}
	}
	d.orphans = orphans
	view := d.wantedViewLocked(d.lastPollAt)
	d.mu.Unlock()
	d.w.SetWanted(view)
	return len(cands)
}
