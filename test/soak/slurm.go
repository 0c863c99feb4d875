package soak

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

// fakeSlurm is the run's fake Slurm cluster: links to the fakeslurm binary under the four
// command names, a state directory, and sim.Admin for faults and the job table.
type fakeSlurm struct {
	binDir, stateDir string
	admin            *sim.Admin
	env              []string
}

// Slurm's commands as the dispatcher runs them.
var slurmCommands = []string{"sbatch", "squeue", "scancel", "scontrol"}

// startFakeSlurm makes the fake cluster in dir. Finished jobs are remembered for minJobAge (at
// least Slurm's default, 300 s), so that the final checks see the whole run's jobs.
func startFakeSlurm(bin, dir string, minJobAge time.Duration) (*fakeSlurm, error) {
	s := &fakeSlurm{binDir: filepath.Join(dir, "slurm-bin"), stateDir: filepath.Join(dir, "slurm-state")}
	if err := os.MkdirAll(s.binDir, 0o755); err != nil {
		return nil, err
	}
	for _, name := range append(slurmCommands, "fakeslurm") {
		if err := os.Symlink(bin, filepath.Join(s.binDir, name)); err != nil {
			return nil, fmt.Errorf("link fakeslurm as %s: %w", name, err)
		}
	}
	s.admin = &sim.Admin{Dir: s.stateDir, Exe: bin}
	// Slurm's timings shortened as in fakeslurmtest (KillWait 300ms, scancel's retries 1s):
	// a soak waits for them thousands of times.
	c := sim.DefaultCluster()
	c.MinJobAge = sim.Duration(max(minJobAge, c.MinJobAge.D()))
	c.KillWait = sim.Duration(300 * time.Millisecond)
	c.SignalRetry = sim.Duration(time.Second)
	c.SubmitRetryUnit = sim.Duration(10 * time.Millisecond)
	if err := s.admin.Init(c); err != nil {
		return nil, fmt.Errorf("init fake Slurm: %w", err)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, sim.EnvState+"=") {
			s.env = append(s.env, kv)
		}
	}
	s.env = append(s.env, "PATH="+s.binDir+string(os.PathListSeparator)+os.Getenv("PATH"), sim.EnvState+"="+s.stateDir)
	return s, nil
}

func (s *fakeSlurm) path(name string) string { return filepath.Join(s.binDir, name) }

// jobs returns the job table (a scheduling pass first, as every Slurm command does).
func (s *fakeSlurm) jobs() ([]sim.Job, error) { return s.admin.Jobs() }

// submit runs sbatch directly (never through a fault) in dir and returns the job id.
func (s *fakeSlurm) submit(ctx context.Context, dir, script string, args ...string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.path("sbatch"), append([]string{"--parsable"}, args...)...)
	cmd.Env, cmd.Dir, cmd.Stdin = s.env, dir, strings.NewReader(script)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("sbatch %v: %w: %s", args, err, strings.TrimSpace(errOut.String()))
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out.String()), ";")
	n, err := strconv.Atoi(id)
	if err != nil {
		return 0, fmt.Errorf("sbatch %v printed %q, not a job id", args, out.String())
	}
	return n, nil
}

// shutdown kills every job's processes.
func (s *fakeSlurm) shutdown() error { return s.admin.Shutdown() }

// live reports whether squeue (without -t) still shows the job: pending, running, completing.
func live(j sim.Job) bool { return j.Active() }

// killScript sends SIGKILL to a running job's batch script (the crunch-run stand-in, which the
// script exec'd) after checking that the process is still that job's stand-in.
func killScript(j sim.Job) error {
	if j.ScriptPID <= 0 {
		return errNoCandidate
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(j.ScriptPID), "cmdline"))
	if err != nil || !bytes.Contains(cmdline, []byte(j.Name)) {
		return errNoCandidate
	}
	if err := syscall.Kill(j.ScriptPID, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill the crunch-run of job %d: %w", j.ID, err)
	}
	return nil
}
