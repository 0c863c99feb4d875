package squeue

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// base is the simulated Slurm's priority at nice 0 (SLURM-LOCAL.md: priority = 1000000 − nice).
const base = 1000000

// pj builds a PlanJob for the simulated Slurm: id "j<n>", uuid ordered like n.
func pj(n int, prio int64, nice int) PlanJob {
	return PlanJob{ID: "j" + strconv.Itoa(n), UUID: fmt.Sprintf("zzzzz-dz642-%015d", n), Nice: nice,
		SlurmPriority: base - int64(nice), Priority: prio}
}

var defaultPlan = PlanParams{Spread: 10, Headroom: 10000, MaxCalls: 20}

func TestPlanRenice(t *testing.T) {
	tests := []struct {
		name     string
		jobs     []PlanJob
		p        PlanParams
		want     []Change
		deferred int
		relayout bool
	}{
		{name: "an empty queue needs no change", p: defaultPlan},
		{name: "a single job is left alone whatever its nice", jobs: []PlanJob{pj(1, 5, 123)}, p: defaultPlan},
		{name: "a queue already in order is left alone",
			jobs: []PlanJob{pj(1, 30, 100), pj(2, 20, 110), pj(3, 10, 500)}, p: defaultPlan},
		{name: "a queue in order with gaps of one is left alone",
			jobs: []PlanJob{pj(1, 30, 100), pj(2, 20, 101), pj(3, 10, 102)}, p: defaultPlan},
		{name: "equal container priorities in any Slurm order are left alone",
			jobs: []PlanJob{pj(1, 20, 100), pj(2, 20, 300), pj(3, 20, 200), pj(4, 10, 400)}, p: defaultPlan},
		{name: "equal container priorities at equal nice are left alone",
			jobs: []PlanJob{pj(1, 20, 100), pj(2, 20, 100), pj(3, 10, 101)}, p: defaultPlan},
		{name: "held jobs are left out of the plan",
			jobs: []PlanJob{pj(1, 10, 100), {ID: "h", UUID: "zzzzz-dz642-held00000000000", Priority: 99}}, p: defaultPlan},
		{name: "a new top job at the nice of the one below pushes that one halfway down",
			jobs: []PlanJob{pj(1, 30, 100), pj(2, 20, 100), pj(3, 10, 110)}, p: defaultPlan,
			want: []Change{{Nice: 105, IDs: []string{"j2"}}}},
		{name: "a new bottom job at the nice of the rest goes spread below the bottom",
			jobs: []PlanJob{pj(1, 30, 100), pj(2, 20, 110), pj(3, 10, 110)}, p: defaultPlan,
			want: []Change{{Nice: 120, IDs: []string{"j3"}}}},
		{name: "a job above the one it should follow is kept and the follower moves below it",
			jobs: []PlanJob{pj(1, 40, 100), pj(2, 30, 110), pj(3, 20, 150), pj(4, 10, 120)}, p: defaultPlan,
			want: []Change{{Nice: 160, IDs: []string{"j4"}}}},
		{name: "two jobs in reverse order cost one change",
			jobs: []PlanJob{pj(1, 20, 200), pj(2, 10, 100)}, p: defaultPlan,
			want: []Change{{Nice: 210, IDs: []string{"j2"}}}},
		{name: "a job of a tied priority joins its kept peer's level",
			jobs: []PlanJob{pj(1, 30, 100), pj(2, 20, 110), pj(3, 20, 95), pj(4, 10, 120)}, p: defaultPlan,
			want: []Change{{Nice: 110, IDs: []string{"j3"}}}},
		{name: "tied jobs at equal nice stay and the others move around them",
			jobs: []PlanJob{pj(1, 40, 10000), pj(2, 30, 10000), pj(3, 30, 10000), pj(4, 20, 10000)}, p: defaultPlan,
			want: []Change{{Nice: 9990, IDs: []string{"j1"}}, {Nice: 10010, IDs: []string{"j4"}}}},
		{name: "jobs of one priority placed between two kept ones share one call",
			jobs: []PlanJob{pj(1, 30, 100), pj(2, 20, 130), pj(3, 20, 140), pj(4, 10, 105), pj(5, 5, 106), pj(6, 1, 107)},
			p:    defaultPlan,
			want: []Change{{Nice: 102, IDs: []string{"j2", "j3"}}}},
		{name: "the incumbent's layout, everything at nice 10000, is laid out afresh from the bottom",
			jobs: []PlanJob{pj(1, 40, 10000), pj(2, 30, 10000), pj(3, 20, 10000), pj(4, 10, 10000)}, p: defaultPlan,
			relayout: true,
			want:     []Change{{Nice: 10030, IDs: []string{"j4"}}, {Nice: 10020, IDs: []string{"j3"}}, {Nice: 10010, IDs: []string{"j2"}}}},
		{name: "MaxCalls bounds the calls and defers the rest",
			jobs: []PlanJob{pj(1, 40, 10000), pj(2, 30, 10000), pj(3, 20, 10000), pj(4, 10, 10000)},
			p:    PlanParams{Spread: 10, Headroom: 10000, MaxCalls: 2}, relayout: true,
			want: []Change{{Nice: 10030, IDs: []string{"j4"}}, {Nice: 10020, IDs: []string{"j3"}}}, deferred: 1},
		{name: "a job above a top at nice 0 goes between the top and the next, not above",
			jobs: []PlanJob{pj(1, 30, 0), pj(2, 20, 0), pj(3, 10, 10)}, p: defaultPlan,
			want: []Change{{Nice: 5, IDs: []string{"j2"}}}},
		{name: "a job whose base is too low for its rank pulls the lower ones under it",
			jobs: []PlanJob{{ID: "low", UUID: "zzzzz-dz642-000000000000001", Nice: 0, SlurmPriority: 50, Priority: 30},
				pj(2, 20, 100)},
			p: defaultPlan, relayout: true,
			want: []Change{{Nice: 999960, IDs: []string{"j2"}}}},
		{name: "a job that cannot reach its group's level brings a re-layout",
			jobs: []PlanJob{pj(1, 30, 100), pj(2, 20, 200),
				{ID: "m", UUID: "zzzzz-dz642-000000000000003", Nice: 50, SlurmPriority: 999650, Priority: 20},
				pj(4, 10, 310), pj(5, 10, 320)},
			p: defaultPlan, relayout: true,
			want: []Change{{Nice: 10020, IDs: []string{"j4", "j5"}}, {Nice: 10010, IDs: []string{"j2"}},
				{Nice: 9710, IDs: []string{"m"}}, {Nice: 10000, IDs: []string{"j1"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PlanRenice(tt.jobs, tt.p)
			if !slices.EqualFunc(got.Changes, tt.want, func(a, b Change) bool {
				return a.Nice == b.Nice && slices.Equal(a.IDs, b.IDs)
			}) {
				t.Errorf("changes = %+v, want %+v", got.Changes, tt.want)
			}
			if got.Deferred != tt.deferred || got.Relayout != tt.relayout {
				t.Errorf("deferred, relayout = %d, %v; want %d, %v", got.Deferred, got.Relayout, tt.deferred, tt.relayout)
			}
		})
	}
}

// applyPlan renices jobs as the simulated Slurm would (priority = base − nice).
func applyPlan(jobs []PlanJob, plan Plan) {
	nice := map[string]int{}
	for _, c := range plan.Changes {
		for _, id := range c.IDs {
			nice[id] = c.Nice
		}
	}
	for i := range jobs {
		if n, ok := nice[jobs[i].ID]; ok {
			b := jobs[i].SlurmPriority + int64(jobs[i].Nice)
			jobs[i].Nice, jobs[i].SlurmPriority = n, max(b-int64(n), 1)
		}
	}
}

// ordered reports the first pair of jobs whose Slurm order contradicts their container order.
func ordered(jobs []PlanJob) error {
	for _, a := range jobs {
		for _, b := range jobs {
			if a.SlurmPriority > 0 && b.SlurmPriority > 0 && a.Priority > b.Priority && a.SlurmPriority <= b.SlurmPriority {
				return fmt.Errorf("%s (priority %d) has Slurm priority %d, not above %s (priority %d) at %d",
					a.ID, a.Priority, a.SlurmPriority, b.ID, b.Priority, b.SlurmPriority)
			}
		}
	}
	return nil
}

func randomJobs(r *rand.Rand, n int, bases bool) []PlanJob {
	jobs := make([]PlanJob, n)
	for i := range jobs {
		jobs[i] = pj(i, r.Int64N(int64(n/2+1)), r.IntN(300))
		if bases && r.IntN(4) == 0 {
			jobs[i].SlurmPriority = r.Int64N(400) + 1 // a job of a lower partition or a floored one
		}
	}
	return jobs
}

// TestPlanReniceProperties: from any starting point, one unbounded plan puts the queue in
// order with nice ≥ 0 and a second plan finds nothing to do; bounded plans get there too.
func TestPlanReniceProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 2000 {
		n := 1 + r.IntN(40)
		jobs := randomJobs(r, n, trial%2 == 0)
		p := PlanParams{Spread: int64(1 + r.IntN(20)), Headroom: int64(r.IntN(20000))}
		plan := PlanRenice(jobs, p)
		applyPlan(jobs, plan)
		for _, j := range jobs {
			if j.Nice < 0 {
				t.Fatalf("trial %d: job %s got nice %d", trial, j.ID, j.Nice)
			}
		}
		if err := ordered(jobs); err != nil {
			t.Fatalf("trial %d (plan %+v): %v", trial, plan, err)
		}
		if again := PlanRenice(jobs, p); len(again.Changes) != 0 {
			t.Fatalf("trial %d: a second plan still changes %+v", trial, again.Changes)
		}
	}
}

func TestPlanReniceBoundedConverges(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		jobs := randomJobs(r, 1+r.IntN(200), false)
		p := PlanParams{Spread: 10, Headroom: 10000, MaxCalls: 1 + r.IntN(20)}
		cycles := 0
		for ; cycles < 1000; cycles++ {
			plan := PlanRenice(jobs, p)
			if len(plan.Changes) == 0 {
				break
			}
			if len(plan.Changes) > p.MaxCalls {
				t.Fatalf("trial %d: %d calls over the bound %d", trial, len(plan.Changes), p.MaxCalls)
			}
			applyPlan(jobs, plan)
		}
		if err := ordered(jobs); err != nil || cycles >= 1000 {
			t.Fatalf("trial %d: after %d bounded cycles: %v", trial, cycles, err)
		}
	}
}

// feasibleKept checks, independently of the planner, whether the jobs in kept can keep their
// Slurm priority while the others are given levels that order the queue: going down the
// container priorities, each group goes as high as the groups above allow.
func feasibleKept(sorted []PlanJob, kept []bool) bool {
	bound := int64(1 << 62) // strict upper bound for the next group's levels
	for i := 0; i < len(sorted); {
		end := i
		low := int64(-1)
		for end < len(sorted) && sorted[end].Priority == sorted[i].Priority {
			if kept[end] {
				if sorted[end].SlurmPriority >= bound {
					return false
				}
				if low < 0 || sorted[end].SlurmPriority < low {
					low = sorted[end].SlurmPriority
				}
			}
			end++
		}
		if low < 0 {
			low = bound - 1
		}
		bound, i = low, end
	}
	return true
}

// TestPlanReniceChangesAsFewJobsAsPossible compares the planner with a brute force over every
// subset of small queues (bases high enough that nice ≥ 0 never binds).
func TestPlanReniceChangesAsFewJobsAsPossible(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 500 {
		n := 1 + r.IntN(9)
		jobs := make([]PlanJob, n)
		for i := range jobs {
			jobs[i] = pj(i, r.Int64N(5), 1000+r.IntN(12))
		}
		sorted := slices.Clone(jobs)
		slices.SortFunc(sorted, func(a, b PlanJob) int {
			if a.Priority != b.Priority {
				return int(b.Priority - a.Priority)
			}
			return int(b.SlurmPriority - a.SlurmPriority)
		})
		best := 0
		for mask := range 1 << n {
			kept := make([]bool, n)
			size := 0
			for i := range n {
				if mask&(1<<i) != 0 {
					kept[i] = true
					size++
				}
			}
			if size > best && feasibleKept(sorted, kept) {
				best = size
			}
		}
		plan := PlanRenice(jobs, PlanParams{Spread: 10, Headroom: 100})
		if plan.Relayout {
			t.Fatalf("trial %d: unexpected re-layout for %+v", trial, jobs)
		}
		if got := plan.Jobs(); got != n-best {
			t.Fatalf("trial %d: changed %d jobs, the fewest possible is %d (%+v → %+v)", trial, got, n-best, jobs, plan.Changes)
		}
	}
}

func TestPlaceNice(t *testing.T) {
	p := PlanParams{Spread: 10, Headroom: 10000}
	tests := []struct {
		name   string
		placed []Placed
		prio   int64
		want   int
	}{
		{name: "the top of an empty queue gets the headroom", want: 10000},
		{name: "a job below the lowest goes spread below it",
			placed: []Placed{{Priority: 50, Level: base - 10000}, {Priority: 40, Level: base - 10010}}, prio: 30, want: 10020},
		{name: "a job above the top goes spread above it",
			placed: []Placed{{Priority: 50, Level: base - 10000}}, prio: 60, want: 9990},
		{name: "a job above a top at nice 5 stops at nice 0",
			placed: []Placed{{Priority: 50, Level: base - 5}}, prio: 60, want: 0},
		{name: "a job between two goes halfway",
			placed: []Placed{{Priority: 50, Level: base - 100}, {Priority: 40, Level: base - 110}}, prio: 45, want: 105},
		{name: "a job equal to a placed one takes its level",
			placed: []Placed{{Priority: 50, Level: base - 100}, {Priority: 40, Level: base - 110}, {Priority: 30, Level: base - 120}},
			prio:   40, want: 110},
		{name: "a job between neighbours one apart goes just below the upper one",
			placed: []Placed{{Priority: 50, Level: base - 100}, {Priority: 40, Level: base - 101}}, prio: 45, want: 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PlaceNice(tt.placed, tt.prio, base, p); got != tt.want {
				t.Errorf("PlaceNice = %d, want %d", got, tt.want)
			}
		})
	}
}
