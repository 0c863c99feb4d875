package squeue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

func TestPresenceOfALiveJob(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.slurm.add(uuid(1), "PENDING", 10)
	if p := h.w.Presence(uuid(1)); p.Kind != Unknown {
		t.Fatalf("before any snapshot: %v, want unknown", p.Kind)
	}
	h.cycles(1)
	p := h.w.Presence(uuid(1))
	if p.Kind != Present || p.Job.ID != id || p.Job.State != "PENDING" || p.Job.Reason != "Priority" {
		t.Fatalf("presence = %+v, want present pending job %s", p, id)
	}
	if p := h.w.Presence(uuid(2)); p.Kind != Unknown {
		t.Errorf("a uuid never seen: %v, want unknown", p.Kind)
	}
}

func TestPresenceReportsDuplicatesRunningFirst(t *testing.T) {
	h := newHarness(t, Config{})
	pend := h.slurm.add(uuid(1), "PENDING", 0)
	run := h.slurm.add(uuid(1), "RUNNING", 0)
	h.cycles(1)
	p := h.w.Presence(uuid(1))
	if p.Job.ID != run || len(p.Duplicates) != 1 || p.Duplicates[0] != pend {
		t.Fatalf("presence = %+v, want running %s with duplicate %s", p, run, pend)
	}
}

// TestAbsenceIsConfirmedWithTheFinalState: a job that really ended is confirmed absent within
// three periods, with the state the lookup saw.
func TestAbsenceIsConfirmedWithTheFinalState(t *testing.T) {
	for _, state := range []string{"COMPLETED", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "TIMEOUT", "CANCELLED"} {
		t.Run("a job ending "+state, func(t *testing.T) {
			h := newHarness(t, Config{})
			id := h.slurm.add(uuid(1), "RUNNING", 0)
			other := h.slurm.add(uuid(2), "RUNNING", 0)
			h.cycles(1)
			h.slurm.set(id, func(j *slurm.Job) { j.State = state })
			for n := 1; n <= 3; n++ {
				h.cycles(1)
				if p := h.w.Presence(uuid(1)); p.Kind == AbsentConfirmed {
					if p.Ending.JobID != id || p.Ending.State != state {
						t.Fatalf("ending = %+v, want job %s in %s", p.Ending, id, state)
					}
					if h.w.Presence(uuid(2)).Kind != Present {
						t.Fatalf("the other job %s is not present", other)
					}
					return
				}
			}
			t.Fatalf("not confirmed absent within three periods: %+v", h.w.Presence(uuid(1)))
		})
	}
}

func TestAbsenceOfAPurgedJobHasNoState(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.slurm.add(uuid(1), "RUNNING", 0)
	h.slurm.add(uuid(2), "RUNNING", 0)
	h.cycles(1)
	h.slurm.purge(id)
	h.cycles(2)
	p := h.w.Presence(uuid(1))
	if p.Kind != AbsentConfirmed || p.Ending.JobID != id || p.Ending.State != "" {
		t.Fatalf("presence = %+v, want absent-confirmed job %s with no state", p, id)
	}
}

// TestAbsenceNeedsTwoSnapshotsAndALookup: one missing snapshot is unknown; the confirmation
// uses one lookup, by name.
func TestAbsenceNeedsTwoSnapshotsAndALookup(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.slurm.add(uuid(1), "RUNNING", 0)
	h.slurm.add(uuid(2), "RUNNING", 0)
	h.cycles(1)
	h.slurm.set(id, func(j *slurm.Job) { j.State = "COMPLETED" })
	h.slurm.take("")
	h.cycles(1)
	if p := h.w.Presence(uuid(1)); p.Kind != Unknown {
		t.Fatalf("after one missing snapshot: %v, want unknown", p.Kind)
	}
	if got := h.slurm.take("Lookup"); len(got) != 0 {
		t.Fatalf("lookups after one missing snapshot: %+v", got)
	}
	h.cycles(1)
	got := h.slurm.take("Lookup")
	if len(got) != 1 || got[0].Query.Name != uuid(1) {
		t.Fatalf("lookups = %+v, want one by name", got)
	}
	if p := h.w.Presence(uuid(1)); p.Kind != AbsentConfirmed {
		t.Fatalf("after two: %v", p.Kind)
	}
	h.cycles(3)
	if got := h.slurm.take("Lookup"); len(got) != 0 {
		t.Fatalf("lookups after confirmation: %+v", got)
	}
}

// TestFaultyOutputNeverConfirmsAbsenceOfALiveJob: squeue failing, printing nothing, printing
// garbage (lines skipped, jobs lost) or dropping most jobs never makes a live job
// absent-confirmed; once squeue recovers the jobs are present again.
func TestFaultyOutputNeverConfirmsAbsenceOfALiveJob(t *testing.T) {
	tests := []struct {
		name    string
		periods int
		fault   func(h *harness)
	}{
		{name: "squeue failing for ten periods", periods: 10, fault: func(h *harness) { h.slurm.failNext("Snapshot", 10) }},
		{name: "squeue printing nothing for one period", periods: 1,
			fault: func(h *harness) { h.slurm.setMangle(func(s *slurm.Snapshot) { s.Jobs = nil }) }},
		{name: "squeue printing nothing for ten periods", periods: 10,
			fault: func(h *harness) { h.slurm.setMangle(func(s *slurm.Snapshot) { s.Jobs = nil }) }},
		{name: "squeue printing garbage that loses most jobs for ten periods", periods: 10,
			fault: func(h *harness) {
				h.slurm.setMangle(func(s *slurm.Snapshot) { s.Jobs, s.Skipped = s.Jobs[:1], len(s.Jobs)-1 })
			}},
		{name: "squeue printing one garbage line that loses one job for ten periods", periods: 10,
			fault: func(h *harness) {
				h.slurm.setMangle(func(s *slurm.Snapshot) { s.Jobs, s.Skipped = s.Jobs[1:], 1 })
			}},
		{name: "squeue dropping most jobs for one period", periods: 1,
			fault: func(h *harness) { h.slurm.setMangle(func(s *slurm.Snapshot) { s.Jobs = s.Jobs[:1] }) }},
		{name: "squeue dropping one job for ten periods", periods: 10,
			fault: func(h *harness) { h.slurm.setMangle(func(s *slurm.Snapshot) { s.Jobs = s.Jobs[1:] }) }},
		{name: "squeue printing nothing and lookups failing for ten periods", periods: 10,
			fault: func(h *harness) {
				h.slurm.setMangle(func(s *slurm.Snapshot) { s.Jobs = nil })
				h.slurm.failNext("Lookup", 1000)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			for n := 1; n <= 6; n++ {
				state := "RUNNING"
				if n%2 == 0 {
					state = "PENDING"
				}
				h.slurm.add(uuid(n), state, 0)
			}
			h.cycles(1)
			tt.fault(h)
			for range tt.periods {
				_ = h.cycle()
				for n := 1; n <= 6; n++ {
					if p := h.w.Presence(uuid(n)); p.Kind == AbsentConfirmed {
						t.Fatalf("live job of %s confirmed absent: %+v", uuid(n), p)
					}
					if h.w.AbsentInSnapshotAfter(uuid(n), time.Time{}) {
						t.Fatalf("live job of %s reported absent for a submit", uuid(n))
					}
				}
			}
			h.slurm.setMangle(nil)
			h.slurm.failNext("Lookup", 0)
			h.slurm.failNext("Snapshot", 0)
			h.cycles(1)
			for n := 1; n <= 6; n++ {
				if p := h.w.Presence(uuid(n)); p.Kind != Present {
					t.Errorf("after recovery %s is %v", uuid(n), p.Kind)
				}
			}
		})
	}
}

// TestJobsEndingTogetherAreConfirmedDespiteASuspectSnapshot: most jobs ending in one period
// makes the snapshot suspect; lookups showing them finished still confirm them in time.
func TestJobsEndingTogetherAreConfirmedDespiteASuspectSnapshot(t *testing.T) {
	h := newHarness(t, Config{})
	var ids []string
	for n := 1; n <= 4; n++ {
		ids = append(ids, h.slurm.add(uuid(n), "RUNNING", 0))
	}
	h.cycles(1)
	for _, id := range ids[:3] {
		h.slurm.set(id, func(j *slurm.Job) { j.State = "COMPLETED" })
	}
	h.cycles(1)
	if st := h.w.Stats(); st.SnapshotsSuspect != 1 {
		t.Fatalf("suspect snapshots = %d, want 1", st.SnapshotsSuspect)
	}
	if p := h.w.Presence(uuid(1)); p.Kind != Unknown {
		t.Fatalf("after one suspect snapshot (one of the two): %v, want unknown", p.Kind)
	}
	h.cycles(1)
	for n := 1; n <= 3; n++ {
		if p := h.w.Presence(uuid(n)); p.Kind != AbsentConfirmed || p.Ending.State != "COMPLETED" {
			t.Errorf("%s: %+v, want absent-confirmed COMPLETED within two periods", uuid(n), p)
		}
	}
	if p := h.w.Presence(uuid(4)); p.Kind != Present {
		t.Errorf("the live job: %v", p.Kind)
	}
}

func TestTheLastJobEndingIsConfirmedDespiteEmptyOutput(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.slurm.add(uuid(1), "RUNNING", 0)
	h.cycles(1)
	h.slurm.set(id, func(j *slurm.Job) { j.State = "TIMEOUT" })
	h.cycles(3)
	if p := h.w.Presence(uuid(1)); p.Kind != AbsentConfirmed || p.Ending.State != "TIMEOUT" {
		t.Fatalf("presence = %+v, want absent-confirmed TIMEOUT", p)
	}
}

func TestALookupErrorChangesNothing(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.slurm.add(uuid(1), "RUNNING", 0)
	h.slurm.add(uuid(2), "RUNNING", 0)
	h.cycles(1)
	h.slurm.set(id, func(j *slurm.Job) { j.State = "FAILED" })
	h.slurm.failNext("Lookup", 3)
	h.cycles(4)
	if p := h.w.Presence(uuid(1)); p.Kind != Unknown {
		t.Fatalf("with lookups failing: %v, want unknown", p.Kind)
	}
	if st := h.w.Stats(); st.LookupErrors != 3 {
		t.Fatalf("lookup errors = %d, want 3", st.LookupErrors)
	}
	h.cycles(1)
	if p := h.w.Presence(uuid(1)); p.Kind != AbsentConfirmed || p.Ending.State != "FAILED" {
		t.Fatalf("after lookups recover: %+v", p)
	}
}

func TestLookupsAreBoundedPerCycle(t *testing.T) {
	h := newHarness(t, Config{MaxLookupsPerCycle: 3})
	var ids []string
	for n := 1; n <= 10; n++ {
		ids = append(ids, h.slurm.add(uuid(n), "RUNNING", 0))
	}
	h.slurm.add(uuid(99), "RUNNING", 0)
	h.cycles(1)
	for _, id := range ids {
		h.slurm.set(id, func(j *slurm.Job) { j.State = "COMPLETED" })
	}
	h.cycles(1) // suspect: 10 of 11 lost; 3 lookups
	if got := len(h.slurm.take("Lookup")); got != 3 {
		t.Fatalf("lookups in the suspect cycle = %d, want 3", got)
	}
	// Two lookups a job (the snapshots stay suspect until the losses are explained).
	for range 7 {
		h.cycles(1)
		if got := len(h.slurm.take("Lookup")); got > 3 {
			t.Fatalf("lookups in a cycle = %d, over the bound 3", got)
		}
	}
	for n := 1; n <= 10; n++ {
		if p := h.w.Presence(uuid(n)); p.Kind != AbsentConfirmed {
			t.Errorf("%s not confirmed after eight cycles", uuid(n))
		}
	}
}

// TestAbsenceCountsOnlySnapshotsAfterOurLastAction: a submit whose job does not show (yet)
// needs snapshots started after it; so does a cancel.
func TestAbsenceCountsOnlySnapshotsAfterOurLastAction(t *testing.T) {
	h := newHarness(t, Config{})
	h.slurm.add(uuid(9), "RUNNING", 0)
	h.cycles(1)
	lockedAt := h.clock.Now()
	h.cycles(1)
	if !h.w.AbsentInSnapshotAfter(uuid(1), lockedAt) {
		t.Fatal("a never-submitted uuid is not absent from a snapshot after the lock")
	}
	// An sbatch that timed out at submitAt: no job id, and no job shows.
	h.clock.Advance(time.Second)
	submitAt := h.clock.Now()
	h.w.NoteSubmitted(uuid(1), "", 10, 5, submitAt)
	if h.w.AbsentInSnapshotAfter(uuid(1), lockedAt) {
		t.Fatal("absent right after a submit, before any snapshot after it")
	}
	h.cycles(1)
	if h.w.AbsentInSnapshotAfter(uuid(1), lockedAt) {
		t.Fatal("absent after an ambiguous submit before a lookup confirmed it")
	}
	if p := h.w.Presence(uuid(1)); p.Kind != Unknown {
		t.Fatalf("presence after one snapshot = %v, want unknown", p.Kind)
	}
	h.cycles(1)
	if p := h.w.Presence(uuid(1)); p.Kind != AbsentConfirmed || p.Ending.JobID != "" || p.Ending.State != "" {
		t.Fatalf("presence after two snapshots = %+v, want absent-confirmed with no job", p)
	}
	if !h.w.AbsentInSnapshotAfter(uuid(1), lockedAt) {
		t.Fatal("not absent once the lookup confirmed it")
	}
	h.w.NoteCancelled(uuid(1), h.clock.Now())
	if p := h.w.Presence(uuid(1)); p.Kind != Unknown {
		t.Fatalf("presence right after a cancel = %v, want unknown", p.Kind)
	}
	if h.w.AbsentInSnapshotAfter(uuid(1), lockedAt) {
		t.Fatal("absent right after a cancel, before any snapshot after it")
	}
}

func TestAbsentInSnapshotAfter(t *testing.T) {
	h := newHarness(t, Config{})
	if h.w.AbsentInSnapshotAfter(uuid(1), time.Time{}) {
		t.Fatal("absent before any snapshot")
	}
	h.slurm.add(uuid(2), "PENDING", 0)
	h.slurm.add(uuid(3), "PENDING", 0)
	h.slurm.add(uuid(4), "PENDING", 0)
	h.cycles(1)
	before, now := h.clock.Now().Add(-time.Second), h.clock.Now()
	if !h.w.AbsentInSnapshotAfter(uuid(1), before) {
		t.Error("not absent from a snapshot that started after t")
	}
	if h.w.AbsentInSnapshotAfter(uuid(1), now) {
		t.Error("absent from a snapshot that started at t, not after")
	}
	if h.w.AbsentInSnapshotAfter(uuid(2), before) {
		t.Error("a present job reported absent")
	}
	h.slurm.setMangle(func(s *slurm.Snapshot) { s.Jobs = s.Jobs[:1] })
	h.cycles(1)
	if h.w.AbsentInSnapshotAfter(uuid(1), before) || h.w.AbsentInSnapshotAfter(uuid(3), before) {
		t.Error("absent from a suspect snapshot")
	}
	h.slurm.setMangle(func(s *slurm.Snapshot) { s.Jobs = s.Jobs[:2] })
	h.cycles(1)
	if h.w.AbsentInSnapshotAfter(uuid(4), before) {
		t.Error("a job seen alive and missing from a good snapshot reported absent before confirmation")
	}
}

func TestWaitSnapshotAfter(t *testing.T) {
	h := newHarness(t, Config{})
	h.cycles(1)
	t0 := h.clock.Now()
	if err := h.w.WaitSnapshotAfter(context.Background(), t0.Add(-time.Second)); err != nil {
		t.Fatalf("a snapshot already after t: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- h.w.WaitSnapshotAfter(context.Background(), t0) }()
	h.slurm.failNext("Snapshot", 1)
	if err := h.cycle(); err == nil {
		t.Fatal("the failing cycle reported no error")
	}
	select {
	case err := <-done:
		t.Fatalf("a failed squeue woke the waiter: %v", err)
	default:
	}
	h.cycles(1)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter did not return after a snapshot after t")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.w.WaitSnapshotAfter(ctx, h.clock.Now()); err == nil {
		t.Fatal("no error from a cancelled wait")
	}
}

func TestHealth(t *testing.T) {
	h := newHarness(t, Config{FailuresUntilUnhealthy: 3})
	h.slurm.add(uuid(1), "RUNNING", 0)
	h.cycles(1)
	h.slurm.failNext("Snapshot", 3)
	for n := 1; n <= 3; n++ {
		if ok, _ := h.w.Healthy(); !ok {
			t.Fatalf("unhealthy after %d failures", n-1)
		}
		if err := h.cycle(); err == nil {
			t.Fatal("no error from a failed squeue")
		}
	}
	if ok, why := h.w.Healthy(); ok || why == "" {
		t.Fatalf("healthy after 3 failures: %v %q", ok, why)
	}
	if p := h.w.Presence(uuid(1)); p.Kind != Present {
		t.Fatalf("the previous snapshot was not kept: %v", p.Kind)
	}
	h.cycles(1)
	if ok, _ := h.w.Healthy(); !ok {
		t.Fatal("still unhealthy after a good snapshot")
	}
	st := h.w.Stats()
	if st.SnapshotsOK != 2 || st.SnapshotsFailed != 3 || st.ConsecutiveFailures != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestSuspectSnapshots(t *testing.T) {
	tests := []struct {
		name    string
		jobs    int
		mangle  func(*slurm.Snapshot)
		suspect bool
	}{
		{name: "a snapshot with unparsable lines is suspect", jobs: 5,
			mangle: func(s *slurm.Snapshot) { s.Skipped = 1 }, suspect: true},
		{name: "an empty snapshot after one of our jobs is suspect", jobs: 1,
			mangle: func(s *slurm.Snapshot) { s.Jobs = nil }, suspect: true},
		{name: "a snapshot with only foreign jobs after ours is suspect", jobs: 1,
			mangle: func(s *slurm.Snapshot) { s.Jobs = []slurm.Job{{ID: "1", Name: "foo", State: "RUNNING"}} }, suspect: true},
		{name: "losing half of our jobs, two of them, is suspect", jobs: 4,
			mangle: func(s *slurm.Snapshot) { s.Jobs = s.Jobs[2:] }, suspect: true},
		{name: "losing one of two jobs is not suspect", jobs: 2,
			mangle: func(s *slurm.Snapshot) { s.Jobs = s.Jobs[1:] }},
		{name: "losing two of five jobs is not suspect", jobs: 5,
			mangle: func(s *slurm.Snapshot) { s.Jobs = s.Jobs[2:] }},
		{name: "an empty snapshot when we had no job is not suspect", jobs: 0,
			mangle: func(s *slurm.Snapshot) { s.Jobs = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			for n := range tt.jobs {
				h.slurm.add(uuid(n), "RUNNING", 0)
			}
			h.cycles(1)
			h.slurm.setMangle(tt.mangle)
			h.cycles(1)
			if got := h.w.Stats().SnapshotsSuspect == 1; got != tt.suspect {
				t.Fatalf("suspect = %v, want %v", got, tt.suspect)
			}
		})
	}
}

// TestJobsMissingFromSuspectOutputAreNotGoneWhileRecentlySeen: squeue keeps lacking most of
// our jobs and lookups find nothing at all (as if slurmctld forgot them, or a wrapper points
// at the wrong cluster): no absence is confirmed until GoneAfter has passed since they were
// last seen (finished jobs stay visible for MinJobAge), and the watcher reports unhealthy.
func TestJobsMissingFromSuspectOutputAreNotGoneWhileRecentlySeen(t *testing.T) {
	h := newHarness(t, Config{GoneAfter: 5 * time.Minute, SuspectUntilUnhealthy: 10})
	for n := 1; n <= 4; n++ {
		h.slurm.add(uuid(n), "RUNNING", 0)
	}
	h.cycles(1)
	h.slurm.lookupLies = true
	h.slurm.setMangle(func(s *slurm.Snapshot) { s.Jobs = s.Jobs[3:] })
	for range 140 { // 4 min 40 s
		h.cycles(1)
		if p := h.w.Presence(uuid(1)); p.Kind == AbsentConfirmed {
			t.Fatalf("confirmed absent at %s on suspect output and lookups finding nothing", h.clock.Now())
		}
	}
	if ok, why := h.w.Healthy(); ok {
		t.Fatal("healthy after 140 suspect snapshots")
	} else if !strings.Contains(why, "suspect") {
		t.Fatalf("unhealthy for another reason: %s", why)
	}
	h.cycles(12) // past 5 minutes
	for n := 1; n <= 3; n++ {
		if p := h.w.Presence(uuid(n)); p.Kind != AbsentConfirmed || p.Ending.State != "" {
			t.Fatalf("%s after GoneAfter: %+v, want absent-confirmed, gone", uuid(n), p)
		}
	}
	if ok, why := h.w.Healthy(); !ok {
		t.Fatalf("still unhealthy once the losses are explained: %s", why)
	}
}

// TestJobsSubmittedButNotYetSeenAreNotGoneOnEmptyOutput: jobs we submitted (with an id) that
// no snapshot has shown yet, because squeue started failing right after the submit, and then
// squeue printing nothing (lookups too): the empty output is suspect, and the jobs are not
// confirmed absent. Found by the end-to-end scenario "squeue failing, then printing nothing":
// the first good snapshot after the submits was empty and counted as evidence, so the
// dispatcher unlocked and cancelled containers whose jobs were alive.
func TestJobsSubmittedButNotYetSeenAreNotGoneOnEmptyOutput(t *testing.T) {
	h := newHarness(t, Config{})
	h.cycles(1)
	for n := 1; n <= 3; n++ {
		id := h.slurm.add(uuid(n), "RUNNING", 0)
		h.w.NoteSubmitted(uuid(n), id, 0, 1, h.clock.Now())
	}
	h.slurm.failNext("Snapshot", 3)
	for range 3 {
		if err := h.cycle(); err == nil {
			t.Fatal("the injected squeue failure did not fail the cycle")
		}
	}
	h.slurm.lookupLies = true
	h.slurm.setMangle(func(s *slurm.Snapshot) { s.Jobs = nil })
	h.cycles(8)
	for n := 1; n <= 3; n++ {
		if p := h.w.Presence(uuid(n)); p.Kind == AbsentConfirmed {
			t.Fatalf("%s confirmed absent on empty output: %+v", uuid(n), p)
		}
		if h.w.AbsentInSnapshotAfter(uuid(n), time.Time{}) {
			t.Fatalf("%s may be submitted again on empty output", uuid(n))
		}
	}
	h.slurm.lookupLies = false
	h.slurm.setMangle(nil)
	h.cycles(1)
	for n := 1; n <= 3; n++ {
		if p := h.w.Presence(uuid(n)); p.Kind != Present {
			t.Fatalf("%s after squeue recovered: %v, want present", uuid(n), p.Kind)
		}
	}
}

// TestAJobThatEndsBeforeAnySnapshotShowsItIsConfirmedAbsent: a job we submitted that finished
// before any snapshot saw it, alone in the queue: the empty snapshots are suspect (the job is
// believed alive), and lookups that find it finished confirm its absence.
func TestAJobThatEndsBeforeAnySnapshotShowsItIsConfirmedAbsent(t *testing.T) {
	h := newHarness(t, Config{})
	h.cycles(1)
	id := h.slurm.add(uuid(1), "COMPLETED", 0)
	h.w.NoteSubmitted(uuid(1), id, 0, 1, h.clock.Now())
	h.cycles(3)
	if p := h.w.Presence(uuid(1)); p.Kind != AbsentConfirmed || p.Ending.JobID != id || p.Ending.State != "COMPLETED" {
		t.Fatalf("presence %+v, want absent-confirmed, COMPLETED", p)
	}
}

// TestAShortGlitchSeenByABurstOfSnapshotsIsOneMiss: right after a start, a burst of
// snapshots (the dispatcher poking for each adopted container) taken while squeue and its
// lookups print nothing must not confirm the absence of live jobs the new process has never
// seen: misses count only when spread over most of a period. Found by the soak: an adopted
// Running container was cancelled and a pending one got a second job.
func TestAShortGlitchSeenByABurstOfSnapshotsIsOneMiss(t *testing.T) {
	h := newHarness(t, Config{})
	running := h.slurm.add(uuid(1), "RUNNING", 0)
	h.slurm.add(uuid(2), "PENDING", 0)
	h.w.SetWanted(Wanted{Locked: map[string]int64{uuid(1): 1, uuid(2): 1}, At: h.clock.Now()})
	h.slurm.setMangle(func(s *slurm.Snapshot) { s.Jobs = nil })
	h.slurm.lookupLies = true
	for range 8 { // 8 snapshots 10 ms apart, as pokes make them
		h.clock.Advance(10 * time.Millisecond)
		if err := h.w.Cycle(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{uuid(1), uuid(2)} {
		if p := h.w.Presence(u); p.Kind == AbsentConfirmed {
			t.Fatalf("%s (job alive) after a glitch of 80 ms: %v", u, p.Kind)
		}
	}
	h.slurm.setMangle(nil)
	h.slurm.lookupLies = false
	h.cycles(1)
	if p := h.w.Presence(uuid(1)); p.Kind != Present || p.Job.ID != running {
		t.Fatalf("after the glitch: %+v, want present %s", p, running)
	}

	// The same glitch lasting for periods is evidence: a job that really ended is confirmed.
	h.slurm.set(running, func(j *slurm.Job) { j.State = "COMPLETED" })
	h.cycles(3)
	if p := h.w.Presence(uuid(1)); p.Kind != AbsentConfirmed {
		t.Fatalf("a job ended for three periods: %v, want absent-confirmed", p.Kind)
	}
}

// TestARunningContainerNeverSeenMakesEmptyOutputSuspect: a new process adopts a Running
// container (crunch-run runs inside a job, so one exists) and squeue and its lookups print
// nothing for several periods: its absence is not confirmed while that lasts, and a Locked
// container's is not either (the snapshot is suspect). A job that really vanished is
// confirmed after GoneAfter.
func TestARunningContainerNeverSeenMakesEmptyOutputSuspect(t *testing.T) {
	h := newHarness(t, Config{GoneAfter: time.Minute})
	running := h.slurm.add(uuid(1), "RUNNING", 0)
	h.slurm.add(uuid(2), "PENDING", 0)
	h.w.SetWanted(Wanted{Locked: map[string]int64{uuid(1): 1, uuid(2): 1}, Running: map[string]bool{uuid(1): true},
		At: h.clock.Now()})
	h.slurm.setMangle(func(s *slurm.Snapshot) { s.Jobs = nil })
	h.slurm.lookupLies = true
	h.cycles(10)
	for _, u := range []string{uuid(1), uuid(2)} {
		if p := h.w.Presence(u); p.Kind == AbsentConfirmed {
			t.Fatalf("%s (job alive) after 20 s of empty output: %v", u, p.Kind)
		}
	}
	h.slurm.setMangle(nil)
	h.slurm.lookupLies = false
	h.cycles(1)
	if p := h.w.Presence(uuid(1)); p.Kind != Present || p.Job.ID != running {
		t.Fatalf("once squeue recovers: %+v, want present %s", p, running)
	}

	// Another new process, and the Running container's job really is gone without a trace.
	h = newHarness(t, Config{GoneAfter: time.Minute})
	h.w.SetWanted(Wanted{Locked: map[string]int64{uuid(1): 1}, Running: map[string]bool{uuid(1): true}, At: h.clock.Now()})
	h.cycles(20) // 40 s
	if p := h.w.Presence(uuid(1)); p.Kind == AbsentConfirmed {
		t.Fatalf("confirmed absent after 40 s with no trace: %+v", p)
	}
	h.cycles(15) // 70 s: past GoneAfter
	if p := h.w.Presence(uuid(1)); p.Kind != AbsentConfirmed {
		t.Fatalf("not confirmed absent after GoneAfter: %v", p.Kind)
	}
}
