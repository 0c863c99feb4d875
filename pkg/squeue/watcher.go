package squeue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// Slurm is what the watcher needs from Slurm (a subset of slurm.Client).
type Slurm interface {
	Snapshot(ctx context.Context) (*slurm.Snapshot, error)
	Lookup(ctx context.Context, q slurm.LookupQuery) ([]slurm.Job, error)
	Renice(ctx context.Context, nice int, ids []string) (gone []string, err error)
	Cancel(ctx context.Context, req slurm.CancelRequest) error
}

var _ Slurm = slurm.Client(nil)

// retention is how long a record outlives the last evidence about it when the poller no
// longer lists its container as locked. Slurm's own MinJobAge is 300 s.
const retention = 10 * time.Minute

// Stats are counters for metrics.
type Stats struct {
	SnapshotsOK, SnapshotsFailed, SnapshotsSuspect int64
	// ConsecutiveFailures is the current run of failed squeue runs; ConsecutiveSuspect of
	// suspect snapshots.
	ConsecutiveFailures, ConsecutiveSuspect  int
	CancelCalls, CancelledJobs, CancelErrors int64
	ReniceCalls, RenicedJobs, ReniceErrors   int64
	Lookups, LookupErrors                    int64
	// ReniceDisabled is set when Slurm's priorities did not follow our renices for several
	// snapshots in a row (a priority plugin that ignores nice): renicing is then off.
	ReniceDisabled bool
	// LastSnapshot is when the latest good snapshot started.
	LastSnapshot time.Time
}

// snapInfo is what the watcher keeps of the latest successful snapshot.
type snapInfo struct {
	started time.Time
	suspect bool
	ours    map[string][]slurm.Job // our live jobs by name (uuid)
	ids     map[string]string      // job id → uuid of our live jobs
}

// Watcher runs squeue once per period and owns what dispatch-slurm knows about its jobs.
// All methods are safe for concurrent use.
type Watcher struct {
	cfg   Config
	slurm Slurm
	log   *zap.Logger
	poke  chan struct{}

	cycleMu sync.Mutex // one cycle at a time

	mu         sync.Mutex
	snap       *snapInfo
	changed    chan struct{} // closed and replaced after each successful cycle
	lastErr    error
	recs       map[string]*record
	incoming   map[string]*provisional // by uuid
	baseline   map[string]bool         // uuids believed alive (see suspect)
	suspectWhy string
	placed     *placedCache // for InitialNice; nil when stale
	scratch    []Placed
	wanted     Wanted
	sent       map[string]sentCancel // job id → our last scancel for it
	running    map[string]time.Time  // job id → start of the first snapshot that showed it started
	loggedRe   map[string]bool       // pending reasons already logged
	renice     reniceState
	stats      Stats
}

// New returns a Watcher; call Run (or Cycle in tests).
func New(client Slurm, cfg Config) (*Watcher, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("squeue watcher config: %w", err)
	}
	return &Watcher{
		cfg: cfg, slurm: client, log: cfg.Logger.Named("squeue"),
		poke: make(chan struct{}, 1), changed: make(chan struct{}),
		recs: map[string]*record{}, incoming: map[string]*provisional{}, baseline: map[string]bool{}, sent: map[string]sentCancel{}, running: map[string]time.Time{}, loggedRe: map[string]bool{},
		renice: reniceState{last: map[string]reniced{}},
	}, nil
}

// Run runs a cycle, waits a jittered period (or a Poke), and again, until ctx is done. Cycles
// never overlap. It returns nil once ctx is done; it starts no goroutines.
func (w *Watcher) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := w.Cycle(ctx); err != nil && ctx.Err() == nil {
			w.log.Debug("squeue cycle failed", zap.Error(err))
		}
		d := time.Duration(float64(w.cfg.Period) * (1 + w.cfg.Jitter*(2*w.cfg.Rand()-1)))
		c, stop := w.cfg.NewTimer(d)
		select {
		case <-ctx.Done():
		case <-c:
		case <-w.poke:
		}
		stop()
	}
	return nil
}

// Poke asks for an early cycle. Pokes coalesce.
func (w *Watcher) Poke() {
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

// WaitSnapshotAfter waits until a snapshot that started after t has been taken and applied
// (suspect or not), or ctx is done. Failed squeue runs wake nobody.
func (w *Watcher) WaitSnapshotAfter(ctx context.Context, t time.Time) error {
	for {
		w.mu.Lock()
		s, ch := w.snap, w.changed
		w.mu.Unlock()
		if s != nil && s.started.After(t) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for a snapshot after %s: %w", t.Format(time.RFC3339Nano), ctx.Err())
		case <-ch:
		}
	}
}

// Healthy reports false, with the reason, after FailuresUntilUnhealthy failed squeue runs in
// a row, or SuspectUntilUnhealthy suspect snapshots in a row.
func (w *Watcher) Healthy() (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.stats.ConsecutiveFailures; n >= w.cfg.FailuresUntilUnhealthy {
		return false, fmt.Sprintf("squeue failed %d times in a row: %v", n, w.lastErr)
	}
	if n := w.stats.ConsecutiveSuspect; n >= w.cfg.SuspectUntilUnhealthy {
		return false, fmt.Sprintf("squeue output suspect %d times in a row: %s", n, w.suspectWhy)
	}
	return true, ""
}

// Stats returns the counters.
func (w *Watcher) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Cycle runs one pass synchronously: squeue, then lookups to confirm absence, scancel of
// unwanted jobs and renicing. It returns the squeue error, if any (the previous snapshot is
// kept then and nothing else is done).
func (w *Watcher) Cycle(ctx context.Context) error {
	w.cycleMu.Lock()
	defer w.cycleMu.Unlock()
	// Our own clock, read before squeue starts: never later than squeue's real start, so
	// "started after t" is never claimed too early, and it is the clock callers use.
	started := w.cfg.Now()
	snap, err := w.slurm.Snapshot(ctx)
	if err == nil && snap == nil {
		err = errors.New("no snapshot and no error")
	}
	if err != nil {
		w.mu.Lock()
		w.stats.SnapshotsFailed++
		w.stats.ConsecutiveFailures++
		w.lastErr = err
		n := w.stats.ConsecutiveFailures
		w.mu.Unlock()
		if n == w.cfg.FailuresUntilUnhealthy {
			w.log.Warn("squeue keeps failing; keeping the previous snapshot", zap.Int("failures", n), zap.Error(err))
		}
		return fmt.Errorf("squeue snapshot: %w", err)
	}
	work := w.apply(snap, started)
	w.lookup(ctx, work.lookups)
	w.cancel(ctx, work.cancels)
	w.reniceJobs(ctx, work.plan)
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
	return nil
}

// cycleWork is what apply decided, to be done without holding the lock.
type cycleWork struct {
	lookups []lookupTask
	cancels []cancelTask
	plan    Plan
}

// ours reports whether a job name is a container uuid of our cluster.
func (w *Watcher) ours(name string) bool {
	return arvados.ClusterID(name) == w.cfg.ClusterID
}
