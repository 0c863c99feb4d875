package slurm

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// The tests below replay real Slurm output (testdata/*.json, captured by TestCaptureGolden)
// through the CLI backend with a fake runner.

func TestSubmitClassifiesRealRejections(t *testing.T) {
	tests := []struct {
		fixture string
		class   error
		message string // Slurm's message as users will see it
	}{
		{"sbatch_mem_too_large", ErrPermanent, "Requested node configuration is not available (Memory specification can not be satisfied)"},
		{"sbatch_tmp_too_large", ErrPermanent, "Requested node configuration is not available (Temporary disk specification can not be satisfied)"},
		{"sbatch_bad_constraint", ErrPermanent, "Invalid feature specification"},
		{"sbatch_unknown_partition", ErrPermanent, "Invalid partition name specified (invalid partition specified: nosuch)"},
		{"sbatch_bad_gres", ErrPermanent, "Invalid generic resource (gres) specification"},
		{"sbatch_bad_mem_syntax", ErrPermanent, "Invalid --mem specification"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			fx := loadFixture(t, tt.fixture)
			if fx.ExitCode == 0 {
				t.Fatalf("fixture %s: sbatch succeeded; expected a rejection", tt.fixture)
			}
			c := newTestCLI(t, CLIConfig{}, &fakeRunner{replies: []reply{fx.reply()}})
			_, err := c.Submit(context.Background(), SubmitRequest{Name: testUUID, Script: []byte("#!/bin/sh\n")})
			if !errors.Is(err, tt.class) {
				t.Fatalf("err = %v, want %v", err, tt.class)
			}
			var re *RejectError
			if !errors.As(err, &re) || re.Message != tt.message {
				t.Fatalf("message = %q, want %q", re.Message, tt.message)
			}
			if IsAmbiguous(err) || errors.Is(err, ErrTransient) {
				t.Errorf("a rejection must not look transient: %v", err)
			}
			var ce *CommandError
			if !errors.As(err, &ce) || ce.ExitCode != fx.ExitCode {
				t.Errorf("CommandError not reachable or wrong exit code: %v", err)
			}
		})
	}
}

func TestSubmitReadsTheJobIDOfRealAcceptedSubmissions(t *testing.T) {
	for _, name := range []string{"sbatch_down_partition", "sbatch_too_many_cpus", "sbatch_unknown_account"} {
		t.Run(name, func(t *testing.T) {
			fx := loadFixture(t, name)
			c := newTestCLI(t, CLIConfig{}, &fakeRunner{replies: []reply{fx.reply()}})
			id, err := c.Submit(context.Background(), SubmitRequest{Name: testUUID, Script: []byte("#!/bin/sh\n")})
			if err != nil || id != fx.Jobs["id"] {
				t.Fatalf("Submit = %q, %v; want %q", id, err, fx.Jobs["id"])
			}
		})
	}
}

func TestRealSqueueOutputParsesEveryJob(t *testing.T) {
	fx := loadFixture(t, "squeue_jobs")
	jobs, skipped := ParseSqueue([]byte(fx.Stdout))
	if skipped != 0 || len(jobs) != 6 {
		t.Fatalf("parsed %d jobs, skipped %d; want 6, 0:\n%s", len(jobs), skipped, fx.Stdout)
	}
	byName := map[string]Job{}
	for _, j := range jobs {
		byName[j.Name] = j
		if !validJobID(j.ID) {
			t.Errorf("job id %q", j.ID)
		}
	}
	want := []struct {
		role, state, reason string
		class               ReasonClass
	}{
		{"down", "PENDING", "PartitionDown", ReasonAttention},
		{"account", "PENDING", "PartitionDown", ReasonAttention},
		{"partition_config", "PENDING", "PartitionConfig", ReasonNever},
		{"held", "PENDING", "JobHeldUser", ReasonAttention},
		{"running", "RUNNING", "None", ReasonWaiting},
		{"cancelled", "CANCELLED", "PartitionDown", ReasonAttention},
	}
	for _, w := range want {
		j, ok := byName[fx.Jobs[w.role]]
		if !ok {
			t.Errorf("%s job %s missing", w.role, fx.Jobs[w.role])
			continue
		}
		if j.State != w.state || j.Reason != w.reason || ClassifyReason(j.Reason) != w.class {
			t.Errorf("%s job: state %s reason %s (%v), want %s %s (%v)", w.role, j.State, j.Reason,
				ClassifyReason(j.Reason), w.state, w.reason, w.class)
		}
	}
	if held := byName[fx.Jobs["held"]]; held.Priority != 0 {
		t.Errorf("held job priority %d, want 0", held.Priority)
	}
	if down := byName[fx.Jobs["down"]]; down.Priority != 1000000-int64(down.Nice) {
		t.Errorf("priority %d with nice %d, want 1000000-nice", down.Priority, down.Nice)
	}
}

func TestSnapshotOfRealOutputLeavesFinishedJobsOut(t *testing.T) {
	fx := loadFixture(t, "squeue_live")
	c := newTestCLI(t, CLIConfig{}, &fakeRunner{replies: []reply{fx.reply()}})
	snap, err := c.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Jobs) != 5 || snap.Skipped != 0 {
		t.Fatalf("got %d jobs (%d skipped), want 5", len(snap.Jobs), snap.Skipped)
	}
	for _, j := range snap.Jobs {
		if j.Name == fx.Jobs["cancelled"] {
			t.Errorf("cancelled job listed without -t all: %+v", j)
		}
	}
}

func TestLookupOfRealOutput(t *testing.T) {
	tests := []struct {
		fixture string
		q       func(fx fixture) LookupQuery
		want    int
	}{
		{"squeue_id_cancelled", func(fx fixture) LookupQuery { return LookupQuery{ID: fx.Jobs["id"]} }, 1},
		{"squeue_id_gone", func(fx fixture) LookupQuery { return LookupQuery{ID: fx.Jobs["id"]} }, 0},
		{"squeue_name_none", func(fixture) LookupQuery { return LookupQuery{Name: testUUID} }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			fx := loadFixture(t, tt.fixture)
			c := newTestCLI(t, CLIConfig{}, &fakeRunner{replies: []reply{fx.reply()}})
			jobs, err := c.Lookup(context.Background(), tt.q(fx))
			if err != nil || len(jobs) != tt.want {
				t.Fatalf("Lookup = %+v, %v; want %d jobs", jobs, err, tt.want)
			}
			if tt.want == 1 && jobs[0].State != "CANCELLED" {
				t.Errorf("state %s, want CANCELLED", jobs[0].State)
			}
		})
	}
}

func TestReniceOfRealOutputReturnsGoneIDs(t *testing.T) {
	tests := []struct {
		fixture string
		ids     func(fx fixture) []string
		gone    func(fx fixture) []string
	}{
		{"scontrol_update_ok",
			func(fx fixture) []string { return []string{fx.Jobs["live1"], fx.Jobs["live2"]} },
			func(fixture) []string { return nil }},
		{"scontrol_update_mixed",
			func(fx fixture) []string { return []string{fx.Jobs["live"], fx.Jobs["gone"], fx.Jobs["finished"]} },
			func(fx fixture) []string { return []string{fx.Jobs["gone"], fx.Jobs["finished"]} }},
		{"scontrol_update_gone",
			func(fx fixture) []string { return []string{fx.Jobs["gone"]} },
			func(fx fixture) []string { return []string{fx.Jobs["gone"]} }},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			fx := loadFixture(t, tt.fixture)
			f := &fakeRunner{replies: []reply{fx.reply()}}
			c := newTestCLI(t, CLIConfig{}, f)
			gone, err := c.Renice(context.Background(), 8, tt.ids(fx))
			if err != nil {
				t.Fatal(err)
			}
			want := tt.gone(fx)
			slices.Sort(gone)
			slices.Sort(want)
			if !slices.Equal(gone, want) {
				t.Errorf("gone = %v, want %v", gone, want)
			}
			// The command is the one that was captured (apart from the nice value).
			if got := f.recorded()[0].Args; got[1] != fx.Argv[2] {
				t.Errorf("args %v, captured %v", got, fx.Argv)
			}
		})
	}
}

func TestCancelOfRealOutputTreatsGoneJobsAsDone(t *testing.T) {
	for _, name := range []string{"scancel_gone", "scancel_name_none", "scancel_term_gone", "scancel_term_running", "scancel_pending", "scancel_name_running"} {
		t.Run(name, func(t *testing.T) {
			fx := loadFixture(t, name)
			c := newTestCLI(t, CLIConfig{}, &fakeRunner{replies: []reply{fx.reply()}})
			if err := c.scancel(context.Background(), name, fx.Argv[1:]); err != nil {
				t.Fatalf("scancel %v: %v", fx.Argv, err)
			}
		})
	}
}

func TestRealCancelLeavesRunningJobFailedAndPendingJobCancelled(t *testing.T) {
	fx := loadFixture(t, "squeue_after_cancel")
	jobs, _ := ParseSqueue([]byte(fx.Stdout))
	states := map[string]string{}
	for _, j := range jobs {
		states[j.ID] = j.State
	}
	// TERM to the batch step ends the job; with crunch-run, crunch-run decides how.
	if s := states[fx.Jobs["running"]]; s == "RUNNING" || s == "" {
		t.Errorf("running job after TERM: %q", s)
	}
	if s := states[fx.Jobs["pending"]]; s != "CANCELLED" {
		t.Errorf("pending job after scancel --state=PENDING: %q", s)
	}
}
