package squeue

import (
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// Jobs returns our live jobs in the latest good snapshot, every job of every container
// (duplicates included), in no particular order; nil before the first. It is a copy: metrics
// count it at scrape time.
func (w *Watcher) Jobs() []slurm.Job {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.snap == nil {
		return nil
	}
	n := 0
	for _, js := range w.snap.ours {
		n += len(js)
	}
	out := make([]slurm.Job, 0, n)
	for _, js := range w.snap.ours {
		out = append(out, js...)
	}
	return out
}
