package squeue

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

func TestNewValidatesTheConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"a missing cluster id is refused", Config{}},
		{"a cluster id of the wrong form is refused", Config{ClusterID: "ZZZZ"}},
		{"a negative period is refused", Config{ClusterID: "zzzzz", Period: -time.Second}},
		{"a jitter of 1 or more is refused", Config{ClusterID: "zzzzz", Jitter: 1}},
		{"a loss fraction over 1 is refused", Config{ClusterID: "zzzzz", SuspectLossFraction: 1.5}},
		{"a negative spread is refused", Config{ClusterID: "zzzzz", PrioritySpread: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(newFakeSlurm(), tt.cfg); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if _, err := New(newFakeSlurm(), Config{ClusterID: "zzzzz"}); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// TestRunCyclesEveryJitteredPeriodAndOnPoke runs the loop in a synctest bubble (fake time).
func TestRunCyclesEveryJitteredPeriodAndOnPoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSlurm()
		w, err := New(f, Config{ClusterID: "zzzzz", Period: 2 * time.Second, Rand: func() float64 { return 1 }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		defer func() { cancel(); <-done }()
		snapshots := func() int { synctest.Wait(); return len(f.take("Snapshot")) }
		if n := snapshots(); n != 1 {
			t.Fatalf("snapshots at start = %d, want 1", n)
		}
		time.Sleep(2200*time.Millisecond - time.Nanosecond) // period + 10% jitter
		if n := snapshots(); n != 0 {
			t.Fatalf("snapshots before the jittered period = %d", n)
		}
		time.Sleep(time.Nanosecond)
		if n := snapshots(); n != 1 {
			t.Fatalf("snapshots after the jittered period = %d, want 1", n)
		}
		w.Poke()
		if n := snapshots(); n != 1 {
			t.Fatalf("snapshots after a poke = %d, want 1", n)
		}
		waited := make(chan error, 1)
		go func() { waited <- w.WaitSnapshotAfter(ctx, time.Now()) }()
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case err := <-waited:
			t.Fatalf("WaitSnapshotAfter returned before the next snapshot: %v", err)
		default:
		}
		time.Sleep(1200 * time.Millisecond)
		if err := <-waited; err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v, want nil after cancel", err)
		}
		done <- nil // for the deferred wait
	})
}

func TestPokesCoalesce(t *testing.T) {
	w, err := New(newFakeSlurm(), Config{ClusterID: "zzzzz"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w.Poke()
	}
	if n := len(w.poke); n != 1 {
		t.Fatalf("%d pokes pending, want 1", n)
	}
}

// gatedSlurm makes each Snapshot wait for a token on gate and records how many ran at once.
type gatedSlurm struct {
	*fakeSlurm
	gate           chan struct{}
	inFlight, most atomic.Int32
}

func (s *gatedSlurm) Snapshot(ctx context.Context) (*slurm.Snapshot, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.most.Load(); n > m && !s.most.CompareAndSwap(m, n); m = s.most.Load() {
	}
	<-s.gate
	return s.fakeSlurm.Snapshot(ctx)
}

func TestCyclesNeverOverlap(t *testing.T) {
	s := &gatedSlurm{fakeSlurm: newFakeSlurm(), gate: make(chan struct{})}
	w, err := New(s, Config{ClusterID: "zzzzz"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	done := make(chan error, n)
	for range n {
		go func() { done <- w.Cycle(context.Background()) }()
	}
	for range n {
		s.gate <- struct{}{} // one squeue at a time gets through
	}
	for range n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if m := s.most.Load(); m != 1 {
		t.Fatalf("%d snapshots ran at once", m)
	}
}

func TestPendingReasonsAreClassifiedAndLoggedOnce(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	h := newHarness(t, Config{Logger: zap.New(core)})
	for n, reason := range []string{"PartitionDown", "PartitionDown", "PartitionConfig", "Resources", "SomethingNew"} {
		id := h.slurm.add(uuid(n), "PENDING", 0)
		h.slurm.set(id, func(j *slurm.Job) { j.Reason = reason })
	}
	h.cycles(3)
	for n, want := range []slurm.ReasonClass{slurm.ReasonAttention, slurm.ReasonAttention, slurm.ReasonNever, slurm.ReasonWaiting, slurm.ReasonWaiting} {
		if p := h.w.Presence(uuid(n)); p.Class != want {
			t.Errorf("%s (%s): class %v, want %v", uuid(n), p.Job.Reason, p.Class, want)
		}
	}
	counts := map[string]int{}
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "held up") || strings.Contains(e.Message, "not in the table") {
			counts[e.ContextMap()["reason"].(string)]++
		}
	}
	if n := logs.FilterMessageSnippet("not in the table").Len(); n != 1 {
		t.Errorf("%d log lines about an unknown reason, want 1 (for SomethingNew)", n)
	}
	want := map[string]int{"PartitionDown": 1, "PartitionConfig": 1, "SomethingNew": 1}
	if len(counts) != len(want) {
		t.Fatalf("logged reasons %v, want %v", counts, want)
	}
	for r, n := range want {
		if counts[r] != n {
			t.Fatalf("logged reasons %v, want %v", counts, want)
		}
	}
}
