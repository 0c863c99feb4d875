package soak

import (
	"io"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

// A bug the soak found, reduced to its trigger: the dispatcher is killed while one container
// is Running (its job running) and another Locked (its job pending in a DOWN partition); it
// restarts while squeue prints nothing with exit 0 for 8 calls. Neither container may be
// cancelled, and neither may get a second job. (The new process used to take those empty
// answers as confirmed absence of jobs it had never seen.)
func TestRestartWhileSqueuePrintsNothingCancelsNothingAndSubmitsNoSecondJob(t *testing.T) {
	w, err := newWorld(Options{DispatcherBin: dispatcherBin, FakeslurmBin: fakeslurmBin, StandinBin: standinBin,
		Dir: t.TempDir(), Seed: 1}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.close)
	if err := w.setup(); err != nil {
		t.Fatal(err)
	}
	ctr := func(partitions ...string) string {
		c, info := w.container()
		c.Command, c.SchedulingParameters.Partitions = []string{"sleep", "60"}, partitions
		w.ours[info.uuid] = info
		w.api.Seed(c)
		return c.UUID
	}
	running, pending := ctr(), ctr("down")
	if err := w.startDispatcher(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "one container Running, the other's job pending", func() bool {
		c, _ := w.api.Container(running)
		return c.State == arvados.Running && len(liveJobs(t, w, pending)) == 1
	})
	if err := w.current().kill(); err != nil {
		t.Fatal(err)
	}
	if err := w.slurm.admin.AddFault(sim.Fault{Command: "squeue", Kind: sim.FaultEmpty, Count: 8}); err != nil {
		t.Fatal(err)
	}
	if err := w.startDispatcher(); err != nil {
		t.Fatal(err)
	}
	usedUpAt := -1 // squeue runs when the fault was used up
	waitFor(t, 30*time.Second, "the fault to be used up, then three more squeue runs", func() bool {
		fs, err := w.slurm.admin.Faults()
		if err != nil || len(fs) > 0 {
			return false
		}
		calls, err := sim.Calls(w.slurm.stateDir)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range calls {
			if c.Command == "squeue" {
				n++
			}
		}
		if usedUpAt < 0 {
			usedUpAt = n
		}
		return n >= usedUpAt+3
	})
	if c, _ := w.api.Container(running); c.State != arvados.Running {
		t.Errorf("the Running container: %s, want still Running", describe(c))
	}
	if js := liveJobs(t, w, pending); len(js) != 1 {
		t.Errorf("the pending container has %d live jobs, want 1: %s", len(js), describeJobs(js))
	}
}

func liveJobs(t *testing.T, w *world, name string) []sim.Job {
	t.Helper()
	jobs, err := w.slurm.jobs()
	if err != nil {
		t.Fatal(err)
	}
	var out []sim.Job
	for _, j := range jobs {
		if j.Name == name && live(j) {
			out = append(out, j)
		}
	}
	return out
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
