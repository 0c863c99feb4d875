package slurm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
	"go.uber.org/zap/zaptest"
)

// Tests against the real Slurm on this machine (scripts/local-slurm.sh up). They touch only
// jobs they submitted, named with fresh uuids, and cancel them in t.Cleanup.

func realCLI(t *testing.T) *CLI {
	t.Helper()
	testenv.RequireRealSlurm(t)
	c, err := NewCLI(CLIConfig{Dir: t.TempDir(), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// realSubmit submits a job for a fresh uuid with the default template and extra args, and
// cancels it when the test ends.
func realSubmit(t *testing.T, c *CLI, partitions []string, script []byte, extra ...string) (uuid, id string, err error) {
	t.Helper()
	uuid = randomUUID(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Cancel(ctx, CancelRequest{Name: uuid}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	ctr := arvados.Container{UUID: uuid, RuntimeConstraints: arvados.RuntimeConstraints{RAM: 64 << 20, VCPUs: 1}}
	ctr.SchedulingParameters.Partitions = partitions
	res, err := ComputeResources(ctr, 0)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := ParseTemplate(append(DefaultTemplateArgs(), "--output=/dev/null"))
	if err != nil {
		t.Fatal(err)
	}
	args, err := tmpl.Expand(uuid, res)
	if err != nil {
		t.Fatal(err)
	}
	if script == nil {
		script = []byte("#!/bin/sh\nexec sleep 300\n")
	}
	id, err = c.Submit(context.Background(), SubmitRequest{Name: uuid, Nice: 10, Args: append(args, extra...), Script: script})
	return uuid, id, err
}

// eventually polls cond until it holds or 30 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func findJob(jobs []Job, id string) (Job, bool) {
	i := slices.IndexFunc(jobs, func(j Job) bool { return j.ID == id })
	if i < 0 {
		return Job{}, false
	}
	return jobs[i], true
}

func TestRealPendingJobsSnapshotReniceLookupCancel(t *testing.T) {
	c := realCLI(t)
	ctx := context.Background()
	var uuids, ids []string
	for range 3 {
		uuid, id, err := realSubmit(t, c, []string{"down"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		uuids, ids = append(uuids, uuid), append(ids, id)
	}

	snap, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		j, ok := findJob(snap.Jobs, id)
		if !ok || j.Name != uuids[i] || j.State != "PENDING" || j.Reason != "PartitionDown" || j.Nice != 10 || j.Priority != 1000000-10 {
			t.Errorf("job %s in snapshot: %+v, %v", id, j, ok)
		}
	}
	if snap.Finished.Before(snap.Started) {
		t.Errorf("snapshot times %v %v", snap.Started, snap.Finished)
	}

	gone, err := c.Renice(ctx, 25, append(slices.Clone(ids), goneID))
	if err != nil || !slices.Equal(gone, []string{goneID}) {
		t.Fatalf("Renice = %v, %v", gone, err)
	}
	snap, err = c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if j, _ := findJob(snap.Jobs, id); j.Nice != 25 || j.Priority != 1000000-25 {
			t.Errorf("after renice: %+v", j)
		}
	}

	byName, err := c.Lookup(ctx, LookupQuery{Name: uuids[0]})
	if err != nil || len(byName) != 1 || byName[0].ID != ids[0] {
		t.Errorf("Lookup by name = %+v, %v", byName, err)
	}
	byID, err := c.Lookup(ctx, LookupQuery{ID: ids[1], Name: uuids[1]})
	if err != nil || len(byID) != 1 || byID[0].Name != uuids[1] {
		t.Errorf("Lookup by id = %+v, %v", byID, err)
	}
	if none, err := c.Lookup(ctx, LookupQuery{ID: goneID}); err != nil || len(none) != 0 {
		t.Errorf("Lookup of an unknown id = %+v, %v", none, err)
	}
	if none, err := c.Lookup(ctx, LookupQuery{Name: randomUUID(t)}); err != nil || len(none) != 0 {
		t.Errorf("Lookup of an unknown name = %+v, %v", none, err)
	}

	// Cancel three ways: by id, by name, and by id as if running (the job is pending).
	if err := c.Cancel(ctx, CancelRequest{IDs: []string{ids[0], goneID}}); err != nil {
		t.Error(err)
	}
	if err := c.Cancel(ctx, CancelRequest{Name: uuids[1]}); err != nil {
		t.Error(err)
	}
	start := time.Now()
	if err := c.Cancel(ctx, CancelRequest{IDs: []string{ids[2]}, Running: true}); err != nil {
		t.Error(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("cancelling a pending job as running took %v", took)
	}
	for i, id := range ids {
		jobs, err := c.Lookup(ctx, LookupQuery{ID: id})
		if err != nil || len(jobs) != 1 || jobs[0].State != "CANCELLED" {
			t.Errorf("job %d after cancel: %+v, %v", i, jobs, err)
		}
	}
	// Cancelling again is not an error.
	if err := c.Cancel(ctx, CancelRequest{IDs: ids, Running: true}); err != nil {
		t.Error(err)
	}
	if err := c.Cancel(ctx, CancelRequest{IDs: ids}); err != nil {
		t.Error(err)
	}
}

func TestRealRunningJobGetsTERMOnTheBatchStep(t *testing.T) {
	c := realCLI(t)
	ctx := context.Background()
	dir := c.cfg.Dir
	// The job says it started, and on TERM writes a marker and exits 0 (as crunch-run
	// would after stopping the container).
	script, err := BatchScript([]string{"/bin/sh", "-c",
		"trap 'echo term > " + filepath.Join(dir, "term") + "; exit 0' TERM; echo up > " + filepath.Join(dir, "up") + "; while :; do sleep 0.1; done"},
		testUUID)
	if err != nil {
		t.Fatal(err)
	}
	uuid, id, err := realSubmit(t, c, []string{"debug"}, script)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the job to start", func() bool {
		_, err := os.Stat(filepath.Join(dir, "up"))
		return err == nil
	})
	jobs, err := c.Lookup(ctx, LookupQuery{Name: uuid})
	if err != nil || len(jobs) != 1 || jobs[0].State != "RUNNING" {
		t.Fatalf("Lookup = %+v, %v", jobs, err)
	}
	if err := c.Cancel(ctx, CancelRequest{IDs: []string{id}, Running: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the TERM marker", func() bool {
		_, err := os.Stat(filepath.Join(dir, "term"))
		return err == nil
	})
	eventually(t, "the job to end", func() bool {
		jobs, err := c.Lookup(ctx, LookupQuery{ID: id})
		return err == nil && len(jobs) == 1 && jobs[0].State == "COMPLETED"
	})
}

func TestRealRejectionsAndNeverClearingReasons(t *testing.T) {
	c := realCLI(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		extra   []string
		parts   []string
		message string
	}{
		{"too much memory", []string{"--mem=100000000"}, nil, "Requested node configuration is not available (Memory specification can not be satisfied)"},
		{"too much scratch", []string{"--tmp=100000000"}, nil, "Requested node configuration is not available (Temporary disk specification can not be satisfied)"},
		{"an unknown feature", []string{"--constraint=nosuch"}, nil, "Invalid feature specification"},
		{"an unknown partition", nil, []string{"nosuch"}, "Invalid partition name specified (invalid partition specified: nosuch)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := realSubmit(t, c, tt.parts, nil, tt.extra...)
			var re *RejectError
			if !errors.Is(err, ErrPermanent) || !errors.As(err, &re) || re.Message != tt.message {
				t.Fatalf("Submit = %v, want a rejection saying %q", err, tt.message)
			}
		})
	}
	t.Run("more cpus than any node is accepted and never starts", func(t *testing.T) {
		uuid, id, err := realSubmit(t, c, nil, nil, "--cpus-per-task=4096")
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "reason PartitionConfig", func() bool {
			jobs, err := c.Lookup(ctx, LookupQuery{ID: id, Name: uuid})
			return err == nil && len(jobs) == 1 && jobs[0].State == "PENDING" && ClassifyReason(jobs[0].Reason) == ReasonNever
		})
	})
}
