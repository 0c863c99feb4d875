package squeue

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// simQueue is a pending queue in the simulated Slurm (priority = base − nice), driven by the
// pure planner one cycle at a time.
type simQueue struct {
	jobs      []PlanJob
	next      int
	calls     int // renice calls
	ops       int // job ids reniced
	maxCalls  int
	incumbent bool // submit at nice 10000 like crunch-dispatch-slurm instead of PlaceNice
}

func (q *simQueue) submit(prio int64) {
	nice := 10000
	if !q.incumbent {
		placed := make([]Placed, len(q.jobs))
		for i, j := range q.jobs {
			placed[i] = Placed{Priority: j.Priority, Level: j.SlurmPriority}
		}
		nice = PlaceNice(placed, prio, base, defaultPlan)
	}
	q.next++
	q.jobs = append(q.jobs, pj(q.next, prio, nice))
}

// cycle plans and applies one cycle's renices.
func (q *simQueue) cycle() {
	plan := PlanRenice(q.jobs, PlanParams{Spread: 10, Headroom: 10000, MaxCalls: q.maxCalls})
	q.calls += len(plan.Changes)
	q.ops += plan.Jobs()
	applyPlan(q.jobs, plan)
}

// startTop removes the job Slurm would start first: the highest Slurm priority.
func (q *simQueue) startTop() {
	i := 0
	for k, j := range q.jobs {
		if j.SlurmPriority > q.jobs[i].SlurmPriority {
			i = k
		}
	}
	q.jobs = slices.Delete(q.jobs, i, i+1)
}

// TestChurnFigures: draining a queue of 1,000 jobs from the top, one job per cycle, costs
// fewer than 1000²/20 renice operations (job ids changed) in total.
func TestChurnFigures(t *testing.T) {
	const n, bound = 1000, 1000 * 1000 / 20
	r := rand.New(rand.NewPCG(9, 10))
	tests := []struct {
		name      string
		incumbent bool
		order     func(i int) int64
		arrivals  bool // a new job of random priority arrives each cycle
	}{
		{name: "a queue submitted in priority order", order: func(i int) int64 { return int64(n - i) }},
		{name: "a queue submitted in random order", order: func(int) int64 { return r.Int64N(1 << 40) }},
		{name: "a queue submitted by the incumbent at nice 10000", incumbent: true, order: func(i int) int64 { return int64(n - i) }},
		{name: "a queue in priority order with a random arrival each cycle", arrivals: true,
			order: func(i int) int64 { return int64(n-i) << 20 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &simQueue{maxCalls: 20, incumbent: tt.incumbent}
			for i := range n {
				q.submit(tt.order(i))
			}
			q.cycle()
			setupCalls, setupOps := q.calls, q.ops
			q.calls, q.ops = 0, 0
			for cycle := range n {
				q.startTop()
				if tt.arrivals && cycle < n/2 {
					q.submit(r.Int64N(int64(n) << 20))
				}
				q.cycle()
			}
			for q.calls < 1<<30 && len(PlanRenice(q.jobs, defaultPlan).Changes) > 0 {
				q.cycle()
			}
			if err := ordered(q.jobs); err != nil {
				t.Fatalf("not in order at the end: %v", err)
			}
			t.Logf("setup: %d calls, %d ops; draining: %d renice calls, %d renice operations (bound %d)",
				setupCalls, setupOps, q.calls, q.ops, bound)
			if q.ops+setupOps >= bound {
				t.Fatalf("%d renice operations, want < %d", q.ops+setupOps, bound)
			}
		})
	}
}
