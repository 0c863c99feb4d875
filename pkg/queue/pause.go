package queue

import (
	"fmt"
	"strings"
	"time"
)

// rejections tells a container's fault from ours. sbatch rejects a job permanently either
// because of the container (more memory than any node has) or because of our configuration
// (a partition or account in our template that Slurm does not know). The second rejects
// every container with the same message. So (DESIGN.md invariant 8):
//
//   - A rejected container is held: locked, neither retried nor cancelled.
//   - Submitting pauses when RejectionBurst distinct containers were rejected with the same
//     message within RejectionWindow, or two were and no submit went through for
//     RejectionHold since: every lock is kept and nothing is cancelled. One container is
//     tried as a probe per backoff period (fresh ones first); the first submit that goes
//     through ends the pause, and the containers held for its message are tried again.
//   - Otherwise a rejection is the container's own once a submit went through after it (the
//     configuration works), or once it has been held for RejectionHold with no other
//     container rejected the same way since the last successful submit. A container rejected
//     the same way both before and after a successful submit is at fault at once.
//
// Rejections and successes are counted per template kind (normal or supervisor, with or
// without GPU arguments): a broken supervisor template must not be blamed on the supervisors
// because normal containers go through.
//
// Not safe for concurrent use: the Dispatcher holds its lock.
type rejections struct {
	burst        int
	hold, window time.Duration
	minRetry     time.Duration
	maxBackoff   time.Duration
	rand         func() float64

	// events holds one rejection per container, kind and message: the latest.
	events []rejectEvent
	// seq orders rejections and successes (the clock may not tell them apart);
	// lastSuccess is the seq of the last success, by template kind.
	seq         int64
	lastSuccess map[string]int64

	paused        bool
	pauseKind     string
	pauseMsg      string
	pausedAt      time.Time
	pauseCount    int
	probeFailures int
	nextProbe     time.Time
	probing       string // uuid of the probe in flight
}

type rejectEvent struct {
	uuid, kind, msg string
	at              time.Time
	seq             int64
}

func newRejections(cfg Config) *rejections {
	return &rejections{burst: cfg.RejectionBurst, hold: cfg.RejectionHold, window: cfg.RejectionWindow,
		minRetry: cfg.MinRetryPeriod, maxBackoff: cfg.MaxBackoff, rand: cfg.Rand,
		lastSuccess: map[string]int64{}}
}

// reject records that sbatch rejected uuid (template kind kind) with msg at at. ownFault
// says the rejection can only be about the container (it names partitions of its own and
// the message is about partitions). It returns the verdict known at once, the rejection's
// sequence number (for verdict), and whether this rejection started a pause.
func (r *rejections) reject(uuid, kind, msg string, ownFault bool, at time.Time) (Verdict, int64, bool) {
	r.seq++
	if r.probing == uuid {
		r.probing = ""
		if r.paused && msg == r.pauseMsg && kind == r.pauseKind {
			r.probeFailures++
			r.nextProbe = at.Add(backoff(r.minRetry, r.maxBackoff, r.probeFailures+1, r.rand))
			r.record(uuid, kind, msg, at)
			return Misconfiguration, r.seq, false
		}
	}
	if ownFault {
		return ContainersFault, r.seq, false
	}
	if i := r.find(uuid, kind, msg); i >= 0 && r.events[i].seq < r.lastSuccess[kind] {
		// Rejected the same way both before and after a submit went through: the
		// configuration works, the container does not.
		return ContainersFault, r.seq, false
	}
	r.record(uuid, kind, msg, at)
	if !r.paused && r.distinct(kind, msg, "", at, r.window) >= r.burst {
		r.pause(kind, msg, at, r.burst)
		return Misconfiguration, r.seq, true
	}
	return Undecided, r.seq, false
}

func (r *rejections) find(uuid, kind, msg string) int {
	for i, e := range r.events {
		if e.uuid == uuid && e.kind == kind && e.msg == msg {
			return i
		}
	}
	return -1
}

func (r *rejections) record(uuid, kind, msg string, at time.Time) {
	if i := r.find(uuid, kind, msg); i >= 0 {
		r.events = append(r.events[:i], r.events[i+1:]...)
	}
	r.events = append(r.events, rejectEvent{uuid: uuid, kind: kind, msg: msg, at: at, seq: r.seq})
}

func (r *rejections) pause(kind, msg string, at time.Time, n int) {
	r.paused, r.pauseKind, r.pauseMsg, r.pausedAt, r.pauseCount = true, kind, msg, at, n
	r.probeFailures, r.probing = 0, ""
	r.nextProbe = at.Add(backoff(r.minRetry, r.maxBackoff, 1, r.rand))
}

// distinct counts the containers other than except rejected with msg (template kind kind)
// since the last success of that kind, within window before now (0: any time).
func (r *rejections) distinct(kind, msg, except string, now time.Time, window time.Duration) int {
	n := 0
	for _, e := range r.events {
		if e.kind == kind && e.msg == msg && e.uuid != except && e.seq > r.lastSuccess[kind] &&
			(window == 0 || now.Sub(e.at) <= window) {
			n++
		}
	}
	return n
}

// tick pauses when two or more containers have been held for RejectionHold with the same
// message and nothing went through since: too few for a burst, but no evidence either that
// the configuration works. It returns the message when it paused.
func (r *rejections) tick(now time.Time) string {
	r.expire(now)
	if r.paused {
		return ""
	}
	for _, e := range r.events {
		if e.seq > r.lastSuccess[e.kind] && now.Sub(e.at) >= r.hold {
			if n := r.distinct(e.kind, e.msg, "", now, 0); n >= 2 {
				r.pause(e.kind, e.msg, now, n)
				return e.msg
			}
		}
	}
	return ""
}

// success records a submit that went through. It ends a pause; the returned message is the
// pause's ("" when there was none).
func (r *rejections) success(uuid, kind string, at time.Time) string {
	r.seq++
	r.lastSuccess[kind] = r.seq
	if r.probing == uuid {
		r.probing = ""
	}
	if !r.paused || !r.pausedKind(kind) {
		return ""
	}
	msg := r.pauseMsg
	r.paused, r.pauseMsg, r.pauseKind, r.probeFailures, r.probing = false, "", "", 0, ""
	return msg
}

// pausedKind reports whether a submit of template kind kind tests the paused template: the
// same kind, or the same with GPU arguments added ("default+gpu" tests "default").
func (r *rejections) pausedKind(kind string) bool {
	return kind == r.pauseKind || strings.HasPrefix(kind, r.pauseKind+"+")
}

// probeDone frees the probe slot after a probe that neither succeeded nor was rejected.
func (r *rejections) probeDone(uuid string, at time.Time) {
	if r.probing == uuid {
		r.probing = ""
		r.nextProbe = at.Add(r.minRetry)
	}
}

// verdict says what is known about the rejection of uuid (template kind kind) with msg at at
// (sequence number seq). While paused nothing is the container's fault.
func (r *rejections) verdict(uuid, kind, msg string, seq int64, at, now time.Time) Verdict {
	switch {
	case r.paused && msg == r.pauseMsg && kind == r.pauseKind:
		return Misconfiguration
	case r.paused:
		return Undecided
	case r.lastSuccess[kind] > seq:
		return ContainersFault
	case now.Sub(at) >= r.hold && r.distinct(kind, msg, uuid, now, 0) == 0:
		return ContainersFault
	}
	return Undecided
}

// probeAvailable reports whether a paused dispatcher may try one container now.
func (r *rejections) probeAvailable(now time.Time) bool {
	return r.paused && r.probing == "" && !now.Before(r.nextProbe)
}

// expire drops rejections that a later success made moot, once older than the window.
// Those since the last success are kept (one per container): they are the evidence.
func (r *rejections) expire(now time.Time) {
	keep := r.events[:0]
	for _, e := range r.events {
		if e.seq > r.lastSuccess[e.kind] || now.Sub(e.at) <= r.window {
			keep = append(keep, e)
		}
	}
	clear(r.events[len(keep):])
	r.events = keep
}

// health reports the pause.
func (r *rejections) health() (bool, string) {
	if !r.paused {
		return true, ""
	}
	return false, fmt.Sprintf("submitting paused since %s: sbatch rejected %d containers with the same message, "+
		"which points at our own Slurm configuration (sbatch arguments): %s",
		r.pausedAt.UTC().Format(time.RFC3339), r.pauseCount, r.pauseMsg)
}

// partitionMessage reports whether a rejection is about partitions.
func partitionMessage(msg string) bool {
	return strings.Contains(strings.ToLower(msg), "partition")
}

// backoff is the wait after n failures in a row (n ≥ 1): min·2^(n−1), at most max, drawn
// from [d/2, d] so that containers that failed together do not retry together.
func backoff(minD, maxD time.Duration, n int, rnd func() float64) time.Duration {
	d := minD
	for i := 1; i < n && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	return d/2 + time.Duration(rnd()*float64(d/2))
}
