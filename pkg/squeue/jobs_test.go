package squeue

import (
	"context"
	"slices"
	"testing"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

func TestJobsListsOurLiveJobsOfTheLatestSnapshot(t *testing.T) {
	f := newFakeSlurm()
	w, err := New(f, Config{ClusterID: "zzzzz"})
	if err != nil {
		t.Fatal(err)
	}
	if js := w.Jobs(); js != nil {
		t.Fatalf("before any snapshot: %+v, want nil", js)
	}
	pending := f.add("zzzzz-dz642-000000000000001", "PENDING", 0)
	running := f.add("zzzzz-dz642-000000000000002", "RUNNING", 0)
	f.add("yyyyy-dz642-000000000000003", "RUNNING", 0) // another cluster's
	f.add("not-a-container", "PENDING", 0)             // foreign
	ended := f.add("zzzzz-dz642-000000000000004", "COMPLETED", 0)
	if err := w.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range w.Jobs() {
		ids = append(ids, j.ID)
	}
	slices.Sort(ids)
	if want := []string{pending, running}; !slices.Equal(ids, want) {
		t.Errorf("jobs %v, want ours alive %v (not %s, which ended)", ids, want, ended)
	}
	js := w.Jobs()
	js[0] = slurm.Job{}
	if w.Jobs()[0].ID == "" {
		t.Error("Jobs hands out the watcher's own slice")
	}
}
