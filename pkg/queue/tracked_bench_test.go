package queue

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// benchSlurm is a Slurm with no jobs that accepts everything; the benchmark never submits.
type benchSlurm struct{}

func (benchSlurm) Submit(context.Context, slurm.SubmitRequest) (string, error) { return "1", nil }
func (benchSlurm) Snapshot(context.Context) (*slurm.Snapshot, error) {
	return &slurm.Snapshot{Started: time.Now(), Finished: time.Now()}, nil
}
func (benchSlurm) Lookup(context.Context, slurm.LookupQuery) ([]slurm.Job, error) { return nil, nil }
func (benchSlurm) Renice(context.Context, int, []string) ([]string, error)        { return nil, nil }
func (benchSlurm) Cancel(context.Context, slurm.CancelRequest) error              { return nil }

// BenchmarkPollWith10000Tracked is part of figures 4 and 6 of the benchmark issue, in
// process: the heap the dispatcher and its watcher hold per tracked container (B/tracked,
// after adopting 10,000 containers locked by our token), and the time of one poll of them
// (ns/op, which includes the in-process fake API server's own work).
func BenchmarkPollWith10000Tracked(b *testing.B) {
	const n = 10_000
	srv := fakearvados.New(fakearvados.Options{})
	defer srv.Close()
	tmpl := arvados.Container{State: arvados.Locked, LockedByUUID: fakearvados.AdminTokenUUID, Priority: 1,
		RuntimeConstraints: arvados.RuntimeConstraints{RAM: 64 << 20, VCPUs: 1}}
	srv.SeedN(n, tmpl)
	client, err := arvados.NewClient(arvados.Config{Host: srv.URL(), Token: fakearvados.AdminToken})
	if err != nil {
		b.Fatal(err)
	}
	defer client.CloseIdleConnections()
	ctx := context.Background()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w, err := squeue.New(benchSlurm{}, squeue.Config{ClusterID: "zzzzz"})
	if err != nil {
		b.Fatal(err)
	}
	d, err := New(client, benchSlurm{}, w, Config{TokenUUID: fakearvados.AdminTokenUUID, ClusterID: "zzzzz", MaxJobs: n + 100})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Poll(ctx); err != nil {
		b.Fatal(err)
	}
	if got := len(d.Tracked()); got != n {
		b.Fatalf("tracking %d containers, want %d", got, n)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perTracked := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n

	for b.Loop() {
		if err := d.Poll(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(perTracked, "B/tracked")
	runtime.KeepAlive(d)
}
