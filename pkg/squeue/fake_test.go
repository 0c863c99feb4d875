package squeue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// errFake is what injected faults return.
var errFake = errors.New("injected fault")

// call is one recorded call to the fake.
type call struct {
	Method string // Snapshot, Lookup, Renice, Cancel
	Nice   int
	IDs    []string
	Query  slurm.LookupQuery
	Req    slurm.CancelRequest
}

// fakeSlurm is an in-memory Slurm: a job's priority is base − nice (priority/multifactor with
// only a partition weight, as in SLURM-LOCAL.md). It records calls and injects faults per
// method.
type fakeSlurm struct {
	mu     sync.Mutex
	jobs   []*slurm.Job // in submission order; finished ones stay until purged
	nextID int
	calls  []call
	// fail[method] > 0 makes the next calls of that method fail with errFake.
	fail map[string]int
	// mangle, when set, rewrites what Snapshot returns (drop jobs, garbage, empty output).
	mangle func(*slurm.Snapshot)
	// lingerOnCancel keeps cancelled jobs alive (a job that does not die).
	lingerOnCancel bool
	// lookupLies makes Lookup find nothing, as if slurmctld had forgotten every job.
	lookupLies bool
	// fixedPriority makes priorities ignore nice (a priority plugin without nice).
	fixedPriority bool
}

func newFakeSlurm() *fakeSlurm { return &fakeSlurm{nextID: 100, fail: map[string]int{}} }

// add puts a job in the queue and returns its id.
func (f *fakeSlurm) add(name, state string, nice int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	id := strconv.Itoa(f.nextID)
	reason := "None"
	if state == "PENDING" {
		reason = "Priority"
	}
	f.jobs = append(f.jobs, &slurm.Job{ID: id, Name: name, State: state, Nice: nice, Priority: base - int64(nice), Reason: reason})
	return id
}

// set changes a job (state, reason) in place.
func (f *fakeSlurm) set(id string, change func(*slurm.Job)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.ID == id {
			change(j)
		}
	}
}

// purge forgets a job (MinJobAge passed).
func (f *fakeSlurm) purge(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs = slices.DeleteFunc(f.jobs, func(j *slurm.Job) bool { return j.ID == id })
}

func (f *fakeSlurm) failNext(method string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = n
}

func (f *fakeSlurm) setMangle(m func(*slurm.Snapshot)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mangle = m
}

// fault records the call and reports whether it must fail. Called with f.mu held.
func (f *fakeSlurm) fault(c call) error {
	f.calls = append(f.calls, c)
	if f.fail[c.Method] > 0 {
		f.fail[c.Method]--
		return fmt.Errorf("%s: %w", c.Method, errFake)
	}
	return nil
}

func (f *fakeSlurm) Snapshot(ctx context.Context) (*slurm.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fault(call{Method: "Snapshot"}); err != nil {
		return nil, err
	}
	s := &slurm.Snapshot{}
	for _, j := range f.jobs {
		if !slurm.FinishedState(j.State) {
			s.Jobs = append(s.Jobs, *j)
		}
	}
	if f.mangle != nil {
		f.mangle(s)
	}
	return s, nil
}

func (f *fakeSlurm) Lookup(ctx context.Context, q slurm.LookupQuery) ([]slurm.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fault(call{Method: "Lookup", Query: q}); err != nil {
		return nil, err
	}
	var out []slurm.Job
	for _, j := range f.jobs {
		if f.lookupLies {
			break
		}
		if (q.ID != "" && j.ID == q.ID) || (q.ID == "" && j.Name == q.Name) {
			out = append(out, *j)
		}
	}
	return out, nil
}

func (f *fakeSlurm) Renice(ctx context.Context, nice int, ids []string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fault(call{Method: "Renice", Nice: nice, IDs: slices.Clone(ids)}); err != nil {
		return nil, err
	}
	var gone []string
	for _, id := range ids {
		i := slices.IndexFunc(f.jobs, func(j *slurm.Job) bool { return j.ID == id && !slurm.FinishedState(j.State) })
		if i < 0 {
			gone = append(gone, id)
			continue
		}
		j := f.jobs[i]
		if !f.fixedPriority {
			j.Priority = max(j.Priority+int64(j.Nice)-int64(nice), 1)
		}
		j.Nice = nice
	}
	return gone, nil
}

func (f *fakeSlurm) Cancel(ctx context.Context, req slurm.CancelRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fault(call{Method: "Cancel", IDs: slices.Clone(req.IDs), Req: req}); err != nil {
		return err
	}
	if f.lingerOnCancel {
		return nil
	}
	for _, j := range f.jobs {
		if (slices.Contains(req.IDs, j.ID) || (req.Name != "" && j.Name == req.Name)) && !slurm.FinishedState(j.State) {
			j.State = "CANCELLED"
		}
	}
	return nil
}

// callsOf returns the recorded calls of one method and forgets all calls.
func (f *fakeSlurm) take(method string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	f.calls = nil
	return out
}

// pendingOrder returns the pending jobs' names from the highest Slurm priority down.
func (f *fakeSlurm) pending() []slurm.Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []slurm.Job
	for _, j := range f.jobs {
		if j.State == "PENDING" {
			out = append(out, *j)
		}
	}
	return out
}

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// uuid returns the n-th container uuid of our test cluster.
func uuid(n int) string { return fmt.Sprintf("zzzzz-dz642-%015d", n) }

// harness is a watcher on a fake Slurm with a manual clock.
type harness struct {
	t     *testing.T
	slurm *fakeSlurm
	clock *clock
	w     *Watcher
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, slurm: newFakeSlurm(), clock: newClock()}
	cfg.ClusterID = "zzzzz"
	cfg.Now = h.clock.Now
	w, err := New(h.slurm, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.w = w
	return h
}

// cycle advances the clock by one period and runs a cycle.
func (h *harness) cycle() error {
	h.t.Helper()
	h.clock.Advance(2 * time.Second)
	return h.w.Cycle(context.Background())
}

// cycles runs n cycles, failing the test on an error.
func (h *harness) cycles(n int) {
	h.t.Helper()
	for range n {
		if err := h.cycle(); err != nil {
			h.t.Fatalf("cycle: %v", err)
		}
	}
}
