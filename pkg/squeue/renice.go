package squeue

import (
	"context"
	"slices"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// unresponsiveCycles is how many snapshots in a row may show our renices without effect on
// Slurm's priorities before renicing is turned off (a priority plugin that ignores nice, or
// bases so low that priorities sit at Slurm's floor of 1): renicing would never settle.
const unresponsiveCycles = 3

// reniced is one job's renice sent in the previous cycle.
type reniced struct {
	from, to int
	fromQ    int64
}

type reniceState struct {
	last         map[string]reniced // job id → renice sent in the previous cycle
	unresponsive int
	disabled     bool
}

// checkRenice compares the snapshot with the renices of the previous cycle: a job whose nice is
// what we set should have moved its priority the other way.
func (w *Watcher) checkRenice(snap *slurm.Snapshot, ids map[string]string) {
	if len(w.renice.last) == 0 {
		return
	}
	ok, bad := 0, 0
	for _, j := range snap.Jobs {
		r, found := w.renice.last[j.ID]
		if !found || ids[j.ID] == "" || j.State != "PENDING" || j.Nice != r.to {
			continue
		}
		if (r.to > r.from && j.Priority < r.fromQ) || (r.to < r.from && j.Priority > r.fromQ) {
			ok++
		} else {
			bad++
		}
	}
	clear(w.renice.last)
	switch {
	case ok > 0:
		w.renice.unresponsive = 0
	case bad > 0:
		w.renice.unresponsive++
	}
	if w.renice.unresponsive >= unresponsiveCycles && !w.renice.disabled {
		w.renice.disabled, w.stats.ReniceDisabled = true, true
		w.log.Warn("Slurm priorities do not follow nice; renicing is off until restart "+
			"(it needs priority/multifactor with priorities well above the nice values)",
			zap.Int("cycles", w.renice.unresponsive))
	}
}

// priorityOf returns the container priority that orders uuid's pending job: the poller's, or
// the one noted at submit while the poller has not reported on it.
func (w *Watcher) priorityOf(uuid string, rec *record) (int64, bool) {
	if p, ok := w.wanted.Locked[uuid]; ok {
		return p, p > 0
	}
	if _, ok := w.wanted.Unwanted[uuid]; ok || rec == nil || rec.priority <= 0 {
		return 0, false
	}
	return rec.priority, true
}

// planRenice plans this cycle's renices from the latest snapshot.
func (w *Watcher) planRenice() Plan {
	if w.cfg.DisableRenice || w.renice.disabled {
		return Plan{}
	}
	var jobs []PlanJob
	for uuid, js := range w.snap.ours {
		prio, ok := w.priorityOf(uuid, w.recs[uuid])
		if !ok {
			continue
		}
		for _, j := range js {
			if j.State == "PENDING" {
				jobs = append(jobs, PlanJob{ID: j.ID, UUID: uuid, Nice: j.Nice, SlurmPriority: j.Priority, Priority: prio})
			}
		}
	}
	return PlanRenice(jobs, w.planParams())
}

func (w *Watcher) planParams() PlanParams {
	return PlanParams{Spread: w.cfg.PrioritySpread, Headroom: w.cfg.NiceHeadroom, MaxCalls: w.cfg.MaxReniceCallsPerCycle}
}

// reniceJobs runs the plan's renice calls. Jobs reniced are updated in place (nice, and the
// priority Slurm will give them) so that InitialNice places new jobs among the new values.
func (w *Watcher) reniceJobs(ctx context.Context, plan Plan) {
	for _, c := range plan.Changes {
		if ctx.Err() != nil {
			return
		}
		gone, err := w.slurm.Renice(ctx, c.Nice, c.IDs)
		w.mu.Lock()
		w.stats.ReniceCalls++
		if err != nil {
			w.stats.ReniceErrors++
			w.log.Warn("renice failed; the next cycle plans again", zap.Int("nice", c.Nice),
				zap.Strings("job_id", c.IDs), zap.Error(err))
			w.mu.Unlock()
			continue
		}
		for _, id := range c.IDs {
			if slices.Contains(gone, id) {
				continue
			}
			w.stats.RenicedJobs++
			w.updateReniced(id, c.Nice)
		}
		w.mu.Unlock()
	}
	if len(plan.Changes) > 0 {
		w.log.Debug("reniced pending jobs", zap.Int("calls", len(plan.Changes)), zap.Int("jobs", plan.Jobs()),
			zap.Int("deferred", plan.Deferred), zap.Bool("relayout", plan.Relayout))
	}
}

// updateReniced records a renice of job id to nice in the snapshot's copy of the job.
func (w *Watcher) updateReniced(id string, nice int) {
	rec := w.recs[w.snap.ids[id]]
	if rec == nil {
		return
	}
	w.placed = nil
	for i := range rec.jobs {
		j := &rec.jobs[i]
		if j.ID == id {
			w.renice.last[id] = reniced{from: j.Nice, to: nice, fromQ: j.Priority}
			j.Priority = max(j.Priority+int64(j.Nice)-int64(nice), 1)
			j.Nice = nice
		}
	}
}

// placedCache is our pending jobs of the latest snapshot (with renices since) as InitialNice
// places among them, and the median of their bases.
type placedCache struct {
	placed []Placed
	base   int64
}

// placedJobs returns the cache, rebuilding it when stale.
func (w *Watcher) placedJobs() *placedCache {
	if w.placed != nil {
		return w.placed
	}
	c := &placedCache{}
	var bases []int64
	if w.snap != nil {
		for uuid := range w.snap.ours {
			prio, ok := w.priorityOf(uuid, w.recs[uuid])
			if !ok {
				continue
			}
			for _, j := range w.recs[uuid].jobs {
				if j.State == "PENDING" && j.Priority > 0 {
					c.placed = append(c.placed, Placed{Priority: prio, Level: j.Priority})
					bases = append(bases, j.Priority+int64(j.Nice))
				}
			}
		}
	}
	// The base of a new job is unknown until Slurm shows it: take the median of our pending
	// jobs' (0 when there are none; then levels are just −nice).
	if len(bases) > 0 {
		slices.Sort(bases)
		c.base = bases[len(bases)/2]
	}
	w.placed = c
	return c
}

// InitialNice returns the nice to submit a new job for uuid with, so that it lands in its
// place among our pending jobs (container priority priority): those of the latest snapshot
// (with renices since) and those submitted or reserved since. It reserves that place, so that
// concurrent callers get distinct places; NoteSubmitted confirms it.
func (w *Watcher) InitialNice(uuid string, priority int64) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.placedJobs()
	w.scratch = append(w.scratch[:0], c.placed...)
	for u, p := range w.incoming {
		if u != uuid {
			w.scratch = append(w.scratch, Placed{Priority: p.priority, Level: c.base - int64(p.nice)})
		}
	}
	nice := PlaceNice(w.scratch, priority, c.base, w.planParams())
	now := w.cfg.Now()
	if rec := w.record(uuid, now); !rec.inSnap {
		w.incoming[uuid] = &provisional{nice: nice, priority: priority, at: now}
	}
	return nice
}
