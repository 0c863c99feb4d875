package squeue

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/fakeslurmtest"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

// Fake tier: the watcher with the real CLI backend (slurm.NewCLI) against test/fakeslurm.

type fakeTier struct {
	t     *testing.T
	env   *fakeslurmtest.Env
	cli   *slurm.CLI
	w     *Watcher
	clock *tierClock
	// shimDir holds squeue shim switches (see withShim).
	shimDir string
}

// startFakeTier starts a fake cluster and a watcher on it. With shim, squeue is a wrapper
// script around the fake one that misbehaves while a switch file exists (see shimScript).
func startFakeTier(t *testing.T, cfg Config, shim bool) *fakeTier {
	t.Helper()
	f := &fakeTier{t: t, env: fakeslurmtest.Start(t, fakeslurmtest.Options{}), clock: &tierClock{}}
	cfg.Now = f.clock.Now
	ccfg := slurm.CLIConfig{SbatchPath: f.env.SbatchPath, SqueuePath: f.env.SqueuePath, ScancelPath: f.env.ScancelPath,
		ScontrolPath: f.env.ScontrolPath, Env: f.env.Env, Dir: t.TempDir()}
	if shim {
		f.shimDir = t.TempDir()
		ccfg.SqueuePath = writeShim(t, f.shimDir, f.env.SqueuePath)
	}
	cli, err := slurm.NewCLI(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	f.cli = cli
	if cfg.ClusterID == "" {
		cfg.ClusterID = "zzzzz"
	}
	if f.w, err = New(cli, cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// writeShim writes an squeue wrapper around real: while <dir>/<mode> exists it fails
// ("fail"), prints nothing ("empty"), prints only the first line ("drop") or garbles every
// line but the first ("garble"). Lookups (squeue --states=all) misbehave too unless
// <dir>/snapshots-only exists.
func writeShim(t *testing.T, dir, real string) string {
	t.Helper()
	script := `#!/bin/sh
d='` + dir + `'
case " $* " in *" --states=all "*) [ -e "$d/snapshots-only" ] && exec '` + real + `' "$@";; esac
[ -e "$d/fail" ] && { echo "squeue: error: slurm_load_jobs error: Unable to contact slurm controller" >&2; exit 1; }
[ -e "$d/empty" ] && exit 0
[ -e "$d/drop" ] && { '` + real + `' "$@" | head -n 1; exit 0; }
[ -e "$d/garble" ] && { '` + real + `' "$@" | awk 'NR == 1 { print; next } { print "garbled" NR }'; exit 0; }
exec '` + real + `' "$@"
`
	p := filepath.Join(dir, "squeue")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// setShim turns shim switches on (and off with on=false).
func setShim(t *testing.T, dir string, on bool, modes ...string) {
	t.Helper()
	for _, m := range modes {
		p := filepath.Join(dir, m)
		if on {
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

func (f *fakeTier) submit(uuid string, nice int, partition, script string) string {
	f.t.Helper()
	id, err := f.cli.Submit(context.Background(), slurm.SubmitRequest{Name: uuid, Nice: nice,
		Args: []string{"--partition=" + partition}, Script: []byte("#!/bin/sh\n" + script + "\n")})
	if err != nil {
		f.t.Fatalf("submit %s: %v", uuid, err)
	}
	return id
}

// tierClock is the real clock moved on by a period before each cycle the test runs: the
// watcher sees its cycles a period apart, as they would be in Run (misses that confirm absence
// must be spread over time), while the tests run them back to back.
type tierClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *tierClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// step moves the clock on by the default period (2s).
func (c *tierClock) step() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += 2 * time.Second
}

func (f *fakeTier) cycles(n int) {
	f.t.Helper()
	for range n {
		f.clock.step()
		if err := f.w.Cycle(context.Background()); err != nil {
			f.t.Fatalf("cycle: %v", err)
		}
	}
}

// callsSince returns the fake's recorded calls of command after the first n calls.
func (f *fakeTier) callsSince(n int, command string) []sim.Call {
	var out []sim.Call
	for _, c := range f.env.Calls()[n:] {
		if c.Command == command {
			out = append(out, c)
		}
	}
	return out
}

// TestFakeSlurmUnwantedJobsAreCancelledOnceAndForeignJobsNeverTouched: a container going
// Cancelled, back to Queued or to priority 0 gets its job cancelled within one cycle, exactly
// once; foreign jobs are not touched even when named in the wanted set.
func TestFakeSlurmUnwantedJobsAreCancelledOnceAndForeignJobsNeverTouched(t *testing.T) {
	f := startFakeTier(t, Config{}, false)
	pend := []string{f.submit(uuid(1), 0, "down", "true"), f.submit(uuid(2), 0, "down", "true"),
		f.submit(uuid(3), 0, "down", "true")}
	run := f.submit(uuid(4), 0, "debug", "sleep 300")
	keep := f.submit(uuid(5), 0, "down", "true")
	f.env.WaitJobState(run, 10*time.Second, "RUNNING")
	var foreign []string
	for _, name := range []string{"interactive", "yyyyy-dz642-000000000000001"} {
		r := f.env.Run("", "#!/bin/sh\ntrue\n", "sbatch", "--parsable", "--job-name="+name, "--partition=down")
		if r.ExitCode != 0 {
			t.Fatalf("sbatch %s: %s", name, r.Stderr)
		}
		foreign = append(foreign, strings.TrimSpace(r.Stdout))
	}
	f.cycles(1)
	f.w.SetWanted(Wanted{
		Locked: map[string]int64{uuid(3): 0, uuid(5): 10},
		Unwanted: map[string]UnwantedReason{uuid(1): ContainerCancelled, uuid(2): ContainerQueued, uuid(4): ContainerCancelled,
			"interactive": ContainerCancelled, "yyyyy-dz642-000000000000001": ContainerCancelled},
		At: time.Now()})
	n := len(f.env.Calls())
	f.cycles(1)
	first := f.callsSince(n, "scancel")
	plain := slices.IndexFunc(first, func(c sim.Call) bool { return slices.Equal(c.Args, pend) })
	term := slices.IndexFunc(first, func(c sim.Call) bool {
		return slices.Contains(c.Args, "--batch") && slices.Contains(c.Args, "--signal=TERM") && slices.Contains(c.Args, run)
	})
	if plain < 0 || term < 0 {
		t.Fatalf("scancel calls = %+v, want %v plainly and TERM to the batch step of %s", first, pend, run)
	}
	f.cycles(5)
	if again := f.callsSince(n, "scancel"); len(again) != len(first) {
		t.Fatalf("scancel calls after more cycles = %+v, want the first cycle's only", again)
	}
	for _, c := range f.env.Calls() {
		for _, a := range c.Args {
			for _, id := range append(foreign, keep) {
				if (c.Command == "scancel" || c.Command == "scontrol") && (a == id || strings.Contains(a, "="+id) || strings.Contains(a, ","+id)) {
					t.Errorf("%s touched job %s: %v", c.Command, id, c.Args)
				}
			}
		}
	}
	for _, uuid := range []string{uuid(1), uuid(2), uuid(3)} {
		if p := f.w.Presence(uuid); p.Kind != AbsentConfirmed || p.Ending.State != "CANCELLED" {
			t.Errorf("%s: %+v, want absent-confirmed CANCELLED", uuid, p)
		}
	}
}

func TestFakeSlurmALingeringJobIsCancelledAgainAfterTheGrace(t *testing.T) {
	f := startFakeTier(t, Config{CancelGrace: 5 * time.Second}, false)
	id := f.submit(uuid(1), 0, "down", "true")
	f.cycles(1)
	f.w.SetWanted(Wanted{Unwanted: map[string]UnwantedReason{uuid(1): ContainerCancelled}, At: time.Now()})
	f.env.AddFault(sim.Fault{Command: "scancel", Kind: sim.FaultEmpty}) // scancel does nothing
	n := len(f.env.Calls())
	f.cycles(1)
	first := f.clock.Now()
	if got := f.callsSince(n, "scancel"); len(got) != 1 || !slices.Equal(got[0].Args, []string{id}) {
		t.Fatalf("scancel calls = %+v, want one for %s", got, id)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(f.callsSince(n, "scancel")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("a lingering job was not cancelled again")
		}
		f.cycles(1)
	}
	if took := f.clock.Now().Sub(first); took < 5*time.Second {
		t.Fatalf("cancelled again after %s, before the grace", took)
	}
	f.env.ClearFaults()
}

// TestFakeSlurmFaultyOutputNeverConfirmsAbsenceOfLiveJobs: squeue failing, printing nothing,
// printing garbage that loses jobs, or dropping most jobs never makes a live job
// absent-confirmed; lookups failing or finding nothing alike.
func TestFakeSlurmFaultyOutputNeverConfirmsAbsenceOfLiveJobs(t *testing.T) {
	tests := []struct {
		name    string
		periods int
		fault   func(f *fakeTier)
	}{
		{name: "squeue failing (fake controller down)", periods: 6, fault: func(f *fakeTier) {
			f.env.AddFault(sim.Fault{Command: "squeue", Kind: sim.FaultControllerDown})
		}},
		{name: "squeue printing nothing, lookups too", periods: 6, fault: func(f *fakeTier) {
			f.env.AddFault(sim.Fault{Command: "squeue", Kind: sim.FaultEmpty})
		}},
		{name: "squeue printing garbage besides the jobs", periods: 4, fault: func(f *fakeTier) {
			f.env.AddFault(sim.Fault{Command: "squeue", Kind: sim.FaultGarbage})
		}},
		{name: "squeue garbling all lines but one, lookups too", periods: 6,
			fault: func(f *fakeTier) { setShim(f.t, f.shimDir, true, "garble") }},
		{name: "squeue dropping most jobs for one period", periods: 1,
			fault: func(f *fakeTier) { setShim(f.t, f.shimDir, true, "drop") }},
		{name: "squeue dropping most jobs, lookups answering", periods: 6,
			fault: func(f *fakeTier) { setShim(f.t, f.shimDir, true, "drop", "snapshots-only") }},
		{name: "squeue printing nothing, lookups answering", periods: 6,
			fault: func(f *fakeTier) { setShim(f.t, f.shimDir, true, "empty", "snapshots-only") }},
		{name: "squeue failing through a wrapper", periods: 6,
			fault: func(f *fakeTier) { setShim(f.t, f.shimDir, true, "fail") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startFakeTier(t, Config{}, true)
			var uuids []string
			for n := 1; n <= 5; n++ {
				partition, script := "down", "true"
				if n <= 2 {
					partition, script = "debug", "sleep 300"
				}
				f.submit(uuid(n), 0, partition, script)
				uuids = append(uuids, uuid(n))
			}
			f.cycles(1)
			tt.fault(f)
			for range tt.periods {
				_ = f.w.Cycle(context.Background())
				for _, u := range uuids {
					if p := f.w.Presence(u); p.Kind == AbsentConfirmed {
						t.Fatalf("live job of %s confirmed absent: %+v", u, p)
					}
					if f.w.AbsentInSnapshotAfter(u, time.Time{}) {
						t.Fatalf("live job of %s absent for the submit rule", u)
					}
				}
			}
			f.env.ClearFaults()
			setShim(t, f.shimDir, false, "fail", "empty", "drop", "garble", "snapshots-only")
			f.cycles(1)
			for _, u := range uuids {
				if p := f.w.Presence(u); p.Kind != Present {
					t.Errorf("after recovery %s is %v", u, p.Kind)
				}
			}
		})
	}
}

// TestFakeSlurmFinishedJobsAreConfirmedWithTheirState: jobs that really ended are confirmed
// absent within three cycles, with their final state.
func TestFakeSlurmFinishedJobsAreConfirmedWithTheirState(t *testing.T) {
	f := startFakeTier(t, Config{}, false)
	f.submit(uuid(9), 0, "down", "true") // stays
	ok := f.submit(uuid(1), 0, "debug", "sleep 1")
	bad := f.submit(uuid(2), 0, "debug", "sleep 1; exit 3")
	cancelled := f.submit(uuid(3), 0, "down", "true")
	f.env.WaitJobState(ok, 10*time.Second, "RUNNING")
	f.cycles(1)
	if r := f.env.Run("", "", "scancel", cancelled); r.ExitCode != 0 {
		t.Fatalf("scancel: %s", r.Stderr)
	}
	f.env.WaitJobState(ok, 10*time.Second, "COMPLETED")
	f.env.WaitJobState(bad, 10*time.Second, "FAILED")
	f.env.WaitJobState(cancelled, 10*time.Second, "CANCELLED")
	want := map[string]Ending{uuid(1): {JobID: ok, State: "COMPLETED"}, uuid(2): {JobID: bad, State: "FAILED"},
		uuid(3): {JobID: cancelled, State: "CANCELLED"}}
	for c := 1; c <= 3; c++ {
		f.cycles(1)
		done := 0
		for u, e := range want {
			if p := f.w.Presence(u); p.Kind == AbsentConfirmed {
				if p.Ending.JobID != e.JobID || p.Ending.State != e.State {
					t.Fatalf("%s: ending %+v, want %+v", u, p.Ending, e)
				}
				done++
			}
		}
		if done == len(want) {
			if p := f.w.Presence(uuid(9)); p.Kind != Present {
				t.Fatalf("the pending job: %v", p.Kind)
			}
			return
		}
	}
	t.Fatalf("not all confirmed within three cycles: %+v %+v %+v", f.w.Presence(uuid(1)), f.w.Presence(uuid(2)), f.w.Presence(uuid(3)))
}

// TestFakeSlurmPendingJobsFollowContainerPriorityAfterOneCycle, and a burst submitted in
// priority order with InitialNice needs no renice at all.
func TestFakeSlurmPendingJobsFollowContainerPriorityAfterOneCycle(t *testing.T) {
	f := startFakeTier(t, Config{}, false)
	prio := map[string]int64{}
	for n, nice := range []int{500, 10, 10000, 0, 42, 42, 7, 9000, 1, 3} {
		f.submit(uuid(n), nice, "down", "true")
		prio[uuid(n)] = int64(100 + (n*37)%11)
	}
	f.w.SetWanted(Wanted{Locked: prio, At: time.Now()})
	f.cycles(1)
	if err := fakeOrder(f.env.Jobs(), prio); err != nil {
		t.Fatal(err)
	}
	n := len(f.env.Calls())
	f.cycles(2)
	if got := f.callsSince(n, "scontrol"); len(got) != 0 {
		t.Fatalf("renice calls once in order: %+v", got)
	}
}

func TestFakeSlurmABurstInPriorityOrderNeedsNoRenice(t *testing.T) {
	f := startFakeTier(t, Config{}, false)
	prio := map[string]int64{}
	for n := range 60 {
		prio[uuid(n)] = int64(1000 - n)
	}
	f.w.SetWanted(Wanted{Locked: prio, At: time.Now()})
	for n := range 60 {
		nice := f.w.InitialNice(uuid(n), prio[uuid(n)])
		id := f.submit(uuid(n), nice, "down", "true")
		f.w.NoteSubmitted(uuid(n), id, nice, prio[uuid(n)], time.Now())
		if n%20 == 19 {
			f.cycles(1)
		}
	}
	f.cycles(1)
	if err := fakeOrder(f.env.Jobs(), prio); err != nil {
		t.Fatal(err)
	}
	if st := f.w.Stats(); st.ReniceCalls != 0 {
		t.Fatalf("renice calls = %d, want 0", st.ReniceCalls)
	}
}

// fakeOrder checks that the fake's pending jobs' priorities follow container priorities.
func fakeOrder(jobs []sim.Job, prio map[string]int64) error {
	var pjs []PlanJob
	for _, j := range jobs {
		if p, ok := prio[j.Name]; ok && j.State == "PENDING" {
			pjs = append(pjs, PlanJob{ID: strconv.Itoa(j.ID), UUID: j.Name, Nice: j.Nice, SlurmPriority: j.Priority(base), Priority: p})
		}
	}
	return ordered(pjs)
}
