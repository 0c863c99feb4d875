package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/fakeslurmtest"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

// fill submits n jobs that stay pending, in-process (the fast way to build a queue).
func fill(b *testing.B, env *fakeslurmtest.Env, n int) {
	b.Helper()
	cwd := b.TempDir()
	for i := 0; i < n; i++ {
		var out, errOut bytes.Buffer
		s := &sim.Sim{Dir: env.StateDir, Stdin: strings.NewReader("#!/bin/sh\ntrue\n"), Stdout: &out, Stderr: &errOut,
			Now: time.Now, Sleep: time.Sleep, Cwd: cwd, UID: os.Getuid(), GID: os.Getgid(), User: "bench", Group: "bench"}
		args := []string{"--parsable", fmt.Sprintf("--job-name=zzzzz-dz642-%015d", i), fmt.Sprintf("--nice=%d", i), "--partition=down", "-o", "/dev/null"}
		if code := s.Run("sbatch", args); code != 0 {
			b.Fatalf("fill: sbatch exit %d: %s", code, errOut.String())
		}
	}
}

func runBinary(b *testing.B, env *fakeslurmtest.Env, stdin, name string, args ...string) {
	cmd := exec.Command(env.Dir+"/"+name, args...)
	cmd.Env, cmd.Stdin = env.Env, strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v: %s", name, err, out)
	}
}

// BenchmarkSbatchAt10000Jobs measures one sbatch (a process) into a queue of 10,000
// pending jobs. Target: < 5 ms.
func BenchmarkSbatchAt10000Jobs(b *testing.B) {
	env := fakeslurmtest.Start(b, fakeslurmtest.Options{})
	fill(b, env, 10000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runBinary(b, env, "#!/bin/sh\ntrue\n", "sbatch", "--parsable", "--job-name=zzzzz-dz642-benchbenchbench", "--partition=down", "-o", "/dev/null")
	}
}

// BenchmarkSqueueOf10000Jobs measures the dispatcher's squeue over 10,000 jobs. Target:
// < 50 ms.
func BenchmarkSqueueOf10000Jobs(b *testing.B) {
	env := fakeslurmtest.Start(b, fakeslurmtest.Options{})
	fill(b, env, 10000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runBinary(b, env, "", "squeue", "--noheader", "--me", "--format=%i|%j|%T|%y|%Q|%r")
	}
}

// BenchmarkProcessOverhead is the floor under both: a command that reads no job table.
func BenchmarkProcessOverhead(b *testing.B) {
	env := fakeslurmtest.Start(b, fakeslurmtest.Options{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runBinary(b, env, "", "scontrol", "ping")
	}
}
