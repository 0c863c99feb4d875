package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/fakeslurmtest"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

const timedOut = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n"

func TestAFailFaultFailsTheNextCallsThenLetsThemThrough(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	env.AddFault(sim.Fault{Command: "sbatch", Kind: sim.FaultFail, Count: 2, Stderr: timedOut, ExitCode: 1})
	for i := 0; i < 2; i++ {
		r := env.Run("", sleepScript, "sbatch", "--parsable", "--job-name=f", "-p", "down")
		if r.ExitCode != 1 || r.Stderr != timedOut || r.Stdout != "" {
			t.Errorf("call %d: %+v", i, r)
		}
	}
	if n := len(env.JobsNamed("f")); n != 0 {
		t.Errorf("failed submissions created %d jobs", n)
	}
	if r := env.Run("", sleepScript, "sbatch", "--parsable", "--job-name=f", "-p", "down"); r.ExitCode != 0 {
		t.Errorf("third call: %+v", r)
	}
	if r := env.Run("", "", "squeue", "--noheader"); r.ExitCode != 0 {
		t.Errorf("a fault for sbatch touched squeue: %+v", r)
	}
}

func TestAFaultWithoutACommandHitsEveryCommand(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	env.AddFault(sim.Fault{Kind: sim.FaultFail, Stderr: "boom\n", ExitCode: 7})
	for _, name := range []string{"squeue", "scancel", "scontrol"} {
		if r := env.Run("", "", name, "--help"); r.ExitCode != 0 {
			t.Errorf("%s --help does not reach slurmctld, yet: %+v", name, r)
		}
	}
	if r := env.Run("", "", "scontrol", "ping"); r.ExitCode != 7 || r.Stderr != "boom\n" {
		t.Errorf("scontrol ping: %+v", r)
	}
	env.ClearFaults()
	if r := env.Run("", "", "scontrol", "ping"); r.ExitCode != 0 {
		t.Errorf("after clearing: %+v", r)
	}
}

func TestLatencyDelaysACall(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	env.AddFault(sim.Fault{Command: "squeue", Kind: sim.FaultLatency, Count: 1, Delay: sim.Duration(300 * time.Millisecond)})
	start := time.Now()
	if r := env.Run("", "", "squeue"); r.ExitCode != 0 {
		t.Fatalf("%+v", r)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("squeue took %v with 300ms of latency", took)
	}
}

func TestSqueueCanPrintNothingOrGarbage(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	submit(t, env, "", sleepScript, "-p", "down", "-o", "/dev/null")
	env.AddFault(sim.Fault{Command: "squeue", Kind: sim.FaultEmpty, Count: 1})
	if r := env.Run("", "", "squeue", "--noheader", "--format=%i"); r.ExitCode != 0 || r.Stdout != "" {
		t.Errorf("empty squeue: %+v", r)
	}
	env.AddFault(sim.Fault{Command: "squeue", Kind: sim.FaultGarbage, Count: 1, Stdout: "###\n"})
	if r := env.Run("", "", "squeue", "--noheader", "--format=%i"); r.ExitCode != 0 || !strings.HasSuffix(r.Stdout, "\n###\n") || !strings.HasPrefix(r.Stdout, "1\n") {
		t.Errorf("garbage squeue: %+v", r)
	}
}

func TestAnAmbiguousSubmissionCreatesTheJobButReportsFailure(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	env.AddFault(sim.Fault{Command: "sbatch", Kind: sim.FaultSubmitThenFail, Count: 1})
	r := env.Run("", sleepScript, "sbatch", "--parsable", "--job-name=amb", "-p", "down")
	if r.ExitCode != 1 || r.Stderr != sim.DefaultAmbiguousStderr || r.Stdout != "" {
		t.Errorf("ambiguous sbatch: %+v", r)
	}
	if n := len(env.JobsNamed("amb")); n != 1 {
		t.Errorf("%d jobs named amb, want 1", n)
	}
}

func TestASubmissionThatHangsAfterCreatingTheJob(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	env.AddFault(sim.Fault{Command: "sbatch", Kind: sim.FaultSubmitThenHang, Count: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, env.SbatchPath, "--parsable", "--job-name=hung", "-p", "down")
	cmd.Env, cmd.Dir, cmd.Stdin = env.Env, t.TempDir(), strings.NewReader(sleepScript)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	env.WaitFor("the hanging sbatch to create its job", waitLong, func(jobs []sim.Job) bool {
		return len(jobs) == 1 && jobs[0].Name == "hung"
	})
	cancel()
	if err := cmd.Wait(); err == nil {
		t.Error("the hanging sbatch exited cleanly")
	}
}

func TestAnUnreachableControllerAnswersAsEachCommandDoes(t *testing.T) {
	tests := []struct {
		args   []string
		stdout string
		stderr string
	}{
		{[]string{"sbatch", "--parsable", "-p", "down"}, "", "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n"},
		{[]string{"squeue", "--noheader"}, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"},
		{[]string{"scancel", "12"}, "", "scancel: error: Kill job error on job id 12: Unable to contact slurm controller (connect failure)\n"},
		{[]string{"scancel", "--me", "--name=x"}, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"},
		{[]string{"scontrol", "update", "JobId=12", "Nice=1"}, "", "slurm_update error: Unable to contact slurm controller (connect failure)\n"},
		{[]string{"scontrol", "show", "job", "12"}, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"},
		{[]string{"scontrol", "ping"}, "Slurmctld(primary) at fakectld is DOWN\n", ""},
	}
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	env.AddFault(sim.Fault{Kind: sim.FaultControllerDown})
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := env.Run("", sleepScript, tt.args[0], tt.args[1:]...)
			if r.ExitCode != 1 || r.Stdout != tt.stdout || r.Stderr != tt.stderr {
				t.Errorf("got exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
			}
		})
	}
}

func TestABusyControllerMakesSbatchRetry(t *testing.T) {
	tests := []struct {
		name     string
		attempts int
		exit     int
		stderr   string
	}{
		{"a few refusals are retried and the job is submitted", 3, 0,
			"sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying\n"},
		{"sixteen refusals make sbatch give up", 16, 1,
			"sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying\n" +
				"sbatch: error: Batch job submission failed: Resource temporarily unavailable\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
			env.AddFault(sim.Fault{Command: "sbatch", Kind: sim.FaultBusy, Count: tt.attempts})
			r := env.Run("", sleepScript, "sbatch", "--parsable", "--job-name=busy", "-p", "down")
			if r.ExitCode != tt.exit || r.Stderr != tt.stderr {
				t.Errorf("got exit %d stderr %q", r.ExitCode, r.Stderr)
			}
			if want := 1 - tt.exit; len(env.JobsNamed("busy")) != want {
				t.Errorf("%d jobs, want %d", len(env.JobsNamed("busy")), want)
			}
		})
	}
}

func TestAFullQueueRefusesSubmissionsUntilJobsArePurged(t *testing.T) {
	c := fakeslurmtest.TestCluster(false)
	c.MaxJobCount = 2
	c.MinJobAge = sim.Duration(time.Second)
	c.SubmitRetryUnit = sim.Duration(40 * time.Millisecond) // retries span 4.8 s
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{Cluster: c})
	a := submit(t, env, "", sleepScript, "-p", "down", "-o", "/dev/null")
	submit(t, env, "", sleepScript, "-p", "down", "-o", "/dev/null")
	env.Run("", "", "scancel", a)
	// The cancelled job still counts until MinJobAge has passed; sbatch retries meanwhile
	// (40 ms, 80 ms, …) and gets through once it is purged.
	r := env.Run("", sleepScript, "sbatch", "--parsable", "-p", "down", "-o", "/dev/null")
	if r.ExitCode != 0 || r.Stderr != "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying\n" {
		t.Errorf("sbatch into a full queue: %+v", r)
	}
}

func TestAnInvalidFaultIsRefused(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	for _, f := range []sim.Fault{
		{Command: "sinfo", Kind: sim.FaultFail},
		{Command: "squeue", Kind: "explode"},
		{Command: "squeue", Kind: sim.FaultBusy},
		{Command: "squeue", Kind: sim.FaultFail, Count: -1},
	} {
		if err := env.Admin.AddFault(f); err == nil {
			t.Errorf("fault %+v accepted", f)
		}
	}
	r := env.Run("", "", "fakeslurm", "fault", "add", `{"command":"squeue","kind":"empty","count":1}`)
	if r.ExitCode != 0 {
		t.Fatalf("fakeslurm fault add: %+v", r)
	}
	if fs, _ := env.Admin.Faults(); len(fs) != 1 || fs[0].Kind != sim.FaultEmpty {
		t.Errorf("faults after the admin command: %+v", fs)
	}
}
