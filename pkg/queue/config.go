package queue

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// Config configures a Dispatcher. Zero fields take the defaults listed with them.
type Config struct {
	// PollPeriod is the period of the API poll (default 10s, Arvados's
	// Containers.CloudVMs.PollInterval).
	PollPeriod time.Duration
	// MinRetryPeriod is the least time between two attempts for one container after a
	// failure (default 1s); repeated failures back off exponentially from it, jittered.
	MinRetryPeriod time.Duration
	// MaxBackoff caps the per-container backoff (default 5m).
	MaxBackoff time.Duration
	// MaxJobs caps the containers we hold locked (Locked or Running) at once (default 1000).
	MaxJobs int
	// SupervisorFraction is the share of MaxJobs that supervisor containers
	// (scheduling_parameters.supervisor) may hold (default 0.5; negative means no limit).
	SupervisorFraction float64
	// LockConcurrency bounds concurrent lock requests (default 4).
	LockConcurrency int
	// SubmitConcurrency bounds concurrent sbatch commands (default 8).
	SubmitConcurrency int
	// UpdateConcurrency bounds concurrent container updates, unlocks and log writes
	// (default 8).
	UpdateConcurrency int
	// CrunchRunCommand is the job's command (default ["crunch-run"]).
	CrunchRunCommand []string
	// CrunchRunArgs come after the command and before the uuid
	// (Containers.CrunchRunArgumentsList).
	CrunchRunArgs []string
	// RuntimeEngine is passed as --runtime-engine=<x> (default "docker").
	RuntimeEngine string
	// Template expands the sbatch arguments (default slurm.DefaultTemplateArgs()).
	Template *slurm.Template
	// SupervisorTemplate, if set, is used for supervisor containers instead of Template.
	SupervisorTemplate *slurm.Template
	// ReserveRAM is added to every job's memory, in bytes (default slurm.DefaultReserveRAM).
	ReserveRAM int64
	// JobEnv is added to sbatch's environment ("KEY=value"); sbatch passes it on to the job.
	// It holds ARVADOS_API_TOKEN: it is never logged.
	JobEnv []string
	// RejectionBurst is the number of distinct containers that, rejected by sbatch with the
	// same permanent message and no successful submit in between, mean that our own
	// configuration is wrong: submitting pauses and nothing is cancelled (default 3).
	RejectionBurst int
	// RejectionHold is how long a container rejected by sbatch is held (locked, not
	// cancelled) while we learn whether the rejection is about it or about our
	// configuration (default 10s). It ends earlier when another container's submit
	// succeeds.
	RejectionHold time.Duration
	// RejectionWindow is how long a rejection counts towards a burst (default 10m).
	RejectionWindow time.Duration
	// PollFailuresUntilUnhealthy is the number of failed polls in a row after which Healthy
	// reports false (default 3).
	PollFailuresUntilUnhealthy int
	// OrphanSweepPeriod is the period of the orphan sweep (default 5m).
	OrphanSweepPeriod time.Duration
	// ClusterID is our cluster's uuid prefix: only containers whose uuids start with it are
	// locked, adopted or submitted (the watcher follows only their jobs). Default: the first
	// five characters of TokenUUID.
	ClusterID string
	// TokenUUID is the uuid of our API token (what locked_by_uuid holds for our
	// containers). If empty, Run and Poll ask the API (CurrentToken).
	TokenUUID string

	// Observer hears of polls and operations (metrics); nil: nobody.
	Observer Observer

	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// NewTimer returns a channel that delivers once after d and a function that stops the
	// timer (default time.NewTimer).
	NewTimer func(d time.Duration) (<-chan time.Time, func() bool)
	// Rand returns a number in [0, 1) for jitter (default math/rand/v2's Float64).
	Rand func() float64
}

// Defaults for Config.
const (
	DefaultPollPeriod        = 10 * time.Second
	DefaultMinRetryPeriod    = time.Second
	DefaultMaxBackoff        = 5 * time.Minute
	DefaultMaxJobs           = 1000
	DefaultSupervisorFrac    = 0.5
	DefaultLockConcurrency   = 4
	DefaultSubmitConcurrency = 8
	DefaultRuntimeEngine     = "docker"
	DefaultRejectionBurst    = 3
	DefaultRejectionHold     = 10 * time.Second
	DefaultRejectionWindow   = 10 * time.Minute
	DefaultOrphanSweepPeriod = 5 * time.Minute
)

func (c Config) withDefaults() (Config, error) {
	setDefault(&c.PollPeriod, DefaultPollPeriod)
	setDefault(&c.MinRetryPeriod, DefaultMinRetryPeriod)
	setDefault(&c.MaxBackoff, DefaultMaxBackoff)
	setDefault(&c.MaxJobs, DefaultMaxJobs)
	setDefault(&c.SupervisorFraction, DefaultSupervisorFrac)
	setDefault(&c.LockConcurrency, DefaultLockConcurrency)
	setDefault(&c.SubmitConcurrency, DefaultSubmitConcurrency)
	setDefault(&c.UpdateConcurrency, DefaultSubmitConcurrency)
	setDefault(&c.RuntimeEngine, DefaultRuntimeEngine)
	setDefault(&c.ReserveRAM, slurm.DefaultReserveRAM)
	setDefault(&c.RejectionBurst, DefaultRejectionBurst)
	setDefault(&c.RejectionHold, DefaultRejectionHold)
	setDefault(&c.RejectionWindow, DefaultRejectionWindow)
	setDefault(&c.PollFailuresUntilUnhealthy, 3)
	setDefault(&c.OrphanSweepPeriod, DefaultOrphanSweepPeriod)
	if len(c.CrunchRunCommand) == 0 {
		c.CrunchRunCommand = []string{"crunch-run"}
	}
	if c.Template == nil {
		t, err := slurm.ParseTemplate(slurm.DefaultTemplateArgs())
		if err != nil {
			return c, fmt.Errorf("default sbatch template: %w", err)
		}
		c.Template = t
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
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
	return c, nil
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Validate reports every problem of c (after defaults) at once. It never shows JobEnv values.
func (c Config) Validate() error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be positive", name, d))
		}
	}
	positive("poll period", c.PollPeriod)
	positive("min retry period", c.MinRetryPeriod)
	positive("max backoff", c.MaxBackoff)
	positive("rejection hold", c.RejectionHold)
	positive("rejection window", c.RejectionWindow)
	positive("orphan sweep period", c.OrphanSweepPeriod)
	if c.MaxBackoff < c.MinRetryPeriod {
		errs = append(errs, fmt.Errorf("max backoff %s is less than the min retry period %s", c.MaxBackoff, c.MinRetryPeriod))
	}
	for name, n := range map[string]int{"max jobs": c.MaxJobs, "lock concurrency": c.LockConcurrency,
		"submit concurrency": c.SubmitConcurrency, "update concurrency": c.UpdateConcurrency,
		"rejection burst": c.RejectionBurst, "poll failures until unhealthy": c.PollFailuresUntilUnhealthy} {
		if n < 1 {
			errs = append(errs, fmt.Errorf("%s %d: want ≥ 1", name, n))
		}
	}
	if c.SupervisorFraction > 1 {
		errs = append(errs, fmt.Errorf("supervisor fraction %g: want at most 1 (negative for no limit)", c.SupervisorFraction))
	}
	if c.ReserveRAM < 0 {
		errs = append(errs, fmt.Errorf("reserve RAM %d: must not be negative", c.ReserveRAM))
	}
	if c.CrunchRunCommand[0] == "" {
		errs = append(errs, errors.New("crunch-run command: empty"))
	}
	if strings.ContainsAny(c.RuntimeEngine, " \t\n\x00'\"") {
		errs = append(errs, fmt.Errorf("runtime engine %q: not a single word", c.RuntimeEngine))
	}
	for i, kv := range c.JobEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.ContainsAny(k, " \t\n\x00") {
			// Only the key: the value may be a secret.
			errs = append(errs, fmt.Errorf("job environment entry %d (%q…): want KEY=value", i+1, k))
		}
	}
	if c.ClusterID != "" && !clusterIDRe.MatchString(c.ClusterID) {
		errs = append(errs, fmt.Errorf("cluster id %q: want five lower-case letters or digits", c.ClusterID))
	}
	if c.TokenUUID != "" && !tokenUUIDRe.MatchString(c.TokenUUID) {
		errs = append(errs, fmt.Errorf("token uuid %q: not an API token uuid", c.TokenUUID))
	}
	return errors.Join(errs...)
}
