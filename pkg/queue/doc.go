// Package queue is the dispatcher's core: the API poller, one tracker per container we own,
// the pure decision function (Decide), the failure policy (per-container backoff, sbatch
// rejections, the misconfiguration pause) and recovery (adoption, orphan sweep). It keeps no
// state on disk: everything is rebuilt from the API and squeue after a restart.
//
// # The loop
//
// Every PollPeriod (Run's poll loop):
//
//  1. List the containers locked by our token (locked_by_uuid = token uuid; few fields,
//     keyset paging, count=none).
//  2. List the Queued containers with priority > 0 (the fields a submit needs); sort them
//     by priority client-side.
//  3. Read the tracked containers that neither list returned, in batches of
//     ["uuid","in",[…]] (never one GET per container); those not returned are gone. If any
//     of 1–3 fails, nothing changes: no tracker is closed, the watcher is not told anything.
//  4. Hand the squeue watcher the wanted view (SetWanted): our Locked and Running containers
//     with their priorities (priority 0 included: the watcher cancels those jobs), and the
//     tracked containers that are no longer ours (Cancelled, Complete, Queued again, locked
//     by another token, gone) with why. The watcher cancels their jobs; we never scancel.
//  5. Lock Queued containers in priority order, LockConcurrency at a time, while we hold
//     fewer than MaxJobs (and supervisors fewer than SupervisorFraction of it). A 422 is
//     someone else's lock and quiet; after an ambiguous failure we read the container to
//     learn whether we hold it. Each container we get has a tracker; the watcher is told
//     and poked, so the snapshot the submit rule needs comes within one squeue period.
//
// After every poll, every new squeue snapshot, and every completed operation (a pass):
//
//  6. For each tracker without an operation in flight, in priority order, Decide(obs) on
//     what we know: the container as last read, the watcher's Presence (Unknown, Present
//     with the job's state and reason class, AbsentConfirmed with how it ended), whether
//     the submit rule holds (watcher.AbsentInSnapshotAfter), whether we adopted it, and
//     what we did last. The table is in decide.go.
//  7. Perform the actions, one operation per container at a time: sbatch
//     (SubmitConcurrency at once, in priority order, nice from watcher.InitialNice),
//     runtime_status updates, cancel with a reason, unlock with a dispatch log record, and
//     batched re-reads. Transient failures keep the lock and back the container off
//     (MinRetryPeriod doubling up to MaxBackoff, jittered). An ambiguous sbatch is noted
//     with the watcher and never retried before the watcher has confirmed presence or
//     absence.
//
// Every OrphanSweepPeriod (and at the first poll that finds any):
//
//  8. Read the containers of the jobs named after our cluster's uuids that the poller did not
//     report (watcher.Unreported), in batches, and report them: final, Queued or missing →
//     unwanted (the watcher cancels the job); locked by our token → adopted; locked by
//     another token → left alone.
//
// # Failure policy
//
// sbatch rejections (slurm.ErrPermanent) are about the container or about our configuration.
// A rejected container is held (locked, not retried, not cancelled) until that is known
// (pause.go): when RejectionBurst distinct containers are rejected with the same message
// within RejectionWindow and no submit went through in between — or two are, and nothing
// went through for RejectionHold — our configuration is at fault: submitting pauses, every
// lock is kept, nothing is cancelled and Healthy reports Slurm's message; one container
// (fresh ones first) is tried as a probe per backoff period, and the first submit that goes
// through ends the pause and retries the held containers. Otherwise the rejection is the
// container's once another container's submit went through after it, or after
// RejectionHold with no other container rejected the same way: then runtime_status.error
// says "Slurm rejected the job: <Slurm's message>" and the container is cancelled. A
// container that names partitions of its own and is rejected about partitions is at fault
// at once, and so is one rejected the same way before and after a successful submit.
//
// A pending job whose reason never clears (slurm.ReasonNever) gets the reason in
// runtime_status.error and its container cancelled; one that needs attention
// (PartitionDown, ReqNodeNotAvail, holds) gets runtime_status.warning; one that waits its
// turn gets runtime_status.activity; each written only when it changes.
//
// A job that ended while its container was Locked means crunch-run never started: the
// container is read again, then unlocked with a dispatch log record saying how the job
// ended. One that ended while the container was Running: the container is read again (crunch-
// run may have just finished it) and, if still Running, cancelled with runtime_status.error
// saying how the job ended — unless we asked for the cancel (priority 0): a job ends FAILED
// after our TERM, which is not crunch-run dying.
//
// Records that cannot be submitted (bad resources, partitions or uuid) are cancelled with
// the reason in runtime_status.error if ours; others are skipped with one log line.
//
// Adoption: a container found locked by our token that we did not lock in this process is
// submitted only after the watcher has confirmed that no job of its name exists (two
// snapshots and a lookup), never on a single snapshot's word.
package queue
