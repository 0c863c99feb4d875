package soak

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// EnvKeep names an environment variable that, set to anything, keeps the soak's directory
// (dispatcher logs, the fake Slurm's state and calls) after the test.
const EnvKeep = "DISPATCH_SLURM_SOAK_KEEP"

// The short soak of `make test`: 35 s of containers and faults at the fake tier, every fault
// kind at least once, then the drain; no invariant may break.
func TestShortSoakInjectsEveryFaultKindAndBreaksNoInvariant(t *testing.T) {
	dir, err := os.MkdirTemp("", "dispatch-slurm-soak-")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{
		DispatcherBin: dispatcherBin, FakeslurmBin: fakeslurmBin, StandinBin: standinBin, Dir: dir,
		Duration: 35 * time.Second, DrainTimeout: 90 * time.Second, FaultEvery: 600 * time.Millisecond,
		ProgressEvery: -1,
	}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("the soak could not run: %v", err)
	}
	for _, v := range rep.Violations {
		t.Errorf("violation: %s", v)
	}
	for _, k := range Kinds {
		if rep.Faults[k] == 0 {
			t.Errorf("fault %s was never injected", k)
		}
	}
	if rep.Created < 50 || rep.Complete < 25 {
		t.Errorf("%d containers created, %d Complete: want at least 50 and 25 for a soak that means something", rep.Created, rep.Complete)
	}
	if t.Failed() || os.Getenv(EnvKeep) != "" {
		t.Logf("kept %s (seed %d)", dir, rep.Seed)
	} else {
		os.RemoveAll(dir)
	}
}
