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

func poll(t *testing.T, u *unit) {
	t.Helper()
	if err := u.d.Poll(context.Background()); err != nil {
		t.Fatalf("poll: %v", err)
	}
}

func TestAnIdlePollCostsTwoListRequests(t *testing.T) {
	running := []arvados.Container{lockedOurs(1, arvados.Running), lockedOurs(2, arvados.Running)}
	u := newUnit(t, Config{TokenUUID: testToken}, running...)
	for _, c := range running {
		u.w.setPresence(c.UUID, alive("RUNNING", "None", slurm.ReasonWaiting))
	}
	poll(t, u) // adopts the two
	u.api.takeCalls()
	for range 3 {
		poll(t, u)
		calls := u.api.takeCalls()
		if len(calls) != 2 || countCalls(calls, "list") != 2 {
			t.Fatalf("an idle poll made %d calls %+v, want 2 list requests", len(calls), calls)
		}
		if f := calls[0].Filters; len(f) != 1 || f[0].Attr != "locked_by_uuid" || f[0].Operand != testToken {
			t.Errorf("first query filters %+v, want locked_by_uuid = our token", f)
		}
		if f := calls[1].Filters; len(f) != 2 || f[0].Attr != "state" || f[1].Attr != "priority" || f[1].Op != ">" {
			t.Errorf("second query filters %+v, want state = Queued, priority > 0", f)
		}
		for _, c := range calls {
			if len(c.Select) == 0 {
				t.Errorf("a query without select: %+v", c)
			}
		}
	}
}

func TestAdoptingAHundredLockedContainersMakesNoPerContainerRequests(t *testing.T) {
	var cs []arvados.Container
	for i := range 100 {
		st := arvados.Locked
		if i%2 == 0 {
			st = arvados.Running
		}
		cs = append(cs, lockedOurs(i+1, st))
	}
	u := newUnit(t, Config{TokenUUID: testToken}, cs...)
	poll(t, u)
	if n := len(u.d.Tracked()); n != 100 {
		t.Fatalf("tracking %d containers, want 100", n)
	}
	if calls := u.api.takeCalls(); len(calls) != 2 {
		t.Fatalf("adoption took %d requests, want the 2 queries", len(calls))
	}
	// squeue confirms that none of them has a job: the Locked ones are read whole (in one
	// batch) and submitted, the Running ones read again (one batch) and cancelled.
	for _, c := range cs {
		u.w.setPresence(c.UUID, squeue.Presence{Kind: squeue.AbsentConfirmed, Ending: &squeue.Ending{At: t0}})
	}
	u.clk.Add(time.Second)
	u.d.Pass(context.Background())
	u.d.Pass(context.Background())
	calls := u.api.takeCalls()
	if n := countCalls(calls, "get"); n != 0 {
		t.Errorf("%d single GETs, want none", n)
	}
	lists := 0
	for _, c := range calls {
		if c.Method == "list" {
			lists++
			if len(c.Filters) != 1 || c.Filters[0].Op != "in" {
				t.Errorf("a read that is not a batch by uuid: %+v", c.Filters)
			}
		}
	}
	if lists > 4 {
		t.Errorf("%d list requests to read 100 containers, want a few batches", lists)
	}
	if n := len(u.sl.names()); n != 50 {
		t.Errorf("%d submits, want 50 (the Locked ones)", n)
	}
	if n := countCalls(calls, "unlock"); n != 0 {
		t.Errorf("%d unlocks, want none", n)
	}
}

func TestAFailedPollClosesNothingAndTellsTheWatcherNothing(t *testing.T) {
	u := newUnit(t, Config{TokenUUID: testToken}, lockedOurs(1, arvados.Running), lockedOurs(2, arvados.Locked))
	poll(t, u)
	_, n := u.w.lastWanted()
	for _, method := range []string{"first", "second", "third"} {
		t.Run(method+" query fails", func(t *testing.T) {
			switch method {
			case "first":
				u.api.fail("list", errAPIDown)
			case "second":
				u.api.fail("list", nil, errAPIDown)
			case "third":
				// A tracked container neither query returns needs the third (batch) query.
				c := u.api.get("zzzzz-dz642-000000000000001")
				c.State, c.LockedByUUID = arvados.Complete, ""
				u.api.put(c)
				u.api.fail("list", nil, nil, errAPIDown)
			}
			if err := u.d.Poll(context.Background()); err == nil {
				t.Fatal("the poll did not fail")
			}
			if got := len(u.d.Tracked()); got != 2 {
				t.Errorf("tracking %d containers after a failed poll, want 2", got)
			}
			if _, m := u.w.lastWanted(); m != n {
				t.Errorf("SetWanted called after a failed poll")
			}
			for _, c := range u.api.takeCalls() {
				if c.Method == "unlock" || c.Method == "update" {
					t.Errorf("a failed poll led to %s %s", c.Method, c.UUID)
				}
			}
		})
	}
}

func TestHealthTurnsBadAfterRepeatedPollFailuresAndRecovers(t *testing.T) {
	u := newUnit(t, Config{TokenUUID: testToken, PollFailuresUntilUnhealthy: 2})
	u.api.fail("list", errAPIDown, errAPIDown)
	_ = u.d.Poll(context.Background())
	if ok, _ := u.d.Healthy(); !ok {
		t.Error("unhealthy after one failed poll")
	}
	_ = u.d.Poll(context.Background())
	if ok, why := u.d.Healthy(); ok || !strings.Contains(why, "2 times") {
		t.Errorf("Healthy = %v %q after two failed polls", ok, why)
	}
	poll(t, u)
	if ok, why := u.d.Healthy(); !ok {
		t.Errorf("still unhealthy after a good poll: %s", why)
	}
}

func TestTrackedContainersNeitherQueryReturnsAreReadInOneBatch(t *testing.T) {
	var cs []arvados.Container
	for i := range 5 {
		cs = append(cs, lockedOurs(i+1, arvados.Running))
	}
	u := newUnit(t, Config{TokenUUID: testToken}, cs...)
	for _, c := range cs {
		u.w.setPresence(c.UUID, alive("RUNNING", "None", slurm.ReasonWaiting))
	}
	poll(t, u)
	for i, c := range cs {
		c.State, c.LockedByUUID = arvados.Complete, ""
		if i == 4 {
			c.State = arvados.Cancelled
		}
		u.api.put(c)
	}
	u.api.takeCalls()
	poll(t, u)
	calls := u.api.takeCalls()
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 3 (two queries and one batch): %+v", len(calls), calls)
	}
	if f := calls[2].Filters; len(f) != 1 || f[0].Op != "in" || len(f[0].Operand.([]string)) != 5 {
		t.Errorf("batch filters %+v, want uuid in [5 uuids]", f)
	}
	wt, _ := u.w.lastWanted()
	if len(wt.Locked) != 0 || len(wt.Unwanted) != 5 || wt.Unwanted[cs[0].UUID] != squeue.ContainerComplete ||
		wt.Unwanted[cs[4].UUID] != squeue.ContainerCancelled {
		t.Errorf("wanted %+v: want all five unwanted (Complete, Cancelled)", wt)
	}
	// Their jobs gone: forgotten.
	for _, c := range cs {
		u.w.setPresence(c.UUID, squeue.Presence{Kind: squeue.AbsentConfirmed, Ending: &squeue.Ending{JobID: "1", State: "COMPLETED"}})
	}
	poll(t, u)
	if n := len(u.d.Tracked()); n != 0 {
		t.Errorf("still tracking %d finished containers", n)
	}
	u.api.takeCalls()
	poll(t, u)
	if n := len(u.api.takeCalls()); n != 2 {
		t.Errorf("%d requests once idle again, want 2", n)
	}
}

func TestTheWantedViewNamesOursAndWhyTheOthersGo(t *testing.T) {
	mine := lockedOurs(1, arvados.Running)
	zero := lockedOurs(2, arvados.Running)
	requeued := lockedOurs(3, arvados.Locked)
	other := lockedOurs(4, arvados.Locked)
	u := newUnit(t, Config{TokenUUID: testToken}, mine, zero, requeued, other)
	for _, c := range []arvados.Container{mine, zero, requeued, other} {
		u.w.setPresence(c.UUID, alive("RUNNING", "None", slurm.ReasonWaiting))
	}
	poll(t, u)
	zero.Priority = 0
	requeued.State, requeued.LockedByUUID = arvados.Queued, ""
	other.LockedByUUID = otherTok
	u.api.put(zero, requeued, other)
	poll(t, u)
	wt, _ := u.w.lastWanted()
	if wt.Locked[mine.UUID] != 10 {
		t.Errorf("ours not wanted with its priority: %+v", wt.Locked)
	}
	if p, ok := wt.Locked[zero.UUID]; !ok || p != 0 {
		t.Errorf("priority 0 container not reported locked with priority 0 (the watcher cancels it): %+v", wt.Locked)
	}
	if wt.Unwanted[requeued.UUID] != squeue.ContainerQueued || wt.Unwanted[other.UUID] != squeue.LockedByOther {
		t.Errorf("unwanted %+v", wt.Unwanted)
	}
	if !wt.At.Equal(t0) {
		t.Errorf("At %v, want the poll's start %v", wt.At, t0)
	}
	for _, c := range u.api.takeCalls() {
		if c.UUID == other.UUID && c.Method != "list" {
			t.Errorf("touched a container locked by another token: %+v", c)
		}
	}
}

func TestLockingFollowsPriorityAndTheCaps(t *testing.T) {
	var cs []arvados.Container
	for i := range 10 {
		c := queued(i+1, int64(100-i))
		if i < 4 {
			c.SchedulingParameters.Supervisor = true
		}
		cs = append(cs, c)
	}
	held := lockedOurs(50, arvados.Running)
	u := newUnit(t, Config{TokenUUID: testToken, MaxJobs: 6, SupervisorFraction: 0.34, LockConcurrency: 1}, append(cs, held)...)
	u.w.setPresence(held.UUID, alive("RUNNING", "None", slurm.ReasonWaiting))
	poll(t, u)
	var locked []string
	for _, c := range u.api.takeCalls() {
		if c.Method == "lock" {
			locked = append(locked, c.UUID)
		}
	}
	// 6 jobs: one held, five to lock; supervisors (the four highest priorities) at most 2.
	want := []string{cs[0].UUID, cs[1].UUID, cs[4].UUID, cs[5].UUID, cs[6].UUID}
	if !slices.Equal(locked, want) {
		t.Errorf("locked %v, want %v", locked, want)
	}
	if n := len(u.d.Tracked()); n != 6 {
		t.Errorf("tracking %d, want 6", n)
	}
	wt, _ := u.w.lastWanted()
	if len(wt.Locked) != 6 {
		t.Errorf("the watcher was not told about the new locks: %+v", wt.Locked)
	}
}

func TestARefusedLockIsQuietAndAnAmbiguousOneIsCheckedWithAGet(t *testing.T) {
	a, b, c := queued(1, 30), queued(2, 20), queued(3, 10)
	u := newUnit(t, Config{TokenUUID: testToken, LockConcurrency: 1}, a, b, c)
	// a: someone else locked it first (422). b: the lock took effect but the answer was lost.
	a.State, a.LockedByUUID = arvados.Queued, ""
	u.api.fail("lock", &arvados.HTTPError{Status: 422}, errAPIUnclear)
	poll(t, u)
	calls := u.api.takeCalls()
	if n := countCalls(calls, "get"); n != 1 {
		t.Fatalf("%d GETs after one ambiguous lock, want 1", n)
	}
	// The fake did not lock b (the fault came first): the GET shows it Queued, so not ours.
	got := map[string]bool{}
	for _, tr := range u.d.Tracked() {
		got[tr.UUID] = true
	}
	if got[a.UUID] || got[b.UUID] || !got[c.UUID] {
		t.Errorf("tracked %v: want only %s", got, c.UUID)
	}
	// Next poll: both are locked normally.
	poll(t, u)
	if n := len(u.d.Tracked()); n != 3 {
		t.Errorf("tracking %d after the next poll, want 3", n)
	}
}

func TestContainersWithBadUUIDsOrOtherClustersAreSkipped(t *testing.T) {
	bad := queued(1, 10)
	bad.UUID = "zzzzz-dz642-bad;touch /tmp/x"
	foreign := queued(2, 10)
	foreign.UUID = "yyyyy-dz642-000000000000002"
	good := queued(3, 10)
	u := newUnit(t, Config{TokenUUID: testToken}, bad, foreign, good)
	poll(t, u)
	for _, c := range u.api.takeCalls() {
		if c.Method == "lock" && c.UUID != good.UUID {
			t.Errorf("locked %q", c.UUID)
		}
	}
	if names := u.sl.names(); !slices.Equal(names, []string{good.UUID}) {
		t.Errorf("submitted %v, want only %s", names, good.UUID)
	}
}

func TestSubmitsGoInPriorityOrderWithTheTemplateAndScript(t *testing.T) {
	var cs []arvados.Container
	for i := range 5 {
		cs = append(cs, queued(i+1, int64(10+i)))
	}
	sup := queued(9, 1)
	sup.SchedulingParameters.Supervisor = true
	supTmpl, err := slurm.ParseTemplate([]string{"--partition=supervisors", "--mem=%M"})
	if err != nil {
		t.Fatal(err)
	}
	u := newUnit(t, Config{TokenUUID: testToken, SubmitConcurrency: 1, SupervisorTemplate: supTmpl,
		CrunchRunCommand: []string{"/usr/bin/crunch-run"}, CrunchRunArgs: []string{"--debug"}, RuntimeEngine: "singularity",
		JobEnv: []string{"ARVADOS_API_TOKEN=secret"}}, append(cs, sup)...)
	poll(t, u)
	want := []string{cs[4].UUID, cs[3].UUID, cs[2].UUID, cs[1].UUID, cs[0].UUID, sup.UUID}
	if got := u.sl.names(); !slices.Equal(got, want) {
		t.Fatalf("submitted %v, want priority order %v", got, want)
	}
	r := u.sl.reqs[0]
	wantArgs := []string{"--mem=1574", "--cpus-per-task=1", "--tmp=0"}
	if !slices.Equal(r.Args, wantArgs) || r.Nice != 100 {
		t.Errorf("args %q nice %d, want %q nice 100", r.Args, r.Nice, wantArgs)
	}
	wantScript := "#!/bin/sh\nexec '/usr/bin/crunch-run' '--runtime-engine=singularity' '--debug' '" + cs[4].UUID + "'\n"
	if string(r.Script) != wantScript {
		t.Errorf("script %q, want %q", r.Script, wantScript)
	}
	if !slices.Equal(r.Env, []string{"ARVADOS_API_TOKEN=secret"}) {
		t.Errorf("env %q", r.Env)
	}
	if args := u.sl.reqs[5].Args; !slices.Equal(args, []string{"--partition=supervisors", "--mem=1574"}) {
		t.Errorf("supervisor args %q", args)
	}
}
