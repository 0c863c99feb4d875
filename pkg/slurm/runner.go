package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// stderrTailMax bounds how much of a command's stderr is kept in a *CommandError: Slurm's
// messages are one or two lines, and a runaway command must not fill memory or logs.
const stderrTailMax = 4096

// defaultWaitDelay is how long a command may take to exit after SIGTERM before it is killed
// and its pipes are closed.
const defaultWaitDelay = 5 * time.Second

// CommandError is a Slurm command that failed: it could not start, exited non-zero, was killed,
// or ran past its deadline.
type CommandError struct {
	Name     string   // the command: sbatch, squeue, scancel, scontrol
	Args     []string // its arguments (never secrets: tokens travel in the environment)
	ExitCode int      // the exit code, or -1 when it did not exit normally
	Stderr   string   // the tail of its standard error (at most 4 KiB)
	Err      error    // the underlying error (*exec.ExitError, context.DeadlineExceeded, …)
}

func (e *CommandError) Error() string {
	var b strings.Builder
	b.WriteString(e.Name)
	for i, a := range e.Args {
		if i == 8 {
			b.WriteString(" …")
			break
		}
		b.WriteByte(' ')
		b.WriteString(a)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if msg := lastLine(e.Stderr); msg != "" {
		fmt.Fprintf(&b, ": %s", msg)
	}
	return b.String()
}

func (e *CommandError) Unwrap() error { return e.Err }

// invocation is one command to run.
type invocation struct {
	Name  string // sbatch, squeue, scancel or scontrol
	Path  string // the program to run
	Args  []string
	Stdin []byte
	Env   []string // the whole environment
	Dir   string
}

// runner runs one command and returns its standard output. A failure is a *CommandError.
// Unit tests replace it with a recording fake.
type runner interface {
	run(ctx context.Context, inv invocation) (stdout []byte, err error)
}

// execRunner runs commands with os/exec.
type execRunner struct {
	waitDelay time.Duration
}

func (r execRunner) run(ctx context.Context, inv invocation) ([]byte, error) {
	cmd := exec.CommandContext(ctx, inv.Path, inv.Args...)
	// SIGTERM lets sbatch and friends end cleanly; WaitDelay bounds how long we wait after it.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = r.waitDelay
	cmd.Env = inv.Env
	cmd.Dir = inv.Dir
	if inv.Stdin != nil {
		cmd.Stdin = bytes.NewReader(inv.Stdin)
	}
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: stderrTailMax}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	ce := &CommandError{Name: inv.Name, Args: inv.Args, ExitCode: -1, Stderr: stderr.String(), Err: err}
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		ce.ExitCode = ee.ExitCode()
	}
	return stdout.Bytes(), ce
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// lastLine returns the last non-empty line of s, trimmed.
func lastLine(s string) string {
	s = strings.TrimRight(s, "\n\r\t ")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}
