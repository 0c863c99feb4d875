package main

import (
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/config"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

// realCluster is a fake API server whose containers belong to a fresh cluster id, so that the
// jobs named after them on the machine's shared Slurm are this test's alone.
type realCluster struct {
	srv     *fakearvados.Server
	cluster string
}

func newRealCluster(t *testing.T) *realCluster {
	t.Helper()
	testenv.RequireRealSlurm(t)
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 5)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	rc := &realCluster{cluster: string(b)}
	rc.srv = fakearvados.New(fakearvados.Options{ClusterID: rc.cluster})
	t.Cleanup(rc.srv.Close)
	t.Setenv(arvados.EnvHost, rc.srv.URL())
	t.Setenv(arvados.EnvToken, fakearvados.AdminToken)
	t.Setenv(arvados.EnvInsecure, "")
	t.Setenv(config.EnvConfig, "")
	return rc
}

// submit submits a real job named uuid that sleeps, to partition, and cancels it at the end
// of the test.
func (rc *realCluster) submit(t *testing.T, uuid, partition string) string {
	t.Helper()
	out, err := exec.Command("sbatch", "--parsable", "--job-name="+uuid, "--partition="+partition,
		"--output=/dev/null", "--chdir="+t.TempDir(), "--wrap=sleep 300").CombinedOutput()
	if err != nil {
		t.Fatalf("sbatch: %v: %s", err, out)
	}
	id := strings.TrimSpace(strings.Split(string(out), ";")[0])
	t.Cleanup(func() { _ = exec.Command("scancel", id).Run() })
	return id
}

// jobState is the job's state as squeue -t all shows it ("" once slurmctld forgot it).
func jobState(t *testing.T, id string) string {
	t.Helper()
	out, _ := exec.Command("squeue", "--noheader", "--states=all", "--jobs="+id, "--format=%T").Output()
	return strings.TrimSpace(string(out))
}

// waitJobState polls until the job is in state, failing after timeout.
func waitJobState(t *testing.T, id, state string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); jobState(t, id) != state; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %q after %s, want %s", id, jobState(t, id), timeout, state)
		}
	}
}

// jobGone reports whether the job has ended (or is forgotten).
func jobGone(t *testing.T, id string) bool {
	switch jobState(t, id) {
	case "", "CANCELLED", "COMPLETED", "FAILED":
		return true
	}
	return false
}

// run runs containers <cmd> for this cluster with args and no terminal.
func (rc *realCluster) run(t *testing.T, cmd string, args ...string) (string, string, error) {
	t.Helper()
	return runWithInput(t, strings.NewReader(""), append([]string{"containers", cmd, "--cluster-id=" + rc.cluster}, args...)...)
}

func lockedByUs(st arvados.ContainerState) arvados.Container {
	return arvados.Container{State: st, Priority: 1, LockedByUUID: fakearvados.AdminTokenUUID, LockCount: 1}
}

func TestRealSlurmUnlockCancelsThePendingJobThenUnlocks(t *testing.T) {
	rc := newRealCluster(t)
	uuid := rc.srv.Seed(lockedByUs(arvados.Locked))[0]
	id := rc.submit(t, uuid, "down")
	waitJobState(t, id, "PENDING", 30*time.Second)

	out, errOut, err := rc.run(t, "unlock", "--dry-run", uuid)
	if err != nil || !strings.Contains(out, "would cancel Slurm job "+id+" (PENDING)") {
		t.Fatalf("dry run: %v\n%s%s", err, out, errOut)
	}
	if jobState(t, id) != "PENDING" {
		t.Fatalf("the dry run changed the job: %s", jobState(t, id))
	}
	if c, _ := rc.srv.Container(uuid); c.State != arvados.Locked {
		t.Fatalf("the dry run changed the container: %s", c.State)
	}

	out, errOut, err = rc.run(t, "unlock", uuid)
	if err != nil {
		t.Fatalf("unlock: %v\n%s%s", err, out, errOut)
	}
	if !jobGone(t, id) {
		t.Errorf("job %s is %s after unlock", id, jobState(t, id))
	}
	if c, _ := rc.srv.Container(uuid); c.State != arvados.Queued || c.LockedByUUID != "" {
		t.Errorf("container %s locked by %q, want Queued", c.State, c.LockedByUUID)
	}
}

func TestRealSlurmCancelStopsARunningJobAndCancelsTheContainer(t *testing.T) {
	rc := newRealCluster(t)
	uuids := rc.srv.Seed(lockedByUs(arvados.Running), arvados.Container{Priority: 1})
	running, queued := uuids[0], uuids[1]
	id := rc.submit(t, running, "debug")
	waitJobState(t, id, "RUNNING", 60*time.Second)

	out, errOut, err := rc.run(t, "cancel", "--yes", "--wait=60s", running, queued)
	if err != nil {
		t.Fatalf("cancel: %v\n%s%s", err, out, errOut)
	}
	t.Logf("containers cancel:\n%s%s\njob %s is now %q", out, errOut, id, jobState(t, id))
	if !jobGone(t, id) {
		t.Errorf("job %s is %s after cancel", id, jobState(t, id))
	}
	for _, u := range uuids {
		if c, _ := rc.srv.Container(u); c.State != arvados.Cancelled || c.RuntimeStatus["error"] != adminCancelMessage {
			t.Errorf("%s is %s with runtime_status %v, want Cancelled by an administrator", u, c.State, c.RuntimeStatus)
		}
	}
}

func TestRealSlurmRefusesAnotherTokensContainerAndLeavesItsJob(t *testing.T) {
	rc := newRealCluster(t)
	theirs := rc.srv.Seed(arvados.Container{State: arvados.Locked, Priority: 1, LockedByUUID: fakearvados.Dispatcher2TokenUUID, LockCount: 1})[0]
	id := rc.submit(t, theirs, "down")
	waitJobState(t, id, "PENDING", 30*time.Second)
	for _, cmd := range []string{"unlock", "cancel"} {
		_, errOut, err := rc.run(t, cmd, theirs)
		if err == nil || exitCode(err) != exitFailure || !strings.Contains(errOut, "another token") {
			t.Errorf("%s: err %v, stderr %q: want a refusal with exit 1", cmd, err, errOut)
		}
	}
	if st := jobState(t, id); st != "PENDING" {
		t.Errorf("the other token's job is %s, want still PENDING", st)
	}
	if c, _ := rc.srv.Container(theirs); c.State != arvados.Locked || c.LockedByUUID != fakearvados.Dispatcher2TokenUUID {
		t.Errorf("the other token's container is %s locked by %q", c.State, c.LockedByUUID)
	}
}
