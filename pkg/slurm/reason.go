package slurm

import "strings"

// ReasonClass says what a pending job's reason means for its container.
type ReasonClass int

// Reason classes.
const (
	// ReasonWaiting: the job waits its turn (Resources, Priority, Dependency, BeginTime…).
	ReasonWaiting ReasonClass = iota
	// ReasonAttention: the job cannot start now for a reason that may clear: a down or
	// inactive partition or node, a hold, a group/user/account limit. Users should see it;
	// it never ends the container. Unknown reasons are in this class.
	ReasonAttention
	// ReasonNever: the job will never start as submitted: it asks for more than any node or
	// the partition allows (PartitionConfig), for features nobody has (BadConstraints), for
	// an account or QOS it may not use, more than a per-job limit… Only these end the
	// container, with the reason as the error.
	ReasonNever
)

func (c ReasonClass) String() string {
	switch c {
	case ReasonWaiting:
		return "waiting"
	case ReasonAttention:
		return "attention"
	case ReasonNever:
		return "never"
	}
	return "unknown"
}

// reasonClasses are Slurm's pending reasons (job_reason_string in
// src/common/slurm_protocol_defs.c) that are not in the attention class.
var reasonClasses = map[string]ReasonClass{
	// Waiting normally.
	"None":                 ReasonWaiting,
	"Prolog":               ReasonWaiting,
	"Priority":             ReasonWaiting,
	"Dependency":           ReasonWaiting,
	"Resources":            ReasonWaiting,
	"BeginTime":            ReasonWaiting,
	"Licenses":             ReasonWaiting,
	"Reservation":          ReasonWaiting,
	"Cleaning":             ReasonWaiting,
	"SchedDefer":           ReasonWaiting,
	"FedJobLock":           ReasonWaiting,
	"JobArrayTaskLimit":    ReasonWaiting,
	"BurstBufferResources": ReasonWaiting,
	"BurstBufferStageIn":   ReasonWaiting,
	"PowerNotAvail":        ReasonWaiting,
	"PowerReserved":        ReasonWaiting,

	// Never clears for this job.
	"PartitionConfig":          ReasonNever, // more cpus (or other resources) than any node in the partition
	"PartitionNodeLimit":       ReasonNever, // node count outside the partition's Min/MaxNodes
	"PartitionTimeLimit":       ReasonNever, // time limit above the partition's MaxTime
	"BadConstraints":           ReasonNever,
	"InvalidAccount":           ReasonNever,
	"InvalidQOS":               ReasonNever,
	"QOSNotAllowed":            ReasonNever,
	"AccountNotAllowed":        ReasonNever,
	"DependencyNeverSatisfied": ReasonNever,
	"JobHoldMaxRequeue":        ReasonNever,
	"DeadLine":                 ReasonNever,
	"MaxMemPerLimit":           ReasonNever, // memory per node above the partition's MaxMemPerNode
	"ReservationDeleted":       ReasonNever,
	"BurstBufferOperation":     ReasonNever,
	"QOSMinCpuNotSatisfied":    ReasonNever,
}

// ClassifyReason classifies a pending job's reason as squeue %r prints it. squeue prints the
// job's state_desc instead when it has one ("ReqNodeNotAvail, UnavailableNodes:n1"): the
// first word decides.
func ClassifyReason(reason string) ReasonClass {
	reason = strings.TrimSpace(reason)
	if i := strings.IndexAny(reason, ", :("); i >= 0 {
		reason = reason[:i]
	}
	if c, ok := reasonClasses[reason]; ok {
		return c
	}
	if perJobLimit(reason) {
		return ReasonNever
	}
	// PartitionDown, PartitionInactive, ReqNodeNotAvail, NodeDown, FrontEndDown,
	// JobHeldAdmin, JobHeldUser, group, per-user and per-account QOS/association limits,
	// AccountingPolicy, and any reason this table does not know.
	return ReasonAttention
}

// perJobLimit reports whether reason is a QOS or association limit on a single job's size
// (QOSMaxCpuPerJobLimit, AssocMaxWallDurationPerJobLimit, QOSMaxMemoryPerNode,
// QOSMinMemory…): the job exceeds it by itself, so waiting does not help. Group, per-user
// and per-account limits (QOSGrpCpuLimit, QOSMaxJobsPerUserLimit, MaxCpuPerAccount…) clear
// as other jobs end.
func perJobLimit(r string) bool {
	if !strings.HasPrefix(r, "QOS") && !strings.HasPrefix(r, "Assoc") {
		return false
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(r, "QOS"), "Assoc")
	switch {
	case strings.HasPrefix(rest, "Max") && (strings.Contains(rest, "PerJob") || strings.Contains(rest, "PerNode")):
		return true
	case strings.HasPrefix(rest, "Min"):
		return true
	}
	return false
}
