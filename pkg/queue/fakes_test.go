package queue

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

// apiCall is one call the fake API saw.
type apiCall struct {
	Method  string // "list", "get", "lock", "unlock", "update", "log", "token"
	UUID    string
	Filters []arvados.Filter
	Select  []string
	Update  arvados.ContainerUpdate
	Log     arvados.Log
}

// fakeAPI is an in-memory API that records calls and fails on demand.
type fakeAPI struct {
	mu     sync.Mutex
	token  string
	ctrs   map[string]arvados.Container
	calls  []apiCall
	faults map[string][]error // by method: errors for the next calls
}

var _ API = (*fakeAPI)(nil)

func newFakeAPI(cs ...arvados.Container) *fakeAPI {
	f := &fakeAPI{token: testToken, ctrs: map[string]arvados.Container{}, faults: map[string][]error{}}
	for _, c := range cs {
		f.ctrs[c.UUID] = c
	}
	return f
}

func (f *fakeAPI) put(cs ...arvados.Container) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		f.ctrs[c.UUID] = c
	}
}

func (f *fakeAPI) get(uuid string) arvados.Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ctrs[uuid]
}

// fail makes the next calls of method fail with errs, in order.
func (f *fakeAPI) fail(method string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[method] = append(f.faults[method], errs...)
}

func (f *fakeAPI) record(c apiCall) error {
	f.calls = append(f.calls, c)
	if errs := f.faults[c.Method]; len(errs) > 0 {
		f.faults[c.Method] = errs[1:]
		return errs[0]
	}
	return nil
}

func (f *fakeAPI) takeCalls() []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func countCalls(calls []apiCall, method string) int {
	n := 0
	for _, c := range calls {
		if c.Method == method {
			n++
		}
	}
	return n
}

func (f *fakeAPI) CurrentToken(context.Context) (arvados.APIClientAuthorization, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(apiCall{Method: "token"}); err != nil {
		return arvados.APIClientAuthorization{}, err
	}
	return arvados.APIClientAuthorization{UUID: f.token}, nil
}

func (f *fakeAPI) ListContainers(ctx context.Context, p arvados.ListParams) (arvados.ContainerList, error) {
	var l arvados.ContainerList
	err := f.EachContainer(ctx, p, func(c arvados.Container) error { l.Items = append(l.Items, c); return nil })
	return l, err
}

func (f *fakeAPI) EachContainer(_ context.Context, p arvados.ListParams, fn func(arvados.Container) error) error {
	f.mu.Lock()
	if err := f.record(apiCall{Method: "list", Filters: p.Filters, Select: p.Select}); err != nil {
		f.mu.Unlock()
		return err
	}
	var out []arvados.Container
	for _, u := range slices.Sorted(maps.Keys(f.ctrs)) {
		if c := f.ctrs[u]; matches(c, p.Filters) {
			out = append(out, c)
		}
	}
	f.mu.Unlock()
	for _, c := range out {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// matches evaluates the filters the dispatcher uses.
func matches(c arvados.Container, fs []arvados.Filter) bool {
	for _, f := range fs {
		switch {
		case f.Attr == "locked_by_uuid" && f.Op == "=":
			if c.LockedByUUID != f.Operand {
				return false
			}
		case f.Attr == "state" && f.Op == "=":
			if c.State != f.Operand {
				return false
			}
		case f.Attr == "priority" && f.Op == ">":
			if c.Priority <= int64(f.Operand.(int)) {
				return false
			}
		case f.Attr == "uuid" && f.Op == "in":
			if !slices.Contains(f.Operand.([]string), c.UUID) {
				return false
			}
		default:
			panic(fmt.Sprintf("fake API: filter %+v not supported", f))
		}
	}
	return true
}

func (f *fakeAPI) GetContainer(_ context.Context, uuid string, sel ...string) (arvados.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(apiCall{Method: "get", UUID: uuid, Select: sel}); err != nil {
		return arvados.Container{}, err
	}
	c, ok := f.ctrs[uuid]
	if !ok {
		return c, &arvados.HTTPError{Status: http.StatusNotFound}
	}
	return c, nil
}

func (f *fakeAPI) Lock(_ context.Context, uuid string) (arvados.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(apiCall{Method: "lock", UUID: uuid}); err != nil {
		return arvados.Container{}, err
	}
	c := f.ctrs[uuid]
	if c.State != arvados.Queued || c.Priority <= 0 {
		return c, &arvados.HTTPError{Status: http.StatusUnprocessableEntity, Messages: []string{"cannot lock"}}
	}
	c.State, c.LockedByUUID = arvados.Locked, f.token
	c.LockCount++
	f.ctrs[uuid] = c
	return arvados.Container{UUID: uuid, State: c.State, Priority: c.Priority, LockedByUUID: c.LockedByUUID}, nil
}

func (f *fakeAPI) Unlock(_ context.Context, uuid string) (arvados.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(apiCall{Method: "unlock", UUID: uuid}); err != nil {
		return arvados.Container{}, err
	}
	c := f.ctrs[uuid]
	if c.State != arvados.Locked {
		return c, &arvados.HTTPError{Status: http.StatusUnprocessableEntity, Messages: []string{"cannot unlock"}}
	}
	c.State, c.LockedByUUID = arvados.Queued, ""
	f.ctrs[uuid] = c
	return arvados.Container{UUID: uuid, State: c.State, Priority: c.Priority}, nil
}

func (f *fakeAPI) UpdateContainer(_ context.Context, uuid string, u arvados.ContainerUpdate) (arvados.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(apiCall{Method: "update", UUID: uuid, Update: u}); err != nil {
		return arvados.Container{}, err
	}
	c := f.ctrs[uuid]
	if u.RuntimeStatus != nil {
		c.RuntimeStatus = maps.Clone(u.RuntimeStatus)
	}
	if u.State != nil {
		c.State = *u.State
		if c.State.Final() {
			c.LockedByUUID = ""
		}
	}
	f.ctrs[uuid] = c
	return c, nil
}

func (f *fakeAPI) CreateLog(_ context.Context, l arvados.Log) (arvados.Log, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return l, f.record(apiCall{Method: "log", UUID: l.ObjectUUID, Log: l})
}

// fakeWatcher answers Presence and the submit rule from maps the test sets, and records what
// the dispatcher tells it.
type fakeWatcher struct {
	mu         sync.Mutex
	presence   map[string]squeue.Presence
	absent     map[string]bool // AbsentInSnapshotAfter; default absentAll
	absentAll  bool
	wanted     []squeue.Wanted
	submitted  []string // "uuid jobID"
	unreported []string
	pokes      int
}

var _ Watcher = (*fakeWatcher)(nil)

func newFakeWatcher() *fakeWatcher {
	return &fakeWatcher{presence: map[string]squeue.Presence{}, absent: map[string]bool{}, absentAll: true}
}

func (w *fakeWatcher) setPresence(uuid string, p squeue.Presence) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.presence[uuid] = p
}

func (w *fakeWatcher) Presence(uuid string) squeue.Presence {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.presence[uuid]
}

func (w *fakeWatcher) AbsentInSnapshotAfter(uuid string, _ time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if v, ok := w.absent[uuid]; ok {
		return v
	}
	return w.absentAll && w.presence[uuid].Kind != squeue.Present
}

func (w *fakeWatcher) NoteSubmitted(uuid, jobID string, _ int, _ int64, _ time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.submitted = append(w.submitted, uuid+" "+jobID)
	// Like the real watcher: a job of that name was submitted; absence must be confirmed.
	w.absent[uuid] = false
}

func (w *fakeWatcher) NoteCancelled(string, time.Time) {}
func (w *fakeWatcher) InitialNice(string, int64) int   { return 100 }
func (w *fakeWatcher) Healthy() (bool, string)         { return true, "" }
func (w *fakeWatcher) WaitSnapshotAfter(ctx context.Context, _ time.Time) error {
	<-ctx.Done()
	return ctx.Err()
}

func (w *fakeWatcher) Poke() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pokes++
}

func (w *fakeWatcher) SetWanted(wt squeue.Wanted) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wanted = append(w.wanted, wt)
}

func (w *fakeWatcher) lastWanted() (squeue.Wanted, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.wanted) == 0 {
		return squeue.Wanted{}, 0
	}
	return w.wanted[len(w.wanted)-1], len(w.wanted)
}

func (w *fakeWatcher) Unreported() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.unreported)
}

// fakeSubmitter answers sbatch from a queue of errors (nil: success with the next job id).
type fakeSubmitter struct {
	mu      sync.Mutex
	next    int
	results map[string][]error // by uuid; "" for any
	reqs    []slurm.SubmitRequest
}

func newFakeSubmitter() *fakeSubmitter {
	return &fakeSubmitter{next: 100, results: map[string][]error{}}
}

func (s *fakeSubmitter) failNext(uuid string, errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results[uuid] = append(s.results[uuid], errs...)
}

func (s *fakeSubmitter) Submit(_ context.Context, req slurm.SubmitRequest) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, req)
	for _, k := range []string{req.Name, ""} {
		if errs := s.results[k]; len(errs) > 0 {
			s.results[k] = errs[1:]
			if errs[0] != nil {
				return "", errs[0]
			}
		}
	}
	s.next++
	return fmt.Sprint(s.next), nil
}

func (s *fakeSubmitter) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.reqs {
		out = append(out, r.Name)
	}
	return out
}

// Slurm's error classes, as slurm.CLI returns them.
var (
	errReject = func(msg string) error {
		return fmt.Errorf("submit: %w", &slurm.RejectError{Message: msg, Err: errors.New("exit status 1")})
	}
	errSlurmBusy  = fmt.Errorf("submit: %w", &slurm.TransientError{Message: "Slurm temporarily unable to accept job", Err: errors.New("exit status 1")})
	errSlurmLost  = fmt.Errorf("submit: %w", &slurm.TransientError{Ambiguous: true, Err: errors.New("timeout")})
	errAPIDown    = &arvados.HTTPError{Status: http.StatusServiceUnavailable}
	errAPIUnclear = &arvados.TransportError{Sent: true, Err: errors.New("connection reset")}
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// unit is a Dispatcher on the fakes, driven by Poll and Pass with a settable clock.
type unit struct {
	api *fakeAPI
	w   *fakeWatcher
	sl  *fakeSubmitter
	clk *clock
	d   *Dispatcher
}

func newUnit(t interface {
	Helper()
	Fatal(...any)
}, cfg Config, cs ...arvados.Container) *unit {
	t.Helper()
	u := &unit{api: newFakeAPI(cs...), w: newFakeWatcher(), sl: newFakeSubmitter(), clk: &clock{t: t0}}
	cfg.Now = u.clk.Now
	cfg.Rand = func() float64 { return 1 }
	if cfg.RejectionHold == 0 {
		cfg.RejectionHold = 10 * time.Second
	}
	d, err := New(u.api, u.sl, u.w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	u.d = d
	return u
}

// queued is a Queued container of our cluster with priority p.
func queued(n int, p int64) arvados.Container {
	return arvados.Container{
		UUID: fmt.Sprintf("zzzzz-dz642-%015d", n), State: arvados.Queued, Priority: p,
		CreatedAt:          t0.Add(time.Duration(n) * time.Second),
		RuntimeConstraints: arvados.RuntimeConstraints{RAM: 1 << 30, VCPUs: 1},
	}
}

// lockedOurs is a container locked by our token.
func lockedOurs(n int, state arvados.ContainerState) arvados.Container {
	c := queued(n, 10)
	c.State, c.LockedByUUID, c.LockCount = state, testToken, 1
	return c
}
