package demo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

// slurmCommands are the commands the dispatcher runs.
var slurmCommands = []string{"sbatch", "squeue", "scancel", "scontrol"}

// slurmEnv is the demo's Slurm: the commands' paths and environment, and for fakeslurm its
// state directory.
type slurmEnv struct {
	backend Backend
	paths   map[string]string
	// env runs the commands; dispatcherEnv is what the dispatcher needs on top of ours.
	env, dispatcherEnv []string
	// admin controls the fake cluster (nil on real Slurm).
	admin *sim.Admin
}

// fakeCluster is fakeslurm's default cluster (the local Slurm's shape: one node of 16 CPUs,
// partitions debug and down) with the short kill and retry timings the tests use.
func fakeCluster() *sim.Cluster {
	c := sim.DefaultCluster()
	c.KillWait = sim.Duration(300 * time.Millisecond)
	c.SignalRetry = sim.Duration(time.Second)
	c.SubmitRetryUnit = sim.Duration(10 * time.Millisecond)
	return c
}

// newFakeSlurm makes a fake cluster under dir: links named after the commands to the
// fakeslurm binary, and a state directory.
func newFakeSlurm(fakeslurm, dir string) (*slurmEnv, error) {
	links, state := filepath.Join(dir, "bin"), filepath.Join(dir, "state")
	if err := os.MkdirAll(links, 0o755); err != nil {
		return nil, fmt.Errorf("set up fakeslurm: %w", err)
	}
	s := &slurmEnv{backend: Fake, paths: map[string]string{},
		admin: &sim.Admin{Dir: state, Exe: fakeslurm}}
	for _, name := range slurmCommands {
		s.paths[name] = filepath.Join(links, name)
		if err := os.Symlink(fakeslurm, s.paths[name]); err != nil {
			return nil, fmt.Errorf("set up fakeslurm: %w", err)
		}
	}
	if err := s.admin.Init(fakeCluster()); err != nil {
		return nil, fmt.Errorf("set up fakeslurm: %w", err)
	}
	s.dispatcherEnv = []string{sim.EnvState + "=" + state}
	s.env = append(environWithout(sim.EnvState+"="), s.dispatcherEnv...)
	return s, nil
}

// newRealSlurm finds the real commands in PATH.
func newRealSlurm() (*slurmEnv, error) {
	s := &slurmEnv{backend: Real, paths: map[string]string{}, env: os.Environ()}
	for _, name := range slurmCommands {
		p, err := exec.LookPath(name)
		if err != nil {
			return nil, fmt.Errorf("real Slurm: %w", err)
		}
		s.paths[name] = p
	}
	return s, nil
}

// environWithout is os.Environ() without the variables that start with one of prefixes.
func environWithout(prefixes ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(kv, p) }) {
			env = append(env, kv)
		}
	}
	return env
}

// job is one Slurm job of the demo, as squeue shows it.
type job struct {
	ID, Name, State, Reason string
}

// live reports whether the job has not finished.
func (j job) live() bool {
	switch j.State {
	case "PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED", "RESIZING", "STOPPED", "SIGNALING":
		return true
	}
	return false
}

// run runs a Slurm command with a timeout and returns its stdout.
func (s *slurmEnv) run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.paths[name], args...)
	cmd.Env = s.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// jobs returns the jobs named after one of names that Slurm still knows (finished ones
// for MinJobAge), by name; of two jobs with one name, the later.
func (s *slurmEnv) jobs(ctx context.Context, names []string) (map[string]job, error) {
	out, err := s.run(ctx, "squeue", "--noheader", "--states=all", "--name="+strings.Join(names, ","),
		"--format=%i|%j|%T|%r")
	if err != nil {
		return nil, fmt.Errorf("list the demo's jobs: %w", err)
	}
	jobs := map[string]job{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(strings.TrimSpace(line), "|", 4)
		if len(f) != 4 {
			continue
		}
		j := job{ID: f[0], Name: f[1], State: f[2], Reason: f[3]}
		if old, ok := jobs[j.Name]; !ok || jobNumber(old.ID) < jobNumber(j.ID) {
			jobs[j.Name] = j
		}
	}
	return jobs, nil
}

func jobNumber(id string) int {
	n, _ := strconv.Atoi(id)
	return n
}

// cancel cancels jobs by id (never by user or name pattern: the real Slurm is shared).
func (s *slurmEnv) cancel(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.run(ctx, "scancel", ids...)
	return err
}

// othersJobs reports whether the real Slurm has live jobs that are not the demo's.
func (s *slurmEnv) othersJobs(ctx context.Context, ours map[string]bool) (bool, error) {
	out, err := s.run(ctx, "squeue", "--noheader", "--all", "--format=%j")
	if err != nil {
		return false, err
	}
	for _, name := range strings.Fields(out) {
		if !ours[name] {
			return true, nil
		}
	}
	return false, nil
}

// fakeProcesses returns the pids of fakeslurm's job runners and batch scripts, and kills
// those still running (their jobs end NODE_FAIL).
func (s *slurmEnv) fakeProcesses() ([]int, error) {
	if s.admin == nil {
		return nil, nil
	}
	jobs, err := s.admin.Jobs()
	if err != nil {
		return nil, fmt.Errorf("list fakeslurm's jobs: %w", err)
	}
	var pids []int
	for _, j := range jobs {
		for _, p := range []int{j.RunnerPID, j.ScriptPID} {
			if p > 0 {
				pids = append(pids, p)
			}
		}
	}
	if err := s.admin.Shutdown(); err != nil {
		return pids, fmt.Errorf("stop fakeslurm's jobs: %w", err)
	}
	return pids, nil
}
