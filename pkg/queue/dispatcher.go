package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

// Dispatcher polls the Arvados queue, locks what it will run, and drives one tracker per
// container it owns (see the package documentation). All methods are safe for concurrent use.
type Dispatcher struct {
	api API
	sl  Submitter
	w   Watcher
	cfg Config
	log *zap.Logger
	now func() time.Time

	lockSem, updateSem chan struct{}
	submits            *submitQueue
	kick               chan struct{}
	passMu             sync.Mutex // one pass at a time
	pollMu             sync.Mutex // one poll at a time
	ops                sync.WaitGroup

	mu       sync.Mutex
	token    string
	cluster  string
	trackers map[string]*tracker
	rej      *rejections
	// neverOurs is the never-clearing pending reason blamed on our configuration in the last
	// pass ("" when none); neverOursLogged the last one logged.
	neverOurs, neverOursLogged string
	pollFailures               int
	lastPollErr                error
	lastPollAt                 time.Time // start of the last successful poll
	wantedDirty                bool
	orphans                    map[string]squeue.UnwantedReason
	lastSweep                  time.Time
	skipped                    map[string]bool // uuids already logged as skipped
	// queuedSince is when each container of the last poll's Queued list was first seen
	// Queued (for the queue wait metric).
	queuedSince map[string]time.Time
}

// tracker is what the dispatcher knows about one container it owns or owned.
type tracker struct {
	uuid    string
	ctr     arvados.Container
	readAt  time.Time
	full    bool
	gone    bool
	adopted bool
	// since is when we locked or adopted the container; lastTry when our last submit
	// attempt returned. Only snapshots that started after both count for the submit rule.
	since, lastTry time.Time
	last           Last
	failures       int
	busy           bool
	action         Action
	lastErr        string
	// From the full record: the submit request (without Nice), the template kind, or why the
	// record cannot be submitted.
	req        *slurm.SubmitRequest
	kind       string
	invalid    string
	rejectedAt time.Time
	rejectSeq  int64
	lastProbe  time.Time
	// pokedFor is the submit-rule time we last asked the watcher for a snapshot after.
	pokedFor   time.Time
	presence   squeue.Presence
	dupsLogged string // the duplicate job ids last logged
	// queuedAt is when the poll that first saw the container Queued started, until its
	// first job went in (the queue wait metric); zero when unknown (adopted).
	queuedAt time.Time
}

// Tracked is what Tracked reports about one container.
type Tracked struct {
	UUID     string
	State    string // container state as last read
	Priority int64
	// JobID, SlurmState and Reason describe the Slurm job when the watcher sees one.
	JobID, SlurmState, Reason string
	// Action is the last decided action and Why its reason.
	Action, Why string
	LastError   string
	Adopted     bool
	Supervisor  bool
}

// New returns a Dispatcher. It does not run the watcher: run w.Run alongside d.Run.
func New(api API, sl Submitter, w Watcher, cfg Config) (*Dispatcher, error) {
	if api == nil || sl == nil || w == nil {
		return nil, errors.New("queue: New needs an API, a Submitter and a Watcher")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("dispatcher config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dispatcher config: %w", err)
	}
	d := &Dispatcher{
		api: api, sl: sl, w: w, cfg: cfg, log: cfg.Logger, now: cfg.Now,
		lockSem:   make(chan struct{}, cfg.LockConcurrency),
		submits:   newSubmitQueue(cfg.SubmitConcurrency),
		updateSem: make(chan struct{}, cfg.UpdateConcurrency),
		kick:      make(chan struct{}, 1),
		trackers:  map[string]*tracker{},
		rej:       newRejections(cfg),
		orphans:   map[string]squeue.UnwantedReason{},
		skipped:   map[string]bool{},

		queuedSince: map[string]time.Time{},
	}
	if cfg.TokenUUID != "" {
		d.setToken(cfg.TokenUUID)
	}
	return d, nil
}

func (d *Dispatcher) setToken(uuid string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.token, d.cluster = uuid, uuid[:5]
	if d.cfg.ClusterID != "" {
		d.cluster = d.cfg.ClusterID
	}
}

// ensureToken learns our token's uuid from the API the first time.
func (d *Dispatcher) ensureToken(ctx context.Context) error {
	d.mu.Lock()
	known := d.token != ""
	d.mu.Unlock()
	if known {
		return nil
	}
	a, err := d.api.CurrentToken(ctx)
	if err != nil {
		return fmt.Errorf("learn our token's uuid: %w", err)
	}
	if !tokenUUIDRe.MatchString(a.UUID) {
		return fmt.Errorf("learn our token's uuid: the API answered %q, not a token uuid", a.UUID)
	}
	d.setToken(a.UUID)
	return nil
}

// Run polls the API every PollPeriod, re-decides on every new squeue snapshot and after every
// completed operation, and sweeps orphans every OrphanSweepPeriod, until ctx is done. It
// leaves Slurm jobs running when it stops (DESIGN.md invariant 7) and returns after all its
// goroutines have ended. It does not run the watcher.
func (d *Dispatcher) Run(ctx context.Context) error {
	if err := d.ensureToken(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { d.pollLoop(ctx) })
	wg.Go(func() { d.snapshotLoop(ctx) })
	wg.Go(func() { d.kickLoop(ctx) })
	wg.Wait()
	d.ops.Wait()
	return nil
}

func (d *Dispatcher) pollLoop(ctx context.Context) {
	for ctx.Err() == nil {
		if err := d.poll(ctx); err == nil {
			d.sweepIfDue(ctx)
		}
		d.pass(ctx)
		c, stop := d.cfg.NewTimer(d.cfg.PollPeriod)
		select {
		case <-ctx.Done():
		case <-c:
		}
		stop()
	}
}

// snapshotLoop re-decides after every new squeue snapshot. The next wait is for a snapshot
// started after this one woke it, not after the pass: a snapshot that started during a pass
// (a poke's, say) would otherwise go unnoticed until the next one, a whole period later (the
// benchmark saw lock → sbatch take a period at p99).
func (d *Dispatcher) snapshotLoop(ctx context.Context) {
	var after time.Time
	for {
		if err := d.w.WaitSnapshotAfter(ctx, after); err != nil {
			return
		}
		after = d.now()
		d.pass(ctx)
	}
}

// kickLoop re-decides after operations complete, coalesced: the next such pass comes at
// least kickGap later, and at least passShare times as long as this one took. A pass looks at
// every tracker, so one pass per completed operation made a burst of N submits cost O(N²)
// and starved sbatch of CPU (10,000 on fakeslurm: 225 s; one pass per 50 ms: 145 s).
func (d *Dispatcher) kickLoop(ctx context.Context) {
	for {
		var took time.Duration
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
			start := d.now()
			d.pass(ctx)
			took = d.now().Sub(start)
		}
		c, stop := d.cfg.NewTimer(max(kickGap, passShare*took))
		select {
		case <-ctx.Done():
		case <-c:
		}
		stop()
	}
}

// kickGap is the least time between two passes that completed operations ask for; passShare
// keeps those passes to about 1/passShare of a CPU however many containers are tracked.
const (
	kickGap   = 50 * time.Millisecond
	passShare = 4
)

func (d *Dispatcher) kickPass() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Poll runs one poll of the API and one decision pass synchronously, and waits for the
// operations that pass started (tests drive the dispatcher with it, and the watcher with
// Cycle). It returns the poll's error; the pass runs either way.
func (d *Dispatcher) Poll(ctx context.Context) error {
	if err := d.ensureToken(ctx); err != nil {
		return err
	}
	err := d.poll(ctx)
	if err == nil {
		d.sweepIfDue(ctx)
	}
	d.pass(ctx).Wait()
	return err
}

// Pass runs one decision pass synchronously (no API poll) and waits for the operations it
// started.
func (d *Dispatcher) Pass(ctx context.Context) {
	d.pass(ctx).Wait()
}

// Healthy reports false, with the reason, while submitting is paused for misconfiguration or
// after PollFailuresUntilUnhealthy failed polls in a row.
func (d *Dispatcher) Healthy() (bool, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ok, why := d.rej.health(); !ok {
		return false, why
	}
	if d.neverOurs != "" {
		return false, "our Slurm jobs are all pending for a reason that never clears (" + d.neverOurs +
			"): check the sbatch arguments"
	}
	if n := d.pollFailures; n >= d.cfg.PollFailuresUntilUnhealthy {
		return false, fmt.Sprintf("the API poll failed %d times in a row: %v", n, d.lastPollErr)
	}
	return true, ""
}

// Tracked lists the containers the dispatcher tracks, by uuid.
func (d *Dispatcher) Tracked() []Tracked {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Tracked, 0, len(d.trackers))
	for _, t := range d.trackers {
		tr := Tracked{UUID: t.uuid, State: string(t.ctr.State), Priority: t.ctr.Priority,
			JobID: t.last.JobID, Action: t.action.Kind.String(), Why: t.action.Reason, LastError: t.lastErr,
			Adopted: t.adopted, Supervisor: t.ctr.SchedulingParameters.Supervisor}
		if p := t.presence; p.Kind == squeue.Present {
			tr.JobID, tr.SlurmState, tr.Reason = p.Job.ID, p.Job.State, p.Job.Reason
		} else if p.Kind == squeue.AbsentConfirmed && p.Ending != nil {
			tr.SlurmState = p.Ending.State
		}
		out = append(out, tr)
	}
	slices.SortFunc(out, func(a, b Tracked) int {
		switch {
		case a.UUID < b.UUID:
			return -1
		case a.UUID > b.UUID:
			return 1
		}
		return 0
	})
	return out
}

// ours reports whether the container is locked by our token (Locked or Running).
func (d *Dispatcher) ours(c arvados.Container) bool {
	return c.LockedByUUID == d.token && (c.State == arvados.Locked || c.State == arvados.Running)
}

// clusterUUID reports whether uuid is a container uuid of our cluster: the only ones whose
// jobs the watcher follows, hence the only ones we may submit.
func (d *Dispatcher) clusterUUID(uuid string) bool {
	return arvados.ClusterID(uuid) == d.cluster
}

// skipOnce logs once that a container is skipped.
func (d *Dispatcher) skipOnce(uuid, why string) {
	if d.skipped[uuid] {
		return
	}
	if len(d.skipped) > 10000 {
		clear(d.skipped)
	}
	d.skipped[uuid] = true
	d.log.Info("skipping a container", zap.String("container", uuid), zap.String("action", "skip"), zap.String("reason", why))
}
