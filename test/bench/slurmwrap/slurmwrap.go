// Package slurmwrap is the counting wrapper the benchmark runs the dispatcher's Slurm commands
// through: linked as sbatch, squeue, scancel or scontrol in a directory that also holds
// <name>.real (the real command's path), it runs the real command with the same arguments,
// standard input and output, forwards SIGTERM, SIGINT and SIGHUP, and appends one line about
// the call to calls.log in that directory. It imports little, so that it starts fast: every
// Slurm call the dispatcher makes pays for it.
package slurmwrap

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LogName is the call log, in the wrapper directory.
const LogName = "calls.log"

// Commands are the names the wrapper answers to.
var Commands = []string{"sbatch", "squeue", "scancel", "scontrol"}

// Main runs the wrapper for os.Args and returns the exit code; 127 when the process was not
// started as a wrapper.
func Main() int {
	name := filepath.Base(os.Args[0])
	dir := filepath.Dir(os.Args[0])
	real, err := os.ReadFile(filepath.Join(dir, name+".real"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "slurmwrap: not a wrapper (no %s.real next to %s): %v\n", name, os.Args[0], err)
		return 127
	}
	return Run(dir, name, strings.TrimSpace(string(real)), os.Args[1:])
}

// Run runs real as name with args and logs the call to dir/LogName.
func Run(dir, name, real string, args []string) int {
	start := time.Now()
	cmd := exec.Command(real, args...)
	cmd.Args[0] = name
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	code := 0
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "%s (bench wrapper): %v\n", name, err)
		code = 127
	} else {
		go func() {
			for s := range sigs {
				_ = cmd.Process.Signal(s)
			}
		}()
		_ = cmd.Wait()
		code = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	}
	Log(filepath.Join(dir, LogName), name, start, time.Now(), code, args)
	return code
}

// Log appends one line: name, start and end (Unix ns), exit code, then the arguments, tab
// separated (tabs and newlines in arguments become spaces). One write on an O_APPEND file, so
// concurrent wrappers do not interleave.
func Log(path, name string, start, end time.Time, code int, args []string) {
	b := make([]byte, 0, 256)
	b = append(b, name...)
	for _, n := range []int64{start.UnixNano(), end.UnixNano(), int64(code)} {
		b = append(b, '\t')
		b = strconv.AppendInt(b, n, 10)
	}
	clean := strings.NewReplacer("\t", " ", "\n", " ")
	for _, a := range args {
		b = append(b, '\t')
		b = append(b, clean.Replace(a)...)
	}
	b = append(b, '\n')
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s (bench wrapper): log the call: %v\n", name, err)
		return
	}
	_, _ = f.Write(b)
	_ = f.Close()
}
