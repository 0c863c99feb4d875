package bench

import (
	"bufio"
	"context"
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

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on every Linux
// architecture Go supports (the kernel's ABI, whatever CONFIG_HZ is).
const clockTicks = 100

// process is a child process in its own process group, its output going to files.
type process struct {
	name   string
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	stderr string
}

// startProcess starts path with args and env in dir; stdout goes to stdout (nil: a file),
// stderr to <logDir>/<name>.err.
func startProcess(name, path string, args, env []string, dir, logDir string, stdout *os.File) (*process, error) {
	errPath := filepath.Join(logDir, name+".err")
	errF, err := os.Create(errPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	outF := stdout
	if outF == nil {
		if outF, err = os.Create(filepath.Join(logDir, name+".out")); err != nil {
			errF.Close()
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
	}
	cmd := exec.Command(path, args...)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdout, cmd.Stderr = outF, errF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		errF.Close()
		if stdout == nil {
			outF.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), stderr: errPath}
	go func() {
		p.err = cmd.Wait()
		errF.Close()
		if stdout == nil {
			outF.Close()
		}
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits up to timeout for the exit, then kills the process group.
// It returns the process's exit error (nil for exit code 0).
func (p *process) stop(timeout time.Duration) error {
	if p.alive() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(timeout):
			_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
			<-p.done
			return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", p.name, timeout)
		}
	}
	// Whatever it left in its group (a Slurm command in flight).
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	return p.err
}

// tail returns the last n lines of the process's stderr.
func (p *process) tail(n int) string {
	b, _ := os.ReadFile(p.stderr)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cpuTime is the process's own user+system CPU time so far (not its children's).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read the CPU time of %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: fields after the
	// last ')' start at field 3 (state); utime and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("read the CPU time of %d: no ')' in /proc/%d/stat", pid, pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("read the CPU time of %d: short /proc/%d/stat", pid, pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("read the CPU time of %d: %w", pid, err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// memory returns VmRSS and VmHWM in bytes.
func memory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read the memory of %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("read the memory of %d: %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm, sc.Err()
}

// runCmd runs a command with a timeout and returns its stdout; the error carries stderr.
func runCmd(ctx context.Context, timeout time.Duration, env []string, stdin, path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(path), strings.Join(firstN(args, 6), " "), err,
			strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
