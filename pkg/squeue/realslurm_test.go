package squeue

import (
	"context"
	"crypto/rand"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

// Real tier: the watcher with the CLI backend against the machine's Slurm (SLURM-LOCAL.md:
// partitions debug and down, priority = 1000000 − nice). The Slurm is shared with other
// tests: each test uses its own random cluster id, so every other job is foreign to it, and
// cancels what it submitted.

type realTier struct {
	t       *testing.T
	cluster string
	cli     *slurm.CLI
	w       *Watcher
	ids     []string
	clock   *tierClock
}

func startRealTier(t *testing.T, cfg Config, squeuePath string) *realTier {
	t.Helper()
	testenv.RequireRealSlurm(t)
	r := &realTier{t: t, cluster: randomWord(5), clock: &tierClock{}}
	cfg.Now = r.clock.Now
	cli, err := slurm.NewCLI(slurm.CLIConfig{SqueuePath: squeuePath, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r.cli = cli
	cfg.ClusterID = r.cluster
	if r.w, err = New(cli, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if len(r.ids) > 0 {
			if err := r.cli.Cancel(context.Background(), slurm.CancelRequest{IDs: r.ids}); err != nil {
				t.Errorf("clean up jobs %v: %v", r.ids, err)
			}
		}
	})
	return r
}

const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomWord(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func (r *realTier) uuid() string { return r.cluster + "-dz642-" + randomWord(15) }

func (r *realTier) submit(uuid string, nice int, partition, script string) string {
	r.t.Helper()
	id, err := r.cli.Submit(context.Background(), slurm.SubmitRequest{Name: uuid, Nice: nice,
		Args: []string{"--partition=" + partition, "--time=5", "--output=/dev/null"}, Script: []byte("#!/bin/sh\nexec " + script + "\n")})
	if err != nil {
		r.t.Fatalf("submit %s: %v", uuid, err)
	}
	r.ids = append(r.ids, id)
	return id
}

func (r *realTier) cycles(n int) {
	r.t.Helper()
	for range n {
		r.clock.step()
		if err := r.w.Cycle(context.Background()); err != nil {
			r.t.Fatalf("cycle: %v", err)
		}
	}
}

// waitState polls a job (by id) until it is in state, failing after a minute.
func (r *realTier) waitState(id, state string) {
	r.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		jobs, err := r.cli.Lookup(context.Background(), slurm.LookupQuery{ID: id})
		if err == nil && len(jobs) == 1 && jobs[0].State == state {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("job %s not %s after a minute: %+v %v", id, state, jobs, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRealSlurmPendingJobsFollowContainerPriorityAfterOneCycle(t *testing.T) {
	r := startRealTier(t, Config{}, "")
	prio := map[string]int64{}
	for n, nice := range []int{500, 10, 10000, 0, 42, 42, 7, 9000, 1, 3} {
		u := r.uuid()
		r.submit(u, nice, "down", "true")
		prio[u] = int64(100 + (n*37)%11)
	}
	r.w.SetWanted(Wanted{Locked: prio, At: time.Now()})
	r.cycles(1)
	snap, err := r.cli.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var jobs []PlanJob
	for _, j := range snap.Jobs {
		if p, ok := prio[j.Name]; ok {
			jobs = append(jobs, PlanJob{ID: j.ID, UUID: j.Name, Nice: j.Nice, SlurmPriority: j.Priority, Priority: p})
		}
	}
	if len(jobs) != len(prio) {
		t.Fatalf("squeue shows %d of our %d jobs", len(jobs), len(prio))
	}
	if err := ordered(jobs); err != nil {
		t.Fatalf("squeue priorities after one cycle: %v (%+v)", err, jobs)
	}
	t.Logf("renice calls: %d for %d jobs", r.w.Stats().ReniceCalls, r.w.Stats().RenicedJobs)
}

func TestRealSlurmFinishedAndCancelledJobsAreConfirmedWithTheirState(t *testing.T) {
	r := startRealTier(t, Config{}, "")
	stay, done, gone := r.uuid(), r.uuid(), r.uuid()
	r.submit(stay, 0, "down", "true")
	doneID := r.submit(done, 0, "debug", "true")
	goneID := r.submit(gone, 0, "down", "true")
	r.cycles(1)
	if err := r.cli.Cancel(context.Background(), slurm.CancelRequest{IDs: []string{goneID}}); err != nil {
		t.Fatal(err)
	}
	r.w.NoteCancelled(gone, time.Now())
	r.waitState(doneID, "COMPLETED")
	r.waitState(goneID, "CANCELLED")
	want := map[string]Ending{done: {JobID: doneID, State: "COMPLETED"}, gone: {JobID: goneID, State: "CANCELLED"}}
	for c := 1; c <= 3; c++ {
		r.cycles(1)
		confirmed := 0
		for u, e := range want {
			if p := r.w.Presence(u); p.Kind == AbsentConfirmed {
				if p.Ending.JobID != e.JobID || p.Ending.State != e.State {
					t.Fatalf("%s: ending %+v, want %+v", u, p.Ending, e)
				}
				confirmed++
			}
		}
		if confirmed == len(want) {
			if p := r.w.Presence(stay); p.Kind != Present || p.Job.Reason != "PartitionDown" || p.Class != slurm.ReasonAttention {
				t.Fatalf("the pending job: %+v", p)
			}
			return
		}
	}
	t.Fatalf("not confirmed within three cycles: %+v, %+v", r.w.Presence(done), r.w.Presence(gone))
}

func TestRealSlurmUnwantedJobsAreCancelledOnce(t *testing.T) {
	r := startRealTier(t, Config{}, "")
	pend, run, keep := r.uuid(), r.uuid(), r.uuid()
	pendID := r.submit(pend, 0, "down", "true")
	runID := r.submit(run, 0, "debug", "sleep 300")
	r.submit(keep, 0, "down", "true")
	r.waitState(runID, "RUNNING")
	r.cycles(1)
	r.w.SetWanted(Wanted{Locked: map[string]int64{keep: 5, pend: 0},
		Unwanted: map[string]UnwantedReason{run: ContainerCancelled}, At: time.Now()})
	r.cycles(1)
	if st := r.w.Stats(); st.CancelledJobs != 2 || st.CancelErrors != 0 {
		t.Fatalf("stats after one cycle: %+v", st)
	}
	r.waitState(pendID, "CANCELLED")
	deadline := time.Now().Add(time.Minute)
	for r.w.Presence(run).Kind != AbsentConfirmed || r.w.Presence(pend).Kind != AbsentConfirmed {
		if time.Now().After(deadline) {
			t.Fatalf("not confirmed gone: %+v %+v", r.w.Presence(run), r.w.Presence(pend))
		}
		r.cycles(1)
		time.Sleep(100 * time.Millisecond)
	}
	if st := r.w.Stats(); st.CancelledJobs != 2 {
		t.Fatalf("cancelled %d jobs, want 2 (once each)", st.CancelledJobs)
	}
	if p := r.w.Presence(keep); p.Kind != Present {
		t.Fatalf("the wanted job: %v", p.Kind)
	}
	t.Logf("the running job ended as %s after TERM to its batch step", r.w.Presence(run).Ending.State)
}

// TestRealSlurmWrapperFaultsNeverConfirmAbsenceOfLiveJobs: squeue behind a wrapper script
// that fails, prints nothing or drops most jobs.
func TestRealSlurmWrapperFaultsNeverConfirmAbsenceOfLiveJobs(t *testing.T) {
	testenv.RequireRealSlurm(t)
	real, err := exec.LookPath("squeue")
	if err != nil {
		t.Fatal(err)
	}
	for _, modes := range [][]string{{"fail"}, {"empty"}, {"drop"}, {"garble"}, {"empty", "snapshots-only"}} {
		t.Run("squeue "+strings.Join(modes, " "), func(t *testing.T) {
			dir := t.TempDir()
			r := startRealTier(t, Config{}, writeShim(t, dir, real))
			var uuids []string
			for n := range 4 {
				u := r.uuid()
				partition, script := "down", "true"
				if n == 0 {
					partition, script = "debug", "sleep 300"
				}
				r.submit(u, 0, partition, script)
				uuids = append(uuids, u)
			}
			r.cycles(1)
			setShim(t, dir, true, modes...)
			for range 5 {
				_ = r.w.Cycle(context.Background())
				for _, u := range uuids {
					if p := r.w.Presence(u); p.Kind == AbsentConfirmed {
						t.Fatalf("live job of %s confirmed absent: %+v", u, p)
					}
				}
			}
			setShim(t, dir, false, modes...)
			r.cycles(1)
			for _, u := range uuids {
				if p := r.w.Presence(u); p.Kind != Present {
					t.Errorf("after recovery %s is %v", u, p.Kind)
				}
			}
		})
	}
}
