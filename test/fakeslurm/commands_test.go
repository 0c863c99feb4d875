package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/fakeslurmtest"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitLong = 15 * time.Second

// submit runs sbatch --parsable with the script and returns the job id.
func submit(t *testing.T, env *fakeslurmtest.Env, dir, script string, args ...string) string {
	t.Helper()
	r := env.Run(dir, script, "sbatch", append([]string{"--parsable"}, args...)...)
	if r.ExitCode != 0 {
		t.Fatalf("sbatch %v: exit %d: %s", args, r.ExitCode, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
}

func TestACommandWithoutAStateDirectorySaysSo(t *testing.T) {
	bin := fakeslurmtest.Binary(t)
	link := filepath.Join(t.TempDir(), "squeue")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, sim.EnvState+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), sim.EnvState+" is not set") {
		t.Errorf("without %s: err %v, output %q", sim.EnvState, err, out)
	}
}

func TestTwentyParallelSubmissionsGetTwentyDistinctIDs(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	dir := t.TempDir()
	var mu sync.Mutex
	ids := map[string]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(env.SbatchPath, "--parsable", "--job-name=par", "--partition=down", "-o", "/dev/null")
			cmd.Env, cmd.Dir, cmd.Stdin = env.Env, dir, strings.NewReader("#!/bin/sh\ntrue\n")
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("sbatch: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[strings.TrimSpace(string(out))] = true
		}()
	}
	wg.Wait()
	if len(ids) != 20 || len(env.JobsNamed("par")) != 20 {
		t.Errorf("%d distinct ids and %d jobs, want 20 of each: %v", len(ids), len(env.JobsNamed("par")), ids)
	}
}

func TestABatchScriptRunsWithTheSubmittedEnvironmentInTheSubmitDirectory(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	env.Env = append(env.Env, "DISPATCH_TEST_VAR=passed on")
	dir := t.TempDir()
	id := submit(t, env, dir, "#!/bin/sh\necho \"id=$SLURM_JOB_ID name=$SLURM_JOB_NAME var=$DISPATCH_TEST_VAR pwd=$(pwd)\"\necho oops >&2\n",
		"--job-name=envjob")
	env.WaitJobState(id, waitLong, sim.StateCompleted)
	out, err := os.ReadFile(filepath.Join(dir, "slurm-"+id+".out"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("id=%s name=envjob var=passed on pwd=%s\noops\n", id, dir)
	if string(out) != want {
		t.Errorf("job output %q, want %q", out, want)
	}
}

func TestAJobEndsInTheStateItsScriptEarns(t *testing.T) {
	tests := []struct {
		name, script        string
		state, reason       string
		exitStatus, exitSig int
	}{
		{"an exit status of zero completes it", "exit 0", sim.StateCompleted, "None", 0, 0},
		{"a non-zero exit status fails it", "exit 3", sim.StateFailed, "NonZeroExitCode", 3, 0},
		{"a signal fails it as a launch failure", "kill -9 $$", sim.StateFailed, "JobLaunchFailure", 0, 9},
	}
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := submit(t, env, "", "#!/bin/sh\n"+tt.script+"\n", "-o", "/dev/null")
			j := env.WaitJobState(id, waitLong, tt.state)
			if j.Reason != tt.reason || j.ExitStatus != tt.exitStatus || j.ExitSignal != tt.exitSig {
				t.Errorf("job ended %s reason %s exit %d:%d, want %s %s %d:%d", j.State, j.Reason,
					j.ExitStatus, j.ExitSignal, tt.state, tt.reason, tt.exitStatus, tt.exitSig)
			}
		})
	}
}

const (
	sleepScript = "#!/bin/sh\nexec sleep 60\n"
	// The trapping scripts touch $READY once the trap is set: a signal sent before that
	// would kill the shell, which is not what the test is about.
	ignoreTermScript = "#!/bin/sh\ntrap 'echo got TERM' TERM\ntouch \"$READY\"\nwhile :; do sleep 0.1; done\n"
	trapExit0Script  = "#!/bin/sh\ntrap 'exit 0' TERM\ntouch \"$READY\"\nsleep 60 &\nwait\n"
)

// waitForFile waits (up to waitLong) until path exists.
func waitForFile(t *testing.T, path, what string) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", waitLong, what)
		}
		<-tick.C
	}
}

func TestCancellingARunningJob(t *testing.T) {
	tests := []struct {
		name, script   string
		args           []string
		completingSeen bool
		state, reason  string
		exitSig        int
	}{
		{"a plain scancel ends it as cancelled by TERM", sleepScript, nil, false, sim.StateCancelled, "None", 15},
		{"a plain scancel kills a script that ignores TERM after KillWait", ignoreTermScript, nil, true, sim.StateCancelled, "None", 9},
		{"TERM to the batch script alone fails the job", sleepScript, []string{"--batch", "--signal=TERM"}, false, sim.StateFailed, "JobLaunchFailure", 15},
		{"a batch script that exits 0 on TERM completes", trapExit0Script, []string{"--batch", "--signal=TERM"}, false, sim.StateCompleted, "None", 0},
		{"a KILL signal cancels at once", ignoreTermScript, []string{"--signal=KILL"}, false, sim.StateCancelled, "None", 9},
	}
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	base := env.Env
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready := filepath.Join(t.TempDir(), "ready")
			env.Env = append(slices.Clone(base), "READY="+ready) // sbatch passes it to the job
			id := submit(t, env, "", tt.script, "-o", "/dev/null")
			env.WaitFor("the script to start", waitLong, func(jobs []sim.Job) bool {
				for _, j := range jobs {
					if strconv.Itoa(j.ID) == id {
						return j.ScriptPID > 0
					}
				}
				return false
			})
			if tt.script != sleepScript {
				waitForFile(t, ready, "the script to set its TERM trap")
			}
			if r := env.Run("", "", "scancel", append(tt.args, id)...); r.ExitCode != 0 {
				t.Fatalf("scancel: exit %d: %s", r.ExitCode, r.Stderr)
			}
			if tt.completingSeen {
				r := env.Run("", "", "squeue", "--noheader", "--format=%T", "--jobs="+id)
				if strings.TrimSpace(r.Stdout) != "COMPLETING" {
					t.Errorf("right after scancel squeue says %q, want COMPLETING", r.Stdout)
				}
			}
			j := env.WaitJobState(id, waitLong, tt.state)
			if j.Reason != tt.reason || j.ExitSignal != tt.exitSig {
				t.Errorf("job ended %s reason %s signal %d, want %s %s %d", j.State, j.Reason, j.ExitSignal,
					tt.state, tt.reason, tt.exitSig)
			}
		})
	}
}

func TestASignalWithoutBatchOrFullMissesTheBatchScript(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	id := submit(t, env, "", sleepScript, "-o", "/dev/null")
	env.WaitFor("the script to start", waitLong, func(jobs []sim.Job) bool { return len(jobs) == 1 && jobs[0].ScriptPID > 0 })
	if r := env.Run("", "", "scancel", "--signal=TERM", id); r.ExitCode != 0 {
		t.Fatalf("scancel --signal=TERM: %+v", r)
	}
	// The signal goes to job steps only; scontrol ping gives the script time to die if it did.
	env.Run("", "", "scontrol", "ping")
	if j, _ := env.Job(id); j.State != sim.StateRunning {
		t.Fatalf("after TERM to the steps the job is %s, want RUNNING", j.State)
	}
	if r := env.Run("", "", "scancel", "--full", "--signal=TERM", id); r.ExitCode != 0 {
		t.Fatalf("scancel --full --signal=TERM: %+v", r)
	}
	env.WaitJobState(id, waitLong, sim.StateFailed)
}

func TestSignallingAPendingJobIsRetriedThenRefused(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	id := submit(t, env, "", sleepScript, "--partition=down", "-o", "/dev/null")
	start := time.Now()
	r := env.Run("", "", "scancel", "--batch", "--signal=TERM", id)
	want := "scancel: error: Kill job error on job id " + id + ": Job can not be altered now, try again later\n"
	if r.ExitCode != 228 || r.Stderr != want {
		t.Errorf("scancel of a pending job: exit %d, stderr %q; want 228, %q", r.ExitCode, r.Stderr, want)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("scancel gave up after %v, want the configured 1s of retries", took)
	}
	if j, _ := env.Job(id); j.State != sim.StatePending {
		t.Errorf("job is %s after a refused signal, want PENDING", j.State)
	}
}

func TestAJobPastItsTimeLimitTimesOut(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{}) // a minute lasts a second
	id := submit(t, env, "", sleepScript, "--time=1", "-o", "/dev/null")
	j := env.WaitJobState(id, waitLong, sim.StateTimeout)
	if j.Reason != "TimeLimit" || j.ExitSignal != 15 {
		t.Errorf("timed out job: reason %s signal %d, want TimeLimit 15", j.Reason, j.ExitSignal)
	}
}

func TestJobsQueueForCPUsAndMemory(t *testing.T) {
	c := fakeslurmtest.TestCluster(false)
	c.Nodes = []sim.Node{{Name: "small", CPUs: 2, RealMemory: 1000, TmpDisk: 1000}}
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{Cluster: c})
	a := submit(t, env, "", sleepScript, "--mem=100", "-o", "/dev/null")
	b := submit(t, env, "", sleepScript, "--mem=100", "-o", "/dev/null")
	c1 := submit(t, env, "", sleepScript, "--mem=100", "--nice=1", "-o", "/dev/null")
	c2 := submit(t, env, "", sleepScript, "--mem=100", "--nice=2", "-o", "/dev/null")
	want := map[string][2]string{a: {"RUNNING", "None"}, b: {"RUNNING", "None"},
		c1: {"PENDING", "Resources"}, c2: {"PENDING", "Priority"}}
	for id, w := range want {
		if j, _ := env.Job(id); j.State != w[0] || j.Reason != w[1] {
			t.Errorf("job %s is %s/%s, want %s/%s", id, j.State, j.Reason, w[0], w[1])
		}
	}
	env.Run("", "", "scancel", a)
	env.WaitJobState(c1, waitLong, sim.StateRunning)

	c = fakeslurmtest.TestCluster(false)
	c.Nodes = []sim.Node{{Name: "wide", CPUs: 8, RealMemory: 1000, TmpDisk: 1000}}
	env = fakeslurmtest.Start(t, fakeslurmtest.Options{Cluster: c})
	first := submit(t, env, "", sleepScript, "--mem=600", "-o", "/dev/null")
	second := submit(t, env, "", sleepScript, "--mem=600", "-o", "/dev/null")
	if j, _ := env.Job(second); j.State != sim.StatePending || j.Reason != "Resources" {
		t.Errorf("a job needing memory another job holds is %s/%s, want PENDING/Resources", j.State, j.Reason)
	}
	env.Run("", "", "scancel", first)
	env.WaitJobState(second, waitLong, sim.StateRunning)
}

func TestNoRunKeepsJobsPendingForResources(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{NoRun: true})
	id := submit(t, env, "", sleepScript, "-o", "/dev/null")
	if j, _ := env.Job(id); j.State != sim.StatePending || j.Reason != "Resources" {
		t.Errorf("job is %s/%s, want PENDING/Resources", j.State, j.Reason)
	}
}

func TestBringingAPartitionUpStartsItsPendingJobs(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	id := submit(t, env, "", sleepScript, "--partition=down", "-o", "/dev/null")
	if j, _ := env.Job(id); j.Reason != "PartitionDown" {
		t.Fatalf("job in the down partition waits for %s", j.Reason)
	}
	env.SetPartitionUp("down", true)
	env.WaitJobState(id, waitLong, sim.StateRunning)
}

func TestAFinishedJobIsForgottenAfterMinJobAge(t *testing.T) {
	c := fakeslurmtest.TestCluster(false)
	c.MinJobAge = sim.Duration(time.Second)
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{Cluster: c})
	id := submit(t, env, "", sleepScript, "--partition=down", "-o", "/dev/null")
	env.Run("", "", "scancel", id)
	if r := env.Run("", "", "squeue", "--noheader", "-t", "all", "--format=%T", "--jobs="+id); strings.TrimSpace(r.Stdout) != "CANCELLED" {
		t.Errorf("right after the cancel squeue -t all says %q", r.Stdout)
	}
	env.WaitFor("the job to be purged", waitLong, func(jobs []sim.Job) bool { return len(jobs) == 0 })
	r := env.Run("", "", "squeue", "--noheader", "-t", "all", "--jobs="+id)
	if r.ExitCode != 1 || r.Stderr != "slurm_load_jobs error: Invalid job id specified\n" {
		t.Errorf("squeue of a purged job: exit %d %q", r.ExitCode, r.Stderr)
	}
}

func TestAnotherUsersJobsAreNotOurs(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	env.UpdateCluster(func(c *sim.Cluster) { c.Users = map[string]int{"alice": 4242} })
	theirs := env.SubmitAs("alice", 4242, sleepScript, "--job-name=same", "-p", "down", "-o", "/dev/null")
	ours := submit(t, env, "", sleepScript, "--job-name=same", "-p", "down", "-o", "/dev/null")
	if r := env.Run("", "", "squeue", "--noheader", "--me", "--format=%i"); r.Stdout != ours+"\n" {
		t.Errorf("squeue --me lists %q, want only %s", r.Stdout, ours)
	}
	if r := env.Run("", "", "squeue", "--noheader", "--user=alice", "--format=%i|%u"); r.Stdout != theirs+"|alice\n" {
		t.Errorf("squeue --user=alice lists %q", r.Stdout)
	}
	env.Run("", "", "scancel", "--me", "--name=same")
	if j, _ := env.Job(theirs); j.State != sim.StatePending {
		t.Errorf("scancel --me --name touched another user's job: %s", j.State)
	}
}

func TestCallsAreRecorded(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	env.Run("", "", "scontrol", "ping")
	env.Run("", "", "squeue", "--bogus")
	calls := env.Calls()
	if len(calls) != 2 || calls[0].Command != "scontrol" || calls[1].ExitCode != 1 ||
		strings.Join(calls[1].Args, " ") != "--bogus" {
		t.Errorf("calls: %+v", calls)
	}
}

func TestAHangingCommandDiesWithItsContext(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	env.AddFault(sim.Fault{Command: "squeue", Kind: sim.FaultHang, Count: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.SqueuePath)
	cmd.Env = env.Env
	if err := cmd.Run(); err == nil || ctx.Err() == nil {
		t.Errorf("hanging squeue: err %v, ctx %v", err, ctx.Err())
	}
	if r := env.Run("", "", "squeue", "--noheader"); r.ExitCode != 0 {
		t.Errorf("the next squeue: exit %d %s", r.ExitCode, r.Stderr)
	}
}
