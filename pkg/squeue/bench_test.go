package squeue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// benchSlurm answers every snapshot with the same jobs and accepts every renice and cancel.
type benchSlurm struct{ jobs []slurm.Job }

func (s *benchSlurm) Snapshot(context.Context) (*slurm.Snapshot, error) {
	now := time.Now()
	return &slurm.Snapshot{Jobs: s.jobs, Started: now, Finished: now}, nil
}
func (s *benchSlurm) Lookup(context.Context, slurm.LookupQuery) ([]slurm.Job, error) { return nil, nil }
func (s *benchSlurm) Renice(context.Context, int, []string) ([]string, error)        { return nil, nil }
func (s *benchSlurm) Cancel(context.Context, slurm.CancelRequest) error              { return nil }

// benchQueue is n pending jobs of ours, already in container-priority order (nothing to
// renice), and the wanted view that locks them all.
func benchQueue(n int) ([]slurm.Job, map[string]int64) {
	jobs := make([]slurm.Job, n)
	locked := make(map[string]int64, n)
	for i := range jobs {
		uuid := fmt.Sprintf("zzzzz-dz642-%015d", i)
		jobs[i] = slurm.Job{ID: fmt.Sprint(1000 + i), Name: uuid, State: "PENDING", Nice: 10000 + 10*i,
			Priority: 1000000 - int64(10000+10*i), Reason: "PartitionDown"}
		locked[uuid] = int64(n - i)
	}
	return jobs, locked
}

// BenchmarkWatcherMemoryPerJob is part of figure 6 of the benchmark issue: the heap a
// watcher holds per tracked job (B/job), and the time of one squeue cycle's bookkeeping for
// 10,000 jobs (ns/op, without running squeue).
func BenchmarkWatcherMemoryPerJob(b *testing.B) {
	const n = 10_000
	jobs, locked := benchQueue(n)
	ctx := context.Background()
	var perJob float64
	var cycle time.Duration
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		w, err := New(&benchSlurm{jobs: jobs}, Config{ClusterID: "zzzzz"})
		if err != nil {
			b.Fatal(err)
		}
		w.SetWanted(Wanted{Locked: locked, At: time.Now()})
		for range 2 {
			if err := w.Cycle(ctx); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		if err := w.Cycle(ctx); err != nil {
			b.Fatal(err)
		}
		cycle = time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		perJob = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n
		runtime.KeepAlive(w)
	}
	b.ReportMetric(perJob, "B/job")
	b.ReportMetric(float64(cycle.Microseconds())/1000, "ms/cycle")
}

// churnQueue is a pending queue in a simulated Slurm whose priority is base − nice, driven by
// the planner one cycle at a time, as the watcher drives the real one.
type churnQueue struct {
	jobs       []PlanJob
	next       int
	ops, calls int
	params     PlanParams
}

const churnBase = 1000000

func (q *churnQueue) submit(prio int64) {
	placed := make([]Placed, len(q.jobs))
	for i, j := range q.jobs {
		placed[i] = Placed{Priority: j.Priority, Level: j.SlurmPriority}
	}
	nice := PlaceNice(placed, prio, churnBase, q.params)
	q.next++
	q.jobs = append(q.jobs, PlanJob{ID: fmt.Sprint(q.next), UUID: fmt.Sprintf("zzzzz-dz642-%015d", q.next),
		Nice: nice, SlurmPriority: churnBase - int64(nice), Priority: prio})
}

// cycle plans and applies one cycle's renices; it reports whether there was anything to do.
func (q *churnQueue) cycle() bool {
	plan := PlanRenice(q.jobs, q.params)
	q.calls += len(plan.Changes)
	q.ops += plan.Jobs()
	byID := map[string]int{}
	for _, c := range plan.Changes {
		for _, id := range c.IDs {
			byID[id] = c.Nice
		}
	}
	for i := range q.jobs {
		if nice, ok := byID[q.jobs[i].ID]; ok {
			q.jobs[i].Nice, q.jobs[i].SlurmPriority = nice, churnBase-int64(nice)
		}
	}
	return len(plan.Changes) > 0
}

// startTop removes the job Slurm would start first.
func (q *churnQueue) startTop() {
	top := 0
	for i, j := range q.jobs {
		if j.SlurmPriority > q.jobs[top].SlurmPriority {
			top = i
		}
	}
	q.jobs = slices.Delete(q.jobs, top, top+1)
}

// drainChurn submits n jobs (priorities from prio), then starts the top job and replans, one
// job per cycle, until the queue is empty; it returns the renice operations (job ids changed)
// and calls of the whole run, setup included.
func drainChurn(n int, prio func(i int) int64) (ops, calls int) {
	q := &churnQueue{params: PlanParams{Spread: 10, Headroom: 10000, MaxCalls: 20}}
	for i := range n {
		q.submit(prio(i))
	}
	q.cycle()
	for len(q.jobs) > 0 {
		q.startTop()
		q.cycle()
	}
	return q.ops, q.calls
}

// BenchmarkReniceChurnDrain1000 is figure 7 of the benchmark issue: renice operations to
// drain 1,000 pending jobs from the top (target < 1000²/20 = 50,000), reported as
// renice-ops (and renice-calls), for a queue submitted in priority order and in random order.
func BenchmarkReniceChurnDrain1000(b *testing.B) {
	const n = 1000
	for _, tc := range []struct {
		name string
		prio func(r *rand.Rand) func(i int) int64
	}{
		{"priority-order", func(*rand.Rand) func(int) int64 { return func(i int) int64 { return int64(n - i) } }},
		{"random-order", func(r *rand.Rand) func(int) int64 { return func(int) int64 { return r.Int64N(1 << 40) } }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var ops, calls int
			for b.Loop() {
				ops, calls = drainChurn(n, tc.prio(rand.New(rand.NewPCG(9, 10))))
			}
			b.ReportMetric(float64(ops), "renice-ops")
			b.ReportMetric(float64(calls), "renice-calls")
		})
	}
}
