// Package fakeslurmtest gives Go tests a fake Slurm cluster: it builds the fakeslurm binary
// once per test process, links it as sbatch, squeue, scancel and scontrol in a temporary
// directory, gives each test its own state directory, and offers what tests need besides
// the four commands: faults, partitions, the job table, recorded calls, and waiting for a
// job's state.
//
//	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
//	cfg := slurm.CLIConfig{SbatchPath: env.SbatchPath, SqueuePath: env.SqueuePath,
//		ScancelPath: env.ScancelPath, ScontrolPath: env.ScontrolPath, Env: env.Env, Dir: t.TempDir()}
//	env.AddFault(sim.Fault{Command: "sbatch", Kind: sim.FaultFail, Count: 1,
//		Stderr: "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n"})
//	job := env.WaitJobState(id, 10*time.Second, sim.StateRunning)
//
// Processes started by jobs are killed when the test ends.
package fakeslurmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

// EnvBinary names an environment variable holding a prebuilt fakeslurm binary to use
// instead of building one.
const EnvBinary = "FAKESLURM_BIN"

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the path of the fakeslurm binary, building it the first time in a test
// process (go build is cached, so this takes a second at most after the first build).
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { buildPath, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("build fakeslurm: %v", buildErr)
	}
	return buildPath
}

func build() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	// go test puts $GOROOT/bin first in the tests' PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("no go command in PATH to build fakeslurm with (or set " + EnvBinary + ")")
	}
	// One stable path per user, replaced atomically: concurrent test processes share it
	// and nothing accumulates in /tmp.
	dir := filepath.Join(os.TempDir(), "dispatch-slurm-fakeslurm-"+strconv.Itoa(os.Getuid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "fakeslurm.build*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command(goBin, "build", "-o", tmp.Name(), "github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm")
	// Static: no dynamic loader at each of the many short runs (about a millisecond each).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	final := filepath.Join(dir, "fakeslurm-"+strconv.Itoa(os.Getpid()))
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", err
	}
	// Binaries of earlier test processes: remove those whose process is gone.
	olds, _ := filepath.Glob(filepath.Join(dir, "fakeslurm-*"))
	for _, o := range olds {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(o), "fakeslurm-"))
		if err == nil && pid != os.Getpid() && !processExists(pid) {
			os.Remove(o)
		}
	}
	return final, nil
}

func processExists(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return err == nil
}

// Options configures a fake cluster.
type Options struct {
	// Cluster replaces the default test cluster.
	Cluster *sim.Cluster
	// Faithful keeps Slurm's own timings in the default cluster: KillWait 5 s, scancel's
	// 95 s of retries on a pending job, sbatch's two minutes of retries, and one minute of
	// --time lasting a minute. Otherwise they are 300 ms, 1 s, 10 ms steps and 1 s.
	Faithful bool
	// NoRun keeps every job pending (reason Resources) instead of running batch scripts.
	NoRun bool
}

// Env is one fake cluster.
type Env struct {
	// Dir holds the links sbatch, squeue, scancel and scontrol (put it first in PATH).
	Dir string
	// StateDir is the cluster's state directory (FAKESLURM_STATE).
	StateDir                                          string
	SbatchPath, SqueuePath, ScancelPath, ScontrolPath string
	// FakeslurmPath is the binary itself, for admin commands (`fakeslurm jobs`, …).
	FakeslurmPath string
	// Env is os.Environ() with FAKESLURM_STATE set and Dir first in PATH: give it to
	// commands (slurm.CLIConfig.Env).
	Env []string
	// Admin changes the cluster from the test.
	Admin *sim.Admin

	t testing.TB
}

// TestCluster is the default cluster of Start: DefaultCluster with short timings unless
// faithful.
func TestCluster(faithful bool) *sim.Cluster {
	c := sim.DefaultCluster()
	if !faithful {
		c.KillWait = sim.Duration(300 * time.Millisecond)
		c.SignalRetry = sim.Duration(time.Second)
		c.SubmitRetryUnit = sim.Duration(10 * time.Millisecond)
		c.Minute = sim.Duration(time.Second)
	}
	return c
}

// Start makes a fake cluster for one test. Job processes are killed at the end of the test.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	bin := Binary(t)
	root := t.TempDir()
	e := &Env{
		Dir:           filepath.Join(root, "bin"),
		StateDir:      filepath.Join(root, "state"),
		FakeslurmPath: bin,
		t:             t,
	}
	if err := os.MkdirAll(e.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sbatch", "squeue", "scancel", "scontrol", "fakeslurm"} {
		if err := os.Symlink(bin, filepath.Join(e.Dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	e.SbatchPath = filepath.Join(e.Dir, "sbatch")
	e.SqueuePath = filepath.Join(e.Dir, "squeue")
	e.ScancelPath = filepath.Join(e.Dir, "scancel")
	e.ScontrolPath = filepath.Join(e.Dir, "scontrol")
	e.Admin = &sim.Admin{Dir: e.StateDir, Exe: bin}
	c := opts.Cluster
	if c == nil {
		c = TestCluster(opts.Faithful)
	}
	c.NoRun = c.NoRun || opts.NoRun
	if err := e.Admin.Init(c); err != nil {
		t.Fatalf("init fake cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Admin.Shutdown(); err != nil {
			t.Errorf("shut down fake cluster: %v", err)
		}
	})
	e.Env = environ(e.Dir, e.StateDir)
	return e
}

func environ(binDir, stateDir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, sim.EnvState+"=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"), sim.EnvState+"="+stateDir)
}

// Result is what one command printed and its exit code.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
}

// Run runs one of the commands (sbatch, squeue, scancel, scontrol, fakeslurm) in dir
// (the test's temp dir when empty) with stdin, and returns what it printed. It fails the
// test if the command cannot run or takes more than a minute.
func (e *Env) Run(dir, stdin, name string, args ...string) Result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(e.Dir, name), args...)
	cmd.Env = e.Env
	cmd.Dir = dir
	if dir == "" {
		cmd.Dir = e.t.TempDir()
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		e.t.Fatalf("run %s %v: %v", name, args, err)
	}
	return Result{Stdout: out.String(), Stderr: errOut.String(), ExitCode: cmd.ProcessState.ExitCode()}
}

// SubmitAs submits a job as another user (uid) and returns its id: a job that is not
// ours. Set Cluster.Users[user] = uid (UpdateCluster) for squeue --user=<user> to know it.
func (e *Env) SubmitAs(user string, uid int, script string, args ...string) string {
	e.t.Helper()
	id, err := e.Admin.SubmitAs(user, uid, e.t.TempDir(), script, args...)
	if err != nil {
		e.t.Fatalf("submit as %s: %v", user, err)
	}
	return id
}

// AddFault injects a fault.
func (e *Env) AddFault(f sim.Fault) {
	e.t.Helper()
	if err := e.Admin.AddFault(f); err != nil {
		e.t.Fatalf("add fault: %v", err)
	}
}

// ClearFaults removes every fault.
func (e *Env) ClearFaults() {
	e.t.Helper()
	if err := e.Admin.ClearFaults(); err != nil {
		e.t.Fatalf("clear faults: %v", err)
	}
}

// SetPartitionUp brings a partition up (its pending jobs then start) or down.
func (e *Env) SetPartitionUp(name string, up bool) {
	e.t.Helper()
	if err := e.Admin.SetPartitionUp(name, up); err != nil {
		e.t.Fatalf("set partition %s up=%v: %v", name, up, err)
	}
}

// UpdateCluster changes the cluster configuration (nodes, partitions, settings).
func (e *Env) UpdateCluster(fn func(*sim.Cluster)) {
	e.t.Helper()
	if err := e.Admin.UpdateCluster(fn); err != nil {
		e.t.Fatalf("update cluster: %v", err)
	}
}

// Jobs returns every job the fake slurmctld knows, by id.
func (e *Env) Jobs() []sim.Job {
	e.t.Helper()
	jobs, err := e.Admin.Jobs()
	if err != nil {
		e.t.Fatalf("list fake jobs: %v", err)
	}
	return jobs
}

// Job returns the job with the given id.
func (e *Env) Job(id string) (sim.Job, bool) {
	e.t.Helper()
	for _, j := range e.Jobs() {
		if strconv.Itoa(j.ID) == id {
			return j, true
		}
	}
	return sim.Job{}, false
}

// JobsNamed returns the jobs with the given name.
func (e *Env) JobsNamed(name string) []sim.Job {
	e.t.Helper()
	var out []sim.Job
	for _, j := range e.Jobs() {
		if j.Name == name {
			out = append(out, j)
		}
	}
	return out
}

// Calls returns the Slurm commands run so far, oldest first.
func (e *Env) Calls() []sim.Call {
	e.t.Helper()
	calls, err := sim.Calls(e.StateDir)
	if err != nil {
		e.t.Fatalf("read fake calls: %v", err)
	}
	return calls
}

// WaitFor polls the job table until cond holds, failing the test after timeout.
func (e *Env) WaitFor(what string, timeout time.Duration, cond func([]sim.Job) bool) []sim.Job {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		jobs := e.Jobs()
		if cond(jobs) {
			return jobs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("waited %v for %s; jobs: %s", timeout, what, summary(jobs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitJobState waits until job id is in one of states (the state squeue shows, e.g.
// COMPLETING while a cancelled job's processes are being killed) and returns it.
func (e *Env) WaitJobState(id string, timeout time.Duration, states ...string) sim.Job {
	e.t.Helper()
	var found sim.Job
	e.WaitFor(fmt.Sprintf("job %s in %v", id, states), timeout, func(jobs []sim.Job) bool {
		for _, j := range jobs {
			if strconv.Itoa(j.ID) != id {
				continue
			}
			for _, s := range states {
				if j.ShownState() == s {
					found = j
					return true
				}
			}
		}
		return false
	})
	return found
}

func summary(jobs []sim.Job) string {
	var b strings.Builder
	for i, j := range jobs {
		if i == 20 {
			fmt.Fprintf(&b, " … (%d jobs)", len(jobs))
			break
		}
		fmt.Fprintf(&b, " %d:%s:%s:%s", j.ID, j.Name, j.ShownState(), j.Reason)
	}
	return b.String()
}
