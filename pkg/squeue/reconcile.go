package squeue

import (
	"context"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// UnwantedReason says why the poller no longer wants a container's job.
type UnwantedReason string

// Reasons for UnwantedReason.
const (
	ContainerCancelled UnwantedReason = "Cancelled"
	ContainerComplete  UnwantedReason = "Complete"
	// ContainerQueued: the container went back to Queued (unlocked).
	ContainerQueued UnwantedReason = "Queued"
	// PriorityZero: nobody wants the container any more. A Locked entry with priority 0
	// counts the same.
	PriorityZero UnwantedReason = "PriorityZero"
	// LockedByOther: the container is locked by another token; a job of ours for it is a
	// leftover (say, from before a token change). The poller decides whether to report it.
	LockedByOther UnwantedReason = "LockedByOther"
)

// Wanted is what the poller knows after one poll of the API.
type Wanted struct {
	// Locked: containers locked by our token (Locked or Running), with their priorities.
	Locked map[string]int64
	// Unwanted: containers the poller knows are no longer wanted, and why.
	Unwanted map[string]UnwantedReason
	// Running: Locked entries whose container is Running. crunch-run runs inside a job, so
	// such a container has a live job (or one that just ended) even if this process has
	// never seen it: a snapshot with none of our jobs then is suspect, not evidence.
	Running map[string]bool
	// At is when the poll started: a job submitted after At is not cancelled on its word.
	At time.Time
}

// SetWanted hands the watcher the poller's latest view. Containers in neither map are left
// alone (see Unreported). A Locked entry with priority > 0 wins over an Unwanted one; a view
// older than the current one is ignored. The maps are copied.
func (w *Watcher) SetWanted(wt Wanted) {
	w.mu.Lock()
	if wt.At.Before(w.wanted.At) {
		w.mu.Unlock()
		return
	}
	wt.Locked, wt.Unwanted, wt.Running = maps.Clone(wt.Locked), maps.Clone(wt.Unwanted), maps.Clone(wt.Running)
	w.wanted = wt
	w.placed = nil
	now := w.cfg.Now()
	for uuid := range wt.Locked {
		if w.ours(uuid) {
			w.record(uuid, now)
		}
	}
	poke := false
	if w.snap != nil {
		for uuid, jobs := range w.snap.ours {
			if _, ok := w.unwanted(uuid); ok {
				for _, j := range jobs {
					if _, sent := w.sent[j.ID]; !sent {
						poke = true
					}
				}
			}
		}
	}
	w.mu.Unlock()
	if poke {
		w.Poke()
	}
}

// Unreported lists (sorted) the uuids of our live jobs whose container the poller has not
// reported on, neither locked nor unwanted: the dispatcher's orphan sweep looks them up. They
// are left alone meanwhile.
func (w *Watcher) Unreported() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	if w.snap == nil {
		return nil
	}
	for uuid := range w.snap.ours {
		_, locked := w.wanted.Locked[uuid]
		_, unwanted := w.wanted.Unwanted[uuid]
		if !locked && !unwanted {
			out = append(out, uuid)
		}
	}
	slices.Sort(out)
	return out
}

// unwanted reports whether the poller says uuid's job should go, and why.
func (w *Watcher) unwanted(uuid string) (UnwantedReason, bool) {
	if p, ok := w.wanted.Locked[uuid]; ok {
		if p > 0 {
			return "", false
		}
		return PriorityZero, true
	}
	r, ok := w.wanted.Unwanted[uuid]
	return r, ok
}

// cancelTask is one scancel call and the uuids of its jobs.
type cancelTask struct {
	req   slurm.CancelRequest
	uuids map[string]string // job id → uuid
	young map[string]bool   // job ids that had been running for less than youngJob
}

// sentCancel is our last scancel for one job.
type sentCancel struct {
	at time.Time
	// young: TERM went to a job that had been running for less than youngJob, whose batch
	// step may not have existed yet; it goes once more after YoungResend.
	young bool
}

// youngJob is how long after a job is first seen started that a TERM to its batch step may
// still be lost (Slurm 22.05 shows RUNNING before the step exists; under load the gap grows).
const youngJob = 10 * time.Second

// resendAfter is how long after s a lingering job gets scancel again.
func (w *Watcher) resendAfter(s sentCancel) time.Duration {
	if s.young {
		return min(w.cfg.YoungResend, w.cfg.CancelGrace)
	}
	return w.cfg.CancelGrace
}

// planCancels picks the live jobs of unwanted containers not cancelled within CancelGrace:
// pending ones get a plain scancel, the others TERM to the batch step; one call per kind.
func (w *Watcher) planCancels(now time.Time) []cancelTask {
	pending := cancelTask{uuids: map[string]string{}}
	running := cancelTask{req: slurm.CancelRequest{Running: true}, uuids: map[string]string{}, young: map[string]bool{}}
	for _, uuid := range slices.Sorted(maps.Keys(w.snap.ours)) {
		reason, ok := w.unwanted(uuid)
		if !ok || w.recs[uuid].lastSubmit.After(w.wanted.At) {
			continue
		}
		for _, j := range w.snap.ours[uuid] {
			s, again := w.sent[j.ID]
			if again && now.Sub(s.at) < w.resendAfter(s) {
				continue
			}
			t := &running
			if slurm.PendingState(j.State) {
				t = &pending
			} else if since, ok := w.running[j.ID]; !again && (!ok || now.Sub(since) < youngJob) {
				t.young[j.ID] = true // at most one early resend: only for a first send
			}
			t.req.IDs = append(t.req.IDs, j.ID)
			t.uuids[j.ID] = uuid
			w.log.Info("cancelling the job of an unwanted container", zap.String("action", "cancel"), zap.String("container", uuid),
				zap.String("job_id", j.ID), zap.String("state", j.State), zap.String("reason", string(reason)),
				zap.Bool("again", again))
		}
	}
	var tasks []cancelTask
	for _, t := range []cancelTask{pending, running} {
		if len(t.req.IDs) > 0 {
			tasks = append(tasks, t)
		}
	}
	return tasks
}

// cancel runs the planned scancels. A failure is retried next cycle.
func (w *Watcher) cancel(ctx context.Context, tasks []cancelTask) {
	for _, t := range tasks {
		if ctx.Err() != nil {
			return
		}
		err := w.slurm.Cancel(ctx, t.req)
		done := w.cfg.Now()
		w.mu.Lock()
		w.stats.CancelCalls++
		if err != nil {
			w.stats.CancelErrors++
			w.log.Warn("scancel failed; retrying next cycle", zap.String("action", "cancel"), zap.Strings("job_id", t.req.IDs),
				zap.Bool("running", t.req.Running), zap.Error(err))
		} else {
			w.stats.CancelledJobs += int64(len(t.req.IDs))
			for id, uuid := range t.uuids {
				w.sent[id] = sentCancel{at: done, young: t.young[id]}
				w.noteCancelledLocked(uuid, done)
			}
		}
		w.mu.Unlock()
	}
}
