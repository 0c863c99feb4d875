package queue

import (
	"fmt"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

// Observation is everything Decide looks at for one container.
type Observation struct {
	Now time.Time
	// Container is the container as last read (state, priority, locked_by_uuid,
	// runtime_status, …).
	Container arvados.Container
	// ReadAt is when Container was read (the start of the request that returned it).
	ReadAt time.Time
	// Full says Container holds every field a submit needs (the poll of our own containers
	// reads fewer).
	Full bool
	// Gone: the API no longer returns the container.
	Gone bool
	// TokenUUID is our token's uuid.
	TokenUUID string
	// Presence is what the squeue watcher knows about the container's job.
	Presence squeue.Presence
	// SubmitRule is watcher.AbsentInSnapshotAfter(uuid, t) for t the later of when we took
	// the container and our last submit attempt: no job of that name in a good snapshot that
	// started after both (DESIGN.md invariant 1).
	SubmitRule bool
	// Adopted: we did not lock the container in this process (found locked by our token at
	// start-up or later). A job may exist that we never saw: submit only once the watcher has
	// confirmed absence.
	Adopted bool
	// Invalid says why the record cannot be submitted (bad resources, partitions, uuid…);
	// "" when it can.
	Invalid string
	// Paused: submitting is paused because our configuration looks wrong. Probe: this
	// container may submit anyway, as the probe that tells whether it still is.
	Paused, Probe bool
	// NeverClearsOurs: the job's never-clearing pending reason is shared by so many of our
	// containers, with none of our jobs able to start, that it is our configuration's fault
	// (DESIGN.md invariant 8): the container is not cancelled.
	NeverClearsOurs bool
	// Last is what we did last.
	Last Last
}

// Last is what the dispatcher did last for a container.
type Last struct {
	// JobID is the job we submitted, or saw in Slurm, for the container in this process.
	JobID string
	// SubmittedAt is when our last sbatch returned (successful or ambiguous).
	SubmittedAt time.Time
	// Ambiguous: our last sbatch failed without telling whether the job was created. No
	// retry until the watcher confirms presence or absence.
	Ambiguous bool
	// BackoffUntil: a transient failure; nothing but Forget is attempted before then.
	BackoffUntil time.Time
	// StatusKey and Status are the runtime_status key ("activity", "warning") and text we
	// last wrote.
	StatusKey, Status string
	// Rejection is sbatch's permanent rejection of the container (Slurm's message), while
	// we hold it to learn whether the rejection is about it or about our configuration.
	// RejectionVerdict says what we learned.
	Rejection        string
	RejectionVerdict Verdict
	// CancelRequested: we asked the watcher to cancel the job (the container's priority
	// dropped to 0). A job that then ends FAILED or CANCELLED did so on our word.
	CancelRequested bool
}

// Verdict is what is known about a permanent sbatch rejection.
type Verdict int

const (
	// Undecided: hold the container; it may be our configuration.
	Undecided Verdict = iota
	// ContainersFault: the rejection is about this container: cancel it with Slurm's
	// message.
	ContainersFault
	// Misconfiguration: the rejection is about our configuration: keep the lock, cancel
	// nothing, retry when the pause ends.
	Misconfiguration
)

// ActionKind is what Decide asks for.
type ActionKind int

// Actions.
const (
	// Wait: nothing to do now.
	Wait ActionKind = iota
	// Submit an sbatch job for the container.
	Submit
	// Unlock the container (its job ended before crunch-run started), writing a dispatch log
	// record (LogText) first.
	Unlock
	// CancelContainer: write runtime_status.error (Message, unless empty), then set state
	// Cancelled. The watcher then cancels any job.
	CancelContainer
	// SetRuntimeStatus: set runtime_status[Key] = Message (activity or warning).
	SetRuntimeStatus
	// ReadContainer: read the container again before acting on it.
	ReadContainer
	// Forget the container: nothing more to do for it.
	Forget
)

func (k ActionKind) String() string {
	switch k {
	case Wait:
		return "wait"
	case Submit:
		return "submit"
	case Unlock:
		return "unlock"
	case CancelContainer:
		return "cancel-container"
	case SetRuntimeStatus:
		return "set-runtime-status"
	case ReadContainer:
		return "read-container"
	case Forget:
		return "forget"
	}
	return fmt.Sprintf("action(%d)", int(k))
}

// Action is Decide's answer.
type Action struct {
	Kind ActionKind
	// Reason says why, for logs and Tracked.
	Reason string
	// Key and Message: the runtime_status entry to write (SetRuntimeStatus: "activity" or
	// "warning"; CancelContainer: "error", or "" to cancel without an error).
	Key, Message string
	// LogText is the dispatch log record written before an Unlock.
	LogText string
	// NeedSnapshot (with Wait): only a squeue snapshot newer than our last action keeps the
	// container from being submitted; the executor asks the watcher for one (once per
	// action, so that waiting never turns into back-to-back squeue runs).
	NeedSnapshot bool
	// Paused (with Wait): only the misconfiguration pause keeps the container from being
	// submitted (the executor may pick it as the probe).
	Paused bool
}

// Decide is the pure decision function: from what we know of one container, its job, and
// what we did last, the one next step. The executor performs it and calls Decide again (on
// the next poll, snapshot or completed operation): every step is level-triggered.
//
//	container                         job (watcher)          → action
//	gone, final, Queued, other token  present                → wait (the watcher cancels it)
//	                                  confirmed gone / none  → forget
//	ours, in backoff                  any                    → wait
//	ours, Locked                      pending, never clears  → cancel container (error: reason)
//	                                  pending, attention     → runtime_status.warning (on change)
//	                                  pending, waiting       → runtime_status.activity (on change)
//	                                  started                → wait (crunch-run starting)
//	                                  ours ended (confirmed) → re-read, then unlock with a log
//	                                  none, never submitted  → submit if the submit rule holds,
//	                                                           not paused, not held, valid
//	                                                           (adopted: only once absence is
//	                                                           confirmed; ambiguous sbatch:
//	                                                           only once confirmed that none)
//	ours, Running                     present / unknown      → wait
//	                                  ended or none          → re-read, then cancel container
//	                                                           (error: how the job ended; none
//	                                                           after our own cancel)
//	ours, priority 0                  present / unknown      → wait (the watcher cancels it)
//	                                  gone, or never had one → unlock (Locked) / cancel (Running)
func Decide(o Observation) Action {
	c := o.Container
	switch {
	case o.Gone:
		return followUntilGone(o, "the container no longer exists")
	case c.State.Final():
		return followUntilGone(o, "the container is "+string(c.State))
	case c.State == arvados.Queued:
		return followUntilGone(o, "the container is Queued again")
	case c.LockedByUUID != o.TokenUUID:
		return followUntilGone(o, "the container is locked by another token")
	case c.State != arvados.Locked && c.State != arvados.Running:
		return Action{Kind: Wait, Reason: fmt.Sprintf("unknown container state %q", c.State)}
	}
	if o.Now.Before(o.Last.BackoffUntil) {
		return Action{Kind: Wait, Reason: "backing off after a failure"}
	}
	switch o.Presence.Kind {
	case squeue.Present:
		return present(o)
	case squeue.AbsentConfirmed:
		return absent(o)
	}
	// Unknown: the watcher has no fresh evidence either way.
	switch {
	case c.Priority == 0 && !hadJob(o) && !o.Adopted:
		return Action{Kind: Unlock, Reason: "priority 0 before any job was submitted",
			LogText: "The container's priority dropped to 0 before it was submitted to Slurm: unlocking it."}
	case c.Priority == 0:
		return Action{Kind: Wait, Reason: "priority 0: waiting for the job to be gone"}
	case c.State == arvados.Running:
		return Action{Kind: Wait, Reason: "running; waiting for squeue"}
	}
	return maybeSubmit(o)
}

// followUntilGone is for containers that are no longer ours to run: the watcher cancels the
// job (the poller reports the container as unwanted); the tracker follows until the job is
// gone, then forgets the container.
func followUntilGone(o Observation, why string) Action {
	switch {
	case o.Presence.Kind == squeue.Present:
		return Action{Kind: Wait, Reason: why + "; waiting for its job to be cancelled"}
	case o.Presence.Kind == squeue.AbsentConfirmed, !hadJob(o) && !o.Adopted:
		return Action{Kind: Forget, Reason: why}
	}
	return Action{Kind: Wait, Reason: why + "; waiting for squeue to confirm its job is gone"}
}

// hadJob reports whether a job of ours for the container may exist or have existed in this
// process: we submitted one (even ambiguously) or saw one.
func hadJob(o Observation) bool { return o.Last.JobID != "" || o.Last.Ambiguous }

// present decides for our container whose job is alive.
func present(o Observation) Action {
	c, j := o.Container, o.Presence.Job
	switch {
	case c.Priority == 0:
		return Action{Kind: Wait, Reason: "priority 0: waiting for the job to be cancelled"}
	case c.State == arvados.Running:
		return Action{Kind: Wait, Reason: "running"}
	case !slurm.PendingState(j.State):
		return Action{Kind: Wait, Reason: "job " + j.State + "; waiting for crunch-run to start the container"}
	}
	switch o.Presence.Class {
	case slurm.ReasonNever:
		if o.NeverClearsOurs {
			return status(o, "warning", fmt.Sprintf("Slurm job %s pending: %s (the dispatcher's Slurm configuration "+
				"looks wrong: other containers' jobs are stuck the same way)", j.ID, j.Reason))
		}
		return Action{Kind: CancelContainer, Key: "error", Reason: "pending for a reason that never clears",
			Message: fmt.Sprintf("Slurm job %s can never start: %s", j.ID, j.Reason)}
	case slurm.ReasonAttention:
		return status(o, "warning", fmt.Sprintf("Slurm job %s pending: %s", j.ID, j.Reason))
	}
	if j.Reason == "" || j.Reason == "None" {
		return Action{Kind: Wait, Reason: "pending"}
	}
	return status(o, "activity", fmt.Sprintf("Slurm job %s pending: %s", j.ID, j.Reason))
}

// status writes runtime_status[key] = msg unless that is what we last wrote, or what the
// record already says (a restarted dispatcher adopting what the previous one wrote: without
// this, a restart rewrote the status of every pending container).
func status(o Observation, key, msg string) Action {
	if o.Last.StatusKey == key && o.Last.Status == msg || recordSays(o.Container.RuntimeStatus, key, msg) {
		return Action{Kind: Wait, Reason: msg}
	}
	return Action{Kind: SetRuntimeStatus, Key: key, Message: msg, Reason: msg}
}

// recordSays reports whether runtime_status holds msg under key and nothing under the other
// key we write ("activity" or "warning"): what a SetRuntimeStatus of key and msg leaves.
func recordSays(rs map[string]any, key, msg string) bool {
	other := "warning"
	if key == "warning" {
		other = "activity"
	}
	got, _ := rs[key].(string)
	_, stale := rs[other]
	return got == msg && !stale
}

// absent decides for our container whose job is confirmed gone (or never existed).
func absent(o Observation) Action {
	c, e := o.Container, o.Presence.Ending
	if e == nil {
		e = &squeue.Ending{}
	}
	// An ambiguous sbatch that created nothing: the lookup found no job at all.
	nothing := o.Last.Ambiguous && o.Last.JobID == "" && e.JobID == ""
	ended := hadJob(o) && !nothing
	if !ended && c.State == arvados.Locked && c.Priority > 0 {
		return maybeSubmit(o)
	}
	if !o.ReadAt.After(e.At) {
		// Before acting on a container whose job is gone, read it again: crunch-run may have
		// just moved it on (DESIGN.md invariant 2).
		return Action{Kind: ReadContainer, Reason: "the job is gone; re-reading the container before acting"}
	}
	how := jobEnding(e)
	ourCancel := c.Priority == 0 || o.Last.CancelRequested
	switch {
	case c.State == arvados.Locked && ourCancel && ended:
		return Action{Kind: Unlock, Reason: "priority 0 and " + how,
			LogText: fmt.Sprintf("The container's priority dropped to 0; %s. Unlocking the container.", how)}
	case c.State == arvados.Locked && ourCancel:
		return Action{Kind: Unlock, Reason: "priority 0 before any job was submitted",
			LogText: "The container's priority dropped to 0 before it was submitted to Slurm: unlocking it."}
	case c.State == arvados.Locked:
		return Action{Kind: Unlock, Reason: how + " before crunch-run started",
			LogText: fmt.Sprintf("%s before crunch-run started the container. Unlocking it for another attempt.", capital(how))}
	case ourCancel:
		// Our own cancel (TERM to the batch step) ends a job FAILED or CANCELLED: that is
		// not crunch-run dying. crunch-run did not finalize the container, so we do.
		return Action{Kind: CancelContainer, Reason: "priority 0 and " + how + " while the container was Running"}
	case ended || e.JobID != "":
		return Action{Kind: CancelContainer, Key: "error", Reason: how + " while the container was Running",
			Message: capital(how) + " while the container was Running"}
	}
	return Action{Kind: CancelContainer, Key: "error", Reason: "no Slurm job for a Running container",
		Message: fmt.Sprintf("No Slurm job named %s exists while the container is Running", c.UUID)}
}

// jobEnding says how a job ended: "Slurm job 12 ended (NODE_FAIL)".
func jobEnding(e *squeue.Ending) string {
	id := "the Slurm job"
	if e.JobID != "" {
		id = "Slurm job " + e.JobID
	}
	if e.State == "" {
		return id + " is gone (no longer known to Slurm)"
	}
	return fmt.Sprintf("%s ended (%s)", id, e.State)
}

func capital(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

// maybeSubmit decides for our Locked container with no live job of ours.
func maybeSubmit(o Observation) Action {
	switch {
	case o.Container.State != arvados.Locked:
		return Action{Kind: Wait, Reason: "not Locked"}
	case o.Container.Priority == 0:
		return Action{Kind: Wait, Reason: "priority 0"}
	case o.Last.Rejection != "" && o.Last.RejectionVerdict == ContainersFault:
		return Action{Kind: CancelContainer, Key: "error", Reason: "sbatch rejected the job",
			Message: "Slurm rejected the job: " + o.Last.Rejection}
	case o.Invalid != "" && !hadJob(o):
		return Action{Kind: CancelContainer, Key: "error", Reason: "invalid container record",
			Message: "dispatch-slurm cannot submit this container: " + o.Invalid}
	case o.Last.Ambiguous && o.Presence.Kind != squeue.AbsentConfirmed:
		return Action{Kind: Wait, Reason: "the last sbatch may have created a job; waiting for squeue to tell"}
	case o.Last.JobID != "" && o.Presence.Kind != squeue.AbsentConfirmed:
		return Action{Kind: Wait, Reason: "job " + o.Last.JobID + " submitted; waiting for squeue to show it"}
	case o.Adopted && o.Presence.Kind != squeue.AbsentConfirmed:
		return Action{Kind: Wait, Reason: "adopted: waiting for squeue to confirm there is no job"}
	case o.Last.Rejection != "" && o.Last.RejectionVerdict == Undecided:
		return Action{Kind: Wait, Reason: "sbatch rejected the job; holding it while we learn whether our configuration is at fault"}
	case o.Paused && !o.Probe:
		return Action{Kind: Wait, Reason: "submitting is paused: our Slurm configuration looks wrong", Paused: true}
	case !o.SubmitRule:
		return Action{Kind: Wait, Reason: "waiting for a squeue snapshot newer than our last action", NeedSnapshot: true}
	case !o.Full:
		return Action{Kind: ReadContainer, Reason: "reading the whole record to submit it"}
	}
	return Action{Kind: Submit, Reason: "no job in Slurm"}
}
