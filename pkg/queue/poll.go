package queue

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

// poll reads the queue (steps 1–3 of the loop), hands the watcher the wanted view (4) and
// locks what we will run (5). A failed read changes nothing.
func (d *Dispatcher) poll(ctx context.Context) (err error) {
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	start := d.now()
	defer func() { d.cfg.Observer.Polled(d.now().Sub(start), err) }()
	d.mu.Lock()
	token := d.token
	d.mu.Unlock()

	mine := map[string]arvados.Container{}
	err = d.api.EachContainer(ctx, arvados.ListParams{
		Filters: []arvados.Filter{arvados.NewFilter("locked_by_uuid", "=", token)},
		Select:  pollFields,
	}, func(c arvados.Container) error { mine[c.UUID] = c; return nil })
	if err != nil {
		return d.pollFailed(fmt.Errorf("list containers locked by our token: %w", err))
	}
	var queued []arvados.Container
	err = d.api.EachContainer(ctx, arvados.ListParams{
		Filters: []arvados.Filter{arvados.NewFilter("state", "=", arvados.Queued), arvados.NewFilter("priority", ">", 0)},
		Select:  fullFields,
	}, func(c arvados.Container) error { queued = append(queued, c); return nil })
	if err != nil {
		return d.pollFailed(fmt.Errorf("list queued containers: %w", err))
	}
	seen := map[string]bool{}
	for u := range mine {
		seen[u] = true
	}
	for _, c := range queued {
		seen[c.UUID] = true
	}
	d.mu.Lock()
	var missing []string
	for u := range d.trackers {
		if !seen[u] {
			missing = append(missing, u)
		}
	}
	d.mu.Unlock()
	found, err := d.readBatch(ctx, missing, pollFields)
	if err != nil {
		return d.pollFailed(fmt.Errorf("read tracked containers: %w", err))
	}

	d.mu.Lock()
	d.apply(start, mine, queued, found, missing)
	d.noteQueued(start, queued)
	d.pollFailures, d.lastPollErr, d.lastPollAt = 0, nil, start
	view := d.wantedViewLocked(start)
	d.mu.Unlock()
	d.w.SetWanted(view)
	d.log.Debug("polled", zap.Int("ours", len(mine)), zap.Int("queued", len(queued)), zap.Int("read", len(missing)),
		zap.Duration("took", d.now().Sub(start)))

	if n := d.lockPhase(ctx, queued); n > 0 {
		d.mu.Lock()
		view := d.wantedViewLocked(start)
		d.mu.Unlock()
		d.w.SetWanted(view)
		d.w.Poke()
	}
	return nil
}

func (d *Dispatcher) pollFailed(err error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pollFailures++
	d.lastPollErr = err
	level := zap.WarnLevel
	if d.pollFailures > 1 && d.pollFailures != d.cfg.PollFailuresUntilUnhealthy {
		level = zap.DebugLevel // said once; again when it turns unhealthy
	}
	d.log.Log(level, "API poll failed; keeping every lock and tracker", zap.Int("failures", d.pollFailures), zap.Error(err))
	return err
}

// readBatch reads containers by uuid, up to maxBatch per request ("uuid in [...]"). Those
// not returned do not exist (or are not visible to us).
func (d *Dispatcher) readBatch(ctx context.Context, uuids []string, fields []string) (map[string]arvados.Container, error) {
	out := map[string]arvados.Container{}
	slices.Sort(uuids)
	for chunk := range slices.Chunk(uuids, maxBatch) {
		err := d.api.EachContainer(ctx, arvados.ListParams{
			Filters: []arvados.Filter{arvados.NewFilter("uuid", "in", chunk)},
			Select:  fields,
		}, func(c arvados.Container) error { out[c.UUID] = c; return nil })
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// apply folds one poll's results into the trackers. Callers hold d.mu.
func (d *Dispatcher) apply(start time.Time, mine map[string]arvados.Container, queued []arvados.Container,
	found map[string]arvados.Container, missing []string) {
	for _, c := range mine {
		t := d.trackers[c.UUID]
		if t == nil {
			if !d.adoptable(c) {
				continue
			}
			t = &tracker{uuid: c.UUID, adopted: true, since: start}
			d.trackers[c.UUID] = t
			d.log.Info("adopting a container locked by our token", zap.String("container", c.UUID),
				zap.String("state", string(c.State)), zap.String("action", "adopt"))
		}
		d.update(t, c, start, false)
	}
	for _, c := range queued {
		if t := d.trackers[c.UUID]; t != nil {
			d.update(t, c, start, true)
		}
	}
	for _, u := range missing {
		t := d.trackers[u]
		if t == nil {
			continue
		}
		if c, ok := found[u]; ok {
			d.update(t, c, start, false)
		} else if !start.Before(t.readAt) {
			t.gone = true
		}
	}
}

// adoptable reports whether a container locked by our token may be tracked.
func (d *Dispatcher) adoptable(c arvados.Container) bool {
	switch {
	case !arvados.ValidContainerUUID(c.UUID):
		d.skipOnce(c.UUID, "locked by our token but not a container uuid")
		return false
	case !d.clusterUUID(c.UUID):
		d.skipOnce(c.UUID, "locked by our token but not a container of our cluster "+d.cluster)
		return false
	case c.State != arvados.Locked && c.State != arvados.Running:
		return false
	}
	return true
}

// update takes a container record read at readAt into t, unless t has a newer one. full says
// the record has every field a submit needs; otherwise those fields are kept from before.
func (d *Dispatcher) update(t *tracker, c arvados.Container, readAt time.Time, full bool) {
	if readAt.Before(t.readAt) {
		return
	}
	old := t.ctr
	if full {
		t.ctr = c
		t.full = true
		d.prepare(t)
	} else {
		merged := old
		merged.UUID, merged.State, merged.Priority = c.UUID, c.State, c.Priority
		merged.LockedByUUID, merged.LockCount = c.LockedByUUID, c.LockCount
		merged.RuntimeStatus, merged.SchedulingParameters = c.RuntimeStatus, c.SchedulingParameters
		t.ctr = merged
	}
	t.readAt, t.gone = readAt, false
	if t.ctr.State != old.State && old.State != "" {
		d.log.Info("container state changed", zap.String("container", t.uuid), zap.String("job_id", t.last.JobID),
			zap.String("state", string(t.ctr.State)), zap.String("reason", "was "+string(old.State)))
	}
	if d.ours(t.ctr) && t.ctr.Priority == 0 {
		t.last.CancelRequested = true
	}
}

// wantedViewLocked is what the watcher should know (loop step 4): our containers with their
// priorities (priority 0 included: the watcher cancels those jobs and still confirms their
// absence), and the tracked containers that are no longer ours, with why; plus the orphan
// sweep's findings. Callers hold d.mu.
func (d *Dispatcher) wantedViewLocked(at time.Time) squeue.Wanted {
	wt := squeue.Wanted{Locked: map[string]int64{}, Unwanted: map[string]squeue.UnwantedReason{},
		Running: map[string]bool{}, At: at}
	for u, r := range d.orphans {
		wt.Unwanted[u] = r
	}
	for u, t := range d.trackers {
		if r, unwanted := d.unwantedReason(t); unwanted {
			wt.Unwanted[u] = r
		} else {
			wt.Locked[u] = t.ctr.Priority
			if t.ctr.State == arvados.Running {
				wt.Running[u] = true
			}
			delete(wt.Unwanted, u)
		}
	}
	d.wantedDirty = false
	return wt
}

// unwantedReason says why a tracked container's job should go, if it should.
func (d *Dispatcher) unwantedReason(t *tracker) (squeue.UnwantedReason, bool) {
	c := t.ctr
	switch {
	case t.gone || c.State == arvados.Cancelled:
		return squeue.ContainerCancelled, true
	case c.State == arvados.Complete:
		return squeue.ContainerComplete, true
	case c.State == arvados.Queued:
		return squeue.ContainerQueued, true
	case !d.ours(c):
		return squeue.LockedByOther, true
	}
	return "", false
}

// lockPhase locks queued containers in priority order (loop step 5), LockConcurrency at a
// time, up to MaxJobs held and SupervisorFraction of that for supervisors. It returns how
// many it locked.
func (d *Dispatcher) lockPhase(ctx context.Context, queued []arvados.Container) int {
	cands := d.lockCandidates(queued)
	locked := 0
	for len(cands) > 0 && ctx.Err() == nil {
		held, sups := d.held()
		room := d.cfg.MaxJobs - held
		if room <= 0 {
			break
		}
		supRoom := d.supervisorLimit() - sups
		var batch []arvados.Container
		rest := cands[:0:0]
		for _, c := range cands {
			switch {
			case len(batch) >= min(room, d.cfg.LockConcurrency):
				rest = append(rest, c)
			case c.SchedulingParameters.Supervisor && supRoom <= 0:
				// Skipped this poll: supervisors hold their share already.
			default:
				if c.SchedulingParameters.Supervisor {
					supRoom--
				}
				batch = append(batch, c)
			}
		}
		cands = rest
		locked += d.lockBatch(ctx, batch)
	}
	return locked
}

// lockCandidates are the queued containers we do not track, that we may lock, by priority.
func (d *Dispatcher) lockCandidates(queued []arvados.Container) []arvados.Container {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []arvados.Container
	for _, c := range queued {
		switch {
		case d.trackers[c.UUID] != nil:
		case !arvados.ValidContainerUUID(c.UUID):
			d.skipOnce(c.UUID, "not a container uuid")
		case !d.clusterUUID(c.UUID):
			d.skipOnce(c.UUID, "not a container of our cluster "+d.cluster)
		default:
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b arvados.Container) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.UUID, b.UUID))
	})
	return out
}

// held counts the containers we hold (Locked or Running, ours), and the supervisors among them.
func (d *Dispatcher) held() (all, supervisors int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.trackers {
		if !t.gone && d.ours(t.ctr) {
			all++
			if t.ctr.SchedulingParameters.Supervisor {
				supervisors++
			}
		}
	}
	return all, supervisors
}

func (d *Dispatcher) supervisorLimit() int {
	if d.cfg.SupervisorFraction < 0 {
		return d.cfg.MaxJobs
	}
	return max(1, int(d.cfg.SupervisorFraction*float64(d.cfg.MaxJobs)))
}

// lockBatch locks the batch concurrently and starts a tracker for each container we got.
func (d *Dispatcher) lockBatch(ctx context.Context, batch []arvados.Container) int {
	got := make([]bool, len(batch))
	var done = make(chan struct{})
	n := 0
	for i, c := range batch {
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			select {
			case d.lockSem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-d.lockSem }()
			got[i] = d.lockOne(ctx, c)
		}()
	}
	for range n {
		<-done
	}
	count := 0
	for _, ok := range got {
		if ok {
			count++
		}
	}
	return count
}

// lockOne locks one container. A 422 (taken by another dispatcher, priority dropped) is
// normal and quiet. After an ambiguous failure it reads the container to learn whether we
// hold it.
func (d *Dispatcher) lockOne(ctx context.Context, c arvados.Container) bool {
	start := d.now()
	_, err := d.api.Lock(ctx, c.UUID)
	if err != nil && arvados.IsAmbiguous(err) {
		got, gerr := d.api.GetContainer(ctx, c.UUID, fullFields...)
		d.mu.Lock()
		mine := gerr == nil && d.ours(got) && got.State == arvados.Locked
		d.mu.Unlock()
		if gerr != nil || !mine {
			d.log.Info("lock failed ambiguously; we do not hold the container", zap.String("container", c.UUID),
				zap.String("action", "lock"), zap.NamedError("get_error", gerr), zap.Error(err))
			d.observeLock("ambiguous")
			return false
		}
		c, start, err = got, d.now(), nil
	}
	switch {
	case err == nil:
	case arvados.IsInvalid(err):
		d.log.Debug("lock refused (taken by another dispatcher, or no longer queued)", zap.String("container", c.UUID),
			zap.String("action", "lock"), zap.Error(err))
		d.observeLock("refused")
		return false
	default:
		d.log.Warn("lock failed", zap.String("container", c.UUID), zap.String("action", "lock"), zap.Error(err))
		d.observeLock(apiOutcome(err))
		return false
	}
	c.State, c.LockedByUUID = arvados.Locked, d.tokenUUID()
	if c.LockCount == 0 {
		c.LockCount = 1
	}
	at := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.trackers[c.UUID]
	if t == nil {
		t = &tracker{uuid: c.UUID}
		d.trackers[c.UUID] = t
	}
	t.since, t.adopted = at, false
	t.queuedAt = d.queuedSince[c.UUID]
	d.update(t, c, start, true)
	d.cfg.Observer.Locked("ok")
	d.log.Info("locked", zap.String("container", c.UUID), zap.String("job_id", ""), zap.String("state", string(arvados.Locked)),
		zap.String("action", "lock"), zap.Int64("priority", c.Priority))
	return true
}

func (d *Dispatcher) tokenUUID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.token
}
