package slurm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The exec runner is tested against this test binary run as a helper process (the os/exec
// pattern): HELPER_MODE says what to do.
func init() {
	switch os.Getenv("SLURM_TEST_HELPER_MODE") {
	case "":
		return
	case "echo": // stdin to stdout, args and env to stderr, exit with HELPER_EXIT
		b, _ := io.ReadAll(os.Stdin)
		os.Stdout.Write(b)
		wd, _ := os.Getwd()
		fmt.Fprintf(os.Stderr, "args=%q\nwd=%s\nextra=%s\n", os.Args[1:], wd, os.Getenv("HELPER_EXTRA"))
		var code int
		fmt.Sscan(os.Getenv("HELPER_EXIT"), &code)
		os.Exit(code)
	case "json-args": // print the arguments as JSON
		json.NewEncoder(os.Stdout).Encode(os.Args[1:])
	case "spew": // a lot of stderr
		for i := range 10000 {
			fmt.Fprintf(os.Stderr, "line %d of noise\n", i)
		}
		fmt.Fprint(os.Stderr, "sbatch: error: the last word\n")
		os.Exit(1)
	case "sleep": // exit 0 on SIGTERM, after saying so
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("ready")
		os.WriteFile(os.Getenv("HELPER_READY"), nil, 0o644)
		<-ch
		fmt.Fprintln(os.Stderr, "got SIGTERM")
		os.Exit(3)
	case "stubborn": // ignore SIGTERM
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		os.WriteFile(os.Getenv("HELPER_READY"), nil, 0o644)
		time.Sleep(time.Hour)
	}
	os.Exit(0)
}

func helper(mode string, extraEnv ...string) invocation {
	return invocation{
		Name: "sbatch", Path: os.Args[0], Args: []string{"-test.run=^$", "--x=1"},
		Env: append([]string{"SLURM_TEST_HELPER_MODE=" + mode}, extraEnv...),
	}
}

func TestExecRunnerPassesStdinEnvDirAndArgs(t *testing.T) {
	dir := t.TempDir()
	inv := helper("echo", "HELPER_EXTRA=yes")
	inv.Stdin = []byte("#!/bin/sh\nexec true\n")
	inv.Dir = dir
	out, err := execRunner{waitDelay: time.Second}.run(context.Background(), inv)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(inv.Stdin) {
		t.Errorf("stdout %q", out)
	}
	inv.Env = append(inv.Env, "HELPER_EXIT=7")
	_, err = execRunner{waitDelay: time.Second}.run(context.Background(), inv)
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("err %v is not a *CommandError", err)
	}
	if ce.ExitCode != 7 || ce.Name != "sbatch" || len(ce.Args) != 2 {
		t.Errorf("CommandError %+v", ce)
	}
	real, _ := filepath.EvalSymlinks(dir)
	for _, want := range []string{`args=["-test.run=^$" "--x=1"]`, "wd=" + real, "extra=yes"} {
		if !strings.Contains(ce.Stderr, want) {
			t.Errorf("stderr %q lacks %q", ce.Stderr, want)
		}
	}
	if !strings.Contains(ce.Error(), "exit status 7") || !strings.Contains(ce.Error(), "extra=yes") {
		t.Errorf("Error() = %q", ce.Error())
	}
}

func TestExecRunnerKeepsOnlyTheTailOfStderr(t *testing.T) {
	_, err := execRunner{waitDelay: time.Second}.run(context.Background(), helper("spew"))
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatal(err)
	}
	if len(ce.Stderr) > stderrTailMax || !strings.HasSuffix(ce.Stderr, "sbatch: error: the last word\n") {
		t.Errorf("stderr: %d bytes, ends %q", len(ce.Stderr), ce.Stderr[max(0, len(ce.Stderr)-60):])
	}
}

// runUntilReady runs a helper and cancels its context once it is ready for signals.
func runUntilReady(t *testing.T, mode string, waitDelay time.Duration) ([]byte, error) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(ready); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	return execRunner{waitDelay: waitDelay}.run(ctx, helper(mode, "HELPER_READY="+ready))
}

func TestExecRunnerSendsSIGTERMWhenTheContextEnds(t *testing.T) {
	out, err := runUntilReady(t, "sleep", 30*time.Second)
	var ce *CommandError
	if !errors.As(err, &ce) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if string(out) != "ready\n" || !strings.Contains(ce.Stderr, "got SIGTERM") || ce.ExitCode != 3 {
		t.Errorf("the command did not get SIGTERM: stdout %q stderr %q exit %d", out, ce.Stderr, ce.ExitCode)
	}
	if !IsAmbiguous(classify(err)) {
		t.Error("a command stopped halfway must be ambiguous")
	}
}

func TestExecRunnerKillsAfterWaitDelay(t *testing.T) {
	start := time.Now()
	_, err := runUntilReady(t, "stubborn", 100*time.Millisecond)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("a command ignoring SIGTERM held us %v", took)
	}
}

func TestExecRunnerReportsAMissingProgram(t *testing.T) {
	inv := invocation{Name: "squeue", Path: filepath.Join(t.TempDir(), "no-such-squeue")}
	_, err := execRunner{}.run(context.Background(), inv)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != -1 {
		t.Fatalf("err = %v", err)
	}
	cl := classify(err)
	if !errors.Is(cl, ErrTransient) || IsAmbiguous(cl) {
		t.Errorf("a program that never started: %v (ambiguous %v)", cl, IsAmbiguous(cl))
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 5}
	for _, w := range []string{"ab", "cd", "efg", "", "0123456789"} {
		if n, err := tb.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if tb.String() != "56789" {
		t.Errorf("tail %q", tb.String())
	}
	tb = &tailBuffer{max: 5}
	tb.Write([]byte("abc"))
	tb.Write([]byte("def"))
	if tb.String() != "bcdef" {
		t.Errorf("tail %q", tb.String())
	}
}
