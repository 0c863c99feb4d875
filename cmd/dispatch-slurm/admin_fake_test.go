package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

// terminal is standard input that says it is a terminal.
type terminal struct{ io.Reader }

func (terminal) IsTerminal() bool { return true }

// runWithInput runs the app with args and stdin and returns stdout, stderr and the error,
// failing the test if a token appears in either.
func runWithInput(t *testing.T, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp(&out, &errOut)
	app.Reader = stdin
	err := app.RunContext(context.Background(), append([]string{"dispatch-slurm"}, args...))
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	noToken(t, out.String()+errOut.String()+msg)
	return out.String(), errOut.String(), err
}

// actionArgs are the arguments of containers unlock or cancel at the fake tier.
func (ac *adminCluster) actionArgs(cmd string, args ...string) []string {
	return append([]string{"containers", cmd, "--squeue-path=" + ac.env.SqueuePath, "--scancel-path=" + ac.env.ScancelPath,
		"--wait=20s"}, args...)
}

// act runs containers unlock or cancel with --json and no terminal, and returns the rows.
func (ac *adminCluster) act(t *testing.T, cmd string, args ...string) ([]actionRow, string, error) {
	t.Helper()
	out, errOut, err := runWithInput(t, strings.NewReader(""), ac.actionArgs(cmd, append([]string{"--json"}, args...)...)...)
	var rows []actionRow
	if jerr := json.Unmarshal([]byte(out), &rows); jerr != nil {
		t.Fatalf("containers %s --json: %v\nstdout: %s\nstderr: %s\nerr: %v", cmd, jerr, out, errOut, err)
	}
	return rows, errOut, err
}

// liveJobs are the jobs named uuid that have not finished.
func (ac *adminCluster) liveJobs(t *testing.T, uuid string) []sim.Job {
	t.Helper()
	var live []sim.Job
	for _, j := range ac.env.JobsNamed(uuid) {
		if !j.Finished() {
			live = append(live, j)
		}
	}
	return live
}

func (ac *adminCluster) container(t *testing.T, uuid string) arvados.Container {
	t.Helper()
	c, ok := ac.srv.Container(uuid)
	if !ok {
		t.Fatalf("no container %s", uuid)
	}
	return c
}

func rowsByUUID(rows []actionRow) map[string]actionRow {
	m := map[string]actionRow{}
	for _, r := range rows {
		m[r.UUID] = r
	}
	return m
}

func TestUnlockStuckLeavesTheStuckContainersQueuedWithoutJobs(t *testing.T) {
	ac := newAdminCluster(t)
	waitPartitionDown(t, ac)
	rows, errOut, err := ac.act(t, "unlock", "--stuck", "--yes")
	if err != nil {
		t.Fatalf("unlock --stuck: %v\n%s", err, errOut)
	}
	got := rowsByUUID(rows)
	if len(rows) != 2 {
		t.Errorf("%d containers unlocked, want the 2 Locked stuck ones: %+v", len(rows), rows)
	}
	for _, u := range []string{ac.partitionDown, ac.lockedNoJob} {
		r := got[u]
		if !r.OK || r.StateBefore != "Locked" || r.State != "Queued" {
			t.Errorf("row of %s: %+v, want ok, Locked → Queued", u, r)
		}
		if c := ac.container(t, u); c.State != arvados.Queued || c.LockedByUUID != "" {
			t.Errorf("%s is %s locked by %q, want Queued and unlocked", u, c.State, c.LockedByUUID)
		}
		if live := ac.liveJobs(t, u); len(live) != 0 {
			t.Errorf("%s still has live jobs: %+v", u, live)
		}
	}
	if r := got[ac.partitionDown]; len(r.JobsCancelled) != 1 || r.JobsCancelled[0] != ac.jobs[ac.partitionDown] {
		t.Errorf("jobs cancelled for %s: %v, want [%s]", ac.partitionDown, r.JobsCancelled, ac.jobs[ac.partitionDown])
	}
	for _, u := range []string{ac.healthy, ac.runningNoJob, ac.queued} {
		if _, listed := got[u]; listed {
			t.Errorf("%s was acted on, but unlocking cannot help it", u)
		}
	}
	if c := ac.container(t, ac.healthy); c.State != arvados.Locked || len(ac.liveJobs(t, ac.healthy)) != 1 {
		t.Errorf("the healthy container was touched: %s", c.State)
	}
}

func TestUnlockStuckOlderThanKeepsOnlyOldContainers(t *testing.T) {
	ac := newAdminCluster(t)
	old := ac.srv.Seed(arvados.Container{State: arvados.Locked, Priority: 1, LockedByUUID: fakearvados.AdminTokenUUID,
		LockCount: 1, CreatedAt: time.Now().Add(-3 * time.Hour), ModifiedAt: time.Now().Add(-time.Hour)})[0]
	waitPartitionDown(t, ac)
	rows, errOut, err := ac.act(t, "unlock", "--stuck", "--older-than=2h", "--dry-run")
	if err != nil {
		t.Fatalf("unlock --stuck --older-than: %v\n%s", err, errOut)
	}
	if len(rows) != 1 || rows[0].UUID != old || !rows[0].DryRun || !rows[0].OK {
		t.Errorf("rows %+v, want only %s, the stuck container created 3 hours ago", rows, old)
	}
}

func TestUnlockAndCancelRefuseAContainerLockedByAnotherTokenAndGoOnWithTheOthers(t *testing.T) {
	for _, cmd := range []string{"unlock", "cancel"} {
		t.Run(cmd, func(t *testing.T) {
			ac := newAdminCluster(t)
			theirs := ac.srv.Seed(arvados.Container{State: arvados.Locked, Priority: 1,
				LockedByUUID: fakearvados.Dispatcher2TokenUUID, LockCount: 1})[0]
			ac.submit(t, theirs)
			rows, errOut, err := ac.act(t, cmd, "--yes", theirs, ac.lockedNoJob)
			if err == nil || exitCode(err) != exitFailure {
				t.Fatalf("err %v (exit %d), want exit 1 for the refusal", err, exitCode(err))
			}
			got := rowsByUUID(rows)
			if r := got[theirs]; r.OK || !strings.Contains(r.Message, "another token ("+fakearvados.Dispatcher2TokenUUID+")") {
				t.Errorf("row of the other token's container: %+v, want a refusal naming the token", r)
			}
			if c := ac.container(t, theirs); c.State != arvados.Locked || c.LockedByUUID != fakearvados.Dispatcher2TokenUUID {
				t.Errorf("the other token's container is now %s locked by %q", c.State, c.LockedByUUID)
			}
			if len(ac.liveJobs(t, theirs)) != 1 {
				t.Error("the other token's job was cancelled")
			}
			if r := got[ac.lockedNoJob]; !r.OK {
				t.Errorf("our container was not processed after the refusal: %+v\n%s", r, errOut)
			}
			want := map[string]arvados.ContainerState{"unlock": arvados.Queued, "cancel": arvados.Cancelled}[cmd]
			if c := ac.container(t, ac.lockedNoJob); c.State != want {
				t.Errorf("our container is %s, want %s", c.State, want)
			}
		})
	}
}

func TestUnlockRefusesARunningContainerAndSuggestsCancel(t *testing.T) {
	ac := newAdminCluster(t)
	_, errOut, err := runWithInput(t, strings.NewReader(""), ac.actionArgs("unlock", ac.runningNoJob)...)
	if err == nil || exitCode(err) != exitFailure {
		t.Fatalf("err %v, want exit 1", err)
	}
	if !strings.Contains(errOut, "dispatch-slurm containers cancel "+ac.runningNoJob) {
		t.Errorf("stderr does not suggest containers cancel:\n%s", errOut)
	}
	if c := ac.container(t, ac.runningNoJob); c.State != arvados.Running {
		t.Errorf("the running container is now %s", c.State)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		args func(ac *adminCluster) []string
	}{
		{"unlock --stuck --dry-run", func(ac *adminCluster) []string { return ac.actionArgs("unlock", "--stuck", "--dry-run") }},
		{"cancel --dry-run of every kind of container", func(ac *adminCluster) []string {
			return ac.actionArgs("cancel", "--dry-run", ac.queued, ac.partitionDown, ac.lockedNoJob, ac.runningNoJob, ac.cancelled, ac.healthy)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ac := newAdminCluster(t)
			waitPartitionDown(t, ac)
			containersBefore, jobsBefore := ac.srv.Containers(), ac.env.Jobs()
			ac.srv.ResetRequests()
			out, errOut, err := runWithInput(t, strings.NewReader(""), tc.args(ac)...)
			if err != nil {
				t.Fatalf("%s: %v\n%s", tc.name, err, errOut)
			}
			if !strings.Contains(out, ": would ") || !strings.Contains(out, "cancel Slurm job "+ac.jobs[ac.partitionDown]) {
				t.Errorf("the plan does not say what would be done:\n%s", out)
			}
			if !reflect.DeepEqual(ac.srv.Containers(), containersBefore) {
				t.Error("the API records changed")
			}
			if !reflect.DeepEqual(ac.env.Jobs(), jobsBefore) {
				t.Error("the Slurm jobs changed")
			}
			for _, r := range ac.srv.Requests() {
				if r.Method != "GET" {
					t.Errorf("a dry run sent %s %s", r.Method, r.Path)
				}
			}
			for _, c := range ac.env.Calls() {
				if c.Command == "scancel" {
					t.Errorf("a dry run ran scancel %v", c.Args)
				}
			}
		})
	}
}

func TestCancelSetsContainersCancelledWithTheAdministratorsError(t *testing.T) {
	ac := newAdminCluster(t)
	waitPartitionDown(t, ac)
	targets := []string{ac.queued, ac.partitionDown, ac.runningNoJob, ac.healthy}
	rows, errOut, err := ac.act(t, "cancel", append([]string{"--yes"}, targets...)...)
	if err != nil {
		t.Fatalf("cancel: %v\n%s", err, errOut)
	}
	got := rowsByUUID(rows)
	for _, u := range targets {
		if r := got[u]; !r.OK || r.State != "Cancelled" {
			t.Errorf("row of %s: %+v, want ok and Cancelled", u, r)
		}
		c := ac.container(t, u)
		if c.State != arvados.Cancelled || c.RuntimeStatus["error"] != adminCancelMessage {
			t.Errorf("%s is %s with runtime_status %v, want Cancelled with error %q", u, c.State, c.RuntimeStatus, adminCancelMessage)
		}
		if live := ac.liveJobs(t, u); len(live) != 0 {
			t.Errorf("%s still has live jobs: %+v", u, live)
		}
	}
}

func TestCancelOfACancelledContainerCancelsOnlyItsLeftoverJob(t *testing.T) {
	ac := newAdminCluster(t)
	rows, errOut, err := ac.act(t, "cancel", ac.cancelled)
	if err != nil {
		t.Fatalf("cancel: %v\n%s", err, errOut)
	}
	if len(rows) != 1 || !rows[0].OK || len(rows[0].JobsCancelled) != 1 || !strings.Contains(rows[0].Message, "Cancelled already") {
		t.Errorf("rows %+v, want the orphan job cancelled and the container left", rows)
	}
	if live := ac.liveJobs(t, ac.cancelled); len(live) != 0 {
		t.Errorf("the orphan job is still alive: %+v", live)
	}
}

func TestUnlockDoesNotUnlockWhileTheJobIsStillThere(t *testing.T) {
	ac := newAdminCluster(t)
	ac.env.AddFault(sim.Fault{Command: "scancel", Kind: sim.FaultEmpty}) // exits 0, cancels nothing
	_, errOut, err := runWithInput(t, strings.NewReader(""), ac.actionArgs("unlock", "--wait=1s", ac.healthy)...)
	if err == nil || exitCode(err) != exitFailure {
		t.Fatalf("err %v, want exit 1", err)
	}
	if !strings.Contains(errOut, "still there after waiting: not unlocked") {
		t.Errorf("stderr does not say the job stayed:\n%s", errOut)
	}
	if c := ac.container(t, ac.healthy); c.State != arvados.Locked {
		t.Errorf("the container is %s, want still Locked", c.State)
	}
}

func TestAFailingScancelIsReportedAndNothingElseIsDone(t *testing.T) {
	ac := newAdminCluster(t)
	ac.env.AddFault(sim.Fault{Command: "scancel", Kind: sim.FaultControllerDown})
	_, errOut, err := runWithInput(t, strings.NewReader(""), ac.actionArgs("cancel", ac.healthy)...)
	if err == nil || exitCode(err) != exitFailure {
		t.Fatalf("err %v, want exit 1", err)
	}
	if !strings.Contains(errOut, "scancel of Slurm job "+ac.jobs[ac.healthy]+" (PENDING) failed") {
		t.Errorf("stderr does not report the scancel failure:\n%s", errOut)
	}
	if c := ac.container(t, ac.healthy); c.State != arvados.Locked {
		t.Errorf("the container is %s, want still Locked", c.State)
	}
}

func TestActingOnSeveralContainersNeedsYesOrAnAnswerOnATerminal(t *testing.T) {
	for _, tc := range []struct {
		name      string
		stdin     io.Reader
		changed   bool
		errSays   string
		usageExit bool
	}{
		{"without a terminal it refuses and says to pass --yes", strings.NewReader("y\n"), false, "pass --yes", true},
		{"on a terminal, no answer changes nothing", terminal{strings.NewReader("\n")}, false, "not confirmed", false},
		{"on a terminal, y goes ahead", terminal{strings.NewReader("y\n")}, true, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ac := newAdminCluster(t)
			out, errOut, err := runWithInput(t, tc.stdin, ac.actionArgs("cancel", ac.queued, ac.lockedNoJob)...)
			if (err == nil) != (tc.errSays == "") || (err != nil && !strings.Contains(err.Error(), tc.errSays)) {
				t.Fatalf("err %v, want one saying %q\n%s%s", err, tc.errSays, out, errOut)
			}
			if err != nil && (exitCode(err) == exitUsage) != tc.usageExit {
				t.Errorf("exit code %d", exitCode(err))
			}
			for _, u := range []string{ac.queued, ac.lockedNoJob} {
				if c := ac.container(t, u); (c.State == arvados.Cancelled) != tc.changed {
					t.Errorf("%s is %s", u, c.State)
				}
			}
			if _, isTerm := tc.stdin.(terminal); isTerm && !strings.Contains(errOut, "Cancel these 2 containers? [y/N]") {
				t.Errorf("no question asked:\n%s", errOut)
			}
		})
	}
}

func TestActionCommandsRefuseBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"containers", "unlock"},
		{"containers", "cancel"},
		{"containers", "unlock", "--stuck", "zzzzz-dz642-000000000000001"},
		{"containers", "unlock", "--older-than=1h", "zzzzz-dz642-000000000000001"},
		{"containers", "cancel", "not-a-uuid"},
		{"containers", "cancel", "--wait=0s", "zzzzz-dz642-000000000000001"},
	} {
		_, _, err := runWithInput(t, strings.NewReader(""), args...)
		if err == nil || exitCode(err) != exitUsage {
			t.Errorf("%v: err %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
}

func TestActionOutputForPeopleSaysWhatHappened(t *testing.T) {
	ac := newAdminCluster(t)
	out, errOut, err := runWithInput(t, strings.NewReader(""), ac.actionArgs("unlock", ac.healthy)...)
	if err != nil {
		t.Fatalf("unlock: %v\n%s", err, errOut)
	}
	want := ac.healthy + ": cancelled Slurm job " + ac.jobs[ac.healthy] + " (PENDING); unlocked: now Queued"
	if !strings.Contains(out, want) {
		t.Errorf("stdout %q does not say %q", out, want)
	}
}

func TestAnInterruptedWaitLeavesTheContainerAndSaysSo(t *testing.T) {
	ac := newAdminCluster(t)
	ac.env.AddFault(sim.Fault{Command: "scancel", Kind: sim.FaultEmpty}) // exits 0, cancels nothing
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	app := newApp(&out, &errOut)
	app.Reader = strings.NewReader("")
	err := app.RunContext(ctx, append([]string{"dispatch-slurm"}, ac.actionArgs("unlock", "--wait=1m", ac.healthy)...))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's end", err)
	}
	if want := "interrupted before it was unlocked (Slurm jobs cancelled: " + ac.jobs[ac.healthy] + ")"; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, errOut.String())
	}
	if c := ac.container(t, ac.healthy); c.State != arvados.Locked {
		t.Errorf("the container is %s, want still Locked", c.State)
	}
}
