package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dispatcher is one run of `dispatch-slurm run` in its own process group. Its stdout and
// stderr go to files (out-N.log, err-N.log in the scenario's directory) that the harness checks
// for tokens, panics and data races, and prints the tail of when the test fails.
type dispatcher struct {
	t        *testing.T
	n        int
	cmd      *exec.Cmd
	stdout   string
	stderr   string
	started  time.Time
	done     chan struct{}
	exitCode int
	// expectExit is set when the test stopped or killed it on purpose.
	expectExit bool
}

// startDispatcher starts `dispatch-slurm run args...` with env, in dir.
func startDispatcher(t *testing.T, n int, dir string, env, args []string) *dispatcher {
	t.Helper()
	d := &dispatcher{t: t, n: n, done: make(chan struct{}), exitCode: -1,
		stdout: filepath.Join(dir, fmt.Sprintf("out-%d.log", n)),
		stderr: filepath.Join(dir, fmt.Sprintf("err-%d.log", n))}
	outF, err := os.Create(d.stdout)
	if err != nil {
		t.Fatal(err)
	}
	errF, err := os.Create(d.stderr)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(dispatcherBin, append([]string{"run"}, args...)...)
	d.cmd.Env = env
	d.cmd.Dir = dir
	d.cmd.Stdout, d.cmd.Stderr = outF, errF
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d.started = time.Now()
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start dispatcher: %v", err)
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
			d.exitCode = ee.ExitCode() // -1 when killed by a signal
		}
		close(d.done)
	}()
	return d
}

// alive reports whether the process is still running.
func (d *dispatcher) alive() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for the exit; it returns the exit code, or fails the test when
// the process is still there after timeout (and then kills its process group).
func (d *dispatcher) stop(timeout time.Duration) int {
	d.t.Helper()
	d.expectExit = true
	if !d.alive() {
		return d.exitCode
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(timeout):
		d.t.Errorf("dispatcher %d still running %v after SIGTERM; killing it", d.n, timeout)
		d.kill()
	}
	d.killGroup()
	return d.exitCode
}

// kill sends SIGKILL to the dispatcher and everything it started that is still in its process
// group (sbatch, squeue…), as a crash of the host or a systemd KillMode=control-group would,
// and waits for it to exit.
func (d *dispatcher) kill() {
	d.expectExit = true
	d.killGroup()
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.t.Fatalf("dispatcher %d did not die of SIGKILL within 30s", d.n)
	}
}

func (d *dispatcher) killGroup() {
	if pid := d.cmd.Process.Pid; pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// output returns what the process wrote to stdout and stderr so far.
func (d *dispatcher) output() (stdout, stderr []byte) {
	stdout, _ = os.ReadFile(d.stdout)
	stderr, _ = os.ReadFile(d.stderr)
	return stdout, stderr
}

// logLine is one JSON log record of the dispatcher.
type logLine map[string]any

// text is the record as one string, for substring searches.
func (l logLine) text() string {
	b, _ := json.Marshal(map[string]any(l))
	return string(b)
}

// logs returns the JSON records on stderr so far (lines that are not JSON are skipped).
func (d *dispatcher) logs() []logLine {
	_, stderr := d.output()
	var out []logLine
	sc := bufio.NewScanner(bytes.NewReader(stderr))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// tail returns the last n lines of stderr.
func (d *dispatcher) tail(n int) string {
	_, stderr := d.output()
	lines := strings.Split(strings.TrimRight(string(stderr), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("… (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
