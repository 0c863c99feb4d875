package queue

import (
	"context"
	"errors"
	"maps"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// submitOp returns the operation that submits t's job. Callers hold d.mu.
func (d *Dispatcher) submitOp(t *tracker) func(context.Context) {
	req, prio, kind := *t.req, t.ctr.Priority, t.kind
	own := t.ctr
	return func(ctx context.Context) {
		if ctx.Err() != nil {
			d.mu.Lock()
			d.rej.probeDone(t.uuid, d.now())
			d.mu.Unlock()
			d.release(t)
			return
		}
		req.Nice = d.w.InitialNice(t.uuid, prio)
		start := d.now()
		id, err := d.sl.Submit(ctx, req)
		at := d.now()
		d.mu.Lock()
		defer d.release(t)
		defer d.mu.Unlock()
		t.lastTry = at
		log := d.log.With(zap.String("container", t.uuid), zap.String("action", "submit"), zap.Duration("took", at.Sub(start)))
		var reject *slurm.RejectError
		switch {
		case err == nil:
			d.cfg.Observer.Submitted("ok")
			if !t.queuedAt.IsZero() {
				d.cfg.Observer.QueueWait(at.Sub(t.queuedAt))
				t.queuedAt = time.Time{}
			}
			d.w.NoteSubmitted(t.uuid, id, req.Nice, prio, at)
			t.last.JobID, t.last.SubmittedAt, t.last.Ambiguous = id, at, false
			t.last.Rejection, t.last.RejectionVerdict = "", Undecided
			t.failures, t.lastErr = 0, ""
			log.Info("submitted", zap.String("job_id", id), zap.Int("nice", req.Nice))
			if msg := d.rej.success(t.uuid, kind, at); msg != "" {
				d.unpause(msg)
			}
		case slurm.IsAmbiguous(err):
			// The job may exist: no retry until the watcher has looked it up.
			d.cfg.Observer.Submitted("ambiguous")
			d.w.NoteSubmitted(t.uuid, "", req.Nice, prio, at)
			t.last.Ambiguous, t.last.SubmittedAt = true, at
			t.lastErr = err.Error()
			d.rej.probeDone(t.uuid, at)
			log.Warn("sbatch failed and may have created the job; waiting for squeue to tell", zap.Error(err))
		case errors.As(err, &reject):
			d.cfg.Observer.Submitted("rejected")
			d.rejected(t, own, kind, reject.Message, at)
		case errors.Is(err, slurm.ErrTransient):
			d.cfg.Observer.Submitted("transient")
			d.fail(t, at, err)
			d.rej.probeDone(t.uuid, at)
			log.Warn("sbatch failed; keeping the lock and retrying later", zap.Error(err),
				zap.Time("retry_after", t.last.BackoffUntil))
		default:
			// Submit refused the request before running sbatch: a bug of ours, not the
			// container's. Back off; never cancel for it.
			d.cfg.Observer.Submitted("error")
			d.fail(t, at, err)
			d.rej.probeDone(t.uuid, at)
			log.Error("could not submit", zap.Error(err))
		}
	}
}

// rejected handles a permanent sbatch rejection. Callers hold d.mu.
func (d *Dispatcher) rejected(t *tracker, c arvados.Container, kind, msg string, now time.Time) {
	verdict, seq, paused := d.rej.reject(t.uuid, kind, msg, ownPartitionFault(c, msg), now)
	t.last.Rejection, t.last.RejectionVerdict, t.rejectedAt, t.rejectSeq = msg, verdict, now, seq
	t.lastErr = "Slurm rejected the job: " + msg
	log := d.log.With(zap.String("container", t.uuid), zap.String("action", "submit"), zap.String("reason", msg))
	switch {
	case paused:
		log.Error("sbatch rejects distinct containers with the same message: our Slurm configuration looks wrong; "+
			"pausing all submitting, keeping every lock, cancelling nothing", zap.Int("burst", d.cfg.RejectionBurst))
	case verdict == Misconfiguration:
		log.Warn("sbatch still rejects jobs; submitting stays paused")
	default:
		log.Warn("sbatch rejected the job")
	}
}

// unpause ends a pause: containers held for its message are retried. Callers hold d.mu.
func (d *Dispatcher) unpause(msg string) {
	n := 0
	for _, t := range d.trackers {
		if t.last.Rejection == msg && t.last.RejectionVerdict != ContainersFault {
			t.last.Rejection, t.last.RejectionVerdict = "", Undecided
			n++
		}
	}
	d.log.Info("a submit went through: submitting resumes", zap.String("action", "resume"), zap.String("reason", msg),
		zap.Int("retried", n))
}

// updateOp returns the operation for an Unlock, CancelContainer or SetRuntimeStatus. Callers
// hold d.mu.
func (d *Dispatcher) updateOp(t *tracker, a Action) func(context.Context) {
	uuid, rs := t.uuid, maps.Clone(t.ctr.RuntimeStatus)
	jobID := t.last.JobID
	return func(ctx context.Context) {
		defer d.release(t)
		if ctx.Err() != nil {
			return
		}
		start := d.now()
		var (
			c   arvados.Container
			err error
		)
		log := d.log.With(zap.String("container", uuid), zap.String("job_id", jobID),
			zap.String("action", a.Kind.String()), zap.String("reason", a.Reason))
		switch a.Kind {
		case SetRuntimeStatus:
			if rs == nil {
				rs = map[string]any{}
			}
			delete(rs, "activity")
			delete(rs, "warning")
			rs[a.Key] = a.Message
			c, err = d.api.UpdateContainer(ctx, uuid, arvados.ContainerUpdate{RuntimeStatus: rs})
		case CancelContainer:
			c, err = d.cancelContainer(ctx, uuid, rs, a)
		case Unlock:
			if _, lerr := d.api.CreateLog(ctx, arvados.Log{ObjectUUID: uuid, EventType: "dispatch",
				Properties: map[string]any{"text": a.LogText}}); lerr != nil {
				log.Warn("could not write the dispatch log record", zap.Error(lerr))
			}
			c, err = d.api.Unlock(ctx, uuid)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		now := d.now()
		switch a.Kind {
		case Unlock:
			d.cfg.Observer.Unlocked(apiOutcome(err))
		case CancelContainer:
			d.cfg.Observer.ContainerCancelled(apiOutcome(err))
		}
		switch {
		case err == nil:
			t.failures, t.lastErr = 0, ""
			d.afterUpdate(t, a, c, start)
			log.Info("done", zap.String("state", string(t.ctr.State)))
		case arvados.IsNotFound(err):
			t.gone = true
			d.wantedDirty = true
		case arvados.IsInvalid(err), arvados.IsForbidden(err), arvados.IsAmbiguous(err):
			// The container moved on, or we do not know what happened: read it again
			// before anything else.
			t.readAt = time.Time{}
			d.fail(t, now, err)
			log.Info("refused or unclear; re-reading the container", zap.Error(err))
		default:
			d.fail(t, now, err)
			log.Warn("failed; retrying later", zap.Error(err), zap.Time("retry_after", t.last.BackoffUntil))
		}
	}
}

// cancelContainer writes runtime_status.error (if the action has one), then state Cancelled.
func (d *Dispatcher) cancelContainer(ctx context.Context, uuid string, rs map[string]any, a Action) (arvados.Container, error) {
	if a.Key != "" {
		if rs == nil {
			rs = map[string]any{}
		}
		delete(rs, "activity")
		rs[a.Key] = a.Message
		if _, err := d.api.UpdateContainer(ctx, uuid, arvados.ContainerUpdate{RuntimeStatus: rs}); err != nil {
			return arvados.Container{}, err
		}
	}
	cancelled := arvados.Cancelled
	return d.api.UpdateContainer(ctx, uuid, arvados.ContainerUpdate{State: &cancelled})
}

// afterUpdate takes the outcome of a successful update into t. Callers hold d.mu.
func (d *Dispatcher) afterUpdate(t *tracker, a Action, c arvados.Container, start time.Time) {
	if a.Kind == SetRuntimeStatus {
		t.last.StatusKey, t.last.Status = a.Key, a.Message
	}
	switch {
	case c.UUID != t.uuid || start.Before(t.readAt):
	case a.Kind == Unlock:
		// Unlock answers only uuid, state, priority and locked_by_uuid.
		t.ctr.State, t.ctr.LockedByUUID, t.ctr.Priority, t.readAt = c.State, c.LockedByUUID, c.Priority, start
	default:
		d.update(t, c, start, false)
	}
	if a.Kind != SetRuntimeStatus {
		d.wantedDirty = true
	}
}

// readOp returns the operation that reads the given trackers' containers, whole, in as few
// requests as possible. Callers hold d.mu.
func (d *Dispatcher) readOp(ts []*tracker) func(context.Context) {
	uuids := make([]string, len(ts))
	for i, t := range ts {
		uuids[i] = t.uuid
	}
	return func(ctx context.Context) {
		defer d.release(ts...)
		start := d.now()
		found, err := d.readBatch(ctx, uuids, fullFields)
		d.mu.Lock()
		defer d.mu.Unlock()
		now := d.now()
		for _, t := range ts {
			switch c, ok := found[t.uuid]; {
			case err != nil:
				d.fail(t, now, err)
			case ok:
				d.update(t, c, start, true)
			default:
				t.gone, t.readAt = true, start
				d.wantedDirty = true
			}
		}
		if err != nil && ctx.Err() == nil {
			d.log.Warn("reading containers failed; retrying later", zap.Int("containers", len(ts)), zap.Error(err))
		}
	}
}
