package slurm

import (
	"context"
	"time"
)

// Job is one Slurm job as squeue or scontrol reports it.
type Job struct {
	ID       string // Slurm job id, e.g. "1234"
	Name     string // the job name; ours are container uuids
	State    string // Slurm's long state name: PENDING, RUNNING, COMPLETING, COMPLETED, CANCELLED, FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, …
	Nice     int
	Priority int64
	Reason   string // pending reason ("Resources", "PartitionDown", …) or "None"
}

// finishedStates are Slurm's job states after which the job will not run again.
var finishedStates = map[string]bool{
	"BOOT_FAIL": true, "CANCELLED": true, "COMPLETED": true, "DEADLINE": true, "FAILED": true,
	"NODE_FAIL": true, "OUT_OF_MEMORY": true, "PREEMPTED": true, "REVOKED": true, "TIMEOUT": true,
}

// FinishedState reports whether a job in this state will not run again; every other state
// (pending, running, completing…) is alive.
func FinishedState(state string) bool { return finishedStates[state] }

// PendingState reports whether a job in this state has not started: it has no batch step to
// signal, and its place in the queue depends on its priority.
func PendingState(state string) bool {
	return state == "PENDING" || state == "REQUEUED" || state == "REQUEUE_HOLD" || state == "REQUEUE_FED"
}

// Snapshot is the result of one squeue over our jobs.
type Snapshot struct {
	Jobs []Job
	// Started is when the squeue command was started; Finished when its output was read.
	// A job submitted before Started is in the snapshot if it was alive.
	Started, Finished time.Time
	// Skipped counts lines of output that could not be parsed.
	Skipped int
}

// SubmitRequest is everything needed for one sbatch.
type SubmitRequest struct {
	// Name is the job name: the container uuid (validated by the caller and again here).
	Name string
	// Nice is the initial --nice value (≥ 0).
	Nice int
	// Args are the expanded template arguments (see Template.Expand).
	Args []string
	// Script is the batch script given to sbatch on stdin (see BatchScript).
	Script []byte
	// Env is added to sbatch's environment ("KEY=value"); sbatch passes it on to the job.
	Env []string
}

// LookupQuery names the job to look up: by id when known, otherwise by name.
type LookupQuery struct {
	ID   string
	Name string
}

// CancelRequest names the jobs to cancel: by ids when known, otherwise by name.
type CancelRequest struct {
	IDs  []string
	Name string
	// Running sends TERM to the batch step only (scancel --batch --signal=TERM) so that
	// crunch-run can stop the container and finalize the record; otherwise a plain scancel.
	Running bool
}

// Client is what the rest of dispatch-slurm needs from Slurm. Implementations are stateless.
// Errors are classified (see Classify): ErrTransient, ErrPermanent (with Slurm's message),
// ErrNotFound; wrapped in *CommandError for command failures.
type Client interface {
	// Submit runs sbatch and returns the new job id.
	Submit(ctx context.Context, req SubmitRequest) (jobID string, err error)
	// Snapshot lists our user's jobs that have not finished.
	Snapshot(ctx context.Context) (*Snapshot, error)
	// Lookup finds jobs by id or name, including finished ones still known to slurmctld
	// (MinJobAge). An empty slice and nil error mean slurmctld no longer knows the job.
	Lookup(ctx context.Context, q LookupQuery) ([]Job, error)
	// Renice sets the nice value of the given jobs, in as few calls as possible. Ids that
	// no longer exist are returned in gone; they are not an error.
	Renice(ctx context.Context, nice int, ids []string) (gone []string, err error)
	// Cancel cancels jobs. Cancelling a job that is absent or already finished is not an error.
	Cancel(ctx context.Context, req CancelRequest) error
}
