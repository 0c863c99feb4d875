package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/fakeslurmtest"
)

// adminCluster is a fake API server and a fake Slurm holding one container of each kind that
// containers list must report.
type adminCluster struct {
	srv *fakearvados.Server
	env *fakeslurmtest.Env
	// The containers: Queued (priority 1, no job); Locked by us with a job pending on
	// PartitionDown; Locked by us an hour ago with no job; Running with no job; Cancelled
	// with a live job (an orphan); Locked by us with a job waiting normally (not stuck).
	queued, partitionDown, lockedNoJob, runningNoJob, cancelled, healthy string
	// jobs by container uuid.
	jobs map[string]string
}

func newAdminCluster(t *testing.T) *adminCluster {
	t.Helper()
	srv, env, _ := fakeEnv(t, fakearvados.AdminToken)
	ac := &adminCluster{srv: srv, env: env, jobs: map[string]string{}}
	ours := func(st arvados.ContainerState, modified time.Time) arvados.Container {
		return arvados.Container{State: st, Priority: 1, LockedByUUID: fakearvados.AdminTokenUUID, LockCount: 1, ModifiedAt: modified}
	}
	uuids := srv.Seed(
		arvados.Container{Priority: 1, CreatedAt: time.Now().Add(-3 * time.Hour)},
		ours(arvados.Locked, time.Time{}),
		ours(arvados.Locked, time.Now().Add(-time.Hour)),
		ours(arvados.Running, time.Time{}),
		arvados.Container{State: arvados.Cancelled},
		ours(arvados.Locked, time.Time{}),
	)
	ac.queued, ac.partitionDown, ac.lockedNoJob, ac.runningNoJob, ac.cancelled, ac.healthy =
		uuids[0], uuids[1], uuids[2], uuids[3], uuids[4], uuids[5]
	ac.submit(t, ac.partitionDown, "--partition=down")
	ac.submit(t, ac.cancelled)
	ac.submit(t, ac.healthy)
	return ac
}

// submit submits a job named uuid, with args, to the fake Slurm.
func (ac *adminCluster) submit(t *testing.T, uuid string, args ...string) {
	t.Helper()
	res := ac.env.Run("", "#!/bin/sh\nsleep 1000\n", "sbatch", append([]string{"--parsable", "--job-name=" + uuid}, args...)...)
	if res.ExitCode != 0 {
		t.Fatalf("sbatch for %s: exit %d: %s", uuid, res.ExitCode, res.Stderr)
	}
	ac.jobs[uuid] = strings.TrimSpace(strings.Split(res.Stdout, ";")[0])
}

// adminArgs are the arguments of an admin command at the fake tier.
func (ac *adminCluster) adminArgs(cmd ...string) []string {
	return append(cmd, "--squeue-path="+ac.env.SqueuePath)
}

// listContainers runs containers list --json with args and parses the result, failing the
// test if the output has the token.
func listContainers(t *testing.T, ac *adminCluster, args ...string) map[string][]containerRow {
	t.Helper()
	out, errOut, err := appOutput(ac.adminArgs(append([]string{"containers", "list", "--json"}, args...)...)...)
	if err != nil {
		t.Fatalf("containers list: %v\n%s", err, errOut)
	}
	noToken(t, out+errOut)
	var rows []containerRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("containers list --json is not a JSON array of rows: %v\n%s", err, out)
	}
	byUUID := map[string][]containerRow{}
	for _, r := range rows {
		byUUID[r.UUID] = append(byUUID[r.UUID], r)
	}
	return byUUID
}

func noToken(t *testing.T, output string) {
	t.Helper()
	if strings.Contains(output, fakearvados.AdminToken) {
		t.Error("the token appears in the output")
	}
}

// waitPartitionDown polls containers list until the job on the down partition shows its
// reason (the fake scheduler sets it on its next pass).
func waitPartitionDown(t *testing.T, ac *adminCluster) map[string][]containerRow {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		rows := listContainers(t, ac)
		if r := rows[ac.partitionDown]; len(r) == 1 && r[0].Reason == "PartitionDown" {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job on the down partition never showed PartitionDown: %+v", rows[ac.partitionDown])
		}
	}
}

func TestContainersListMarksEachKindOfStuckContainer(t *testing.T) {
	ac := newAdminCluster(t)
	rows := waitPartitionDown(t, ac)
	for _, tc := range []struct {
		name, uuid, state, job string
		stuck, orphan          bool
		why                    string
	}{
		{"a queued container without a job is not stuck", ac.queued, "Queued", "", false, false, ""},
		{"a job pending on a down partition needs attention", ac.partitionDown, "Locked", ac.jobs[ac.partitionDown], true, false, "PartitionDown (attention)"},
		{"a container locked an hour ago with no job is stuck", ac.lockedNoJob, "Locked", "", true, false, "with no Slurm job"},
		{"a running container with no job is stuck", ac.runningNoJob, "Running", "", true, false, "Running with no Slurm job"},
		{"a live job of a cancelled container is an orphan", ac.cancelled, "Cancelled", ac.jobs[ac.cancelled], true, true, "orphan: container is Cancelled"},
		{"a locked container whose job waits for resources is not stuck", ac.healthy, "Locked", ac.jobs[ac.healthy], false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(rows[tc.uuid]) != 1 {
				t.Fatalf("%d rows for %s, want 1: %+v", len(rows[tc.uuid]), tc.uuid, rows[tc.uuid])
			}
			r := rows[tc.uuid][0]
			if r.State != tc.state || r.JobID != tc.job || r.Stuck != tc.stuck || r.Orphan != tc.orphan || !strings.Contains(r.Why, tc.why) {
				t.Errorf("row %+v, want state %s, job %q, stuck %v, orphan %v, why containing %q",
					r, tc.state, tc.job, tc.stuck, tc.orphan, tc.why)
			}
			if r.Age == "" || r.LockCount < 0 {
				t.Errorf("row %+v has no age", r)
			}
		})
	}
	if age := rows[ac.queued][0].Age; age != "3h" {
		t.Errorf("age of a container created 3 hours ago: %q, want 3h", age)
	}
}

func TestContainersListFiltersByStuckAndState(t *testing.T) {
	ac := newAdminCluster(t)
	waitPartitionDown(t, ac)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"--stuck lists only the stuck containers and orphans", []string{"--stuck"},
			[]string{ac.partitionDown, ac.lockedNoJob, ac.runningNoJob, ac.cancelled}},
		{"--state lists the containers in any of the states given", []string{"--state", "Queued", "--state", "running"},
			[]string{ac.queued, ac.runningNoJob}},
		{"--state with --stuck lists the stuck containers in those states", []string{"--state", "Locked", "--stuck"},
			[]string{ac.partitionDown, ac.lockedNoJob}},
		{"a longer --stuck-after forgives the container locked an hour ago", []string{"--stuck-after", "2h", "--state", "Locked", "--stuck"},
			[]string{ac.partitionDown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := listContainers(t, ac, tc.args...)
			if len(rows) != len(tc.want) {
				t.Errorf("%d containers listed, want %d: %+v", len(rows), len(tc.want), rows)
			}
			for _, u := range tc.want {
				if _, ok := rows[u]; !ok {
					t.Errorf("%s is not listed", u)
				}
			}
		})
	}
}

func TestContainersListPrintsAReadableTable(t *testing.T) {
	ac := newAdminCluster(t)
	waitPartitionDown(t, ac)
	out, errOut, err := appOutput(ac.adminArgs("containers", "list")...)
	if err != nil {
		t.Fatalf("containers list: %v\n%s", err, errOut)
	}
	noToken(t, out+errOut)
	t.Logf("containers list:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 7 || !strings.HasPrefix(lines[0], "UUID ") {
		t.Fatalf("want a header and 6 rows:\n%s", out)
	}
	for _, want := range []string{ac.queued, ac.lockedNoJob, ac.runningNoJob, ac.jobs[ac.partitionDown], "PartitionDown",
		"STUCK: orphan: container is Cancelled", "STUCK: Running with no Slurm job"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table does not mention %q:\n%s", want, out)
		}
	}
}

func TestJobsListShowsOurJobsWithTheirContainersAndMarksOrphans(t *testing.T) {
	ac := newAdminCluster(t)
	for _, asJSON := range []bool{true, false} {
		args := ac.adminArgs("jobs", "list")
		if asJSON {
			args = append(args, "--json")
		}
		out, errOut, err := appOutput(args...)
		if err != nil {
			t.Fatalf("jobs list: %v\n%s", err, errOut)
		}
		noToken(t, out+errOut)
		if !asJSON {
			if !strings.Contains(out, ac.jobs[ac.cancelled]) || !strings.Contains(out, "orphan: container is Cancelled") {
				t.Errorf("the table does not show the orphan job:\n%s", out)
			}
			continue
		}
		var rows []jobRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("jobs list --json: %v\n%s", err, out)
		}
		got := map[string]jobRow{}
		for _, r := range rows {
			got[r.Name] = r
		}
		for uuid, want := range map[string]jobRow{
			ac.partitionDown: {JobID: ac.jobs[ac.partitionDown], ContainerState: "Locked"},
			ac.healthy:       {JobID: ac.jobs[ac.healthy], ContainerState: "Locked"},
			ac.cancelled:     {JobID: ac.jobs[ac.cancelled], ContainerState: "Cancelled", Orphan: true},
		} {
			r := got[uuid]
			if r.JobID != want.JobID || r.ContainerState != want.ContainerState || r.Orphan != want.Orphan || r.SlurmState != "PENDING" {
				t.Errorf("job of %s: %+v, want %+v pending", uuid, r, want)
			}
		}
		if len(rows) != 3 {
			t.Errorf("%d jobs listed, want 3: %+v", len(rows), rows)
		}
	}
}

func TestAdminCommandsSayWhatToSetWhenTheAPIIsNotConfigured(t *testing.T) {
	noAPIEnv(t)
	for _, cmd := range [][]string{{"containers", "list"}, {"jobs", "list"}} {
		_, _, err := appOutput(cmd...)
		if err == nil || exitCode(err) != exitUsage {
			t.Fatalf("%v without an API host: err %v (exit %d), want a usage error", cmd, err, exitCode(err))
		}
		if !strings.Contains(err.Error(), arvados.EnvHost) || !strings.Contains(err.Error(), arvados.EnvToken) {
			t.Errorf("%v: error %q does not name %s and %s", cmd, err, arvados.EnvHost, arvados.EnvToken)
		}
	}
}

func TestContainersListRefusesAnUnknownState(t *testing.T) {
	_, _, err := appOutput("containers", "list", "--state", "Sleeping")
	if err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), "Sleeping") {
		t.Errorf("err %v (exit %d), want a usage error naming the state", err, exitCode(err))
	}
}

func TestEveryAdminCommandShowsAnExampleInItsHelp(t *testing.T) {
	for _, cmd := range [][]string{{"containers", "list"}, {"jobs", "list"}} {
		out, _, err := appOutput(append(cmd, "--help")...)
		if err != nil || !strings.Contains(out, "Example:") || !strings.Contains(out, "dispatch-slurm "+strings.Join(cmd, " ")) {
			t.Errorf("%v --help: err %v, no example:\n%s", cmd, err, out)
		}
	}
}

func TestStuckReasonsOfAContainerAndItsJob(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const us, them = "zzzzz-gj3su-000000000000000", "zzzzz-gj3su-111111111111111"
	pending := func(reason string) *slurm.Job { return &slurm.Job{ID: "7", State: "PENDING", Reason: reason} }
	running := &slurm.Job{ID: "7", State: "RUNNING", Reason: "None"}
	v := containerView{tokenUUID: us, now: now, stuckAfter: 10 * time.Minute}
	for _, tc := range []struct {
		name  string
		c     arvados.Container
		known bool
		job   *slurm.Job
		why   string
	}{
		{"a container locked 5 minutes ago with no job is not stuck yet",
			arvados.Container{State: arvados.Locked, LockedByUUID: us, ModifiedAt: now.Add(-5 * time.Minute)}, true, nil, ""},
		{"a container locked 11 minutes ago with no job is stuck",
			arvados.Container{State: arvados.Locked, LockedByUUID: us, ModifiedAt: now.Add(-11 * time.Minute)}, true, nil, "Locked by us for 11m with no Slurm job"},
		{"a job pending on a reason that never clears is stuck",
			arvados.Container{State: arvados.Locked, LockedByUUID: us}, true, pending("PartitionConfig"), "pending: PartitionConfig (never)"},
		{"a job pending for resources is not stuck",
			arvados.Container{State: arvados.Locked, LockedByUUID: us}, true, pending("Resources"), ""},
		{"a running job of our running container is not stuck",
			arvados.Container{State: arvados.Running, LockedByUUID: us}, true, running, ""},
		{"a job of a container locked by another token is an orphan",
			arvados.Container{State: arvados.Locked, LockedByUUID: them}, true, running, "orphan: container is locked by another token"},
		{"a job of a completed container is an orphan",
			arvados.Container{State: arvados.Complete}, true, running, "orphan: container is Complete"},
		{"a job of an unknown container is an orphan", arvados.Container{}, false, running, "orphan: no such container"},
		{"a queued container locked by nobody with no job is not stuck",
			arvados.Container{State: arvados.Queued, ModifiedAt: now.Add(-time.Hour)}, true, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := v.stuckWhy(tc.c, tc.known, tc.job)
			if (tc.why == "") != (got == "") || !strings.HasPrefix(got, tc.why) {
				t.Errorf("stuck because %q, want %q", got, tc.why)
			}
		})
	}
}

func TestHumanAgeUsesTheLargestWholeUnit(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 40 * time.Second: "40s", 5*time.Minute + 59*time.Second: "5m",
		2 * time.Hour: "2h", 47 * time.Hour: "47h", 3 * 24 * time.Hour: "3d",
	} {
		if got := humanAge(d); got != want {
			t.Errorf("humanAge(%s) = %q, want %q", d, got, want)
		}
	}
}
