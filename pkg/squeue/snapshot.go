package squeue

import (
	"cmp"
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// apply folds a snapshot into the records and decides the cycle's work.
func (w *Watcher) apply(snap *slurm.Snapshot, started time.Time) cycleWork {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.cfg.Now()
	byName := map[string][]slurm.Job{}
	ids := map[string]string{}
	for _, j := range snap.Jobs {
		if w.ours(j.Name) && !slurm.FinishedState(j.State) {
			byName[j.Name] = append(byName[j.Name], j)
			ids[j.ID] = j.Name
			if _, seen := w.running[j.ID]; !seen && !slurm.PendingState(j.State) {
				w.running[j.ID] = started
			}
		}
	}
	suspect := w.suspect(snap, byName)
	w.stats.ConsecutiveSuspect++
	if !suspect {
		w.stats.ConsecutiveSuspect = 0
		clear(w.baseline)
	}
	for uuid := range byName {
		w.baseline[uuid] = true
	}
	w.checkRenice(snap, ids)
	for uuid, jobs := range byName {
		sortLive(jobs)
		rec := w.record(uuid, started)
		rec.jobs, rec.inSnap, rec.alive = jobs, true, nil
		rec.misses, rec.ending = 0, nil
		delete(w.incoming, uuid)
		rec.lastID, rec.lastSeen = jobs[0].ID, started
		w.noteReasons(uuid, jobs)
	}
	var lookups []lookupTask
	for uuid, rec := range w.recs {
		if byName[uuid] != nil {
			continue
		}
		rec.inSnap, rec.jobs, rec.alive = false, nil, nil
		if rec.ending != nil || !started.After(rec.lastAction) {
			continue
		}
		if !suspect {
			w.countMiss(rec, started)
		}
		if rec.misses >= 2 || (suspect && (w.believedAlive(uuid) || rec.misses > 0)) {
			lookups = append(lookups, lookupTask{uuid: uuid, lastID: rec.lastID, action: rec.lastAction,
				suspect: suspect, misses: rec.misses})
		}
	}
	slices.SortFunc(lookups, func(a, b lookupTask) int {
		// Jobs we knew first, then the longest missing.
		return cmp.Or(cmp.Compare(boolInt(a.lastID == ""), boolInt(b.lastID == "")),
			cmp.Compare(b.misses, a.misses), cmp.Compare(a.uuid, b.uuid))
	})
	if len(lookups) > w.cfg.MaxLookupsPerCycle {
		lookups = lookups[:w.cfg.MaxLookupsPerCycle]
	}
	w.snap = &snapInfo{started: started, suspect: suspect, ours: byName, ids: ids}
	w.stats.SnapshotsOK++
	w.stats.ConsecutiveFailures = 0
	w.stats.LastSnapshot = started
	if suspect {
		w.stats.SnapshotsSuspect++
	}
	w.prune(now)
	w.placed = nil
	return cycleWork{lookups: lookups, cancels: w.planCancels(now), plan: w.planRenice()}
}

// countMiss counts one more miss for rec at time at, unless the last counted one is less than
// minMissGap old: the misses that confirm absence must be spread over time, so that a burst
// of snapshots (pokes right after a start-up, say) taken during one short squeue glitch
// counts as one piece of evidence, not two (DESIGN.md invariant 2).
func (w *Watcher) countMiss(rec *record, at time.Time) {
	if rec.misses > 0 && at.Sub(rec.missAt) < w.minMissGap() {
		return
	}
	rec.misses++
	rec.missAt = at
}

// minMissGap is the least time between two counted misses: most of one period, so that
// periodic snapshots always count, whatever their jitter.
func (w *Watcher) minMissGap() time.Duration {
	return time.Duration(float64(w.cfg.Period) * (1 - w.cfg.Jitter) * 0.9)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// suspect decides whether a snapshot may have lost jobs: unparsable lines; none of our jobs
// while we believe some alive; or a large share of those missing. "Believed alive" is the
// baseline: our jobs of the last good snapshot, plus those seen since, minus those whose
// absence was confirmed. So suspicion lasts while the losses stay unexplained (squeue printing
// nothing for a while, or a wrapper pointed at the wrong cluster) and ends once lookups have
// confirmed them job by job. Jobs we submitted (sbatch gave an id) that no snapshot has shown
// yet are believed alive too: squeue may have failed from right after the submit.
func (w *Watcher) suspect(snap *slurm.Snapshot, byName map[string][]slurm.Job) bool {
	lost, had := 0, len(w.baseline)
	for uuid := range w.baseline {
		if byName[uuid] == nil {
			lost++
		}
	}
	for uuid := range w.incoming {
		if !w.baseline[uuid] && w.believedAlive(uuid) {
			had++
			if byName[uuid] == nil {
				lost++
			}
		}
	}
	for uuid := range w.wanted.Running {
		if !w.baseline[uuid] && w.incoming[uuid] == nil && w.unseenRunning(uuid) {
			had++
			if byName[uuid] == nil {
				lost++
			}
		}
	}
	why := ""
	switch {
	case snap.Skipped > 0:
		why = "unparsable lines in squeue output"
	case had > 0 && len(byName) == 0:
		why = "none of our jobs in squeue output"
	case lost >= 2 && float64(lost) >= w.cfg.SuspectLossFraction*float64(had):
		why = "most of our jobs missing from squeue output"
	default:
		w.suspectWhy = ""
		return false
	}
	level := zap.DebugLevel
	if why != w.suspectWhy {
		level = zap.WarnLevel
	}
	w.suspectWhy = why
	w.log.Log(level, "suspect squeue snapshot: the jobs it lacks count as absent only when lookups show them ended",
		zap.String("reason", why), zap.Int("skipped", snap.Skipped), zap.Int("lost", lost), zap.Int("had", had))
	return true
}

// believedAlive reports whether a job of uuid is believed alive: seen in the last good
// snapshot or since, or submitted (sbatch gave an id) and not shown by any snapshot yet, or
// the job of a Running container that this process has not seen yet.
func (w *Watcher) believedAlive(uuid string) bool {
	p := w.incoming[uuid]
	return w.baseline[uuid] || p != nil && p.noted && p.jobID != "" || w.unseenRunning(uuid)
}

// unseenRunning: the poller reports uuid's container Running, and this process has seen no
// job of it and not confirmed its absence (a container adopted at start-up, say). While
// squeue output is suspect, its absence needs a lookup that finds its job ended, or GoneAfter
// since it was first tracked: slurmctld keeps finished jobs for MinJobAge, so a job that no
// lookup finds at all is no evidence while the output looks wrong.
func (w *Watcher) unseenRunning(uuid string) bool {
	rec := w.recs[uuid]
	return w.wanted.Running[uuid] && rec != nil && rec.lastID == "" && rec.ending == nil
}

// prune forgets records with no evidence for a while whose container is not locked by us, and
// cancels sent long ago for jobs no longer alive.
func (w *Watcher) prune(now time.Time) {
	for uuid, p := range w.incoming {
		if !p.noted && now.Sub(p.at) > retention {
			delete(w.incoming, uuid) // an InitialNice reservation that no submit followed
		}
	}
	for uuid, rec := range w.recs {
		last := later(rec.lastSeen, rec.lastAction)
		if rec.ending != nil {
			last = later(last, rec.ending.At)
		}
		if _, locked := w.wanted.Locked[uuid]; !locked && !rec.inSnap && rec.alive == nil && now.Sub(last) > retention {
			delete(w.recs, uuid)
			delete(w.incoming, uuid)
			delete(w.baseline, uuid)
		}
	}
	for id, s := range w.sent {
		if _, alive := w.snap.ids[id]; !alive && now.Sub(s.at) > w.cfg.CancelGrace {
			delete(w.sent, id)
		}
	}
	if !w.snap.suspect {
		for id := range w.running {
			if _, alive := w.snap.ids[id]; !alive {
				delete(w.running, id)
			}
		}
	}
}

// lookupTask is one targeted lookup decided by apply.
type lookupTask struct {
	uuid, lastID string
	action       time.Time // the record's lastAction when decided: a later one voids the answer
	suspect      bool      // the snapshot was suspect: only a finished job counts as a miss
	misses       int
}

// lookup runs the targeted lookups and folds their answers in. A failed lookup changes nothing.
func (w *Watcher) lookup(ctx context.Context, tasks []lookupTask) {
	for _, t := range tasks {
		if ctx.Err() != nil {
			return
		}
		// By name: that also finds a second job of the same name, which an id would miss.
		jobs, err := w.slurm.Lookup(ctx, slurm.LookupQuery{Name: t.uuid})
		w.mu.Lock()
		w.stats.Lookups++
		if err != nil {
			w.stats.LookupErrors++
			w.log.Debug("lookup failed; nothing changes", zap.String("container", t.uuid), zap.Error(err))
		} else {
			w.foldLookup(t, jobs)
		}
		w.mu.Unlock()
	}
}

// foldLookup applies one lookup's answer: a live job makes the uuid present; a finished job (or
// none, unless the snapshot was suspect) after enough misses confirms absence.
func (w *Watcher) foldLookup(t lookupTask, jobs []slurm.Job) {
	rec := w.recs[t.uuid]
	if rec == nil || !rec.lastAction.Equal(t.action) || rec.inSnap || rec.ending != nil {
		return // something happened since the lookup was decided
	}
	var alive []slurm.Job
	var ended []slurm.Job
	for _, j := range jobs {
		switch {
		case j.Name != t.uuid:
		case !slurm.FinishedState(j.State):
			alive = append(alive, j)
		default:
			ended = append(ended, j)
		}
	}
	if len(alive) > 0 {
		sortLive(alive)
		rec.alive, rec.misses, rec.lastID = &alive[0], 0, alive[0].ID
		w.log.Info("lookup found a live job missing from squeue", zap.String("container", t.uuid),
			zap.String("job_id", alive[0].ID), zap.String("state", alive[0].State))
		return
	}
	if t.suspect {
		if len(ended) == 0 && w.cfg.Now().Sub(rec.lastSeen) < w.cfg.GoneAfter {
			// slurmctld keeps a finished job for MinJobAge: a job seen alive this recently
			// that no lookup finds is no evidence against a suspect snapshot.
			return
		}
		if w.countMiss(rec, w.cfg.Now()); rec.misses < 2 {
			return
		}
	}
	e := &Ending{JobID: rec.lastID, At: w.cfg.Now()}
	for _, j := range ended {
		if rec.lastID == "" && (e.JobID == "" || jobNumber(j.ID) > jobNumber(e.JobID)) || j.ID == rec.lastID {
			e.JobID, e.State = j.ID, j.State
		}
	}
	rec.ending = e
	delete(w.incoming, t.uuid)
	delete(w.baseline, t.uuid)
	w.log.Info("job absence confirmed", zap.String("container", t.uuid), zap.String("job_id", e.JobID),
		zap.String("state", e.State))
}
