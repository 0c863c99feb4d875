package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

const (
	usUUID   = "zzzzz-gj3su-000000000000000"
	themUUID = "zzzzz-gj3su-111111111111111"
)

func TestUnlockDecisions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c     arvados.Container
		known bool
		step  step
		why   string
	}{
		{"a container locked by us is unlocked", arvados.Container{State: arvados.Locked, LockedByUUID: usUUID}, true, stepUnlock, ""},
		{"a container locked by another token is refused, naming that token",
			arvados.Container{State: arvados.Locked, LockedByUUID: themUUID}, true, stepRefuse, "by another token (" + themUUID + ")"},
		{"a running container is refused with a pointer to containers cancel",
			arvados.Container{UUID: "zzzzz-dz642-000000000000001", State: arvados.Running, LockedByUUID: usUUID}, true, stepRefuse,
			"dispatch-slurm containers cancel zzzzz-dz642-000000000000001"},
		{"a queued container has nothing to unlock", arvados.Container{State: arvados.Queued}, true, stepRefuse, "not locked"},
		{"a cancelled container has nothing to unlock", arvados.Container{State: arvados.Cancelled}, true, stepRefuse, "final"},
		{"an unknown container is refused", arvados.Container{}, false, stepRefuse, "no such container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decideUnlock(tc.c, tc.known, false, usUUID)
			if d.step != tc.step || !strings.Contains(d.why, tc.why) {
				t.Errorf("decision %+v, want step %d with why containing %q", d, tc.step, tc.why)
			}
		})
	}
}

func TestCancelDecisions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		c       arvados.Container
		known   bool
		hasJobs bool
		step    step
		why     string
	}{
		{"a queued container is cancelled", arvados.Container{State: arvados.Queued}, true, false, stepCancel, ""},
		{"a container locked by us is cancelled", arvados.Container{State: arvados.Locked, LockedByUUID: usUUID}, true, true, stepCancel, ""},
		{"a container running under our lock is cancelled", arvados.Container{State: arvados.Running, LockedByUUID: usUUID}, true, true, stepCancel, ""},
		{"a container running under another token is refused",
			arvados.Container{State: arvados.Running, LockedByUUID: themUUID}, true, true, stepRefuse, "another token"},
		{"a container locked by another token is refused",
			arvados.Container{State: arvados.Locked, LockedByUUID: themUUID}, true, false, stepRefuse, "another token"},
		{"a cancelled container is left as it is", arvados.Container{State: arvados.Cancelled}, true, false, stepNothing, "Cancelled already"},
		{"a complete container with a leftover job loses only the job", arvados.Container{State: arvados.Complete}, true, true, stepNothing, "leftover"},
		{"a complete container without a job is refused", arvados.Container{State: arvados.Complete}, true, false, stepRefuse, "finished"},
		{"an unknown container is refused", arvados.Container{}, false, true, stepRefuse, "no such container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decideCancel(tc.c, tc.known, tc.hasJobs, usUUID)
			if d.step != tc.step || !strings.Contains(d.why, tc.why) {
				t.Errorf("decision %+v, want step %d with why containing %q", d, tc.step, tc.why)
			}
		})
	}
}

func TestAContainerOfAnotherClusterIsRefused(t *testing.T) {
	e := &adminEnv{cluster: "zzzzz", tokenUUID: usUUID}
	d := e.decide(cancelAction, "yyyyy-dz642-000000000000001", arvados.Container{State: arvados.Queued}, true, false)
	if d.step != stepRefuse || !strings.Contains(d.why, "not a container of our cluster zzzzz") {
		t.Errorf("decision %+v, want a refusal naming our cluster", d)
	}
}

func TestCancelledStatusKeepsWarningsAndDropsTheActivity(t *testing.T) {
	old := map[string]any{"activity": "waiting: Resources", "warning": "slow"}
	rs := cancelledStatus(old)
	if rs["error"] != adminCancelMessage || rs["warning"] != "slow" || rs["activity"] != nil {
		t.Errorf("runtime_status %v", rs)
	}
	if _, ok := old["error"]; ok {
		t.Error("the old runtime_status was modified")
	}
}

// scriptedSlurm answers Snapshot and Lookup from per-name scripts: a name's jobs are alive
// in squeue for squeueFor calls and in the lookup for lookupFor calls. Failing makes every
// Snapshot fail.
type scriptedSlurm struct {
	slurm.Client
	mu                   sync.Mutex
	jobs                 map[string]slurm.Job
	squeueFor, lookupFor map[string]int
	failing              bool
	snapshots, lookups   int
}

func (s *scriptedSlurm) Snapshot(context.Context) (*slurm.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshots++
	if s.failing {
		return nil, errors.New("squeue: Socket timed out")
	}
	snap := &slurm.Snapshot{}
	for name, j := range s.jobs {
		if s.squeueFor[name] > 0 {
			s.squeueFor[name]--
			snap.Jobs = append(snap.Jobs, j)
		}
	}
	return snap, nil
}

func (s *scriptedSlurm) Lookup(_ context.Context, q slurm.LookupQuery) ([]slurm.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	j := s.jobs[q.Name]
	if s.lookupFor[q.Name] > 0 {
		s.lookupFor[q.Name]--
		return []slurm.Job{j}, nil
	}
	j.State = "CANCELLED"
	return []slurm.Job{j}, nil
}

// fakeClock advances by the time slept.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return nil
}

func TestWaitingForCancelledJobs(t *testing.T) {
	const a, b = "zzzzz-dz642-00000000000000a", "zzzzz-dz642-00000000000000b"
	job := func(id, name string) slurm.Job { return slurm.Job{ID: id, Name: name, State: "PENDING"} }
	for _, tc := range []struct {
		name                 string
		squeueFor, lookupFor map[string]int
		failing              bool
		wantLeft             []string
		minPolls             int
	}{
		{"jobs gone from squeue and the lookup are gone at the first poll", nil, nil, false, nil, 1},
		{"a job that squeue shows for a while is waited for", map[string]int{a: 3}, nil, false, nil, 4},
		{"a job missing from squeue but alive in the lookup is not gone yet", nil, map[string]int{b: 2}, false, nil, 3},
		{"a job that never goes is left at the deadline", map[string]int{a: 1 << 30}, nil, false, []string{a}, 2},
		{"a failing squeue is no evidence: everything is left at the deadline", nil, nil, true, []string{a, b}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scriptedSlurm{jobs: map[string]slurm.Job{a: job("1", a), b: job("2", b)},
				squeueFor: map[string]int{}, lookupFor: map[string]int{}, failing: tc.failing}
			for k, v := range tc.squeueFor {
				s.squeueFor[k] = v
			}
			for k, v := range tc.lookupFor {
				s.lookupFor[k] = v
			}
			clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			e := &adminEnv{slurm: s, now: clock.now, sleep: clock.sleep, pollEvery: time.Second}
			plans := []*plan{{uuid: a, jobs: []slurm.Job{job("1", a)}}, {uuid: b, jobs: []slurm.Job{job("2", b)}}}
			start := clock.now()
			left, err := e.waitGone(context.Background(), plans, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for name := range left {
				got = append(got, name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.wantLeft) {
				t.Errorf("left %v, want %v", got, tc.wantLeft)
			}
			if s.snapshots < tc.minPolls {
				t.Errorf("%d polls, want at least %d", s.snapshots, tc.minPolls)
			}
			if waited := clock.now().Sub(start); len(tc.wantLeft) > 0 && waited != time.Minute {
				t.Errorf("gave up after %s, want the whole minute", waited)
			}
		})
	}
}

func TestWaitingStopsWhenTheContextEnds(t *testing.T) {
	const a = "zzzzz-dz642-00000000000000a"
	s := &scriptedSlurm{jobs: map[string]slurm.Job{a: {ID: "1", Name: a, State: "RUNNING"}},
		squeueFor: map[string]int{a: 1 << 30}, lookupFor: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := &adminEnv{slurm: s, now: time.Now, sleep: sleepCtx, pollEvery: time.Hour}
	_, err := e.waitGone(ctx, []*plan{{uuid: a}}, time.Hour)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}
