package queue

import (
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// Observer hears of the dispatcher's operations, for metrics. Outcomes are short words:
// "ok" and, by operation, "refused" (the API said 422/403: someone else's lock, a state that
// moved on), "not_found", "ambiguous" (the outcome is unknown), "transient", "rejected" (sbatch
// refused the job for good), "error". Methods must be quick and must not block; most are
// called with the dispatcher's lock held, so they must not call the Dispatcher.
type Observer interface {
	// Polled: one API poll (loop steps 1–3) ended after took; err is nil when it succeeded.
	Polled(took time.Duration, err error)
	// Locked: one lock request ended.
	Locked(outcome string)
	// Submitted: one sbatch ended.
	Submitted(outcome string)
	// QueueWait: a container's first job went in, wait after the poll that first saw the
	// container Queued (once per lock; never for adopted containers, whose wait is unknown).
	QueueWait(wait time.Duration)
	// Unlocked: one unlock request ended.
	Unlocked(outcome string)
	// ContainerCancelled: one cancel of a container (state Cancelled, with its reason) ended.
	ContainerCancelled(outcome string)
}

type nopObserver struct{}

func (nopObserver) Polled(time.Duration, error) {}
func (nopObserver) Locked(string)               {}
func (nopObserver) Submitted(string)            {}
func (nopObserver) QueueWait(time.Duration)     {}
func (nopObserver) Unlocked(string)             {}
func (nopObserver) ContainerCancelled(string)   {}
func (nopObserver) String() string              { return "no observer" }

// apiOutcome is an API call's outcome for the Observer.
func apiOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case arvados.IsNotFound(err):
		return "not_found"
	case arvados.IsInvalid(err), arvados.IsForbidden(err):
		return "refused"
	case arvados.IsAmbiguous(err):
		return "ambiguous"
	case arvados.IsTransient(err):
		return "transient"
	}
	return "error"
}

// LastPoll is when the last successful API poll started (zero before the first): the
// management endpoint's health says the poll is stale when it is too old.
func (d *Dispatcher) LastPoll() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastPollAt
}

// noteQueued remembers when each container of a successful poll's Queued list was first seen
// Queued, for the QueueWait observation, and forgets those no longer listed. Callers hold
// d.mu.
func (d *Dispatcher) noteQueued(start time.Time, queued []arvados.Container) {
	seen := make(map[string]time.Time, len(queued))
	for _, c := range queued {
		at, ok := d.queuedSince[c.UUID]
		if !ok {
			at = start
		}
		seen[c.UUID] = at
	}
	d.queuedSince = seen
}

// observeLock reports a lock's outcome.
func (d *Dispatcher) observeLock(outcome string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg.Observer.Locked(outcome)
}
