package queue

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

// mutations lists the calls that change containers (lock excluded).
func mutations(calls []apiCall) []apiCall {
	var out []apiCall
	for _, c := range calls {
		if c.Method == "update" || c.Method == "unlock" {
			out = append(out, c)
		}
	}
	return out
}

func TestAMisconfiguredTemplatePausesSubmittingAndCancelsNothing(t *testing.T) {
	var cs []arvados.Container
	for i := range 4 {
		cs = append(cs, queued(i+1, int64(10+i)))
	}
	u := newUnit(t, Config{TokenUUID: testToken, MinRetryPeriod: time.Second, MaxBackoff: 4 * time.Second}, cs...)
	const msg = "Invalid partition name specified"
	u.sl.failNext("", errReject(msg), errReject(msg), errReject(msg), errReject(msg))
	poll(t, u)
	if ok, why := u.d.Healthy(); ok || !strings.Contains(why, msg) {
		t.Fatalf("Healthy = %v %q, want false with Slurm's message", ok, why)
	}
	submitted := len(u.sl.names())
	if submitted != 4 {
		t.Errorf("%d sbatch calls before the pause, want 4 (one pass)", submitted)
	}
	// A long time later: still nothing cancelled or unlocked, every lock kept; one probe per
	// backoff period.
	for range 20 {
		u.clk.Add(500 * time.Millisecond)
		poll(t, u)
	}
	if m := mutations(u.api.takeCalls()); len(m) != 0 {
		t.Fatalf("a paused dispatcher changed containers: %+v", m)
	}
	for _, c := range cs {
		if got := u.api.get(c.UUID); got.State != arvados.Locked || got.LockCount != 1 {
			t.Errorf("%s: %s lock_count %d, want Locked, 1", c.UUID, got.State, got.LockCount)
		}
	}
	probes := len(u.sl.names()) - submitted
	if probes < 2 || probes > 5 {
		t.Errorf("%d probes in 10 s with backoff 1s..4s", probes)
	}
	// The configuration is fixed (sbatch accepts jobs again): the next probe succeeds, the
	// pause ends and every container is submitted.
	u.sl.mu.Lock()
	u.sl.results[""] = nil
	u.sl.mu.Unlock()
	u.clk.Add(5 * time.Second)
	poll(t, u)
	u.d.Pass(context.Background())
	if ok, why := u.d.Healthy(); !ok {
		t.Fatalf("still unhealthy after a submit went through: %s", why)
	}
	var ok []string
	for _, s := range u.w.submitted {
		ok = append(ok, strings.Fields(s)[0])
	}
	slices.Sort(ok)
	if len(slices.Compact(ok)) != 4 {
		t.Errorf("submitted after the pause: %v, want all 4", u.w.submitted)
	}
}

func TestAContainerRejectedForItsOwnSizeIsCancelledWithSlurmsMessage(t *testing.T) {
	big := queued(1, 10)
	big.RuntimeConstraints.RAM = 1 << 40
	u := newUnit(t, Config{TokenUUID: testToken, RejectionHold: 10 * time.Second}, big)
	const msg = "Requested node configuration is not available (Memory specification can not be satisfied)"
	u.sl.failNext(big.UUID, errReject(msg))
	poll(t, u)
	// Held: it may be our configuration.
	u.clk.Add(5 * time.Second)
	poll(t, u)
	if m := mutations(u.api.takeCalls()); len(m) != 0 {
		t.Fatalf("cancelled before the hold ended: %+v", m)
	}
	u.clk.Add(6 * time.Second)
	poll(t, u)
	got := u.api.get(big.UUID)
	if got.State != arvados.Cancelled || got.RuntimeStatus["error"] != "Slurm rejected the job: "+msg {
		t.Errorf("container %s runtime_status %v", got.State, got.RuntimeStatus)
	}
	if n := len(u.sl.names()); n != 1 || got.LockCount != 1 {
		t.Errorf("%d sbatch calls, lock_count %d; want 1, 1", n, got.LockCount)
	}
	if ok, why := u.d.Healthy(); !ok {
		t.Errorf("unhealthy: %s", why)
	}
}

func TestARejectionIsTheContainersOnceAnotherSubmitGoesThrough(t *testing.T) {
	big, fine := queued(1, 20), queued(2, 10)
	u := newUnit(t, Config{TokenUUID: testToken, SubmitConcurrency: 1}, big, fine)
	u.sl.failNext(big.UUID, errReject("Requested node configuration is not available"))
	poll(t, u) // big rejected, then fine submitted
	u.d.Pass(context.Background())
	if got := u.api.get(big.UUID); got.State != arvados.Cancelled {
		t.Errorf("rejected container %s after another went through, want Cancelled", got.State)
	}
	calls := mutations(u.api.takeCalls())
	if len(calls) != 2 || calls[0].Update.RuntimeStatus == nil || calls[1].Update.State == nil {
		t.Errorf("want runtime_status.error written, then state Cancelled; got %+v", calls)
	}
}

func TestAContainerNamingAnUnknownPartitionOfItsOwnIsCancelledAtOnce(t *testing.T) {
	var cs []arvados.Container
	for i := range 3 {
		c := queued(i+1, 10)
		c.SchedulingParameters.Partitions = []string{"nosuch"}
		cs = append(cs, c)
	}
	u := newUnit(t, Config{TokenUUID: testToken}, cs...)
	u.sl.failNext("", errReject("Invalid partition name specified"), errReject("Invalid partition name specified"),
		errReject("Invalid partition name specified"))
	poll(t, u)
	u.d.Pass(context.Background())
	if ok, why := u.d.Healthy(); !ok {
		t.Errorf("paused for containers' own partitions: %s", why)
	}
	for _, c := range cs {
		if got := u.api.get(c.UUID); got.State != arvados.Cancelled {
			t.Errorf("%s: %s, want Cancelled", c.UUID, got.State)
		}
	}
}

func TestTransientSbatchFailuresKeepTheLockAndBackOff(t *testing.T) {
	c := queued(1, 10)
	u := newUnit(t, Config{TokenUUID: testToken, MinRetryPeriod: time.Second, MaxBackoff: 8 * time.Second}, c)
	u.sl.failNext(c.UUID, errSlurmBusy, errSlurmBusy, errSlurmBusy)
	poll(t, u)
	var tries []time.Duration
	for range 30 {
		n := len(u.sl.names())
		u.clk.Add(500 * time.Millisecond)
		u.d.Pass(context.Background())
		if len(u.sl.names()) > n {
			tries = append(tries, u.clk.Now().Sub(t0))
		}
	}
	if len(tries) != 3 {
		t.Fatalf("retries at %v, want 3 (then success)", tries)
	}
	// Backoff 1s, 2s, 4s (jitter pinned to its maximum).
	if tries[1]-tries[0] < 2*time.Second || tries[2]-tries[1] < 4*time.Second {
		t.Errorf("retries at %v do not back off", tries)
	}
	if m := mutations(u.api.takeCalls()); len(m) != 0 {
		t.Errorf("transient failures changed the container: %+v", m)
	}
	if got := u.api.get(c.UUID); got.State != arvados.Locked || got.LockCount != 1 {
		t.Errorf("%s lock_count %d", got.State, got.LockCount)
	}
}

func TestAnAmbiguousSbatchIsNotRetriedUntilSqueueTells(t *testing.T) {
	c := queued(1, 10)
	u := newUnit(t, Config{TokenUUID: testToken}, c)
	u.sl.failNext(c.UUID, errSlurmLost)
	poll(t, u)
	if !slices.Equal(u.w.submitted, []string{c.UUID + " "}) {
		t.Fatalf("noted %v, want an ambiguous submit (no job id)", u.w.submitted)
	}
	for range 5 {
		u.clk.Add(time.Second)
		poll(t, u)
	}
	if n := len(u.sl.names()); n != 1 {
		t.Fatalf("%d sbatch calls while the outcome was unknown, want 1", n)
	}
	// The watcher confirms that no job of that name exists: submit again.
	u.w.setPresence(c.UUID, squeue.Presence{Kind: squeue.AbsentConfirmed, Ending: &squeue.Ending{At: u.clk.Now()}})
	u.w.mu.Lock()
	u.w.absent[c.UUID] = true
	u.w.mu.Unlock()
	u.clk.Add(time.Second)
	u.d.Pass(context.Background())
	if n := len(u.sl.names()); n != 2 {
		t.Errorf("%d sbatch calls after absence was confirmed, want 2", n)
	}
}

func TestPendingReasonsReachRuntimeStatusOnlyWhenTheyChange(t *testing.T) {
	c := lockedOurs(1, arvados.Locked)
	u := newUnit(t, Config{TokenUUID: testToken}, c)
	u.w.setPresence(c.UUID, alive("PENDING", "Resources", slurm.ReasonWaiting))
	poll(t, u)
	u.d.Pass(context.Background())
	u.d.Pass(context.Background())
	if got := u.api.get(c.UUID).RuntimeStatus; got["activity"] != "Slurm job 7 pending: Resources" {
		t.Errorf("runtime_status %v", got)
	}
	u.w.setPresence(c.UUID, alive("PENDING", "PartitionDown", slurm.ReasonAttention))
	u.d.Pass(context.Background())
	u.d.Pass(context.Background())
	got := u.api.get(c.UUID)
	if got.RuntimeStatus["warning"] != "Slurm job 7 pending: PartitionDown" || got.RuntimeStatus["activity"] != nil {
		t.Errorf("runtime_status %v", got.RuntimeStatus)
	}
	if n := countCalls(u.api.takeCalls(), "update"); n != 2 {
		t.Errorf("%d updates, want 2 (one per change)", n)
	}
	if got.State != arvados.Locked {
		t.Errorf("a job pending on a down partition changed the container to %s", got.State)
	}
}

func TestAJobThatEndsWhileLockedIsFollowedByAReadAndAnUnlockWithALog(t *testing.T) {
	c := queued(1, 10)
	u := newUnit(t, Config{TokenUUID: testToken}, c)
	poll(t, u)
	u.clk.Add(time.Second)
	u.w.setPresence(c.UUID, squeue.Presence{Kind: squeue.AbsentConfirmed,
		Ending: &squeue.Ending{JobID: "101", State: "FAILED", At: u.clk.Now()}})
	u.clk.Add(time.Second)
	u.api.takeCalls()
	u.d.Pass(context.Background()) // read
	u.d.Pass(context.Background()) // unlock
	calls := u.api.takeCalls()
	var methods []string
	for _, c := range calls {
		methods = append(methods, c.Method)
	}
	if !slices.Equal(methods, []string{"list", "log", "unlock"}) {
		t.Fatalf("calls %v, want a batch read, the log record, the unlock", methods)
	}
	if text := calls[1].Log.Properties["text"].(string); !strings.Contains(text, "Slurm job 101 ended (FAILED)") ||
		calls[1].Log.EventType != "dispatch" {
		t.Errorf("log record %+v", calls[1].Log)
	}
	u.d.Pass(context.Background())
	if n := len(u.d.Tracked()); n != 0 {
		t.Errorf("still tracking the unlocked container")
	}
}

func TestAJobThatEndsWhileRunningCancelsTheContainerOnlyIfStillRunning(t *testing.T) {
	a, b := lockedOurs(1, arvados.Running), lockedOurs(2, arvados.Running)
	u := newUnit(t, Config{TokenUUID: testToken}, a, b)
	for _, c := range []arvados.Container{a, b} {
		u.w.setPresence(c.UUID, alive("RUNNING", "None", slurm.ReasonWaiting))
	}
	poll(t, u)
	u.clk.Add(time.Second)
	for _, c := range []arvados.Container{a, b} {
		u.w.setPresence(c.UUID, squeue.Presence{Kind: squeue.AbsentConfirmed,
			Ending: &squeue.Ending{JobID: "7", State: "NODE_FAIL", At: u.clk.Now()}})
	}
	// crunch-run finished b just before its job ended.
	b.State, b.LockedByUUID = arvados.Complete, ""
	u.api.put(b)
	u.clk.Add(time.Second)
	u.api.takeCalls()
	for range 3 {
		u.d.Pass(context.Background())
	}
	if got := u.api.get(a.UUID); got.State != arvados.Cancelled ||
		got.RuntimeStatus["error"] != "Slurm job 7 ended (NODE_FAIL) while the container was Running" {
		t.Errorf("a: %s %v", got.State, got.RuntimeStatus)
	}
	for _, c := range u.api.takeCalls() {
		if c.UUID == b.UUID && c.Method != "list" {
			t.Errorf("touched the container crunch-run finished: %+v", c)
		}
	}
	if n := len(u.d.Tracked()); n != 0 {
		t.Errorf("tracking %d, want none (both finished, their jobs gone)", n)
	}
}

func TestInvalidRecordsOfOursAreCancelledWithTheReasonAndNeverSubmitted(t *testing.T) {
	neg := queued(1, 10)
	neg.RuntimeConstraints.RAM = -1
	huge := queued(2, 10)
	huge.RuntimeConstraints.VCPUs = 1 << 30
	shell := queued(3, 10)
	shell.SchedulingParameters.Partitions = []string{"debug;touch /tmp/x"}
	good := queued(4, 10)
	u := newUnit(t, Config{TokenUUID: testToken}, neg, huge, shell, good)
	poll(t, u)
	u.d.Pass(context.Background())
	if names := u.sl.names(); !slices.Equal(names, []string{good.UUID}) {
		t.Errorf("submitted %v, want only the good one", names)
	}
	for c, want := range map[string]string{neg.UUID: "ram -1", huge.UUID: "vcpus 1073741824", shell.UUID: "invalid partition name"} {
		got := u.api.get(c)
		if msg, _ := got.RuntimeStatus["error"].(string); got.State != arvados.Cancelled || !strings.Contains(msg, want) {
			t.Errorf("%s: %s %q, want Cancelled with %q", c, got.State, msg, want)
		}
	}
}

func TestPriorityZeroWhileRunningEndsQuietlyAfterOurCancel(t *testing.T) {
	c := lockedOurs(1, arvados.Running)
	u := newUnit(t, Config{TokenUUID: testToken}, c)
	u.w.setPresence(c.UUID, alive("RUNNING", "None", slurm.ReasonWaiting))
	poll(t, u)
	c.Priority = 0
	u.api.put(c)
	poll(t, u)
	wt, _ := u.w.lastWanted()
	if p, ok := wt.Locked[c.UUID]; !ok || p != 0 {
		t.Fatalf("the watcher was not told priority 0: %+v", wt)
	}
	// The watcher TERMed the job; it ended FAILED; crunch-run did not finalize.
	u.clk.Add(time.Second)
	u.w.setPresence(c.UUID, squeue.Presence{Kind: squeue.AbsentConfirmed, Ending: &squeue.Ending{JobID: "7", State: "FAILED", At: u.clk.Now()}})
	u.clk.Add(time.Second)
	u.d.Pass(context.Background())
	u.d.Pass(context.Background())
	got := u.api.get(c.UUID)
	if got.State != arvados.Cancelled || got.RuntimeStatus["error"] != nil {
		t.Errorf("%s %v: want Cancelled without an error", got.State, got.RuntimeStatus)
	}
}

func TestTheOrphanSweepReportsJobsOfContainersThatAreNotOurs(t *testing.T) {
	done := lockedOurs(1, arvados.Complete)
	done.LockedByUUID = ""
	requeued := queued(2, 0)
	others := lockedOurs(3, arvados.Running)
	others.LockedByUUID = otherTok
	mine := lockedOurs(4, arvados.Locked)
	missing := "zzzzz-dz642-000000000000005"
	u := newUnit(t, Config{TokenUUID: testToken, OrphanSweepPeriod: time.Minute}, done, requeued, others)
	u.w.unreported = []string{done.UUID, requeued.UUID, others.UUID, mine.UUID, missing}
	poll(t, u)
	// mine appears after the poll's query (it was locked by a previous run).
	u.api.put(mine)
	u.clk.Add(time.Minute)
	poll(t, u)
	wt, _ := u.w.lastWanted()
	want := map[string]squeue.UnwantedReason{done.UUID: squeue.ContainerComplete, missing: squeue.ContainerCancelled}
	for k, v := range want {
		if wt.Unwanted[k] != v {
			t.Errorf("unwanted[%s] = %q, want %q", k, wt.Unwanted[k], v)
		}
	}
	if _, ok := wt.Unwanted[others.UUID]; ok {
		t.Errorf("the job of a container locked by another token was reported unwanted")
	}
	if _, ok := wt.Locked[mine.UUID]; !ok {
		t.Errorf("a container locked by our token was not adopted: %+v", wt)
	}
	if wt.Unwanted[requeued.UUID] != squeue.ContainerQueued {
		t.Errorf("unwanted[requeued] = %q", wt.Unwanted[requeued.UUID])
	}
	for _, c := range u.api.takeCalls() {
		if c.Method == "get" {
			t.Errorf("single GET %s: the sweep reads in batches", c.UUID)
		}
	}
}

// TestJobsAllPendingForTheSameNeverClearingReasonCancelNothing: a template that makes every
// job impossible (say --cpus-per-task far above any node) is accepted by sbatch and leaves
// every job pending on PartitionConfig. That is our misconfiguration (DESIGN.md invariant
// 8): no container is cancelled, health says why; once one of our jobs can start, a job
// stuck that way is the container's own and its container is cancelled.
func TestJobsAllPendingForTheSameNeverClearingReasonCancelNothing(t *testing.T) {
	var cs []arvados.Container
	for i := range 4 {
		cs = append(cs, lockedOurs(i+1, arvados.Locked))
	}
	u := newUnit(t, Config{TokenUUID: testToken}, cs...)
	for _, c := range cs {
		u.w.setPresence(c.UUID, alive("PENDING", "PartitionConfig", slurm.ReasonNever))
	}
	poll(t, u)
	for range 3 {
		u.d.Pass(context.Background())
	}
	for _, c := range cs {
		if got := u.api.get(c.UUID); got.State != arvados.Locked || got.RuntimeStatus["error"] != nil {
			t.Fatalf("%s: state %s, runtime_status %v; want Locked and no error", c.UUID, got.State, got.RuntimeStatus)
		}
	}
	if ok, why := u.d.Healthy(); ok || !strings.Contains(why, "PartitionConfig") {
		t.Fatalf("Healthy = %v %q, want false naming the reason", ok, why)
	}

	// One of our jobs starts: the configuration works, so the stuck ones are the containers'.
	u.w.setPresence(cs[0].UUID, alive("RUNNING", "None", slurm.ReasonWaiting))
	for range 3 {
		u.d.Pass(context.Background())
	}
	for _, c := range cs[1:] {
		got := u.api.get(c.UUID)
		if msg, _ := got.RuntimeStatus["error"].(string); got.State != arvados.Cancelled || !strings.Contains(msg, "PartitionConfig") {
			t.Fatalf("%s: state %s, runtime_status %v; want Cancelled with the reason", c.UUID, got.State, got.RuntimeStatus)
		}
	}
	if ok, why := u.d.Healthy(); !ok {
		t.Fatalf("still unhealthy once a job could start: %s", why)
	}
}

func TestAFewJobsPendingForANeverClearingReasonAreTheContainersOwn(t *testing.T) {
	cs := []arvados.Container{lockedOurs(1, arvados.Locked), lockedOurs(2, arvados.Locked)}
	u := newUnit(t, Config{TokenUUID: testToken}, cs...)
	for _, c := range cs {
		u.w.setPresence(c.UUID, alive("PENDING", "PartitionConfig", slurm.ReasonNever))
	}
	poll(t, u)
	for range 3 {
		u.d.Pass(context.Background())
	}
	for _, c := range cs {
		if got := u.api.get(c.UUID); got.State != arvados.Cancelled {
			t.Fatalf("%s: state %s; two (fewer than RejectionBurst) impossible jobs are the containers' own", c.UUID, got.State)
		}
	}
}

// The watcher is told which of our containers are Running: their jobs exist even if this
// process never saw them, so an squeue that prints nothing is suspect rather than evidence.
func TestTheWatcherIsToldWhichOfOurContainersAreRunning(t *testing.T) {
	run, lock := lockedOurs(1, arvados.Running), lockedOurs(2, arvados.Locked)
	u := newUnit(t, Config{TokenUUID: testToken}, run, lock)
	poll(t, u)
	wt, _ := u.w.lastWanted()
	if !wt.Running[run.UUID] || wt.Running[lock.UUID] || len(wt.Running) != 1 {
		t.Fatalf("Running = %v, want only %s", wt.Running, run.UUID)
	}
}
