package mgmt

import (
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/queue"
)

// ContainersPath is where the management endpoint lists what the dispatcher tracks.
const ContainersPath = "/dispatch/containers"

// ContainersResponse is the answer of GET /dispatch/containers.
type ContainersResponse struct {
	// Version is the dispatcher's.
	Version string `json:"version"`
	// Time is when the answer was made.
	Time time.Time `json:"time"`
	// Health is what /_health/ping says.
	Health Health `json:"health"`
	// Containers are those the dispatcher tracks, by uuid.
	Containers []Container `json:"containers"`
}

// Container is one tracked container: its state as last read, its Slurm job as the squeue
// watcher sees it, and what the dispatcher decided last and why.
type Container struct {
	UUID     string `json:"uuid"`
	State    string `json:"state"`
	Priority int64  `json:"priority"`
	// JobID, SlurmState and Reason describe the Slurm job ("" when there is none).
	JobID      string `json:"job_id"`
	SlurmState string `json:"slurm_state"`
	Reason     string `json:"reason"`
	// Action is the last decided action ("wait", "submit", "unlock", "cancel"…) and Why its
	// reason.
	Action    string `json:"action"`
	Why       string `json:"why"`
	LastError string `json:"last_error"`
	// Adopted: locked by our token before this process started (or by another process).
	Adopted    bool `json:"adopted"`
	Supervisor bool `json:"supervisor"`
}

// containersOf converts the dispatcher's view.
func containersOf(ts []queue.Tracked) []Container {
	out := make([]Container, len(ts))
	for i, t := range ts {
		out[i] = Container{UUID: t.UUID, State: t.State, Priority: t.Priority, JobID: t.JobID,
			SlurmState: t.SlurmState, Reason: t.Reason, Action: t.Action, Why: t.Why, LastError: t.LastError,
			Adopted: t.Adopted, Supervisor: t.Supervisor}
	}
	return out
}
