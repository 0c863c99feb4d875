package demo

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a long-running program the demo started, in a process group of its own so that a
// Ctrl-C at the terminal reaches the demo only (which then stops everything in order), and so
// that stopping it also stops what it started (the dispatcher's sbatch and squeue).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	// err is cmd.Wait's error, set before done is closed.
	err error
}

// startProc starts path with args and env in dir, stdout and stderr to the file log.
func startProc(name, path string, args, env []string, dir, log string) (*proc, error) {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid is the process id (also its process group id).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitText says how it ended: "exit code 0", "signal: killed".
func (p *proc) exitText() string {
	if p.err == nil {
		return "exit code 0"
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) && ee.ExitCode() >= 0 {
		return "exit code " + strconv.Itoa(ee.ExitCode())
	}
	return p.err.Error()
}

// stop sends SIGTERM and waits up to grace for the exit, then kills what is left of its
// process group (the leader too, if it is still there) and waits for the exit. It returns
// nil if the process ended with exit code 0 after SIGTERM.
func (p *proc) stop(grace time.Duration, after func(time.Duration) <-chan time.Time) error {
	if !p.exited() {
		_ = syscall.Kill(p.pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-after(grace):
		}
	}
	// Whatever it started and left behind, and the leader if SIGTERM was not enough.
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
	if p.err != nil {
		return fmt.Errorf("%s ended with %s", p.name, p.exitText())
	}
	return nil
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// alive reports whether pid is a process that has not ended (a zombie has ended: it only
// waits for its parent to read its status).
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}
