package soak

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// dispatcher is one run of `dispatch-slurm run`, in its own process group, stdout and stderr
// to files run-N.out and run-N.err in the soak's directory.
type dispatcher struct {
	n              int
	cmd            *exec.Cmd
	stdout, stderr string
	done           chan struct{}
	exitCode       int
	// killed: the driver killed or stopped it on purpose.
	killed bool
}

// writeConfig writes the dispatcher's YAML configuration: short periods and timeouts so that
// faults come and go many times a minute.
func writeConfig(dir, cluster string, o Options, slurm *fakeSlurm, crunchRun string) (string, error) {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	cfg := fmt.Sprintf(`api:
  timeout: 5s
dispatch:
  cluster_id: %s
  poll_period: %s
  squeue_period: %s
  min_retry_period: 200ms
  max_backoff: 2s
  orphan_sweep_period: 5s
crunch_run:
  command: [%s]
  reserve_extra_ram: 16MiB
slurm:
  sbatch_args: ['--partition=%%P', '--mem=%%M', '--cpus-per-task=%%C']
  sbatch: %s
  squeue: %s
  scancel: %s
  scontrol: %s
  submit_timeout: 4s
  query_timeout: 4s
  update_timeout: 4s
  work_dir: %s
management:
  listen: 127.0.0.1:0
logging:
  level: %s
  format: json
lock_file: %s
`, cluster, o.PollPeriod, o.SqueuePeriod, q(crunchRun), q(slurm.path("sbatch")), q(slurm.path("squeue")),
		q(slurm.path("scancel")), q(slurm.path("scontrol")), q(filepath.Join(dir, "jobs")), o.LogLevel,
		q(filepath.Join(dir, "dispatch-slurm.lock")))
	if err := os.MkdirAll(filepath.Join(dir, "jobs"), 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "dispatch-slurm.yml")
	return p, os.WriteFile(p, []byte(cfg), 0o644)
}

// writeCrunchRun writes the crunch-run command: the stand-in, pointed at the API listener
// without faults (see doc.go).
func writeCrunchRun(dir, standin, apiURL string) (string, error) {
	p := filepath.Join(dir, "crunch-run")
	script := fmt.Sprintf("#!/bin/sh\nARVADOS_API_HOST='%s'\nexport ARVADOS_API_HOST\nexec '%s' \"$@\"\n", apiURL, standin)
	return p, os.WriteFile(p, []byte(script), 0o755)
}

// dispatcherEnv is ours without ARVADOS_*, DISPATCH_SLURM_* and FAKESLURM_*, plus the API's and
// the fake Slurm's.
func dispatcherEnv(a *api, slurm *fakeSlurm) []string {
	var env []string
	for _, kv := range slurm.env {
		if strings.HasPrefix(kv, "ARVADOS_") || strings.HasPrefix(kv, "DISPATCH_SLURM_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "ARVADOS_API_HOST="+a.dispatcherURL, "ARVADOS_API_TOKEN="+fakearvados.AdminToken,
		"ARVADOS_API_HOST_INSECURE=0")
}

func startDispatcher(n int, bin, dir, config string, env []string) (*dispatcher, error) {
	d := &dispatcher{n: n, done: make(chan struct{}), exitCode: -1,
		stdout: filepath.Join(dir, fmt.Sprintf("run-%d.out", n)),
		stderr: filepath.Join(dir, fmt.Sprintf("run-%d.err", n))}
	outF, err := os.Create(d.stdout)
	if err != nil {
		return nil, err
	}
	errF, err := os.Create(d.stderr)
	if err != nil {
		outF.Close()
		return nil, err
	}
	d.cmd = exec.Command(bin, "run", "--config", config)
	d.cmd.Env, d.cmd.Dir = env, dir
	d.cmd.Stdout, d.cmd.Stderr = outF, errF
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		outF.Close()
		errF.Close()
		return nil, fmt.Errorf("start dispatcher: %w", err)
	}
	go func() {
		err := d.cmd.Wait()
		outF.Close()
		errF.Close()
		var ee *exec.ExitError
		switch {
		case err == nil:
			d.exitCode = 0
		case errors.As(err, &ee):
			d.exitCode = ee.ExitCode()
		}
		close(d.done)
	}()
	return d, nil
}

func (d *dispatcher) alive() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL to the dispatcher's process group (the dispatcher and the Slurm commands
// it is running, as a host crash or systemd's KillMode=control-group would) and waits for it.
// Jobs' processes live in their own sessions and survive, as on a real cluster.
func (d *dispatcher) kill() error {
	d.killed = true
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-d.done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("dispatcher %d did not die of SIGKILL within 30s", d.n)
	}
}

// stop sends SIGTERM and waits up to timeout; it returns the exit code (-1 when it had to be
// killed).
func (d *dispatcher) stop(timeout time.Duration) int {
	d.killed = true
	if !d.alive() {
		return d.exitCode
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(timeout):
		_ = d.kill()
		return -1
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL) // anything it left in its group
	return d.exitCode
}
