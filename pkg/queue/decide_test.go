package queue

import (
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

const (
	testToken = "zzzzz-gj3su-000000000000000"
	otherTok  = "zzzzz-gj3su-000000000000002"
	testUUID  = "zzzzz-dz642-000000000000001"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// base is our freshly locked container with no job, a full record, and a fresh snapshot
// that shows no job.
func base() Observation {
	return Observation{
		Now:        t0,
		Container:  arvados.Container{UUID: testUUID, State: arvados.Locked, Priority: 5, LockedByUUID: testToken, LockCount: 1},
		ReadAt:     t0.Add(-time.Second),
		Full:       true,
		TokenUUID:  testToken,
		SubmitRule: true,
	}
}

func alive(state, reason string, class slurm.ReasonClass) squeue.Presence {
	return squeue.Presence{Kind: squeue.Present, Job: slurm.Job{ID: "7", Name: testUUID, State: state, Reason: reason}, Class: class}
}

// ended is a confirmed absence, confirmed 2 s ago (before base's ReadAt unless changed).
func ended(id, state string) squeue.Presence {
	return squeue.Presence{Kind: squeue.AbsentConfirmed, Ending: &squeue.Ending{JobID: id, State: state, At: t0.Add(-2 * time.Second)}}
}

// readAfterEnding marks the container as read after the ending was confirmed.
func readAfterEnding(o *Observation)  { o.ReadAt = t0.Add(-time.Second / 2) }
func readBeforeEnding(o *Observation) { o.ReadAt = t0.Add(-3 * time.Second) }

func running(o *Observation) { o.Container.State = arvados.Running }

func TestDecide(t *testing.T) {
	type row struct {
		name   string
		change func(o *Observation)
		want   ActionKind
		// key, msg and logText, when set, must match the action (msg and logText: substrings).
		key, msg, logText string
		needSnapshot      bool
		paused            bool
	}
	rows := []row{
		// Submitting.
		{name: "a freshly locked container with no job and a fresh snapshot is submitted",
			want: Submit},
		{name: "a freshly locked container waits for a snapshot that started after the lock",
			change: func(o *Observation) { o.SubmitRule = false }, want: Wait, needSnapshot: true},
		{name: "a stale snapshot (squeue failing since) never leads to a submit",
			change: func(o *Observation) { o.SubmitRule = false; o.Presence = squeue.Presence{} }, want: Wait, needSnapshot: true},
		{name: "a partial record (from the poll of our containers) is read whole before the submit",
			change: func(o *Observation) { o.Full = false }, want: ReadContainer},
		{name: "a job we submitted that squeue does not show yet is waited for, not submitted again",
			change: func(o *Observation) { o.Last.JobID = "7"; o.Last.SubmittedAt = t0.Add(-time.Second) },
			want:   Wait},
		{name: "after an ambiguous sbatch nothing is retried while the job's presence is unknown",
			change: func(o *Observation) { o.Last.Ambiguous = true }, want: Wait},
		{name: "after an ambiguous sbatch that did create the job, the job is followed",
			change: func(o *Observation) {
				o.Last.Ambiguous = true
				o.Presence = alive("PENDING", "Priority", slurm.ReasonWaiting)
			},
			want: SetRuntimeStatus, key: "activity", msg: "Slurm job 7 pending: Priority"},
		{name: "after an ambiguous sbatch that created nothing (confirmed, no job at all) the container is submitted again",
			change: func(o *Observation) { o.Last.Ambiguous = true; o.Presence = ended("", "") },
			want:   Submit},
		{name: "after an ambiguous sbatch whose job ran and ended while Locked, the container is read again first",
			change: func(o *Observation) { o.Last.Ambiguous = true; o.Presence = ended("9", "FAILED"); readBeforeEnding(o) },
			want:   ReadContainer},
		{name: "after an ambiguous sbatch whose job ran and ended while Locked, the container is then unlocked",
			change: func(o *Observation) { o.Last.Ambiguous = true; o.Presence = ended("9", "FAILED"); readAfterEnding(o) },
			want:   Unlock, logText: "Slurm job 9 ended (FAILED) before crunch-run started"},

		// Restart and adoption.
		{name: "an adopted Locked container is not submitted on a single snapshot's word",
			change: func(o *Observation) { o.Adopted = true; o.Full = false }, want: Wait},
		{name: "an adopted Locked container whose job is confirmed absent is read whole, then submitted",
			change: func(o *Observation) { o.Adopted = true; o.Full = false; o.Presence = ended("", "") },
			want:   ReadContainer},
		{name: "an adopted Locked container whose job is confirmed absent is submitted",
			change: func(o *Observation) { o.Adopted = true; o.Presence = ended("", "") }, want: Submit},
		{name: "an adopted Locked container whose old job is confirmed ended is submitted (no job of this process)",
			change: func(o *Observation) { o.Adopted = true; o.Presence = ended("3", "FAILED") }, want: Submit},
		{name: "an adopted container with a pending job follows it",
			change: func(o *Observation) {
				o.Adopted = true
				o.Presence = alive("PENDING", "Resources", slurm.ReasonWaiting)
			},
			want: SetRuntimeStatus, key: "activity", msg: "Slurm job 7 pending: Resources"},
		{name: "an adopted Running container with a running job is left alone",
			change: func(o *Observation) {
				o.Adopted = true
				running(o)
				o.Presence = alive("RUNNING", "None", slurm.ReasonWaiting)
			},
			want: Wait},
		{name: "an adopted Running container whose job is not found is read again first",
			change: func(o *Observation) { o.Adopted = true; running(o); o.Presence = ended("", ""); readBeforeEnding(o) },
			want:   ReadContainer},
		{name: "an adopted Running container with no job, still Running after the re-read, is cancelled with an error",
			change: func(o *Observation) { o.Adopted = true; running(o); o.Presence = ended("", ""); readAfterEnding(o) },
			want:   CancelContainer, key: "error", msg: "No Slurm job named " + testUUID},

		// Pending jobs.
		{name: "a job waiting its turn shows its reason in runtime_status.activity",
			change: func(o *Observation) { o.Presence = alive("PENDING", "Resources", slurm.ReasonWaiting) },
			want:   SetRuntimeStatus, key: "activity", msg: "Slurm job 7 pending: Resources"},
		{name: "the activity is written only when it changes",
			change: func(o *Observation) {
				o.Presence = alive("PENDING", "Resources", slurm.ReasonWaiting)
				o.Last.StatusKey, o.Last.Status = "activity", "Slurm job 7 pending: Resources"
			},
			want: Wait},
		{name: "an activity the record already shows (written before a restart) is not written again",
			change: func(o *Observation) {
				o.Adopted = true
				o.Presence = alive("PENDING", "Resources", slurm.ReasonWaiting)
				o.Container.RuntimeStatus = map[string]any{"activity": "Slurm job 7 pending: Resources"}
			},
			want: Wait},
		{name: "the record's activity is written when a stale warning sits beside it",
			change: func(o *Observation) {
				o.Adopted = true
				o.Presence = alive("PENDING", "Resources", slurm.ReasonWaiting)
				o.Container.RuntimeStatus = map[string]any{"activity": "Slurm job 7 pending: Resources", "warning": "old"}
			},
			want: SetRuntimeStatus, key: "activity", msg: "Slurm job 7 pending: Resources"},
		{name: "a warning the record already shows is not written again",
			change: func(o *Observation) {
				o.Presence = alive("PENDING", "PartitionDown", slurm.ReasonAttention)
				o.Container.RuntimeStatus = map[string]any{"warning": "Slurm job 7 pending: PartitionDown"}
			},
			want: Wait},
		{name: "a new reason replaces the activity",
			change: func(o *Observation) {
				o.Presence = alive("PENDING", "Priority", slurm.ReasonWaiting)
				o.Last.StatusKey, o.Last.Status = "activity", "Slurm job 7 pending: Resources"
			},
			want: SetRuntimeStatus, key: "activity", msg: "Slurm job 7 pending: Priority"},
		{name: "a job pending with reason None writes nothing",
			change: func(o *Observation) { o.Presence = alive("PENDING", "None", slurm.ReasonWaiting) }, want: Wait},
		{name: "a job pending on a down partition gets a warning and the container is never cancelled",
			change: func(o *Observation) { o.Presence = alive("PENDING", "PartitionDown", slurm.ReasonAttention) },
			want:   SetRuntimeStatus, key: "warning", msg: "Slurm job 7 pending: PartitionDown"},
		{name: "a job pending on nodes in maintenance gets a warning",
			change: func(o *Observation) {
				o.Presence = alive("PENDING", "ReqNodeNotAvail, Reserved for maintenance", slurm.ReasonAttention)
			},
			want: SetRuntimeStatus, key: "warning", msg: "ReqNodeNotAvail, Reserved for maintenance"},
		{name: "a job that can never start (more cpus than any node) cancels the container with Slurm's reason",
			change: func(o *Observation) { o.Presence = alive("PENDING", "PartitionConfig", slurm.ReasonNever) },
			want:   CancelContainer, key: "error", msg: "Slurm job 7 can never start: PartitionConfig"},
		{name: "a job that can never start like most of ours (our misconfiguration) only gets a warning",
			change: func(o *Observation) {
				o.Presence = alive("PENDING", "PartitionConfig", slurm.ReasonNever)
				o.NeverClearsOurs = true
			},
			want: SetRuntimeStatus, key: "warning", msg: "configuration looks wrong"},
		{name: "a job that started while the container is still Locked is waited for (crunch-run starting)",
			change: func(o *Observation) { o.Presence = alive("RUNNING", "None", slurm.ReasonWaiting) }, want: Wait},
		{name: "a Running container with its job running is left alone",
			change: func(o *Observation) { running(o); o.Presence = alive("RUNNING", "None", slurm.ReasonWaiting) }, want: Wait},
		{name: "a Running container whose job squeue does not show (unknown, e.g. squeue printing nothing) is left alone",
			change: func(o *Observation) { running(o); o.Last.JobID = "7" }, want: Wait},

		// Jobs that ended.
		{name: "a job that ended while the container was Locked: the container is read again first",
			change: func(o *Observation) { o.Last.JobID = "7"; o.Presence = ended("7", "FAILED"); readBeforeEnding(o) },
			want:   ReadContainer},
		{name: "a job that ended while the container is still Locked after the re-read: unlocked with how it ended",
			change: func(o *Observation) { o.Last.JobID = "7"; o.Presence = ended("7", "FAILED"); readAfterEnding(o) },
			want:   Unlock, logText: "Slurm job 7 ended (FAILED) before crunch-run started"},
		{name: "a job that ended while the container was Running: the container is read again first",
			change: func(o *Observation) {
				running(o)
				o.Last.JobID = "7"
				o.Presence = ended("7", "NODE_FAIL")
				readBeforeEnding(o)
			},
			want: ReadContainer},
		{name: "a job that ended while the container is still Running after the re-read: cancelled with how it ended",
			change: func(o *Observation) {
				running(o)
				o.Last.JobID = "7"
				o.Presence = ended("7", "NODE_FAIL")
				readAfterEnding(o)
			},
			want: CancelContainer, key: "error", msg: "Slurm job 7 ended (NODE_FAIL) while the container was Running"},
		{name: "a job out of memory while Running: the error says so",
			change: func(o *Observation) {
				running(o)
				o.Last.JobID = "7"
				o.Presence = ended("7", "OUT_OF_MEMORY")
				readAfterEnding(o)
			},
			want: CancelContainer, key: "error", msg: "ended (OUT_OF_MEMORY)"},
		{name: "a job Slurm no longer knows at all while Running: the error says it is gone",
			change: func(o *Observation) { running(o); o.Last.JobID = "7"; o.Presence = ended("7", ""); readAfterEnding(o) },
			want:   CancelContainer, key: "error", msg: "Slurm job 7 is gone"},
		{name: "our own cancel: a job that ended FAILED after our TERM is not reported as crunch-run dying",
			change: func(o *Observation) {
				running(o)
				o.Container.Priority = 0
				o.Last.JobID, o.Last.CancelRequested = "7", true
				o.Presence = ended("7", "FAILED")
				readAfterEnding(o)
			},
			want: CancelContainer, key: ""},
		{name: "our own cancel: still quiet when the priority came back after we asked for the cancel",
			change: func(o *Observation) {
				running(o)
				o.Last.JobID, o.Last.CancelRequested = "7", true
				o.Presence = ended("7", "CANCELLED")
				readAfterEnding(o)
			},
			want: CancelContainer, key: ""},
		{name: "a container that Completed just as its job ended is forgotten (read again: Complete)",
			change: func(o *Observation) {
				o.Container.State, o.Container.LockedByUUID = arvados.Complete, ""
				o.Last.JobID = "7"
				o.Presence = ended("7", "COMPLETED")
			},
			want: Forget},

		// Priority 0.
		{name: "priority 0 while Running: wait for the watcher to cancel the job",
			change: func(o *Observation) {
				running(o)
				o.Container.Priority = 0
				o.Last.JobID = "7"
				o.Presence = alive("RUNNING", "None", slurm.ReasonWaiting)
			},
			want: Wait},
		{name: "priority 0 while Locked before any submit: unlocked at once",
			change: func(o *Observation) { o.Container.Priority = 0 }, want: Unlock, logText: "priority dropped to 0"},
		{name: "priority 0 while Locked with a job submitted: wait until the job is gone",
			change: func(o *Observation) { o.Container.Priority = 0; o.Last.JobID = "7" }, want: Wait},
		{name: "priority 0 while Locked and the job gone: unlocked",
			change: func(o *Observation) {
				o.Container.Priority = 0
				o.Last.JobID = "7"
				o.Presence = ended("7", "CANCELLED")
				readAfterEnding(o)
			},
			want: Unlock, logText: "priority dropped to 0"},
		{name: "priority 0 on an adopted Locked container: wait for squeue before unlocking",
			change: func(o *Observation) { o.Container.Priority = 0; o.Adopted = true }, want: Wait},

		// No longer ours.
		{name: "a container Cancelled while its job runs: wait for the watcher to cancel the job",
			change: func(o *Observation) {
				o.Container.State, o.Container.LockedByUUID = arvados.Cancelled, ""
				o.Last.JobID = "7"
				o.Presence = alive("RUNNING", "None", slurm.ReasonWaiting)
			},
			want: Wait},
		{name: "a Cancelled container whose job is confirmed gone is forgotten",
			change: func(o *Observation) {
				o.Container.State, o.Container.LockedByUUID = arvados.Cancelled, ""
				o.Last.JobID = "7"
				o.Presence = ended("7", "CANCELLED")
			},
			want: Forget},
		{name: "a Complete container whose job squeue has not confirmed gone yet is waited for",
			change: func(o *Observation) {
				o.Container.State, o.Container.LockedByUUID = arvados.Complete, ""
				o.Last.JobID = "7"
			},
			want: Wait},
		{name: "a Complete container with no job ever known is forgotten at once",
			change: func(o *Observation) { o.Container.State, o.Container.LockedByUUID = arvados.Complete, "" }, want: Forget},
		{name: "a container Queued again (unlocked by someone else) with its job alive: wait for the watcher",
			change: func(o *Observation) {
				o.Container.State, o.Container.LockedByUUID = arvados.Queued, ""
				o.Last.JobID = "7"
				o.Presence = alive("PENDING", "Priority", slurm.ReasonWaiting)
			},
			want: Wait},
		{name: "a container Queued again after our unlock, its job gone, is forgotten",
			change: func(o *Observation) {
				o.Container.State, o.Container.LockedByUUID = arvados.Queued, ""
				o.Last.JobID = "7"
				o.Presence = ended("7", "FAILED")
			},
			want: Forget},
		{name: "a container locked by another token is never submitted, unlocked or cancelled",
			change: func(o *Observation) { o.Container.LockedByUUID = otherTok }, want: Forget},
		{name: "a container locked by another token while our old job lingers: wait for the watcher",
			change: func(o *Observation) {
				o.Container.LockedByUUID = otherTok
				o.Last.JobID = "7"
				o.Presence = alive("PENDING", "Priority", slurm.ReasonWaiting)
			},
			want: Wait},
		{name: "a container the API no longer returns, with no job, is forgotten",
			change: func(o *Observation) { o.Gone = true }, want: Forget},
		{name: "a container the API no longer returns, with a job alive: wait for the watcher",
			change: func(o *Observation) {
				o.Gone = true
				o.Presence = alive("RUNNING", "None", slurm.ReasonWaiting)
			},
			want: Wait},
		{name: "an adopted container that went Complete with presence unknown is waited for",
			change: func(o *Observation) {
				o.Adopted = true
				o.Container.State, o.Container.LockedByUUID = arvados.Complete, ""
			},
			want: Wait},

		// Failures.
		{name: "after a transient failure nothing is attempted before the backoff ends",
			change: func(o *Observation) { o.Last.BackoffUntil = t0.Add(time.Second) }, want: Wait},
		{name: "once the backoff ends the container is submitted again",
			change: func(o *Observation) { o.Last.BackoffUntil = t0 }, want: Submit},
		{name: "a container rejected by sbatch is held while we learn whose fault it is",
			change: func(o *Observation) { o.Last.Rejection = "Requested node configuration is not available" }, want: Wait},
		{name: "a container rejected by sbatch through its own fault is cancelled with Slurm's message",
			change: func(o *Observation) {
				o.Last.Rejection = "Requested node configuration is not available"
				o.Last.RejectionVerdict = ContainersFault
			},
			want: CancelContainer, key: "error", msg: "Slurm rejected the job: Requested node configuration is not available"},
		{name: "a container rejected while submitting is paused for misconfiguration is never cancelled",
			change: func(o *Observation) {
				o.Last.Rejection = "Invalid partition name specified"
				o.Last.RejectionVerdict = Misconfiguration
				o.Paused = true
			},
			want: Wait, paused: true},
		{name: "while submitting is paused no container is submitted",
			change: func(o *Observation) { o.Paused = true }, want: Wait, paused: true},
		{name: "while submitting is paused the probe is submitted",
			change: func(o *Observation) { o.Paused, o.Probe = true, true }, want: Submit},
		{name: "an invalid record of ours is cancelled with the reason",
			change: func(o *Observation) { o.Invalid = "vcpus -1 out of range 1..100000" },
			want:   CancelContainer, key: "error", msg: "cannot submit this container: vcpus -1 out of range"},
		{name: "an invalid record is cancelled even while submitting is paused",
			change: func(o *Observation) { o.Invalid = "invalid partition name \"a;b\""; o.Paused = true },
			want:   CancelContainer, key: "error", msg: "invalid partition name"},
		{name: "a container in a state we do not know is left alone",
			change: func(o *Observation) { o.Container.State = "Frozen" }, want: Wait},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			o := base()
			if r.change != nil {
				r.change(&o)
			}
			a := Decide(o)
			if a.Kind != r.want {
				t.Fatalf("Decide = %s (%q), want %s", a.Kind, a.Reason, r.want)
			}
			if a.Reason == "" {
				t.Errorf("no reason given")
			}
			if (r.want == CancelContainer || r.want == SetRuntimeStatus) && a.Key != r.key {
				t.Errorf("key %q, want %q", a.Key, r.key)
			}
			if !strings.Contains(a.Message, r.msg) {
				t.Errorf("message %q does not contain %q", a.Message, r.msg)
			}
			if !strings.Contains(a.LogText, r.logText) {
				t.Errorf("log text %q does not contain %q", a.LogText, r.logText)
			}
			if r.want == Wait && a.NeedSnapshot != r.needSnapshot {
				t.Errorf("NeedSnapshot %v, want %v", a.NeedSnapshot, r.needSnapshot)
			}
			if a.Paused != r.paused {
				t.Errorf("Paused %v, want %v", a.Paused, r.paused)
			}
		})
	}
}

// TestDecideNeverSubmitsWithoutTheSubmitRule checks invariant 1 over every combination of the
// inputs that matter: Decide asks for a submit only when the container is ours and Locked with
// priority > 0, the submit rule holds, no job of ours is alive or unconfirmed, and (if adopted)
// absence is confirmed.
func TestDecideNeverSubmitsWithoutTheSubmitRule(t *testing.T) {
	states := []arvados.ContainerState{arvados.Queued, arvados.Locked, arvados.Running, arvados.Complete, arvados.Cancelled}
	presences := []squeue.Presence{{}, alive("PENDING", "Priority", slurm.ReasonWaiting), ended("", ""), ended("7", "FAILED")}
	n := 0
	for _, st := range states {
		for _, p := range presences {
			for bits := range 1 << 7 {
				o := base()
				o.Container.State = st
				o.Presence = p
				o.SubmitRule = bits&1 != 0
				o.Adopted = bits&2 != 0
				o.Last.Ambiguous = bits&4 != 0
				if bits&8 != 0 {
					o.Last.JobID = "7"
				}
				o.Paused = bits&16 != 0
				o.Probe = bits&32 != 0
				if bits&64 != 0 {
					o.Container.LockedByUUID = otherTok
				}
				a := Decide(o)
				if a.Kind != Submit {
					continue
				}
				n++
				switch {
				case !o.SubmitRule, st != arvados.Locked, o.Container.LockedByUUID != testToken, p.Kind == squeue.Present:
					t.Errorf("submit with %+v", o)
				case o.Adopted && p.Kind != squeue.AbsentConfirmed:
					t.Errorf("adopted container submitted without confirmed absence: %+v", o)
				case (o.Last.Ambiguous || o.Last.JobID != "") && p.Kind != squeue.AbsentConfirmed:
					t.Errorf("submitted again before the last job's absence was confirmed: %+v", o)
				case o.Last.JobID != "":
					t.Errorf("submitted again after our job ended (should unlock): %+v", o)
				case o.Paused && !o.Probe:
					t.Errorf("submitted while paused: %+v", o)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no combination led to a submit: the check proves nothing")
	}
}
