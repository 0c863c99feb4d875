package queue

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/fakeslurmtest"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

// These tests run the dispatcher in process against the fake API server and a fake Slurm
// cluster whose jobs run the crunch-run stand-in (see newStack).

func TestTwentyContainersEndCompleteWithOneSbatchEach(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	uuids := s.srv.SeedN(20, small("0.3"))
	s.waitStates(uuids, 30*time.Second, arvados.Complete)
	for _, u := range uuids {
		if n := s.sbatchCalls(u); n != 1 {
			t.Errorf("%s: %d sbatch calls, want 1", u, n)
		}
		if c := s.container(u); c.LockCount != 1 {
			t.Errorf("%s: lock_count %d, want 1", u, c.LockCount)
		}
	}
	s.waitFor("every tracker forgotten", 10*time.Second, func() bool { return len(s.d.Tracked()) == 0 })
	if ok, why := s.d.Healthy(); !ok {
		t.Errorf("unhealthy: %s", why)
	}
}

func TestPriorityZeroWhileRunningCancelsTheJobAndTheContainer(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	uuid := s.srv.Seed(small("30"))[0]
	s.waitStates([]string{uuid}, 15*time.Second, arvados.Running)
	if err := s.srv.SetPriority(uuid, 0); err != nil {
		t.Fatal(err)
	}
	// Within 3 polls (and the stand-in's own shutdown).
	s.waitStates([]string{uuid}, 3*s.cfg.PollPeriod+3*time.Second, arvados.Cancelled)
	s.env.WaitFor("the job gone", 5*time.Second, func(jobs []sim.Job) bool {
		for _, j := range jobs {
			if j.Name == uuid && !j.Finished() {
				return false
			}
		}
		return true
	})
	if n := s.sbatchCalls(uuid); n != 1 {
		t.Errorf("%d sbatch calls, want 1", n)
	}
}

func TestTransientSbatchFailuresCostNoAttempt(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.env.AddFault(sim.Fault{Command: "sbatch", Kind: sim.FaultFail, Count: 3,
		Stderr: "sbatch: error: Batch job submission failed: Slurm temporarily unable to accept job, sleeping and retrying\n"})
	uuid := s.srv.Seed(small("0.2"))[0]
	s.waitStates([]string{uuid}, 20*time.Second, arvados.Complete)
	if c := s.container(uuid); c.LockCount != 1 {
		t.Errorf("lock_count %d, want 1", c.LockCount)
	}
	if n := s.sbatchCalls(uuid); n != 4 {
		t.Errorf("%d sbatch calls, want 4 (3 failures, then the job)", n)
	}
}

func TestContainersNoNodeCanRunAreCancelledWithSlurmsWords(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	mem := small("0.2")
	mem.RuntimeConstraints.RAM = 100 << 30
	cpus := small("0.2")
	cpus.RuntimeConstraints.VCPUs = 64
	uuids := s.srv.Seed(mem, cpus)
	s.waitStates(uuids, 20*time.Second, arvados.Cancelled)
	m, c := s.container(uuids[0]), s.container(uuids[1])
	if msg, _ := m.RuntimeStatus["error"].(string); !strings.HasPrefix(msg, "Slurm rejected the job: Requested node configuration is not available") {
		t.Errorf("memory: runtime_status.error %q", msg)
	}
	if msg, _ := c.RuntimeStatus["error"].(string); !strings.Contains(msg, "can never start: PartitionConfig") {
		t.Errorf("cpus: runtime_status.error %q", msg)
	}
	for _, u := range uuids {
		if n, lc := s.sbatchCalls(u), s.container(u).LockCount; n != 1 || lc != 1 {
			t.Errorf("%s: %d sbatch calls, lock_count %d; want 1, 1", u, n, lc)
		}
	}
	// The watcher cancels the pending job of the cancelled container.
	s.env.WaitFor("no live job", 10*time.Second, func(jobs []sim.Job) bool {
		for _, j := range jobs {
			if !j.Finished() {
				return false
			}
		}
		return true
	})
	if ok, why := s.d.Healthy(); !ok {
		t.Errorf("unhealthy: %s", why)
	}
}

func TestATemplateNamingAnUnknownPartitionCancelsNothing(t *testing.T) {
	t.Parallel()
	bad, err := slurm.ParseTemplate([]string{"--partition=nosuch", "--mem=%M", "--cpus-per-task=%C"})
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, stackOptions{config: func(c *Config) { c.Template = bad }})
	uuids := s.srv.SeedN(4, small("0.2"))
	s.waitFor("unhealthy", 15*time.Second, func() bool { ok, _ := s.d.Healthy(); return !ok })
	_, why := s.d.Healthy()
	if !strings.Contains(why, "Invalid partition name specified") {
		t.Errorf("health %q does not carry Slurm's message", why)
	}
	// Well past the rejection hold: nothing cancelled, every lock kept.
	time.Sleep(2 * s.cfg.RejectionHold)
	for _, u := range uuids {
		if c := s.container(u); c.State != arvados.Locked || c.LockCount != 1 {
			t.Errorf("%s: %s lock_count %d, want Locked, 1", u, c.State, c.LockCount)
		}
	}
	// Fixed and restarted: everything runs, with the same lock.
	s.cfg.Template = nil
	s.restart()
	s.waitStates(uuids, 20*time.Second, arvados.Complete)
	for _, u := range uuids {
		if c := s.container(u); c.LockCount != 1 {
			t.Errorf("%s: lock_count %d, want 1", u, c.LockCount)
		}
	}
}

// squeueShim writes an squeue wrapper that fails while <dir>/fail exists and prints nothing
// (exit 0) while <dir>/empty exists; lookups too.
func squeueShim(t *testing.T, dir string) func(env *fakeslurmtest.Env) string {
	return func(env *fakeslurmtest.Env) string {
		p := filepath.Join(dir, "squeue")
		script := "#!/bin/sh\n" +
			"[ -e '" + dir + "/fail' ] && { echo 'squeue: error: Unable to contact slurm controller (connect failure)' >&2; exit 1; }\n" +
			"[ -e '" + dir + "/empty' ] && exit 0\n" +
			"exec '" + env.SqueuePath + "' \"$@\"\n"
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// switchOn creates the shim switch file name in dir (switchOn(…, false) removes it).
func switchOn(t *testing.T, dir, name string, on bool) {
	t.Helper()
	p := filepath.Join(dir, name)
	if on {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

// noSettling fails the test if the API saw an unlock or a cancel.
func noSettling(t *testing.T, srv *fakearvados.Server, what string) {
	t.Helper()
	for _, r := range srv.Requests() {
		if strings.HasSuffix(r.Path, "/unlock") {
			t.Errorf("%s: unlock %s", what, r.Path)
		}
	}
	for _, c := range srv.Containers() {
		if c.State == arvados.Cancelled {
			t.Errorf("%s: %s Cancelled: %v", what, c.UUID, c.RuntimeStatus)
		}
	}
}

func TestSqueuePrintingNothingForAWhileCancelsUnlocksAndResubmitsNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStack(t, stackOptions{squeuePath: squeueShim(t, dir)})
	running := s.srv.SeedN(3, small("4"))
	s.waitStates(running, 15*time.Second, arvados.Running)
	pending := s.srv.Seed(arvados.Container{Priority: 1, Command: []string{"sleep", "0.2"},
		RuntimeConstraints:   arvados.RuntimeConstraints{RAM: 64 << 20, VCPUs: 1},
		SchedulingParameters: arvados.SchedulingParameters{Partitions: []string{"down"}}})
	s.waitFor("the pending job", 10*time.Second, func() bool { return len(s.env.JobsNamed(pending[0])) == 1 })
	switchOn(t, dir, "empty", true)
	time.Sleep(1500 * time.Millisecond) // 10 squeue periods of nothing
	noSettling(t, s.srv, "while squeue printed nothing")
	switchOn(t, dir, "empty", false)
	s.env.SetPartitionUp("down", true)
	all := append(running, pending...)
	s.waitStates(all, 20*time.Second, arvados.Complete)
	noSettling(t, s.srv, "afterwards")
	for _, u := range all {
		if n := s.sbatchCalls(u); n != 1 {
			t.Errorf("%s: %d sbatch calls, want 1", u, n)
		}
	}
}

// TestSqueueFailingRightAfterTheSubmitsThenPrintingNothingSettlesNothing: no snapshot ever
// showed the jobs before squeue failed and then printed nothing; the jobs are still believed
// alive (this once unlocked and cancelled containers whose jobs ran).
func TestSqueueFailingRightAfterTheSubmitsThenPrintingNothingSettlesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStack(t, stackOptions{squeuePath: squeueShim(t, dir)})
	uuids := s.srv.SeedN(3, small("4"))
	s.waitFor("three jobs", 10*time.Second, func() bool { return len(s.env.Jobs()) == 3 })
	switchOn(t, dir, "fail", true)
	time.Sleep(time.Second)
	switchOn(t, dir, "fail", false)
	switchOn(t, dir, "empty", true)
	time.Sleep(1500 * time.Millisecond)
	noSettling(t, s.srv, "while squeue failed, then printed nothing")
	switchOn(t, dir, "empty", false)
	s.waitStates(uuids, 20*time.Second, arvados.Complete)
	noSettling(t, s.srv, "afterwards")
	for _, u := range uuids {
		if n := s.sbatchCalls(u); n != 1 {
			t.Errorf("%s: %d sbatch calls, want 1", u, n)
		}
	}
}

func TestAnAPIOutageCancelsAndUnlocksNothingAndDispatchResumesWithinAPoll(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	running := s.srv.SeedN(3, small("3"))
	s.waitStates(running, 15*time.Second, arvados.Running)
	s.srv.SetDown(true)
	time.Sleep(1500 * time.Millisecond)
	late := s.srv.Seed(small("0.2"))[0]
	s.srv.SetDown(false)
	back := time.Now()
	s.waitStates([]string{late}, 5*time.Second, arvados.Locked, arvados.Running, arvados.Complete)
	if took := time.Since(back); took > s.cfg.PollPeriod+time.Second {
		t.Errorf("locked %s after the API came back, want within a poll (%s)", took, s.cfg.PollPeriod)
	}
	all := append(running, late)
	s.waitStates(all, 20*time.Second, arvados.Complete)
	noSettling(t, s.srv, "after the outage")
	for _, u := range all {
		if c := s.container(u); c.LockCount != 1 || s.sbatchCalls(u) != 1 {
			t.Errorf("%s: lock_count %d, %d sbatch calls; want 1, 1", u, c.LockCount, s.sbatchCalls(u))
		}
	}
}

func TestARestartAdoptsEverythingWithoutDuplicates(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	running := s.srv.SeedN(3, small("2"))
	waiting := s.srv.SeedN(3, arvados.Container{Priority: 1, Command: []string{"sleep", "0.2"},
		RuntimeConstraints:   arvados.RuntimeConstraints{RAM: 64 << 20, VCPUs: 1},
		SchedulingParameters: arvados.SchedulingParameters{Partitions: []string{"down"}}})
	s.waitStates(running, 15*time.Second, arvados.Running)
	s.waitFor("the pending jobs", 10*time.Second, func() bool {
		for _, u := range waiting {
			if len(s.env.JobsNamed(u)) != 1 {
				return false
			}
		}
		return true
	})
	s.stop()
	s.srv.ResetRequests()
	s.restart()
	s.waitFor("all adopted", 5*time.Second, func() bool { return len(s.d.Tracked()) == 6 })
	s.env.SetPartitionUp("down", true)
	all := append(running, waiting...)
	s.waitStates(all, 20*time.Second, arvados.Complete)
	for _, u := range all {
		if n, lc := s.sbatchCalls(u), s.container(u).LockCount; n != 1 || lc != 1 {
			t.Errorf("%s: %d sbatch calls, lock_count %d; want 1, 1", u, n, lc)
		}
	}
	for _, r := range s.srv.Requests() {
		// The stand-in GETs its container whole when its job starts; the dispatcher always
		// selects its own fields (lock_count among them).
		if r.Method == "GET" && strings.HasPrefix(r.Path, "/arvados/v1/containers/") && strings.Contains(r.Query, "lock_count") {
			t.Errorf("a single GET by the dispatcher after the restart: %s?%s", r.Path, r.Query)
		}
	}
}

func TestOtherDispatchersContainersAndForeignJobsAreUntouched(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	theirs := s.srv.Seed(
		arvados.Container{State: arvados.Locked, Priority: 5, LockedByUUID: fakearvados.Dispatcher2TokenUUID, LockCount: 1},
		arvados.Container{State: arvados.Locked, Priority: 5, LockedByUUID: fakearvados.Dispatcher2TokenUUID, LockCount: 1})
	// Jobs that are not ours to touch: another user's, named after a container of ours; ours,
	// not named after a container uuid; and ours, named after the other dispatcher's container.
	s.env.UpdateCluster(func(c *sim.Cluster) { c.Users = map[string]int{"alice": 4242} })
	foreign := s.env.SubmitAs("alice", 4242, "#!/bin/sh\nsleep 60\n", "--job-name="+theirs[0])
	plain := s.env.Run(t.TempDir(), "#!/bin/sh\nsleep 60\n", "sbatch", "--parsable", "--job-name=not-a-container")
	other := s.env.Run(t.TempDir(), "#!/bin/sh\nsleep 60\n", "sbatch", "--parsable", "--job-name="+theirs[1])
	mine := s.srv.SeedN(3, small("0.2"))
	s.waitStates(mine, 15*time.Second, arvados.Complete)
	time.Sleep(2 * s.cfg.OrphanSweepPeriod) // a couple of sweeps
	for _, id := range []string{foreign, strings.TrimSpace(plain.Stdout), strings.TrimSpace(other.Stdout)} {
		if j, ok := s.env.Job(id); !ok || j.Finished() {
			t.Errorf("job %s was touched: %+v", id, j)
		}
	}
	for _, u := range theirs {
		if c := s.container(u); c.State != arvados.Locked || c.LockedByUUID != fakearvados.Dispatcher2TokenUUID || c.RuntimeStatus != nil {
			t.Errorf("%s changed: %+v", u, c)
		}
	}
	for _, r := range s.srv.Requests() {
		for _, u := range theirs {
			if strings.Contains(r.Path, u) {
				t.Errorf("request about another dispatcher's container: %s %s", r.Method, r.Path)
			}
		}
	}
	for _, id := range []string{foreign, strings.TrimSpace(plain.Stdout), strings.TrimSpace(other.Stdout)} {
		s.env.Run("", "", "scancel", id)
	}
}

func TestHostileRecordsAreCancelledAndGoodOnesFlow(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	marker := filepath.Join(t.TempDir(), "x")
	shell := small("0.2")
	shell.SchedulingParameters.Partitions = []string{"debug;touch " + marker}
	neg := small("0.2")
	neg.RuntimeConstraints.RAM = -1
	huge := small("0.2")
	huge.RuntimeConstraints.VCPUs = 1 << 40
	quote := small("0.2")
	quote.SchedulingParameters.Partitions = []string{"debug'$(touch " + marker + ")'"}
	bad := s.srv.Seed(shell, neg, huge, quote)
	malformed := small("0.2")
	malformed.UUID = "zzzzz-dz642-NOT;A;UUID"
	s.srv.Seed(malformed)
	good := s.srv.SeedN(3, small("0.2"))
	s.waitStates(good, 20*time.Second, arvados.Complete)
	s.waitStates(bad, 10*time.Second, arvados.Cancelled)
	for _, u := range bad {
		if msg, _ := s.container(u).RuntimeStatus["error"].(string); !strings.Contains(msg, "cannot submit this container") {
			t.Errorf("%s: runtime_status.error %q", u, msg)
		}
		if n := s.sbatchCalls(u); n != 0 {
			t.Errorf("%s: %d sbatch calls, want 0", u, n)
		}
	}
	if c := s.container(malformed.UUID); c.State != arvados.Queued || c.LockCount != 0 {
		t.Errorf("the malformed uuid was touched: %+v", c)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("a partition name ran a shell command")
	}
}
