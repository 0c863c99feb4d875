package squeue

import (
	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// noteReasons logs once per reason text each pending reason that is not plain waiting, and
// each reason that slurm.ClassifyReason does not know (it counts those as waiting, so that a
// newer Slurm's reason never ends a container, but an operator should hear of it).
func (w *Watcher) noteReasons(uuid string, jobs []slurm.Job) {
	for _, j := range jobs {
		if !slurm.PendingState(j.State) || w.loggedRe[j.Reason] {
			continue
		}
		class, known := slurm.ClassifyReason(j.Reason), slurm.KnownReason(j.Reason)
		if class == slurm.ReasonWaiting && known {
			continue
		}
		w.loggedRe[j.Reason] = true
		msg := "pending jobs held up for a reason other than waiting their turn"
		if !known {
			msg = "pending reason not in the table: treated as waiting"
		}
		w.log.Info(msg, zap.String("reason", j.Reason), zap.Stringer("class", class),
			zap.String("container", uuid), zap.String("job_id", j.ID))
	}
}

// classOf is the class of a pending job's reason (zero, waiting, for other states).
func classOf(j slurm.Job) slurm.ReasonClass {
	if !slurm.PendingState(j.State) {
		return slurm.ReasonWaiting
	}
	return slurm.ClassifyReason(j.Reason)
}
