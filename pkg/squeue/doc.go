// Package squeue owns what dispatch-slurm knows about its Slurm jobs. Trackers ask it; they
// never run squeue themselves. A Watcher runs one squeue per period (jittered, never
// overlapping; Poke asks for an early one) and, after each good snapshot, in this order:
//
//  1. Folds the snapshot into per-container records. A job is ours only when its name is a
//     container uuid of our cluster (Config.ClusterID); nothing else is looked at or touched.
//     A failed squeue keeps the previous snapshot, counts towards Healthy, and wakes nobody.
//     A snapshot with unparsable lines, none of our jobs where the previous had some, or most
//     of the previous ones missing is suspect.
//  2. Confirms absence (Presence: Present, AbsentConfirmed, Unknown). A uuid is absent only
//     when its job is missing from two snapshots that started after our last submit or cancel
//     for it (NoteSubmitted, NoteCancelled) and a targeted lookup by name agrees: a finished
//     state (kept in Ending) or no job at all. A suspect snapshot counts only for jobs the
//     lookup shows finished. A lookup that finds the job alive makes it present; a failed
//     lookup changes nothing. Lookups are bounded per cycle.
//  3. Cancels the jobs of containers the poller no longer wants (SetWanted: Cancelled,
//     Complete, back to Queued, priority 0, locked by another token): pending jobs with a
//     plain scancel, the others with TERM to the batch step; once, then again after
//     CancelGrace while they linger; several ids per call. Containers the poller has not
//     reported on are left alone (Unreported lists them for the orphan sweep).
//  4. Renices our pending jobs so that Slurm's priority order follows container priority:
//     PlanRenice is the pure planner; calls are batched by nice value and bounded per cycle,
//     level-triggered so the rest is done next cycle. InitialNice gives a new job the nice
//     that places it among the others, so a fresh queue needs (almost) no renicing. When
//     renices stop moving Slurm's priorities (a priority plugin that ignores nice), renicing
//     turns itself off with a warning rather than renicing forever.
//
// Then it wakes WaitSnapshotAfter's waiters. AbsentInSnapshotAfter is the submit rule of
// DESIGN.md invariant 1.
package squeue
