package squeue

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// Config configures a Watcher. Zero fields take the defaults listed with them.
type Config struct {
	// ClusterID is our cluster's five-character uuid prefix (required). A Slurm job is ours
	// only when its name is a valid container uuid with this prefix; nothing else is touched.
	ClusterID string
	// Period between squeue runs (default 2s), jittered by ±Jitter (default 0.1 of it).
	// Cycles never overlap.
	Period time.Duration
	Jitter float64
	// FailuresUntilUnhealthy is the number of consecutive failed squeue runs after which
	// Healthy reports false (default 3).
	FailuresUntilUnhealthy int
	// SuspectLossFraction: a snapshot that lacks at least this share of our jobs believed
	// alive (those of the last good snapshot and since, whose absence is not confirmed), and
	// at least 2 of them, is suspect (default 0.5). So is one with unparsable lines, or none
	// of our jobs while some are believed alive.
	SuspectLossFraction float64
	// SuspectUntilUnhealthy is the number of suspect snapshots in a row after which Healthy
	// reports false (default 10: jobs ending together make a few in a row).
	SuspectUntilUnhealthy int
	// GoneAfter: while squeue output is suspect, a job that a lookup does not find at all
	// counts as gone only when it was last seen alive longer ago than this (default 5m:
	// slurmctld keeps finished jobs for MinJobAge, 300 s by default, so a job seen alive
	// more recently should still show its final state).
	GoneAfter time.Duration
	// CancelGrace is how long a job we cancelled may linger before scancel is sent again
	// (default 30s).
	CancelGrace time.Duration
	// YoungResend is how soon TERM goes again to a job that had been running for less than
	// youngJob when we sent it (default 5s). Slurm reports a job RUNNING a moment before its
	// batch step exists, and a signal for the batch step sent then is dropped while scancel
	// exits 0: without this, such a job would run on for CancelGrace.
	YoungResend time.Duration
	// MaxReniceCallsPerCycle bounds the renice calls of one cycle (default 20).
	MaxReniceCallsPerCycle int
	// MaxLookupsPerCycle bounds the targeted lookups of one cycle (default 50).
	MaxLookupsPerCycle int
	// PrioritySpread is the gap between the Slurm priorities of neighbouring jobs the
	// planner places (default 10).
	PrioritySpread int64
	// NiceHeadroom is the nice of the top job of an empty queue (default 10000): room to put
	// higher-priority jobs above it without renicing the rest.
	NiceHeadroom int64
	// DisableRenice turns renicing off (then nice values are whatever InitialNice gave).
	DisableRenice bool

	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// NewTimer returns a channel that delivers once after d, and a function that stops the
	// timer (default: time.NewTimer).
	NewTimer func(d time.Duration) (<-chan time.Time, func() bool)
	// Rand returns a number in [0, 1) for the jitter (default math/rand/v2's Float64).
	Rand func() float64
}

var clusterIDRe = regexp.MustCompile(`^[a-z0-9]{5}$`)

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	if c.Period == 0 {
		c.Period = 2 * time.Second
	}
	if c.Jitter == 0 {
		c.Jitter = 0.1
	}
	if c.FailuresUntilUnhealthy == 0 {
		c.FailuresUntilUnhealthy = 3
	}
	if c.SuspectLossFraction == 0 {
		c.SuspectLossFraction = 0.5
	}
	if c.SuspectUntilUnhealthy == 0 {
		c.SuspectUntilUnhealthy = 10
	}
	if c.GoneAfter == 0 {
		c.GoneAfter = 5 * time.Minute
	}
	if c.CancelGrace == 0 {
		c.CancelGrace = 30 * time.Second
	}
	if c.YoungResend == 0 {
		c.YoungResend = 5 * time.Second
	}
	if c.MaxReniceCallsPerCycle == 0 {
		c.MaxReniceCallsPerCycle = 20
	}
	if c.MaxLookupsPerCycle == 0 {
		c.MaxLookupsPerCycle = 50
	}
	if c.PrioritySpread == 0 {
		c.PrioritySpread = 10
	}
	if c.NiceHeadroom == 0 {
		c.NiceHeadroom = 10000
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewTimer == nil {
		c.NewTimer = func(d time.Duration) (<-chan time.Time, func() bool) {
			t := time.NewTimer(d)
			return t.C, t.Stop
		}
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return c
}

// Validate reports every problem of c (after defaults) at once.
func (c Config) Validate() error {
	var errs []error
	if !clusterIDRe.MatchString(c.ClusterID) {
		errs = append(errs, fmt.Errorf("cluster id %q: want five lower-case letters or digits", c.ClusterID))
	}
	if c.Period <= 0 {
		errs = append(errs, fmt.Errorf("squeue period %s: must be positive", c.Period))
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("squeue period jitter %g: want [0, 1)", c.Jitter))
	}
	if c.FailuresUntilUnhealthy < 1 {
		errs = append(errs, fmt.Errorf("failures until unhealthy %d: want ≥ 1", c.FailuresUntilUnhealthy))
	}
	if c.SuspectLossFraction <= 0 || c.SuspectLossFraction > 1 {
		errs = append(errs, fmt.Errorf("suspect loss fraction %g: want (0, 1]", c.SuspectLossFraction))
	}
	if c.SuspectUntilUnhealthy < 1 {
		errs = append(errs, fmt.Errorf("suspect snapshots until unhealthy %d: want ≥ 1", c.SuspectUntilUnhealthy))
	}
	if c.GoneAfter < 0 {
		errs = append(errs, fmt.Errorf("gone after %s: must not be negative", c.GoneAfter))
	}
	if c.CancelGrace < 0 {
		errs = append(errs, fmt.Errorf("cancel grace %s: must not be negative", c.CancelGrace))
	}
	if c.YoungResend < 0 {
		errs = append(errs, fmt.Errorf("young resend %s: must not be negative", c.YoungResend))
	}
	if c.MaxReniceCallsPerCycle < 1 {
		errs = append(errs, fmt.Errorf("max renice calls per cycle %d: want ≥ 1", c.MaxReniceCallsPerCycle))
	}
	if c.MaxLookupsPerCycle < 1 {
		errs = append(errs, fmt.Errorf("max lookups per cycle %d: want ≥ 1", c.MaxLookupsPerCycle))
	}
	if c.PrioritySpread < 1 {
		errs = append(errs, fmt.Errorf("priority spread %d: want ≥ 1", c.PrioritySpread))
	}
	if c.NiceHeadroom < 0 || c.NiceHeadroom > slurm.MaxNice {
		errs = append(errs, fmt.Errorf("nice headroom %d: want 0..%d", c.NiceHeadroom, slurm.MaxNice))
	}
	return errors.Join(errs...)
}
