package soak

import (
	"errors"
	"fmt"
	"time"
)

// Options configure one soak run. Zero fields take the defaults noted.
type Options struct {
	// DispatcherBin, FakeslurmBin and StandinBin are the programs: dispatch-slurm,
	// test/fakeslurm and test/crunchrun-standin (required).
	DispatcherBin, FakeslurmBin, StandinBin string
	// Dir is the run's working directory (logs, Slurm state, submit directory). Required; it
	// is left in place for inspection.
	Dir string
	// Seed seeds the RNG that chooses containers and faults (0: a random seed, reported).
	Seed int64
	// Duration is how long containers are created and faults injected (default 5m).
	Duration time.Duration
	// DrainTimeout bounds the drain after Duration (default 2m).
	DrainTimeout time.Duration
	// ContainerEvery is the mean time between new containers (default 400ms).
	ContainerEvery time.Duration
	// FaultEvery is the mean time between injected faults (default 1s).
	FaultEvery time.Duration
	// SampleEvery is the period of the invariant sampler (default 250ms).
	SampleEvery time.Duration
	// ProgressEvery is the period of progress lines on out (default 15s; negative: none).
	ProgressEvery time.Duration
	// PollPeriod and SqueuePeriod are the dispatcher's (default 300ms and 200ms).
	PollPeriod, SqueuePeriod time.Duration
	// LogLevel is the dispatcher's (default debug).
	LogLevel string
}

func (o *Options) defaults() error {
	var errs []error
	for name, v := range map[string]string{"DispatcherBin": o.DispatcherBin, "FakeslurmBin": o.FakeslurmBin,
		"StandinBin": o.StandinBin, "Dir": o.Dir} {
		if v == "" {
			errs = append(errs, fmt.Errorf("soak: Options.%s is required", name))
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.Duration, 5*time.Minute)
	def(&o.DrainTimeout, 2*time.Minute)
	def(&o.ContainerEvery, 400*time.Millisecond)
	def(&o.FaultEvery, time.Second)
	def(&o.SampleEvery, 250*time.Millisecond)
	def(&o.ProgressEvery, 15*time.Second)
	def(&o.PollPeriod, 300*time.Millisecond)
	def(&o.SqueuePeriod, 200*time.Millisecond)
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	return errors.Join(errs...)
}

// Report is what a run found.
type Report struct {
	Seed    int64
	Cluster string
	Dir     string
	// Ran is how long containers were created and faults injected; Drained how long the drain
	// took.
	Ran, Drained time.Duration
	// Faults counts the faults injected, by kind (every kind of Kinds, zero included).
	Faults map[string]int
	// Containers counts our containers: created, and at the end by state.
	Created            int
	Complete           int
	Cancelled          int
	CancelledByDriver  int // cancelled by the driver as a user would, or after its priority 0
	CancelledAfterKill int // cancelled after the driver killed its crunch-run
	NotFinal           int
	// Jobs is the number of Slurm jobs submitted for our containers; Unlocks the dispatcher's
	// successful unlocks.
	Jobs, Unlocks int
	// DispatcherRuns counts dispatcher processes started (1 + restarts); StartupExits those
	// that gave up at startup because the API was unavailable (and were restarted).
	DispatcherRuns, StartupExits int
	// APIRequests counts the dispatcher's API requests, Injected5xx those answered by a fault.
	APIRequests, Injected5xx int
	// Violations are the broken invariants.
	Violations []Violation
}

// Violation is one broken invariant, with what shows it.
type Violation struct {
	// Check names the invariant (see the check* constants).
	Check     string
	Container string
	Evidence  string
}

func (v Violation) String() string {
	if v.Container != "" {
		return fmt.Sprintf("[%s] %s: %s", v.Check, v.Container, v.Evidence)
	}
	return fmt.Sprintf("[%s] %s", v.Check, v.Evidence)
}

// Fault kinds, as counted in Report.Faults.
const (
	FaultAPI5xx          = "api-5xx-burst"
	FaultAPILatency      = "api-latency"
	FaultSqueueFail      = "squeue-fail"
	FaultSqueueEmpty     = "squeue-empty"
	FaultSqueueGarbage   = "squeue-garbage"
	FaultSbatchFail      = "sbatch-transient-fail"
	FaultSbatchAmbiguous = "sbatch-fail-after-create"
	FaultSbatchTimeout   = "sbatch-timeout-after-create"
	FaultKillStandin     = "kill-crunch-run"
	FaultKillDispatcher  = "kill-dispatcher"
	FaultPriority        = "priority-change"
	FaultPriorityZero    = "priority-zero"
	FaultUserCancel      = "user-cancel"
)

// Kinds lists every fault kind the soak injects.
var Kinds = []string{FaultAPI5xx, FaultAPILatency, FaultSqueueFail, FaultSqueueEmpty, FaultSqueueGarbage,
	FaultSbatchFail, FaultSbatchAmbiguous, FaultSbatchTimeout, FaultKillStandin, FaultKillDispatcher,
	FaultPriority, FaultPriorityZero, FaultUserCancel}
