package queue

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

// pass re-decides every tracker that has no operation in flight (loop step 6) and starts the
// operations decided, in priority order (step 7). It returns a WaitGroup that is done when
// those operations are.
func (d *Dispatcher) pass(ctx context.Context) *sync.WaitGroup {
	d.passMu.Lock()
	defer d.passMu.Unlock()
	var wg sync.WaitGroup
	if ctx.Err() != nil {
		return &wg
	}
	now := d.now()
	d.mu.Lock()
	if msg := d.rej.tick(now); msg != "" {
		d.log.Error("sbatch keeps rejecting distinct containers with the same message and nothing goes through: "+
			"our Slurm configuration looks wrong; pausing all submitting, keeping every lock, cancelling nothing",
			zap.String("action", "pause"), zap.String("reason", msg))
	}
	for _, t := range d.trackers {
		t.presence = d.w.Presence(t.uuid) // once per pass; observe and the guard below read it
	}
	d.neverOurs = d.neverClearingMisconfig()
	ts := make([]*tracker, 0, len(d.trackers))
	for _, t := range d.trackers {
		if !t.busy {
			ts = append(ts, t)
		}
	}
	slices.SortFunc(ts, func(a, b *tracker) int {
		return cmp.Or(cmp.Compare(b.ctr.Priority, a.ctr.Priority), a.ctr.CreatedAt.Compare(b.ctr.CreatedAt),
			cmp.Compare(a.uuid, b.uuid))
	})
	var (
		submits []submitItem
		updates []func(context.Context)
		reads   []*tracker
		blocked []*tracker // waiting only because submitting is paused
		poke    bool
	)
	decideOne := func(t *tracker, probe bool) {
		o := d.observe(t, now)
		o.Probe = probe
		a := Decide(o.Observation)
		d.noteAction(t, a)
		switch a.Kind {
		case Wait:
			if a.NeedSnapshot && !t.pokedFor.Equal(o.since) {
				t.pokedFor, poke = o.since, true
			}
			if a.Paused {
				blocked = append(blocked, t)
			}
		case Forget:
			delete(d.trackers, t.uuid)
			d.wantedDirty = true
		case ReadContainer:
			t.busy = true
			reads = append(reads, t)
		case Submit:
			t.busy = true
			if probe {
				d.rej.probing, t.lastProbe = t.uuid, now
			}
			submits = append(submits, submitItem{priority: t.ctr.Priority, created: t.ctr.CreatedAt, uuid: t.uuid,
				ctx: ctx, op: d.submitOp(t)})
		default:
			t.busy = true
			updates = append(updates, d.updateOp(t, a))
		}
	}
	for _, t := range ts {
		decideOne(t, false)
	}
	if len(blocked) > 0 && d.rej.probeAvailable(now) {
		// The probe: one that tests the paused template, not rejected yet, tried longest
		// ago, by priority.
		slices.SortStableFunc(blocked, func(a, b *tracker) int {
			return cmp.Or(cmp.Compare(boolRank(!d.rej.pausedKind(a.kind)), boolRank(!d.rej.pausedKind(b.kind))),
				cmp.Compare(boolRank(a.last.Rejection != ""), boolRank(b.last.Rejection != "")),
				a.lastProbe.Compare(b.lastProbe))
		})
		decideOne(blocked[0], true)
	}
	var view *squeue.Wanted
	if d.wantedDirty && !d.lastPollAt.IsZero() {
		v := d.wantedViewLocked(d.lastPollAt)
		view = &v
	}
	d.mu.Unlock()
	if view != nil {
		d.w.SetWanted(*view)
	}
	if poke {
		d.w.Poke()
	}
	if len(reads) > 0 {
		d.launch(ctx, &wg, d.updateSem, []func(context.Context){d.readOp(reads)}, func() { d.release(reads...) })
	}
	for i := range submits {
		wg.Add(1)
		d.ops.Add(1)
		submits[i].done = func() { d.ops.Done(); wg.Done() }
	}
	d.submits.push(submits...)
	d.launch(ctx, &wg, d.updateSem, updates, nil)
	return &wg
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// observation is an Observation and the time the submit rule was asked about.
type observation struct {
	Observation
	since time.Time
}

// observe gathers what Decide needs about t, whose presence pass has just refreshed.
// Callers hold d.mu.
func (d *Dispatcher) observe(t *tracker, now time.Time) observation {
	p := t.presence
	if p.Kind == squeue.Present && p.Job.ID != "" {
		if t.last.JobID != p.Job.ID && d.ours(t.ctr) {
			d.log.Info("following job", zap.String("container", t.uuid), zap.String("job_id", p.Job.ID),
				zap.String("state", p.Job.State), zap.String("action", "follow"))
		}
		t.last.JobID = p.Job.ID
		if dups := strings.Join(p.Duplicates, ","); dups != t.dupsLogged {
			t.dupsLogged = dups
			if dups != "" {
				d.log.Warn("more than one live Slurm job for a container", zap.String("container", t.uuid),
					zap.String("job_id", p.Job.ID), zap.Strings("duplicates", p.Duplicates))
			}
		}
	}
	if t.last.Rejection != "" && t.last.RejectionVerdict != ContainersFault {
		t.last.RejectionVerdict = d.rej.verdict(t.uuid, t.kind, t.last.Rejection, t.rejectSeq, t.rejectedAt, now)
	}
	since := t.since
	if t.lastTry.After(since) {
		since = t.lastTry
	}
	return observation{since: since, Observation: Observation{
		Now: now, Container: t.ctr, ReadAt: t.readAt, Full: t.full && t.req != nil || t.invalid != "",
		Gone: t.gone, TokenUUID: d.token, Presence: p,
		SubmitRule: d.w.AbsentInSnapshotAfter(t.uuid, since),
		Adopted:    t.adopted, Invalid: t.invalid, Paused: d.rej.paused, Last: t.last,
		NeverClearsOurs: p.Kind == squeue.Present && p.Class == slurm.ReasonNever &&
			d.neverOurs != "" && slurm.ReasonKey(p.Job.Reason) == d.neverOurs,
	}}
}

// noteAction logs a tracker's decision when it changes: Info for actions, Debug for waits.
func (d *Dispatcher) noteAction(t *tracker, a Action) {
	prev := t.action
	t.action = a
	if prev.Kind == a.Kind && prev.Reason == a.Reason {
		return
	}
	level := zap.InfoLevel
	if a.Kind == Wait || a.Kind == ReadContainer {
		level = zap.DebugLevel
	}
	d.log.Log(level, "decided", zap.String("container", t.uuid), zap.String("job_id", t.last.JobID),
		zap.String("state", string(t.ctr.State)), zap.String("action", a.Kind.String()), zap.String("reason", a.Reason))
}

// launch runs ops, in order, each holding a slot of sem; done runs instead of the ops that
// never start because ctx ended.
func (d *Dispatcher) launch(ctx context.Context, wg *sync.WaitGroup, sem chan struct{}, ops []func(context.Context), notStarted func()) {
	if len(ops) == 0 {
		return
	}
	wg.Add(1)
	d.ops.Add(1)
	go func() {
		defer d.ops.Done()
		defer wg.Done()
		var inner sync.WaitGroup
		defer inner.Wait()
		for _, op := range ops {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				if notStarted != nil {
					notStarted()
				} else {
					op(ctx) // each op notices ctx itself and releases its tracker
				}
				continue
			}
			inner.Go(func() {
				defer func() { <-sem }()
				op(ctx)
			})
		}
	}()
}

// release clears the busy flag of trackers and asks for another pass.
func (d *Dispatcher) release(ts ...*tracker) {
	d.mu.Lock()
	for _, t := range ts {
		t.busy = false
	}
	d.mu.Unlock()
	d.kickPass()
}

// fail records a failed operation on t and backs it off. Callers hold d.mu.
func (d *Dispatcher) fail(t *tracker, now time.Time, err error) {
	t.failures++
	t.lastErr = err.Error()
	t.last.BackoffUntil = now.Add(backoff(d.cfg.MinRetryPeriod, d.cfg.MaxBackoff, t.failures, d.cfg.Rand))
}

// prepare computes the submit request from t's full record, or why there can be none.
// Callers hold d.mu.
func (d *Dispatcher) prepare(t *tracker) {
	t.req, t.invalid, t.kind = nil, "", ""
	c := t.ctr
	if !arvados.ValidContainerUUID(c.UUID) {
		t.invalid = "not a container uuid"
		return
	}
	res, err := slurm.ComputeResources(c, d.cfg.ReserveRAM)
	if err != nil {
		t.invalid = err.Error()
		return
	}
	tmpl, kind := d.cfg.Template, "default"
	if c.SchedulingParameters.Supervisor && d.cfg.SupervisorTemplate != nil {
		tmpl, kind = d.cfg.SupervisorTemplate, "supervisor"
	}
	if res.GPUs > 0 {
		kind += "+gpu"
	}
	args, err := tmpl.Expand(c.UUID, res)
	if err != nil {
		t.invalid = err.Error()
		return
	}
	cmd := append(slices.Clip(d.cfg.CrunchRunCommand), "--runtime-engine="+d.cfg.RuntimeEngine)
	cmd = append(cmd, d.cfg.CrunchRunArgs...)
	script, err := slurm.BatchScript(cmd, c.UUID)
	if err != nil {
		t.invalid = err.Error()
		return
	}
	t.req = &slurm.SubmitRequest{Name: c.UUID, Args: args, Script: script, Env: d.cfg.JobEnv}
	t.kind = kind
}

// ownPartitionFault reports whether a rejection can only be about the container: it names
// partitions of its own and Slurm complains about partitions.
func ownPartitionFault(c arvados.Container, msg string) bool {
	return len(c.SchedulingParameters.Partitions) > 0 && partitionMessage(msg) &&
		!strings.Contains(strings.ToLower(msg), "account")
}

// neverClearingMisconfig returns the never-clearing pending reason that at least
// RejectionBurst of our containers' jobs share while none of our jobs is running or waiting
// normally (jobs held for a reason that may clear prove nothing): a template that makes every job impossible (more cpus than any node, a feature
// nobody has) is our misconfiguration, not the containers' (DESIGN.md invariant 8), and
// must not cancel the queue. "" when there is none. Callers hold d.mu.
func (d *Dispatcher) neverClearingMisconfig() string {
	counts := map[string]int{}
	for _, t := range d.trackers {
		p := t.presence
		if p.Kind != squeue.Present {
			continue
		}
		switch {
		case !slurm.PendingState(p.Job.State) || p.Class == slurm.ReasonWaiting:
			return "" // one of our jobs runs or can: the configuration works
		case p.Class == slurm.ReasonNever:
			counts[slurm.ReasonKey(p.Job.Reason)]++
		}
	}
	best, n := "", 0
	for r, c := range counts {
		if c > n || c == n && r < best {
			best, n = r, c
		}
	}
	if n < d.cfg.RejectionBurst {
		return ""
	}
	if best != d.neverOursLogged {
		d.log.Error("many of our jobs are pending for the same reason that never clears and none can start: "+
			"our Slurm configuration looks wrong; cancelling none of their containers",
			zap.String("reason", best), zap.Int("jobs", n), zap.String("action", "hold"))
	}
	d.neverOursLogged = best
	return best
}
