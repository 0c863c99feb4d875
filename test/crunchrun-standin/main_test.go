package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// The stand-in is built once per test run into a temporary directory (removed by TestMain):
// building it per test would cost a link each time.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func standinBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "crunchrun-standin-test-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "crunchrun-standin")
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		if out, err := exec.Command(goTool, "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestTheContainerUUIDIsTheLastArgument(t *testing.T) {
	const uuid = "zzzzz-dz642-000000000000001"
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{"a bare uuid is the container", []string{uuid}, uuid, ""},
		{"crunch-run's flags before it are ignored", []string{"--runtime-engine=docker", "--foo=bar", "-x", uuid}, uuid, ""},
		{"no arguments is an error", nil, "", "no container uuid"},
		{"a flag last is not a uuid", []string{uuid, "--runtime-engine=docker"}, "", "not a container uuid"},
		{"a uuid of another kind is refused", []string{"zzzzz-j7d0g-000000000000001"}, "", "not a container uuid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseArgs(tt.args)
			if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("parseArgs(%q) = %q, %v; want %q, %q", tt.args, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestTheCommandSaysHowLongToRun(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		want    time.Duration
		wantDie int // -1: does not die
	}{
		{"sleep N waits N seconds", []string{"sleep", "2"}, 2 * time.Second, -1},
		{"sleep takes fractions of seconds", []string{"sleep", "0.25"}, 250 * time.Millisecond, -1},
		{"sleep takes Go durations", []string{"sleep", "1500ms"}, 1500 * time.Millisecond, -1},
		{"a negative sleep waits the default", []string{"sleep", "-3"}, time.Second, -1},
		{"a sleep beyond a day waits the default", []string{"sleep", "48h"}, time.Second, -1},
		{"an unreadable sleep waits the default", []string{"sleep", "forever"}, time.Second, -1},
		{"another command waits the default", []string{"python3", "run.py"}, time.Second, -1},
		{"no command waits the default", nil, time.Second, -1},
		{"exit N dies with N", []string{"exit", "3"}, 0, 3},
		{"an unreadable exit waits the default", []string{"exit", "x"}, time.Second, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planFor(tt.command)
			die := -1
			if p.die != nil {
				die = *p.die
			}
			if p.wait != tt.want || die != tt.wantDie {
				t.Errorf("planFor(%q) = wait %s die %d, want %s %d", tt.command, p.wait, die, tt.want, tt.wantDie)
			}
		})
	}
}

// fake is a fake API server and the environment that points the stand-in at it.
type fake struct {
	srv    *fakearvados.Server
	client *arvados.Client
	env    []string
}

func newFake(t *testing.T, tls bool) *fake {
	t.Helper()
	srv := fakearvados.New(fakearvados.Options{TLS: tls})
	t.Cleanup(srv.Close)
	c, err := arvados.NewClient(arvados.Config{Host: srv.URL(), Token: fakearvados.AdminToken, HTTPClient: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	env := []string{"PATH=" + os.Getenv("PATH"), "ARVADOS_API_TOKEN=" + fakearvados.AdminToken}
	if tls {
		env = append(env, "ARVADOS_API_HOST="+srv.Host(), "ARVADOS_API_HOST_INSECURE=1")
	} else {
		env = append(env, "ARVADOS_API_HOST="+srv.URL())
	}
	return &fake{srv: srv, client: c, env: env}
}

// lockedContainer seeds a container with command and locks it with the dispatcher's token.
func (f *fake) lockedContainer(t *testing.T, command ...string) string {
	t.Helper()
	uuid := f.srv.Seed(arvados.Container{Priority: 1, Command: command})[0]
	if _, err := f.client.Lock(t.Context(), uuid); err != nil {
		t.Fatal(err)
	}
	return uuid
}

// proc is a running stand-in.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

// syncBuffer is the stand-in's output, readable while the process still writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (f *fake) start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, standinBinary(t), args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// wait returns the exit code once the stand-in has ended, and checks that its output does
// not show the token.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	var err error
	select {
	case err = <-p.done:
		p.done <- err // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatalf("the stand-in did not end; output:\n%s", p.stderr)
	}
	if strings.Contains(p.stderr.String(), fakearvados.AdminToken) {
		t.Errorf("the output shows the token:\n%s", p.stderr)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// waitState polls the fake until the container reaches want.
func (f *fake) waitState(t *testing.T, uuid string, want arvados.ContainerState, p *proc) arvados.Container {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctr, _ := f.srv.Container(uuid)
		if ctr.State == want {
			return ctr
		}
		if time.Now().After(deadline) {
			t.Fatalf("container still %s, want %s; output:\n%s", ctr.State, want, p.stderr)
		}
		time.Sleep(2 * time.Millisecond) // polling the condition, not waiting for it to happen
	}
}

func forEachScheme(t *testing.T, test func(t *testing.T, f *fake)) {
	for _, tls := range []bool{false, true} {
		name := "over http"
		if tls {
			name = "over TLS"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, newFake(t, tls))
		})
	}
}

func TestTheStandInRunsALockedContainerToComplete(t *testing.T) {
	forEachScheme(t, func(t *testing.T, f *fake) {
		uuid := f.lockedContainer(t, "sleep", "2")
		p := f.start(t, f.env, "--runtime-engine=docker", "--broken-node-hook=/x", uuid)
		f.waitState(t, uuid, arvados.Running, p)
		ctr := f.waitState(t, uuid, arvados.Complete, p)
		if code := p.wait(t); code != 0 {
			t.Errorf("exit code %d; output:\n%s", code, p.stderr)
		}
		if ctr.ExitCode == nil || *ctr.ExitCode != 0 {
			t.Errorf("exit_code %v, want 0", ctr.ExitCode)
		}
	})
}

func TestSIGTERMCancelsTheContainerWithAReason(t *testing.T) {
	forEachScheme(t, func(t *testing.T, f *fake) {
		uuid := f.lockedContainer(t, "sleep", "600")
		p := f.start(t, f.env, uuid)
		f.waitState(t, uuid, arvados.Running, p)
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := p.wait(t); code != 0 {
			t.Errorf("exit code %d; output:\n%s", code, p.stderr)
		}
		ctr, _ := f.srv.Container(uuid)
		if ctr.State != arvados.Cancelled || ctr.RuntimeStatus["error"] != "crunch-run stand-in: received SIGTERM" {
			t.Errorf("container %s with runtime_status %v", ctr.State, ctr.RuntimeStatus)
		}
	})
}

func TestSIGTERMAfterTheContainerWasCancelledIsNotAFailure(t *testing.T) {
	f := newFake(t, false)
	uuid := f.lockedContainer(t, "sleep", "600")
	p := f.start(t, f.env, uuid)
	f.waitState(t, uuid, arvados.Running, p)
	if err := f.srv.SetState(uuid, arvados.Cancelled); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 || !strings.Contains(p.stderr.String(), "already Cancelled") {
		t.Errorf("exit code %d; output:\n%s", code, p.stderr)
	}
}

func TestAContainerThatIsNotLockedIsRefused(t *testing.T) {
	for _, state := range []arvados.ContainerState{arvados.Queued, arvados.Cancelled} {
		t.Run(string(state), func(t *testing.T) {
			t.Parallel()
			f := newFake(t, false)
			uuid := f.srv.Seed(arvados.Container{Priority: 1, Command: []string{"sleep", "1"}})[0]
			if err := f.srv.SetState(uuid, state); err != nil {
				t.Fatal(err)
			}
			p := f.start(t, f.env, uuid)
			code := p.wait(t)
			want := fmt.Sprintf("is %s, not Locked", state)
			if code == 0 || !strings.Contains(p.stderr.String(), want) {
				t.Errorf("exit code %d, output %q; want non-zero saying %q", code, p.stderr, want)
			}
			if ctr, _ := f.srv.Container(uuid); ctr.State != state {
				t.Errorf("the container went %s", ctr.State)
			}
		})
	}
}

func TestExitCommandDiesLeavingTheContainerRunning(t *testing.T) {
	f := newFake(t, false)
	uuid := f.lockedContainer(t, "exit", "3")
	p := f.start(t, f.env, uuid)
	if code := p.wait(t); code != 3 {
		t.Errorf("exit code %d, want 3; output:\n%s", code, p.stderr)
	}
	if ctr, _ := f.srv.Container(uuid); ctr.State != arvados.Running {
		t.Errorf("the container is %s, want Running", ctr.State)
	}
}

func TestConfigurationProblemsAreExplained(t *testing.T) {
	f := newFake(t, false)
	uuid := f.lockedContainer(t, "sleep", "1")
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		want     []string
	}{
		{"no API host says what to set", []string{"ARVADOS_API_TOKEN=" + fakearvados.AdminToken}, []string{uuid},
			1, []string{"ARVADOS_API_HOST"}},
		{"a refused token says which host and what to check",
			[]string{"ARVADOS_API_HOST=" + f.srv.URL(), "ARVADOS_API_TOKEN=" + fakearvados.UserToken + "x"}, []string{uuid},
			1, []string{"401", f.srv.Host(), "ARVADOS_API_TOKEN"}},
		{"no uuid shows the usage", f.env, []string{"--runtime-engine=docker"}, 2, []string{"usage:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := f.start(t, tt.env, tt.args...)
			code := p.wait(t)
			out := p.stderr.String()
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; output:\n%s", code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, fakearvados.UserToken) {
				t.Errorf("output shows the token:\n%s", out)
			}
		})
	}
	if ctr, _ := f.srv.Container(uuid); ctr.State != arvados.Locked {
		t.Errorf("the container went %s", ctr.State)
	}
}
