package squeue

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// PresenceKind is what the watcher knows about a container's Slurm job.
type PresenceKind int

const (
	// Unknown: no fresh evidence either way (not seen in the latest snapshot, absence not
	// confirmed). Act on nothing.
	Unknown PresenceKind = iota
	// Present: a live job with the container's name is in the latest snapshot, or a lookup
	// since then found one.
	Present
	// AbsentConfirmed: no live job, confirmed by two snapshots and a targeted lookup.
	AbsentConfirmed
)

func (k PresenceKind) String() string {
	switch k {
	case Present:
		return "present"
	case AbsentConfirmed:
		return "absent-confirmed"
	default:
		return "unknown"
	}
}

// Presence is the answer for one container uuid.
type Presence struct {
	Kind PresenceKind
	// Job is the live job when Present (the running one when there are several). Its Nice
	// and Priority include renices sent since the snapshot.
	Job slurm.Job
	// Class is the class of Job.Reason when the job is pending (slurm.ClassifyReason), else
	// ReasonWaiting.
	Class slurm.ReasonClass
	// Duplicates lists the ids of other live jobs with the same name (there should be none).
	Duplicates []string
	// Ending tells how the job ended when AbsentConfirmed.
	Ending *Ending
}

// Ending is how a job ended, as the confirming lookup found it.
type Ending struct {
	JobID string // "" when no job of that name was ever known to us
	// State is Slurm's final state (COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL,
	// OUT_OF_MEMORY, …), or "" when slurmctld no longer knows the job (gone after MinJobAge).
	State string
	At    time.Time // when absence was confirmed
}

// record is what the watcher keeps per container uuid of ours.
type record struct {
	jobs     []slurm.Job // live jobs with this name in the latest snapshot, chosen one first
	inSnap   bool
	alive    *slurm.Job // a lookup after the latest snapshot found this live job
	misses   int        // qualifying snapshots in a row without a live job
	missAt   time.Time  // start of the snapshot (or time of the lookup) of the last counted miss
	ending   *Ending
	lastID   string    // the last job id seen or noted
	lastSeen time.Time // start of the last snapshot with a live job, or when first tracked
	// lastAction is when our last submit or cancel for the uuid returned; only snapshots
	// started after it count as evidence of absence. lastSubmit is the submit alone.
	lastAction, lastSubmit time.Time
	// priority is the container priority noted at submit (for ordering before the poller
	// reports the container as locked).
	priority int64
}

// provisional is a job on its way into the queue: submitted (or about to be: reserved by
// InitialNice) and not shown by a snapshot yet. Its nice and priority place further new jobs.
type provisional struct {
	nice     int
	priority int64
	at       time.Time
	noted    bool // NoteSubmitted (not only reserved by InitialNice)
	// jobID is the id sbatch returned ("" when ambiguous). Such a job is believed alive
	// until a snapshot shows it or its absence is confirmed (see suspect).
	jobID string
}

// sortLive puts the job that represents a uuid first: running before pending, then oldest id.
func sortLive(jobs []slurm.Job) {
	slices.SortFunc(jobs, func(a, b slurm.Job) int {
		ap, bp := slurm.PendingState(a.State), slurm.PendingState(b.State)
		if ap != bp {
			if ap {
				return 1
			}
			return -1
		}
		return cmp.Compare(jobNumber(a.ID), jobNumber(b.ID))
	})
}

// jobNumber orders Slurm job ids numerically ("123_4" array ids sort by their prefix).
func jobNumber(id string) int64 {
	end := 0
	for end < len(id) && id[end] >= '0' && id[end] <= '9' {
		end++
	}
	n, _ := strconv.ParseInt(id[:end], 10, 64)
	return n
}

// Presence answers for one container uuid.
func (w *Watcher) Presence(uuid string) Presence {
	w.mu.Lock()
	defer w.mu.Unlock()
	rec := w.recs[uuid]
	switch {
	case rec == nil:
		return Presence{}
	case rec.inSnap:
		p := Presence{Kind: Present, Job: rec.jobs[0], Class: classOf(rec.jobs[0])}
		for _, j := range rec.jobs[1:] {
			p.Duplicates = append(p.Duplicates, j.ID)
		}
		return p
	case rec.alive != nil:
		return Presence{Kind: Present, Job: *rec.alive, Class: classOf(*rec.alive)}
	case rec.ending != nil:
		e := *rec.ending
		return Presence{Kind: AbsentConfirmed, Ending: &e}
	}
	return Presence{}
}

// AbsentInSnapshotAfter reports whether a new job may be submitted for uuid (DESIGN.md
// invariant 1): no live job of that name is in the latest snapshot, that snapshot is not
// suspect and it started after both t and our last submit or cancel for uuid; no lookup since
// found a live one; and if a job of that name was ever seen or submitted, its absence has been
// confirmed since (so an ambiguous sbatch, or a job squeue dropped once, is looked up first).
// t is typically when the container was locked.
func (w *Watcher) AbsentInSnapshotAfter(uuid string, t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.snap
	if s == nil || s.suspect || !s.started.After(t) {
		return false
	}
	rec := w.recs[uuid]
	if rec == nil {
		return true
	}
	if (rec.lastID != "" || !rec.lastSubmit.IsZero()) && rec.ending == nil {
		return false
	}
	return s.started.After(rec.lastAction) && !rec.inSnap && rec.alive == nil
}

// NoteSubmitted records that sbatch for uuid returned at time at with job id jobID ("" when
// the outcome is ambiguous: a timeout), submitted with nice and for a container of priority
// priority. Absence of that uuid then needs snapshots started after at.
func (w *Watcher) NoteSubmitted(uuid, jobID string, nice int, priority int64, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rec := w.record(uuid, at)
	rec.lastAction = later(rec.lastAction, at)
	rec.lastSubmit = later(rec.lastSubmit, at)
	rec.misses, rec.ending, rec.priority = 0, nil, priority
	if jobID != "" {
		rec.lastID = jobID
	}
	if !rec.inSnap {
		w.incoming[uuid] = &provisional{nice: nice, priority: priority, at: at, noted: true, jobID: jobID}
	}
	w.placed = nil
}

// NoteCancelled records that a cancel for uuid (by anyone in the dispatcher) returned at at.
// Absence of that uuid then needs snapshots started after at.
func (w *Watcher) NoteCancelled(uuid string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.noteCancelledLocked(uuid, at)
}

func (w *Watcher) noteCancelledLocked(uuid string, at time.Time) {
	rec := w.record(uuid, at)
	rec.lastAction = later(rec.lastAction, at)
	rec.misses, rec.ending = 0, nil
	delete(w.incoming, uuid)
}

// record returns the record of uuid, creating it.
func (w *Watcher) record(uuid string, now time.Time) *record {
	rec := w.recs[uuid]
	if rec == nil {
		rec = &record{lastSeen: now}
		w.recs[uuid] = rec
	}
	return rec
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
