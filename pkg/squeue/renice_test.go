package squeue

import (
	"slices"
	"testing"
)

// inOrder reports whether the fake's pending jobs of ours follow container priorities.
func inOrder(t *testing.T, f *fakeSlurm, prio map[string]int64) bool {
	t.Helper()
	var jobs []PlanJob
	for _, j := range f.pending() {
		if p, ok := prio[j.Name]; ok {
			jobs = append(jobs, PlanJob{ID: j.ID, UUID: j.Name, Nice: j.Nice, SlurmPriority: j.Priority, Priority: p})
		}
	}
	return ordered(jobs) == nil
}

func TestPendingJobsAreRenicedIntoOrderInOneCycle(t *testing.T) {
	h := newHarness(t, Config{})
	prio := map[string]int64{}
	for n, nice := range []int{500, 10, 10000, 0, 42, 42, 7} {
		h.slurm.add(uuid(n), "PENDING", nice)
		prio[uuid(n)] = int64(1000 - n*n)
	}
	h.w.SetWanted(Wanted{Locked: prio, At: h.clock.Now()})
	h.cycles(1)
	if !inOrder(t, h.slurm, prio) {
		t.Fatalf("not in order after one cycle: %+v", h.slurm.pending())
	}
	for _, j := range h.slurm.pending() {
		if j.Nice < 0 {
			t.Fatalf("negative nice: %+v", j)
		}
	}
	h.slurm.take("")
	h.cycles(2)
	if got := h.slurm.take("Renice"); len(got) != 0 {
		t.Fatalf("renice calls once in order: %+v", got)
	}
}

func TestReniceIsBoundedPerCycleAndConverges(t *testing.T) {
	h := newHarness(t, Config{MaxReniceCallsPerCycle: 4})
	prio := map[string]int64{}
	for n := range 30 {
		h.slurm.add(uuid(n), "PENDING", 10000)
		prio[uuid(n)] = int64(n) // the last submitted first
	}
	h.w.SetWanted(Wanted{Locked: prio, At: h.clock.Now()})
	for c := 1; ; c++ {
		h.cycles(1)
		calls := h.slurm.take("Renice")
		if len(calls) > 4 {
			t.Fatalf("cycle %d: %d renice calls, over the bound", c, len(calls))
		}
		if len(calls) == 0 {
			if !inOrder(t, h.slurm, prio) {
				t.Fatalf("cycle %d: no renice but not in order", c)
			}
			break
		}
		if c > 10 {
			t.Fatal("not converged in 10 cycles")
		}
	}
}

func TestOnlyPendingJobsOfLockedContainersAreReniced(t *testing.T) {
	h := newHarness(t, Config{})
	h.slurm.add(uuid(1), "RUNNING", 100)                       // running
	h.slurm.add(uuid(2), "PENDING", 100)                       // unreported
	h.slurm.add(uuid(3), "PENDING", 100)                       // unwanted
	h.slurm.add(uuid(4), "PENDING", 100)                       // locked, priority 0
	h.slurm.add(uuid(5), "PENDING", 100)                       // locked
	h.slurm.add("yyyyy-dz642-000000000000006", "PENDING", 100) // foreign
	h.w.SetWanted(Wanted{Locked: map[string]int64{uuid(1): 9, uuid(4): 0, uuid(5): 1, "yyyyy-dz642-000000000000006": 8},
		Unwanted: map[string]UnwantedReason{uuid(3): ContainerCancelled}, At: h.clock.Now()})
	h.lingerCancels()
	h.cycles(3)
	if got := h.slurm.take("Renice"); len(got) != 0 {
		t.Fatalf("renice calls: %+v", got)
	}
}

// lingerCancels keeps cancelled jobs alive, so that they stay in the queue for the test.
func (h *harness) lingerCancels() { h.slurm.lingerOnCancel = true }

func TestReniceTurnsOffWhenPrioritiesIgnoreNice(t *testing.T) {
	h := newHarness(t, Config{})
	h.slurm.fixedPriority = true
	prio := map[string]int64{}
	for n := range 5 {
		h.slurm.add(uuid(n), "PENDING", 0)
		prio[uuid(n)] = int64(n)
	}
	h.w.SetWanted(Wanted{Locked: prio, At: h.clock.Now()})
	h.cycles(10)
	h.slurm.take("")
	h.cycles(5)
	if got := h.slurm.take("Renice"); len(got) != 0 || !h.w.Stats().ReniceDisabled {
		t.Fatalf("still renicing a Slurm that ignores nice: %d calls, stats %+v", len(got), h.w.Stats())
	}
}

func TestInitialNicePlacesABurstWithoutSnapshots(t *testing.T) {
	h := newHarness(t, Config{})
	var nices []int
	for n := range 5 {
		nice := h.w.InitialNice(uuid(n), int64(100-n))
		h.w.NoteSubmitted(uuid(n), "", nice, int64(100-n), h.clock.Now())
		nices = append(nices, nice)
	}
	if want := []int{10000, 10010, 10020, 10030, 10040}; !slices.Equal(nices, want) {
		t.Fatalf("nices = %v, want %v", nices, want)
	}
	// Reservations alone (no NoteSubmitted yet) keep concurrent callers apart.
	a, b := h.w.InitialNice(uuid(10), 50), h.w.InitialNice(uuid(11), 40)
	if a != 10050 || b != 10060 {
		t.Fatalf("reserved nices = %d, %d; want 10050, 10060", a, b)
	}
	if c := h.w.InitialNice(uuid(12), 1000); c != 9990 {
		t.Fatalf("a job above the top: %d, want 9990", c)
	}
}

func TestInitialNicePlacesAmongTheSnapshot(t *testing.T) {
	h := newHarness(t, Config{})
	prio := map[string]int64{uuid(1): 30, uuid(2): 20, uuid(3): 10}
	h.slurm.add(uuid(1), "PENDING", 100)
	h.slurm.add(uuid(2), "PENDING", 120)
	h.slurm.add(uuid(3), "PENDING", 140)
	h.w.SetWanted(Wanted{Locked: prio, At: h.clock.Now()})
	h.cycles(1)
	for _, tt := range []struct {
		prio int64
		want int
	}{{25, 110}, {15, 130}, {5, 150}, {20, 120}, {40, 90}} {
		if got := h.w.InitialNice(uuid(int(100+tt.prio)), tt.prio); got != tt.want {
			t.Errorf("InitialNice(priority %d) = %d, want %d", tt.prio, got, tt.want)
		}
	}
}

// burst submits n containers (priority order given by prios) at perCycle a squeue period
// through InitialNice, like the dispatcher, then runs cycles until nothing is reniced. It
// returns the renice calls and the cycles after the last submission until settled.
func burst(t *testing.T, prios []int64, perCycle int, lateNotes bool, maxSettle int) (calls, settle int) {
	h := newHarness(t, Config{})
	locked := map[string]int64{}
	for i, p := range prios {
		locked[uuid(i)] = p
	}
	h.w.SetWanted(Wanted{Locked: locked, At: h.clock.Now()})
	type note struct {
		id   string
		i    int
		nice int
	}
	for start := 0; start < len(prios); start += perCycle {
		var late []note
		for i := start; i < min(start+perCycle, len(prios)); i++ {
			nice := h.w.InitialNice(uuid(i), prios[i])
			id := h.slurm.add(uuid(i), "PENDING", nice)
			if lateNotes && i%2 == 0 {
				late = append(late, note{id, i, nice}) // sbatch returned while squeue ran
				continue
			}
			h.w.NoteSubmitted(uuid(i), id, nice, prios[i], h.clock.Now())
		}
		h.cycles(1)
		for _, n := range late {
			h.w.NoteSubmitted(uuid(n.i), n.id, n.nice, prios[n.i], h.clock.Now())
		}
	}
	for settle = 1; settle <= maxSettle; settle++ {
		h.cycles(1)
		h.w.mu.Lock()
		plan := h.w.planRenice()
		h.w.mu.Unlock()
		if inOrder(t, h.slurm, locked) && len(plan.Changes) == 0 {
			break
		}
	}
	return int(h.w.Stats().ReniceCalls), settle
}

// TestFreshBurstFigures: 2,000 fresh containers submitted in priority order cost ≤ 100
// renice calls in total and are settled within 3 periods of the last submission.
func TestFreshBurstFigures(t *testing.T) {
	prios := make([]int64, 2000)
	for i := range prios {
		prios[i] = 1<<50 - int64(i)*1000 // modern priorities: newer containers lower
	}
	for _, tt := range []struct {
		name      string
		perCycle  int
		lateNotes bool
	}{
		{"400 submissions a period", 400, false},
		{"50 submissions a period", 50, false},
		{"400 a period, half noted after the snapshot they raced", 400, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls, settle := burst(t, prios, tt.perCycle, tt.lateNotes, 10)
			t.Logf("2000 fresh containers: %d renice calls, settled %d period(s) after the last submission", calls, settle)
			if calls > 100 || settle > 3 {
				t.Fatalf("%d renice calls (want ≤ 100), settled after %d periods (want ≤ 3)", calls, settle)
			}
		})
	}
}
