package slurm

import "strings"

// ReasonClass says what a pending job's reason means for its container.
type ReasonClass int

// Reason classes.
const (
	// ReasonWaiting: the job waits its turn (Resources, Priority, Dependency, BeginTime…).
	// Reasons this table does not know are in this class (see KnownReason).
	ReasonWaiting ReasonClass = iota
	// ReasonAttention: the job cannot start now for a reason that may clear: a down or
	// inactive partition or node, a hold, a group/user/account limit. Users should see it;
	// it never ends the container.
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
// src/common/slurm_protocol_defs.c), except the QOS and association limits (see limitClass).
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

	// Needs attention, can clear: maintenance, holds, accounting policy, node trouble.
	"PartitionDown":     ReasonAttention,
	"PartitionInactive": ReasonAttention,
	"ReqNodeNotAvail":   ReasonAttention,
	"NodeDown":          ReasonAttention,
	"FrontEndDown":      ReasonAttention,
	"JobHeldAdmin":      ReasonAttention,
	"JobHeldUser":       ReasonAttention,
	"AccountingPolicy":  ReasonAttention,
	"NonZeroExitCode":   ReasonAttention,
	"SystemFailure":     ReasonAttention,
	"JobLaunchFailure":  ReasonAttention,

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
// first word decides. A reason the table does not know is waiting (a newer Slurm's reason
// must not end containers); callers log it once (KnownReason).
func ClassifyReason(reason string) ReasonClass {
	c, _ := classifyReason(reason)
	return c
}

// KnownReason reports whether ClassifyReason knows reason (rather than defaulting to waiting).
func KnownReason(reason string) bool {
	_, ok := classifyReason(reason)
	return ok
}

// ReasonKey is the word of a pending reason that decides its class: squeue may print details
// after it ("ReqNodeNotAvail, UnavailableNodes:n1").
func ReasonKey(reason string) string {
	reason = strings.TrimSpace(reason)
	if i := strings.IndexAny(reason, ", :("); i >= 0 {
		reason = reason[:i]
	}
	return reason
}

func classifyReason(reason string) (ReasonClass, bool) {
	reason = ReasonKey(reason)
	if c, ok := reasonClasses[reason]; ok {
		return c, true
	}
	return limitClass(reason)
}

// limitClass classifies QOS and association limits: a limit on a single job's size never
// clears for that job; group, per-user and per-account limits clear as other jobs end.
func limitClass(r string) (ReasonClass, bool) {
	switch {
	case perJobLimit(r):
		return ReasonNever, true
	case strings.HasPrefix(r, "QOS"), strings.HasPrefix(r, "Assoc"),
		strings.HasPrefix(r, "Max") && strings.HasSuffix(r, "PerAccount"):
		return ReasonAttention, true
	}
	return ReasonWaiting, false
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
