package slurm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSubmitRunsSbatchWithNameNiceScriptEnvAndDir(t *testing.T) {
	f := &fakeRunner{replies: []reply{{stdout: "4242\n"}}}
	c := newTestCLI(t, CLIConfig{SbatchPath: "/opt/slurm/bin/sbatch", Dir: "/var/lib/dispatch", Env: []string{"PATH=/bin", "A=base"}}, f)
	script := []byte("#!/bin/sh\nexec 'crunch-run' '" + testUUID + "'\n")
	id, err := c.Submit(context.Background(), SubmitRequest{
		Name: testUUID, Nice: 17, Args: []string{"--mem=1574", "--cpus-per-task=2"}, Script: script,
		Env: []string{"ARVADOS_API_HOST=api.example", "A=job"},
	})
	if err != nil || id != "4242" {
		t.Fatalf("Submit = %q, %v", id, err)
	}
	calls := f.recorded()
	if len(calls) != 1 {
		t.Fatalf("%d calls", len(calls))
	}
	got := calls[0]
	wantArgs := []string{"--parsable", "--job-name=" + testUUID, "--nice=17", "--no-requeue", "--mem=1574", "--cpus-per-task=2"}
	if got.Name != "sbatch" || got.Path != "/opt/slurm/bin/sbatch" || !slices.Equal(got.Args, wantArgs) {
		t.Errorf("ran %s %s %q", got.Name, got.Path, got.Args)
	}
	if string(got.Stdin) != string(script) {
		t.Errorf("stdin %q", got.Stdin)
	}
	if got.Dir != "/var/lib/dispatch" {
		t.Errorf("dir %q", got.Dir)
	}
	// Base environment first, the job's after it (exec.Cmd keeps the last of duplicates).
	wantEnv := []string{"PATH=/bin", "A=base", "ARVADOS_API_HOST=api.example", "A=job"}
	if !slices.Equal(got.Env, wantEnv) {
		t.Errorf("env %q, want %q", got.Env, wantEnv)
	}
	if !got.hasDeadline || got.deadline <= DefaultQueryTimeout || got.deadline > DefaultSubmitTimeout {
		t.Errorf("sbatch deadline %v, want about %v", got.deadline, DefaultSubmitTimeout)
	}
}

func TestSubmitDoesNotShareTheBaseEnvironmentBetweenCalls(t *testing.T) {
	f := &fakeRunner{answer: func(invocation) reply { return reply{stdout: "1"} }}
	base := make([]string, 1, 10) // spare capacity: appending must not write into it
	base[0] = "PATH=/bin"
	c := newTestCLI(t, CLIConfig{Env: base}, f)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, _ = c.Submit(context.Background(), SubmitRequest{Name: testUUID, Script: []byte("x"), Env: []string{fmt.Sprintf("N=%d", i)}})
		})
	}
	wg.Wait()
	for _, call := range f.recorded() {
		if len(call.Env) != 2 || call.Env[0] != "PATH=/bin" || !strings.HasPrefix(call.Env[1], "N=") {
			t.Fatalf("env %q", call.Env)
		}
	}
}

func TestSubmitRefusesBadRequestsWithoutRunningAnything(t *testing.T) {
	tests := []struct {
		name string
		req  SubmitRequest
	}{
		{"a name that is not a container uuid", SubmitRequest{Name: "zzzzz-dz642-short", Script: []byte("x")}},
		{"a name with shell characters", SubmitRequest{Name: "zzzzz-dz642-0123456789abcd;", Script: []byte("x")}},
		{"a name with a quote", SubmitRequest{Name: "zzzzz-dz642-0123456789abc'd", Script: []byte("x")}},
		{"a negative nice", SubmitRequest{Name: testUUID, Nice: -1, Script: []byte("x")}},
		{"a nice above Slurm's range", SubmitRequest{Name: testUUID, Nice: MaxNice + 1, Script: []byte("x")}},
		{"no script", SubmitRequest{Name: testUUID}},
		{"an argument renaming the job", SubmitRequest{Name: testUUID, Script: []byte("x"), Args: []string{"--job-name=other"}}},
		{"an abbreviated renaming argument", SubmitRequest{Name: testUUID, Script: []byte("x"), Args: []string{"--job=other"}}},
		{"a separate -J value", SubmitRequest{Name: testUUID, Script: []byte("x"), Args: []string{"-J", "other"}}},
		{"an argument asking for requeueing", SubmitRequest{Name: testUUID, Script: []byte("x"), Args: []string{"--requeue"}}},
		{"an argument with a newline", SubmitRequest{Name: testUUID, Script: []byte("x"), Args: []string{"--comment=a\nb"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{}
			c := newTestCLI(t, CLIConfig{}, f)
			if _, err := c.Submit(context.Background(), tt.req); err == nil {
				t.Fatal("no error")
			}
			if n := len(f.recorded()); n != 0 {
				t.Fatalf("%d commands ran", n)
			}
		})
	}
}

func TestSubmitFailuresAreClassified(t *testing.T) {
	tests := []struct {
		name      string
		reply     reply
		class     error
		ambiguous bool
	}{
		{"a busy controller is transient and did not submit",
			reply{exitCode: 1, stderr: "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying\nsbatch: error: Batch job submission failed: Resource temporarily unavailable\n"},
			ErrTransient, false},
		{"an unreachable controller is transient and did not submit",
			reply{exitCode: 1, stderr: "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n"},
			ErrTransient, false},
		{"a full job queue is transient",
			reply{exitCode: 1, stderr: "sbatch: error: Slurm job queue full, sleeping and retrying.\nsbatch: error: Batch job submission failed: Unable to create job record, try again\n"},
			ErrTransient, false},
		{"a lost reply may have submitted",
			reply{exitCode: 1, stderr: "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n"},
			ErrTransient, true},
		{"an unknown message may have submitted",
			reply{exitCode: 1, stderr: "sbatch: error: something new went wrong\n"},
			ErrTransient, true},
		{"a timeout may have submitted",
			reply{err: fmt.Errorf("%w (signal: terminated)", context.DeadlineExceeded)},
			ErrTransient, true},
		{"an exit 0 without a job id may have submitted",
			reply{stdout: "hello\n"},
			ErrTransient, true},
		{"a missing sbatch did not submit",
			reply{err: errors.New(`exec: "sbatch": executable file not found in $PATH`)},
			ErrTransient, false},
		{"an accounting policy violation is transient (it may be a submit limit)",
			reply{exitCode: 1, stderr: "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)\n"},
			ErrTransient, false},
		{"an invalid account is permanent",
			reply{exitCode: 1, stderr: "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified\n"},
			ErrPermanent, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCLI(t, CLIConfig{}, &fakeRunner{replies: []reply{tt.reply}})
			_, err := c.Submit(context.Background(), SubmitRequest{Name: testUUID, Script: []byte("x")})
			if !errors.Is(err, tt.class) {
				t.Fatalf("err = %v, want %v", err, tt.class)
			}
			if IsAmbiguous(err) != tt.ambiguous {
				t.Errorf("IsAmbiguous = %v, want %v (%v)", IsAmbiguous(err), tt.ambiguous, err)
			}
			if !strings.Contains(err.Error(), testUUID) {
				t.Errorf("error does not say which container: %v", err)
			}
		})
	}
}

func TestSbatchOutputForms(t *testing.T) {
	tests := []struct {
		out, id string
	}{
		{"1234\n", "1234"},
		{"1234;cluster\n", "1234"},
		{"Submitted batch job 77\n", "77"},
		{"sbatch: warning: something\n1234\n", "1234"},
		{"", ""},
		{"12a4\n", ""},
		{"12345678901\n", ""},
	}
	for _, tt := range tests {
		id, err := parseSbatchID([]byte(tt.out))
		if id != tt.id || (err == nil) != (tt.id != "") {
			t.Errorf("parseSbatchID(%q) = %q, %v; want %q", tt.out, id, err, tt.id)
		}
	}
}

func TestSnapshotRunsSqueueForOurUserAndStampsTimes(t *testing.T) {
	out := "12|" + testUUID + "|PENDING|5|999995|PartitionDown\ngarbage\n"
	tests := []struct {
		name, user, want string
	}{
		{"the current user by default", "", "--me"},
		{"a configured user", "crunch", "--user=crunch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{replies: []reply{{stdout: out}}}
			t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
			c := newTestCLI(t, CLIConfig{User: tt.user, Now: fixedClock(t0, time.Second)}, f)
			snap, err := c.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"squeue --noheader " + tt.want + " --format=%i|%j|%T|%y|%Q|%r"}
			if got := f.argvs(); !slices.Equal(got, want) {
				t.Errorf("ran %q, want %q", got, want)
			}
			if !snap.Started.Equal(t0) || !snap.Finished.After(snap.Started) {
				t.Errorf("started %v finished %v", snap.Started, snap.Finished)
			}
			wantJob := Job{ID: "12", Name: testUUID, State: "PENDING", Nice: 5, Priority: 999995, Reason: "PartitionDown"}
			if len(snap.Jobs) != 1 || snap.Jobs[0] != wantJob || snap.Skipped != 1 {
				t.Errorf("snapshot %+v", snap)
			}
		})
	}
}

func TestSnapshotFailureIsAnErrorNotAnEmptyQueue(t *testing.T) {
	f := &fakeRunner{replies: []reply{{exitCode: 1, stderr: "squeue: error: slurm_receive_msg: Socket timed out on send/recv operation\nslurm_load_jobs error: Socket timed out on send/recv operation\n"}}}
	c := newTestCLI(t, CLIConfig{}, f)
	snap, err := c.Snapshot(context.Background())
	if snap != nil || !errors.Is(err, ErrTransient) {
		t.Fatalf("Snapshot = %v, %v", snap, err)
	}
}

func TestLookupCommands(t *testing.T) {
	format := "--format=%i|%j|%T|%y|%Q|%r"
	tests := []struct {
		name string
		q    LookupQuery
		out  string
		want string
		jobs int
	}{
		{"by id includes finished jobs", LookupQuery{ID: "12"},
			"12|" + testUUID + "|COMPLETED|0|1000000|None\n",
			"squeue --noheader --states=all " + format + " --jobs=12", 1},
		{"by name is limited to our user", LookupQuery{Name: testUUID},
			"12|" + testUUID + "|CANCELLED|0|1000000|None\n13|" + testUUID + "|PENDING|0|1000000|Priority\n",
			"squeue --noheader --states=all " + format + " --me --name=" + testUUID, 2},
		{"by id and name needs both to match", LookupQuery{ID: "12", Name: testUUID},
			"12|zzzzz-dz642-otherotherother|RUNNING|0|1000000|None\n",
			"squeue --noheader --states=all " + format + " --jobs=12", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{replies: []reply{{stdout: tt.out}}}
			c := newTestCLI(t, CLIConfig{}, f)
			jobs, err := c.Lookup(context.Background(), tt.q)
			if err != nil || len(jobs) != tt.jobs {
				t.Fatalf("Lookup = %+v, %v; want %d jobs", jobs, err, tt.jobs)
			}
			if got := f.argvs(); len(got) != 1 || got[0] != tt.want {
				t.Errorf("ran %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLookupStates(t *testing.T) {
	// Every state the dispatcher must recognize comes through the parser unchanged.
	states := []string{"PENDING", "RUNNING", "COMPLETING", "COMPLETED", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
		"TIMEOUT", "CANCELLED", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "SUSPENDED", "REQUEUED", "RESV_DEL_HOLD"}
	var out strings.Builder
	for i, s := range states {
		fmt.Fprintf(&out, "%d|%s|%s|0|1|None\n", i+1, testUUID, s)
	}
	c := newTestCLI(t, CLIConfig{}, &fakeRunner{replies: []reply{{stdout: out.String()}}})
	jobs, err := c.Lookup(context.Background(), LookupQuery{Name: testUUID})
	if err != nil || len(jobs) != len(states) {
		t.Fatalf("Lookup = %d jobs, %v", len(jobs), err)
	}
	for i, j := range jobs {
		if j.State != states[i] {
			t.Errorf("job %d state %q, want %q", i, j.State, states[i])
		}
	}
}

func TestLookupRefusesBadQueriesAndReportsFailures(t *testing.T) {
	for _, q := range []LookupQuery{{}, {ID: "12;x"}, {Name: "not-a-uuid"}, {ID: "12", Name: "bad"}} {
		f := &fakeRunner{}
		c := newTestCLI(t, CLIConfig{}, f)
		if _, err := c.Lookup(context.Background(), q); err == nil || len(f.recorded()) != 0 {
			t.Errorf("Lookup(%+v) = %v after %d commands", q, err, len(f.recorded()))
		}
	}
	f := &fakeRunner{replies: []reply{{exitCode: 1, stderr: "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"}}}
	c := newTestCLI(t, CLIConfig{}, f)
	if jobs, err := c.Lookup(context.Background(), LookupQuery{Name: testUUID}); !errors.Is(err, ErrTransient) || jobs != nil {
		t.Errorf("Lookup with Slurm down = %v, %v; want a transient error, not an empty answer", jobs, err)
	}
}

func TestReniceBatchesIDsAndValidatesFirst(t *testing.T) {
	f := &fakeRunner{answer: func(invocation) reply { return reply{} }}
	c := newTestCLI(t, CLIConfig{MaxIDsPerCommand: 2}, f)
	if _, err := c.Renice(context.Background(), 3, []string{"1", "2", "3", "4", "5"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"scontrol update JobId=1,2 Nice=3", "scontrol update JobId=3,4 Nice=3", "scontrol update JobId=5 Nice=3"}
	if got := f.argvs(); !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q", got, want)
	}
	for _, call := range f.recorded() {
		if !call.hasDeadline || call.deadline > DefaultUpdateTimeout {
			t.Errorf("deadline %v", call.deadline)
		}
	}
	for _, bad := range []struct {
		nice int
		ids  []string
	}{{-1, []string{"1"}}, {MaxNice + 1, []string{"1"}}, {1, []string{"1", "2 Partition=x"}}, {1, []string{""}}} {
		f := &fakeRunner{}
		c := newTestCLI(t, CLIConfig{}, f)
		if _, err := c.Renice(context.Background(), bad.nice, bad.ids); err == nil || len(f.recorded()) != 0 {
			t.Errorf("Renice(%d, %q) = %v after %d commands", bad.nice, bad.ids, err, len(f.recorded()))
		}
	}
}

func TestReniceFailures(t *testing.T) {
	tests := []struct {
		name    string
		ids     []string
		reply   reply
		gone    []string
		errIs   error
		ranMore bool
	}{
		{"unknown and finished ids are gone, not an error", []string{"1", "2", "3"},
			reply{exitCode: 1, stderr: "Invalid job id specified for job 2\nJob has already finished for job 3\n"},
			[]string{"2", "3"}, nil, true},
		{"an older scontrol naming no id for a single job", []string{"7"},
			reply{exitCode: 1, stderr: "slurm_update error: Invalid job id specified\n"},
			[]string{"7"}, nil, true},
		{"a gone id next to another failure is an error", []string{"1", "2"},
			reply{exitCode: 1, stderr: "Invalid job id specified for job 2\nAccess/permission denied for job 1\n"},
			[]string{"2"}, ErrPermanent, false},
		{"a controller outage stops the batches", []string{"1", "2"},
			reply{exitCode: 1, stderr: "slurm_update error: Unable to contact slurm controller (connect failure)\n"},
			nil, ErrTransient, false},
		{"a gone id we did not ask about is not trusted", []string{"1"},
			reply{exitCode: 1, stderr: "Invalid job id specified for job 9\n"},
			nil, ErrNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			replies := []reply{tt.reply, {}}
			f := &fakeRunner{replies: replies}
			c := newTestCLI(t, CLIConfig{MaxIDsPerCommand: len(tt.ids)}, f)
			gone, err := c.Renice(context.Background(), 1, append(slices.Clone(tt.ids), "100"))
			if !slices.Equal(gone, tt.gone) {
				t.Errorf("gone = %v, want %v", gone, tt.gone)
			}
			if tt.errIs == nil && err != nil || tt.errIs != nil && !errors.Is(err, tt.errIs) {
				t.Errorf("err = %v, want %v", err, tt.errIs)
			}
			if ran := len(f.recorded()) == 2; ran != tt.ranMore {
				t.Errorf("second batch ran: %v, want %v", ran, tt.ranMore)
			}
		})
	}
}

func TestCancelCommands(t *testing.T) {
	tests := []struct {
		name string
		req  CancelRequest
		user string
		want []string
	}{
		{"ids", CancelRequest{IDs: []string{"1", "2"}}, "",
			[]string{"scancel 1 2"}},
		{"running ids get TERM to the batch step, pending ones a cancel", CancelRequest{IDs: []string{"1", "2"}, Running: true}, "",
			[]string{"scancel --batch --signal=TERM --state=RUNNING 1 2", "scancel --state=PENDING 1 2"}},
		{"a name, for our user only", CancelRequest{Name: testUUID}, "",
			[]string{"scancel --me --name=" + testUUID}},
		{"a name for a configured user", CancelRequest{Name: testUUID}, "crunch",
			[]string{"scancel --user=crunch --name=" + testUUID}},
		{"a running job by name", CancelRequest{Name: testUUID, Running: true}, "",
			[]string{"scancel --batch --signal=TERM --state=RUNNING --me --name=" + testUUID, "scancel --state=PENDING --me --name=" + testUUID}},
		{"ids win over a name", CancelRequest{IDs: []string{"5"}, Name: testUUID}, "",
			[]string{"scancel 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{answer: func(invocation) reply { return reply{} }}
			c := newTestCLI(t, CLIConfig{User: tt.user, ScancelPath: "/usr/local/bin/scancel"}, f)
			if err := c.Cancel(context.Background(), tt.req); err != nil {
				t.Fatal(err)
			}
			if got := f.argvs(); !slices.Equal(got, tt.want) {
				t.Errorf("ran %q, want %q", got, tt.want)
			}
			if p := f.recorded()[0].Path; p != "/usr/local/bin/scancel" {
				t.Errorf("path %q", p)
			}
		})
	}
}

func TestCancelBatchesAndFailures(t *testing.T) {
	f := &fakeRunner{answer: func(invocation) reply { return reply{} }}
	c := newTestCLI(t, CLIConfig{MaxIDsPerCommand: 2}, f)
	if err := c.Cancel(context.Background(), CancelRequest{IDs: []string{"1", "2", "3"}}); err != nil {
		t.Fatal(err)
	}
	if got, want := f.argvs(), []string{"scancel 1 2", "scancel 3"}; !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q", got, want)
	}

	for _, req := range []CancelRequest{{}, {Name: "x"}, {IDs: []string{"1", "-u root"}}} {
		f := &fakeRunner{}
		c := newTestCLI(t, CLIConfig{}, f)
		if err := c.Cancel(context.Background(), req); err == nil || len(f.recorded()) != 0 {
			t.Errorf("Cancel(%+v) = %v after %d commands", req, err, len(f.recorded()))
		}
	}

	f = &fakeRunner{replies: []reply{{exitCode: 1, stderr: "scancel: error: Kill job error on job id 1: Access/permission denied\n"}}}
	c = newTestCLI(t, CLIConfig{}, f)
	if err := c.Cancel(context.Background(), CancelRequest{IDs: []string{"1"}, Running: true}); !errors.Is(err, ErrPermanent) {
		t.Errorf("permission denied: %v", err)
	}
	if n := len(f.recorded()); n != 1 {
		t.Errorf("%d commands after a failure, want 1", n)
	}

	f = &fakeRunner{replies: []reply{{exitCode: 1, stderr: "scancel: error: Kill job error on job id 1: Job can not be altered now, try again later\n"}}}
	c = newTestCLI(t, CLIConfig{}, f)
	if err := c.Cancel(context.Background(), CancelRequest{IDs: []string{"1"}}); !errors.Is(err, ErrTransient) {
		t.Errorf("try again later: %v", err)
	}
}

func TestCommandsRunAtMostMaxConcurrentAtOnce(t *testing.T) {
	const limit = 3
	var running, peak atomic.Int32
	release := make(chan struct{})
	f := &fakeRunner{answer: func(invocation) reply { return reply{} }}
	c := newTestCLI(t, CLIConfig{MaxConcurrent: limit}, f)
	c.run = runnerFunc(func(ctx context.Context, inv invocation) ([]byte, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		return nil, nil
	})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { _ = c.Cancel(context.Background(), CancelRequest{IDs: []string{"1"}}) })
	}
	waitFor(t, func() bool { return running.Load() == limit })
	close(release)
	wg.Wait()
	if p := peak.Load(); p != limit {
		t.Errorf("peak %d concurrent commands, want %d", p, limit)
	}
}

func TestWaitingForACommandSlotHonoursTheContext(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	c := newTestCLI(t, CLIConfig{MaxConcurrent: 1}, &fakeRunner{})
	c.run = runnerFunc(func(ctx context.Context, inv invocation) ([]byte, error) {
		started <- struct{}{}
		<-release
		return nil, nil
	})
	done := make(chan error, 1)
	go func() { done <- c.Cancel(context.Background(), CancelRequest{IDs: []string{"1"}}) }()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Snapshot(ctx)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrTransient) || IsAmbiguous(err) {
		t.Errorf("Snapshot while the only slot is busy, ctx cancelled: %v (ambiguous %v)", err, IsAmbiguous(err))
	}
	close(release)
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestNewCLIDefaultsAndRefusals(t *testing.T) {
	c, err := NewCLI(CLIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.cfg
	if cfg.SbatchPath != "sbatch" || cfg.SqueuePath != "squeue" || cfg.ScancelPath != "scancel" || cfg.ScontrolPath != "scontrol" ||
		cfg.MaxConcurrent != DefaultMaxConcurrent || cfg.SubmitTimeout != 3*time.Minute || cfg.QueryTimeout != 30*time.Second ||
		cfg.UpdateTimeout != 30*time.Second || cfg.MaxIDsPerCommand != 200 || len(cfg.Env) == 0 || cfg.Logger == nil || cfg.Now == nil {
		t.Errorf("defaults: %+v", cfg)
	}
	for _, bad := range []CLIConfig{{MaxConcurrent: -1}, {SubmitTimeout: -time.Second}, {User: "-all"}, {User: "a b"}, {MaxIDsPerCommand: -5}} {
		if _, err := NewCLI(bad); err == nil {
			t.Errorf("NewCLI(%+v) accepted", bad)
		}
	}
}

type runnerFunc func(ctx context.Context, inv invocation) ([]byte, error)

func (f runnerFunc) run(ctx context.Context, inv invocation) ([]byte, error) { return f(ctx, inv) }

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
