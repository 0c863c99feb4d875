package slurmcontract

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/fakeslurmtest"
	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is a Slurm to hold the CLI backend to the contract against.
type backend struct {
	// cfg returns a CLI configuration whose sbatch runs in dir.
	cfg func(dir string) slurm.CLIConfig
	// up and down are a partition that runs jobs and one that is DOWN.
	up, down string
}

func TestContractFake(t *testing.T) {
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{})
	runContract(t, backend{
		cfg: func(dir string) slurm.CLIConfig {
			return slurm.CLIConfig{SbatchPath: env.SbatchPath, SqueuePath: env.SqueuePath,
				ScancelPath: env.ScancelPath, ScontrolPath: env.ScontrolPath, Env: env.Env, Dir: dir}
		},
		up: "debug", down: "down",
	})
}

func TestContractReal(t *testing.T) {
	testenv.RequireRealSlurm(t)
	runContract(t, backend{
		cfg:  func(dir string) slurm.CLIConfig { return slurm.CLIConfig{Dir: dir} },
		up:   "debug",
		down: "down",
	})
}

// node is the first compute node's size, as scontrol reports it.
type node struct {
	cpus     int
	mem, tmp int64
}

func nodeSize(t *testing.T, cfg slurm.CLIConfig) node {
	t.Helper()
	path := cfg.ScontrolPath
	if path == "" {
		path = "scontrol"
	}
	cmd := exec.Command(path, "-o", "show", "node")
	cmd.Env = cfg.Env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scontrol show node: %v", err)
	}
	var n node
	for _, f := range strings.Fields(strings.SplitN(string(out), "\n", 2)[0]) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "CPUTot":
			n.cpus, _ = strconv.Atoi(v)
		case "RealMemory":
			n.mem, _ = strconv.ParseInt(v, 10, 64)
		case "TmpDisk":
			n.tmp, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if n.cpus == 0 || n.mem == 0 {
		t.Fatalf("no node size in %q", out)
	}
	return n
}

// suite is what every subtest gets: a client, the backend, the node size.
type suite struct {
	b    backend
	node node
}

// client returns a CLI backend whose sbatch runs in a temporary directory (jobs' output
// lands there) and that directory.
func (s *suite) client(t *testing.T) (*slurm.CLI, string) {
	t.Helper()
	dir := t.TempDir()
	c, err := slurm.NewCLI(s.b.cfg(dir))
	if err != nil {
		t.Fatalf("NewCLI: %v", err)
	}
	return c, dir
}

func runContract(t *testing.T, b backend) {
	cli, err := slurm.NewCLI(b.cfg(t.TempDir()))
	if err != nil {
		t.Fatalf("NewCLI: %v", err)
	}
	var _ slurm.Client = cli
	s := &suite{b: b, node: nodeSize(t, b.cfg(""))}
	t.Run("submit returns the id of a job with our name and nice", s.submitAndSee)
	t.Run("renice changes several jobs in one call and priority follows nice", s.renice)
	t.Run("renice reports gone and finished ids and updates the others", s.reniceGone)
	t.Run("cancel of a pending job cancels it", s.cancelPending)
	t.Run("cancel of a running job sends TERM to its batch script and the job ends", s.cancelRunning)
	t.Run("a plain cancel of a running job cancels it", s.cancelRunningPlain)
	t.Run("cancel as if running of a job still pending cancels it at once", s.cancelRunningButPending)
	t.Run("cancel by name cancels every job of that name", s.cancelByName)
	t.Run("cancel of absent or finished jobs is not an error", s.cancelAbsent)
	t.Run("lookup finds finished jobs by id and name", s.lookupFinished)
	t.Run("rejections are permanent errors with Slurm's message", s.rejections)
	t.Run("jobs that cannot run now wait with a reason", s.pendingReasons)
	t.Run("the job runs with the submitted environment", s.environment)
}

var (
	ctxTimeout = time.Minute
	waitFor    = 30 * time.Second
)

func context_(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), ctxTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newUUID returns a container uuid no other test uses.
func newUUID(t *testing.T) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "zzzzz-dz642-" + string(b)
}

const sleepScript = "#!/bin/sh\nexec sleep 30\n"

// submit submits a job and cancels every job of its name when the test ends.
func submit(t *testing.T, c *slurm.CLI, name string, nice int, script string, args ...string) (string, error) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Cancel(ctx, slurm.CancelRequest{Name: name}); err != nil {
			t.Errorf("clean up jobs named %s: %v", name, err)
		}
	})
	return c.Submit(context_(t), slurm.SubmitRequest{Name: name, Nice: nice, Script: []byte(script),
		Args: append([]string{"-o", "/dev/null"}, args...)})
}

func mustSubmit(t *testing.T, c *slurm.CLI, name string, nice int, script string, args ...string) string {
	t.Helper()
	id, err := submit(t, c, name, nice, script, args...)
	if err != nil {
		t.Fatalf("submit %s: %v", name, err)
	}
	return id
}

func lookupID(t *testing.T, c *slurm.CLI, id string) slurm.Job {
	t.Helper()
	jobs, err := c.Lookup(context_(t), slurm.LookupQuery{ID: id})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("lookup %s: %v %+v", id, err, jobs)
	}
	return jobs[0]
}

// waitJob polls Lookup until cond holds for job id.
func waitJob(t *testing.T, c *slurm.CLI, id, what string, cond func(slurm.Job) bool) slurm.Job {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		j := lookupID(t, c, id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: waited %v for %s; it is %s (%s)", id, waitFor, what, j.State, j.Reason)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitJobFor polls job id until cond holds or d has passed, and returns its last state.
func waitJobFor(t *testing.T, c *slurm.CLI, id string, d time.Duration, cond func(slurm.Job) bool) slurm.Job {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		j := lookupID(t, c, id)
		if cond(j) || time.Now().After(deadline) {
			return j
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func finished(j slurm.Job) bool {
	switch j.State {
	case "PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED":
		return false
	}
	return true
}

// snapshotJob takes a snapshot, checks that all of it parsed, and returns job id from it.
func snapshotJob(t *testing.T, c *slurm.CLI, id string) (slurm.Job, bool) {
	t.Helper()
	snap, err := c.Snapshot(context_(t))
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if snap.Skipped != 0 {
		t.Errorf("snapshot skipped %d lines of squeue output", snap.Skipped)
	}
	if snap.Started.IsZero() || snap.Finished.Before(snap.Started) {
		t.Errorf("snapshot times: started %v finished %v", snap.Started, snap.Finished)
	}
	for _, j := range snap.Jobs {
		if j.ID == id {
			return j, true
		}
	}
	return slurm.Job{}, false
}

func (s *suite) submitAndSee(t *testing.T) {
	t.Parallel()
	c, _ := s.client(t)
	name := newUUID(t)
	id := mustSubmit(t, c, name, 5, sleepScript, "--partition="+s.b.down)
	want := slurm.Job{ID: id, Name: name, State: "PENDING", Nice: 5, Priority: 1000000 - 5, Reason: "PartitionDown"}
	// A busy real node makes the first reason Resources until the next scheduling pass.
	if got := waitJob(t, c, id, "reason PartitionDown", func(j slurm.Job) bool { return j.Reason == "PartitionDown" }); got != want {
		t.Errorf("lookup: %+v, want %+v", got, want)
	}
	got, ok := snapshotJob(t, c, id)
	if !ok || got != want {
		t.Errorf("snapshot: %+v (found %v), want %+v", got, ok, want)
	}
	jobs, err := c.Lookup(context_(t), slurm.LookupQuery{Name: name})
	if err != nil || len(jobs) != 1 || jobs[0] != want {
		t.Errorf("lookup by name: %v %+v", err, jobs)
	}
}

func (s *suite) renice(t *testing.T) {
	t.Parallel()
	c, _ := s.client(t)
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, mustSubmit(t, c, newUUID(t), 0, sleepScript, "--partition="+s.b.down))
	}
	if gone, err := c.Renice(context_(t), 10, ids[:2]); err != nil || len(gone) != 0 {
		t.Fatalf("renice: gone %v, err %v", gone, err)
	}
	if gone, err := c.Renice(context_(t), 20, ids[2:]); err != nil || len(gone) != 0 {
		t.Fatalf("renice: gone %v, err %v", gone, err)
	}
	for i, nice := range []int{10, 10, 20} {
		j, ok := snapshotJob(t, c, ids[i])
		if !ok || j.Nice != nice || j.Priority != int64(1000000-nice) {
			t.Errorf("job %s after renice: %+v (found %v), want nice %d priority %d", ids[i], j, ok, nice, 1000000-nice)
		}
	}
}

func (s *suite) reniceGone(t *testing.T) {
	t.Parallel()
	c, _ := s.client(t)
	live := mustSubmit(t, c, newUUID(t), 0, sleepScript, "--partition="+s.b.down)
	done := mustSubmit(t, c, newUUID(t), 0, sleepScript, "--partition="+s.b.down)
	if err := c.Cancel(context_(t), slurm.CancelRequest{IDs: []string{done}}); err != nil {
		t.Fatal(err)
	}
	const never = "999999"
	gone, err := c.Renice(context_(t), 7, []string{never, live, done})
	if err != nil {
		t.Fatalf("renice with gone ids: %v", err)
	}
	if strings.Join(gone, ",") != never+","+done {
		t.Errorf("gone %v, want [%s %s]", gone, never, done)
	}
	if j := lookupID(t, c, live); j.Nice != 7 {
		t.Errorf("the live job's nice is %d, want 7", j.Nice)
	}
}

func (s *suite) cancelPending(t *testing.T) {
	t.Parallel()
	c, _ := s.client(t)
	id := mustSubmit(t, c, newUUID(t), 0, sleepScript, "--partition="+s.b.down)
	if err := c.Cancel(context_(t), slurm.CancelRequest{IDs: []string{id}}); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if j := lookupID(t, c, id); j.State != "CANCELLED" {
		t.Errorf("cancelled pending job: %+v", j)
	}
	if _, ok := snapshotJob(t, c, id); ok {
		t.Error("a cancelled job is still in the snapshot")
	}
}

func (s *suite) cancelRunning(t *testing.T) {
	t.Parallel()
	c, _ := s.client(t)
	id := mustSubmit(t, c, newUUID(t), 0, sleepScript, "--partition="+s.b.up)
	waitJob(t, c, id, "it to run", func(j slurm.Job) bool { return j.State == "RUNNING" })
	// TERM to the batch script: the script dies of it, which Slurm records as FAILED. Real
	// Slurm reports a job RUNNING a moment before its batch step exists, and a signal sent
	// then is lost (scancel still exits 0): so, as the watcher does for a job that lingers,
	// send it again until the job ends.
	var j slurm.Job
	deadline := time.Now().Add(waitFor)
	for {
		if err := c.Cancel(context_(t), slurm.CancelRequest{IDs: []string{id}, Running: true}); err != nil {
			t.Fatalf("cancel running: %v", err)
		}
		if j = waitJobFor(t, c, id, 3*time.Second, finished); finished(j) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: still %s (%s) %v after TERM to its batch step, sent again every 3 s", id, j.State, j.Reason, waitFor)
		}
	}
	if j.State != "FAILED" || j.Reason != "JobLaunchFailure" {
		t.Errorf("a job whose batch script died of TERM ended %s (%s), want FAILED (JobLaunchFailure)", j.State, j.Reason)
	}
}

func (s *suite) cancelRunningPlain(t *testing.T) {
	t.Parallel()
	c, _ := s.client(t)
	id := mustSubmit(t, c, newUUID(t), 0, sleepScript, "--partition="+s.b.up)
	waitJob(t, c, id, "it to run", func(j slurm.Job) bool { return j.State == "RUNNING" })
	if err := c.Cancel(context_(t), slurm.CancelRequest{IDs: []string{id}}); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if j := waitJob(t, c, id, "it to end", finished); j.State != "CANCELLED" {
		t.Errorf("a cancelled running job ended %s (%s), want CANCELLED", j.State, j.Reason)
	}
}

func (s *suite) cancelRunningButPending(t *testing.T) {
	t.Parallel()
	c, _ := s.client(t)
	id := mustSubmit(t, c, newUUID(t), 0, sleepScript, "--partition="+s.b.down)
	start := time.Now()
	if err := c.Cancel(context_(t), slurm.CancelRequest{IDs: []string{id}, Running: true}); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("cancel took %v: a signal to a pending job is retried for 95 s", took)
	}
	if j := lookupID(t, c, id); j.State != "CANCELLED" {
		t.Errorf("job after cancel: %+v", j)
	}
}

func (s *suite) cancelByName(t *testing.T) {
	t.Parallel()
	c, _ := s.client(t)
	name := newUUID(t)
	a := mustSubmit(t, c, name, 0, sleepScript, "--partition="+s.b.down)
	b := mustSubmit(t, c, name, 0, sleepScript, "--partition="+s.b.down)
	other := mustSubmit(t, c, newUUID(t), 0, sleepScript, "--partition="+s.b.down)
	if err := c.Cancel(context_(t), slurm.CancelRequest{Name: name}); err != nil {
		t.Fatalf("cancel by name: %v", err)
	}
	for _, id := range []string{a, b} {
		if j := lookupID(t, c, id); j.State != "CANCELLED" {
			t.Errorf("job %s after cancel by name: %+v", id, j)
		}
	}
	if j := lookupID(t, c, other); j.State != "PENDING" {
		t.Errorf("a job of another name was touched: %+v", j)
	}
}

func (s *suite) cancelAbsent(t *testing.T) {
	t.Parallel()
	c, _ := s.client(t)
	done := mustSubmit(t, c, newUUID(t), 0, sleepScript, "--partition="+s.b.down)
	if err := c.Cancel(context_(t), slurm.CancelRequest{IDs: []string{done}}); err != nil {
		t.Fatal(err)
	}
	for _, req := range []slurm.CancelRequest{
		{IDs: []string{"999999"}},
		{IDs: []string{"999999"}, Running: true},
		{IDs: []string{done}},
		{IDs: []string{done}, Running: true},
		{Name: newUUID(t)},
		{Name: newUUID(t), Running: true},
	} {
		if err := c.Cancel(context_(t), req); err != nil {
			t.Errorf("cancel %+v: %v", req, err)
		}
	}
}

func (s *suite) lookupFinished(t *testing.T) {
	t.Parallel()
	c, _ := s.client(t)
	name := newUUID(t)
	id := mustSubmit(t, c, name, 0, "#!/bin/sh\nexit 0\n", "--partition="+s.b.up)
	j := waitJob(t, c, id, "it to complete", finished)
	if j.State != "COMPLETED" || j.Name != name {
		t.Errorf("finished job: %+v", j)
	}
	jobs, err := c.Lookup(context_(t), slurm.LookupQuery{Name: name})
	if err != nil || len(jobs) != 1 || jobs[0].ID != id || jobs[0].State != "COMPLETED" {
		t.Errorf("lookup by name of a finished job: %v %+v", err, jobs)
	}
	jobs, err = c.Lookup(context_(t), slurm.LookupQuery{ID: "999999"})
	if err != nil || len(jobs) != 0 {
		t.Errorf("lookup of an id slurmctld never knew: %v %+v", err, jobs)
	}
	jobs, err = c.Lookup(context_(t), slurm.LookupQuery{Name: newUUID(t)})
	if err != nil || len(jobs) != 0 {
		t.Errorf("lookup of a name never used: %v %+v", err, jobs)
	}
}

func (s *suite) rejections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"more memory than the node has", []string{"--mem=" + strconv.FormatInt(s.node.mem+1, 10)}, "Requested node configuration is not available"},
		{"more disk than the node has", []string{"--tmp=" + strconv.FormatInt(s.node.tmp+1, 10)}, "Requested node configuration is not available"},
		{"a feature no node has", []string{"--constraint=nosuchfeature"}, "Invalid feature specification"},
		{"a partition that does not exist", []string{"--partition=nosuchpartition"}, "Invalid partition name specified"},
	}
	c, _ := s.client(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := submit(t, c, newUUID(t), 0, sleepScript, tt.args...)
			var re *slurm.RejectError
			if !errors.Is(err, slurm.ErrPermanent) || !errors.As(err, &re) || !strings.Contains(re.Message, tt.msg) {
				t.Errorf("submit with %v: %v, want a permanent rejection saying %q", tt.args, err, tt.msg)
			}
			if slurm.IsAmbiguous(err) {
				t.Errorf("a rejection is ambiguous: %v", err)
			}
		})
	}
}

func (s *suite) pendingReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		reason string
		prio   int64
	}{
		{"more CPUs than any node waits for PartitionConfig", []string{"--partition=" + s.b.up, "--cpus-per-task=" + strconv.Itoa(s.node.cpus+1)}, "PartitionConfig", 1000000},
		{"a DOWN partition waits for PartitionDown", []string{"--partition=" + s.b.down}, "PartitionDown", 1000000},
		{"a held job waits for JobHeldUser with priority 0", []string{"--partition=" + s.b.up, "--hold"}, "JobHeldUser", 0},
	}
	c, _ := s.client(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := mustSubmit(t, c, newUUID(t), 0, sleepScript, tt.args...)
			// A busy real node makes the first reason Resources until the next scheduling pass.
			waitJob(t, c, id, "reason "+tt.reason, func(j slurm.Job) bool { return j.Reason == tt.reason })
			j, ok := snapshotJob(t, c, id)
			if !ok || j.State != "PENDING" || j.Reason != tt.reason || j.Priority != tt.prio {
				t.Errorf("job %+v (found %v), want PENDING for %s with priority %d", j, ok, tt.reason, tt.prio)
			}
		})
	}
}

func (s *suite) environment(t *testing.T) {
	t.Parallel()
	c, dir := s.client(t)
	out := filepath.Join(dir, "env.out")
	script := "#!/bin/sh\necho \"$CONTRACT_VAR $SLURM_JOB_NAME $(pwd)\" > " + out + "\n"
	name := newUUID(t)
	id, err := c.Submit(context_(t), slurm.SubmitRequest{Name: name, Script: []byte(script),
		Env: []string{"CONTRACT_VAR=from the dispatcher"}, Args: []string{"-o", "/dev/null", "--partition=" + s.b.up}})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	t.Cleanup(func() { c.Cancel(context.Background(), slurm.CancelRequest{IDs: []string{id}}) })
	if j := waitJob(t, c, id, "it to complete", finished); j.State != "COMPLETED" {
		t.Fatalf("job ended %s", j.State)
	}
	b, err := os.ReadFile(out)
	if want := "from the dispatcher " + name + " " + dir + "\n"; err != nil || string(b) != want {
		t.Errorf("the job wrote %q (%v), want %q", b, err, want)
	}
}
