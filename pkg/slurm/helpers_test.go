package slurm

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// reply is what the fake runner answers to one command.
type reply struct {
	stdout   string
	stderr   string
	exitCode int   // non-zero: the command fails with a *CommandError
	err      error // the CommandError's Err instead of a synthetic exit error
}

// call is one recorded invocation, with the deadline its context carried.
type call struct {
	invocation
	deadline    time.Duration // time left until the context's deadline when called
	hasDeadline bool
}

// fakeRunner records invocations and answers from a script of replies, matched by a
// function or in order.
type fakeRunner struct {
	mu      sync.Mutex
	calls   []call
	replies []reply
	// answer, when set, decides the reply from the invocation.
	answer func(inv invocation) reply
}

func (f *fakeRunner) run(ctx context.Context, inv invocation) ([]byte, error) {
	f.mu.Lock()
	c := call{invocation: inv}
	if d, ok := ctx.Deadline(); ok {
		c.deadline, c.hasDeadline = time.Until(d), true
	}
	f.calls = append(f.calls, c)
	var r reply
	switch {
	case f.answer != nil:
		r = f.answer(inv)
	case len(f.replies) > 0:
		r, f.replies = f.replies[0], f.replies[1:]
	}
	f.mu.Unlock()
	if r.exitCode == 0 && r.err == nil {
		return []byte(r.stdout), nil
	}
	err := r.err
	if err == nil {
		err = fmt.Errorf("exit status %d", r.exitCode)
	}
	code := r.exitCode
	if code == 0 {
		code = -1
	}
	return []byte(r.stdout), &CommandError{Name: inv.Name, Args: inv.Args, ExitCode: code, Stderr: r.stderr, Err: err}
}

func (f *fakeRunner) recorded() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// argvs returns each recorded call as "name arg arg…".
func (f *fakeRunner) argvs() []string {
	var out []string
	for _, c := range f.recorded() {
		out = append(out, strings.Join(append([]string{c.Name}, c.Args...), " "))
	}
	return out
}

// newTestCLI returns a CLI whose commands go to a fake runner, with a fixed clock.
func newTestCLI(t *testing.T, cfg CLIConfig, f *fakeRunner) *CLI {
	t.Helper()
	if cfg.Env == nil {
		cfg.Env = []string{"PATH=/usr/bin:/bin", "HOME=/root"}
	}
	if cfg.Now == nil {
		cfg.Now = fixedClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), time.Second)
	}
	c, err := NewCLI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.run = f
	return c
}

// fixedClock returns a clock that starts at t0 and advances by step on every reading.
func fixedClock(t0 time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := now
		now = now.Add(step)
		return t
	}
}

// randomUUID returns a fresh container uuid of the test cluster zzzzz.
func randomUUID(t testing.TB) string {
	t.Helper()
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "zzzzz-dz642-" + string(b)
}

const testUUID = "zzzzz-dz642-0123456789abcde"
