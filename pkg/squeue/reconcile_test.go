package squeue

import (
	"slices"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// TestUnwantedContainersGetTheirJobCancelledWithinOneCycle: after the poller says a container
// is no longer wanted, the next cycle cancels its job: pending ones plainly, running ones with
// TERM to the batch step.
func TestUnwantedContainersGetTheirJobCancelledWithinOneCycle(t *testing.T) {
	tests := []struct {
		name        string
		state       string
		wanted      Wanted
		wantRunning bool
	}{
		{name: "a pending job of a container gone Cancelled", state: "PENDING",
			wanted: Wanted{Unwanted: map[string]UnwantedReason{uuid(1): ContainerCancelled}}},
		{name: "a running job of a container gone Cancelled", state: "RUNNING", wantRunning: true,
			wanted: Wanted{Unwanted: map[string]UnwantedReason{uuid(1): ContainerCancelled}}},
		{name: "a running job of a container gone Complete", state: "RUNNING", wantRunning: true,
			wanted: Wanted{Unwanted: map[string]UnwantedReason{uuid(1): ContainerComplete}}},
		{name: "a pending job of a container unlocked back to Queued", state: "PENDING",
			wanted: Wanted{Unwanted: map[string]UnwantedReason{uuid(1): ContainerQueued}}},
		{name: "a pending job of a locked container at priority 0", state: "PENDING",
			wanted: Wanted{Locked: map[string]int64{uuid(1): 0}}},
		{name: "a running job of a container reported at priority 0", state: "RUNNING", wantRunning: true,
			wanted: Wanted{Unwanted: map[string]UnwantedReason{uuid(1): PriorityZero}}},
		{name: "a completing job of a container locked by another token", state: "COMPLETING", wantRunning: true,
			wanted: Wanted{Unwanted: map[string]UnwantedReason{uuid(1): LockedByOther}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			id := h.slurm.add(uuid(1), tt.state, 0)
			keep := h.slurm.add(uuid(2), tt.state, 0)
			h.cycles(1)
			tt.wanted.At = h.clock.Now()
			h.w.SetWanted(tt.wanted)
			h.slurm.take("")
			h.cycles(1)
			got := h.slurm.take("Cancel")
			if len(got) != 1 || !slices.Equal(got[0].IDs, []string{id}) || got[0].Req.Running != tt.wantRunning {
				t.Fatalf("cancel calls = %+v, want one for %s with Running=%v (not %s)", got, id, tt.wantRunning, keep)
			}
			if st := h.w.Stats(); st.CancelCalls != 1 || st.CancelledJobs != 1 {
				t.Fatalf("stats = %+v", st)
			}
		})
	}
}

// TestCancelIsSentOnceUnlessTheJobLingersPastTheGrace: scancel goes again only to a job that
// lingers, after CancelGrace; a job that had just started when it got TERM (whose batch step
// may not have existed, so that Slurm dropped the signal) gets it once more after
// YoungResend.
func TestCancelIsSentOnceUnlessTheJobLingersPastTheGrace(t *testing.T) {
	tests := []struct {
		name string
		// runningFor is how many 2 s cycles showed the job running before it was unwanted.
		state      string
		runningFor int
		want       []time.Duration
	}{
		{"a job running for a while", "RUNNING", 6, []time.Duration{2 * time.Second, 32 * time.Second, 62 * time.Second}},
		{"a job that has just started", "RUNNING", 1, []time.Duration{2 * time.Second, 8 * time.Second, 38 * time.Second, 68 * time.Second}},
		{"a pending job", "PENDING", 1, []time.Duration{2 * time.Second, 32 * time.Second, 62 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{CancelGrace: 30 * time.Second, YoungResend: 5 * time.Second})
			h.slurm.lingerOnCancel = true
			id := h.slurm.add(uuid(1), tt.state, 0)
			h.cycles(tt.runningFor)
			h.w.SetWanted(Wanted{Unwanted: map[string]UnwantedReason{uuid(1): ContainerCancelled}, At: h.clock.Now()})
			h.slurm.take("")
			var at []time.Time
			start := h.clock.Now()
			for range 40 { // 80 s at 2 s a cycle
				h.cycles(1)
				for range h.slurm.take("Cancel") {
					at = append(at, h.clock.Now())
				}
			}
			var got []time.Duration
			for _, a := range at {
				got = append(got, a.Sub(start))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("scancel of lingering job %s sent at %v, want %v", id, got, tt.want)
			}
		})
	}
}

func TestACancelledJobThatEndsIsCancelledOnce(t *testing.T) {
	h := newHarness(t, Config{})
	h.slurm.add(uuid(1), "PENDING", 0)
	h.slurm.add(uuid(2), "PENDING", 0)
	h.cycles(1)
	h.w.SetWanted(Wanted{Unwanted: map[string]UnwantedReason{uuid(1): ContainerCancelled}, At: h.clock.Now()})
	h.slurm.take("")
	h.cycles(40)
	if got := h.slurm.take("Cancel"); len(got) != 1 {
		t.Fatalf("cancel calls = %+v, want one", got)
	}
	if p := h.w.Presence(uuid(1)); p.Kind != AbsentConfirmed || p.Ending.State != "CANCELLED" {
		t.Fatalf("presence = %+v, want absent-confirmed CANCELLED", p)
	}
}

func TestCancelsAreBatchedPendingApartFromRunning(t *testing.T) {
	h := newHarness(t, Config{})
	unwanted := map[string]UnwantedReason{}
	var pend, run []string
	for n := 1; n <= 6; n++ {
		if n%2 == 0 {
			pend = append(pend, h.slurm.add(uuid(n), "PENDING", 0))
		} else {
			run = append(run, h.slurm.add(uuid(n), "RUNNING", 0))
		}
		unwanted[uuid(n)] = ContainerCancelled
	}
	h.cycles(1)
	h.w.SetWanted(Wanted{Unwanted: unwanted, At: h.clock.Now()})
	h.slurm.take("")
	h.cycles(1)
	got := h.slurm.take("Cancel")
	if len(got) != 2 || !slices.Equal(got[0].IDs, pend) || got[0].Req.Running ||
		!slices.Equal(got[1].IDs, run) || !got[1].Req.Running {
		t.Fatalf("cancel calls = %+v, want pending %v plainly then running %v with TERM", got, pend, run)
	}
}

func TestAFailedCancelIsRetriedNextCycle(t *testing.T) {
	h := newHarness(t, Config{})
	h.slurm.add(uuid(1), "PENDING", 0)
	h.cycles(1)
	h.w.SetWanted(Wanted{Unwanted: map[string]UnwantedReason{uuid(1): ContainerCancelled}, At: h.clock.Now()})
	h.slurm.failNext("Cancel", 1)
	h.slurm.take("")
	h.cycles(2)
	if got := h.slurm.take("Cancel"); len(got) != 2 {
		t.Fatalf("cancel calls = %d, want the failed one and its retry", len(got))
	}
	if st := h.w.Stats(); st.CancelErrors != 1 || st.CancelledJobs != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestForeignJobsAreNeverTouched: jobs whose names are not container uuids of our cluster are
// neither cancelled nor reniced, whatever the poller says about those names.
func TestForeignJobsAreNeverTouched(t *testing.T) {
	h := newHarness(t, Config{})
	foreign := []string{"interactive", "yyyyy-dz642-000000000000001", "zzzzz-j7d0g-000000000000001",
		"zzzzz-dz642-00000000000000", "ZZZZZ-dz642-000000000000001", "zzzzz-dz642-000000000000001 "}
	unwanted := map[string]UnwantedReason{}
	locked := map[string]int64{}
	for i, name := range foreign {
		h.slurm.add(name, "PENDING", i) // out of order if they were ours
		h.slurm.add(name, "RUNNING", 0)
		unwanted[name] = ContainerCancelled
		locked[name] = int64(100 + i)
	}
	h.w.SetWanted(Wanted{Locked: locked, Unwanted: unwanted, At: h.clock.Now()})
	h.cycles(5)
	for _, m := range []string{"Cancel", "Renice", "Lookup"} {
		if got := h.slurm.take(m); len(got) != 0 {
			t.Errorf("%s calls on foreign jobs: %+v", m, got)
		}
		h.cycles(1)
	}
	if got := h.w.Unreported(); len(got) != 0 {
		t.Errorf("foreign jobs listed as unreported: %v", got)
	}
	if p := h.w.Presence(foreign[0]); p.Kind != Unknown {
		t.Errorf("presence of a foreign job: %v", p.Kind)
	}
}

func TestJobsOfUnreportedContainersAreLeftAloneAndListed(t *testing.T) {
	h := newHarness(t, Config{})
	h.slurm.add(uuid(3), "PENDING", 5)
	h.slurm.add(uuid(1), "PENDING", 0)
	h.slurm.add(uuid(2), "RUNNING", 0)
	h.slurm.add(uuid(4), "RUNNING", 0)
	h.cycles(1)
	h.w.SetWanted(Wanted{Locked: map[string]int64{uuid(2): 10}, Unwanted: map[string]UnwantedReason{uuid(4): ContainerComplete},
		At: h.clock.Now()})
	h.slurm.take("")
	h.cycles(3)
	if got, want := h.w.Unreported(), []string{uuid(1), uuid(3)}; !slices.Equal(got, want) {
		t.Fatalf("unreported = %v, want %v", got, want)
	}
	for _, c := range h.slurm.take("") {
		if c.Method == "Renice" || (c.Method == "Cancel" && !slices.Equal(c.IDs, []string{"104"})) {
			t.Errorf("unexpected call %+v", c)
		}
	}
}

// TestAJobSubmittedAfterThePollIsNotCancelledOnItsWord: the poll saw the container Queued,
// then it was locked and submitted; the stale view must not cancel the new job.
func TestAJobSubmittedAfterThePollIsNotCancelledOnItsWord(t *testing.T) {
	h := newHarness(t, Config{})
	h.cycles(1)
	pollAt := h.clock.Now()
	h.clock.Advance(time.Second)
	id := h.slurm.add(uuid(1), "PENDING", 0)
	h.w.NoteSubmitted(uuid(1), id, 0, 5, h.clock.Now())
	h.w.SetWanted(Wanted{Unwanted: map[string]UnwantedReason{uuid(1): ContainerQueued}, At: pollAt})
	h.cycles(3)
	if got := h.slurm.take("Cancel"); len(got) != 0 {
		t.Fatalf("cancelled on a view older than the submit: %+v", got)
	}
	h.w.SetWanted(Wanted{Unwanted: map[string]UnwantedReason{uuid(1): ContainerQueued}, At: h.clock.Now()})
	h.cycles(1)
	if got := h.slurm.take("Cancel"); len(got) != 1 {
		t.Fatalf("not cancelled on a view newer than the submit: %+v", got)
	}
}

func TestLockedWinsOverUnwantedAndOldViewsAreIgnored(t *testing.T) {
	h := newHarness(t, Config{})
	h.slurm.add(uuid(1), "RUNNING", 0)
	h.cycles(1)
	now := h.clock.Now()
	h.w.SetWanted(Wanted{Locked: map[string]int64{uuid(1): 7}, Unwanted: map[string]UnwantedReason{uuid(1): ContainerCancelled}, At: now})
	h.w.SetWanted(Wanted{Unwanted: map[string]UnwantedReason{uuid(1): ContainerCancelled}, At: now.Add(-time.Second)})
	h.cycles(2)
	if got := h.slurm.take("Cancel"); len(got) != 0 {
		t.Fatalf("cancelled a locked container's job: %+v", got)
	}
}

func TestSetWantedPokesForANewlyUnwantedJob(t *testing.T) {
	h := newHarness(t, Config{})
	h.slurm.add(uuid(1), "RUNNING", 0)
	h.cycles(1)
	h.w.SetWanted(Wanted{Locked: map[string]int64{uuid(1): 3}, At: h.clock.Now()})
	select {
	case <-h.w.poke:
		t.Fatal("poked with nothing to cancel")
	default:
	}
	h.w.SetWanted(Wanted{Unwanted: map[string]UnwantedReason{uuid(1): ContainerCancelled}, At: h.clock.Now()})
	select {
	case <-h.w.poke:
	default:
		t.Fatal("not poked with a job to cancel")
	}
}

func TestOurOwnCancelRestartsTheAbsenceCount(t *testing.T) {
	h := newHarness(t, Config{})
	id := h.slurm.add(uuid(1), "PENDING", 0)
	h.slurm.add(uuid(2), "PENDING", 0)
	h.cycles(1)
	h.w.SetWanted(Wanted{Unwanted: map[string]UnwantedReason{uuid(1): ContainerCancelled}, At: h.clock.Now()})
	h.cycles(1) // cancels
	h.slurm.set(id, func(j *slurm.Job) {
		if j.State != "CANCELLED" {
			t.Fatalf("job %s not cancelled: %s", id, j.State)
		}
	})
	h.cycles(1)
	if p := h.w.Presence(uuid(1)); p.Kind != Unknown {
		t.Fatalf("one snapshot after the cancel: %v", p.Kind)
	}
	h.cycles(1)
	if p := h.w.Presence(uuid(1)); p.Kind != AbsentConfirmed {
		t.Fatalf("two snapshots after the cancel: %v", p.Kind)
	}
}
