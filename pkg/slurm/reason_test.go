package slurm

import "testing"

func TestClassifyReason(t *testing.T) {
	// Slurm 22.05's reasons (job_reason_string in src/common/slurm_protocol_defs.c).
	tests := []struct {
		reason string
		want   ReasonClass
	}{
		// Waiting normally.
		{"None", ReasonWaiting},
		{"Prolog", ReasonWaiting},
		{"Priority", ReasonWaiting},
		{"Dependency", ReasonWaiting},
		{"Resources", ReasonWaiting},
		{"BeginTime", ReasonWaiting},
		{"Licenses", ReasonWaiting},
		{"Reservation", ReasonWaiting},
		{"Cleaning", ReasonWaiting},
		{"SchedDefer", ReasonWaiting},
		{"FedJobLock", ReasonWaiting},
		{"JobArrayTaskLimit", ReasonWaiting},
		{"BurstBufferResources", ReasonWaiting},
		{"BurstBufferStageIn", ReasonWaiting},
		{"PowerNotAvail", ReasonWaiting},
		{"PowerReserved", ReasonWaiting},

		// Needs attention, can clear.
		{"PartitionDown", ReasonAttention},
		{"PartitionInactive", ReasonAttention},
		{"ReqNodeNotAvail", ReasonAttention},
		{"ReqNodeNotAvail, UnavailableNodes:node[01-04]", ReasonAttention},
		{"ReqNodeNotAvail, Reserved for maintenance", ReasonAttention},
		{"NodeDown", ReasonAttention},
		{"FrontEndDown", ReasonAttention},
		{"JobHeldAdmin", ReasonAttention},
		{"JobHeldUser", ReasonAttention},
		{"AccountingPolicy", ReasonAttention},
		{"QOSJobLimit", ReasonAttention},
		{"QOSResourceLimit", ReasonAttention},
		{"QOSTimeLimit", ReasonAttention},
		{"QOSUsageThreshold", ReasonAttention},
		{"AssociationJobLimit", ReasonAttention},
		{"AssociationResourceLimit", ReasonAttention},
		{"AssociationTimeLimit", ReasonAttention},
		{"QOSGrpCpuLimit", ReasonAttention},
		{"QOSGrpMemLimit", ReasonAttention},
		{"QOSGrpJobsLimit", ReasonAttention},
		{"QOSGrpSubmitJobsLimit", ReasonAttention},
		{"QOSGrpCPURunMinutesLimit", ReasonAttention},
		{"QOSMaxJobsPerUserLimit", ReasonAttention},
		{"QOSMaxCpuPerUserLimit", ReasonAttention},
		{"QOSMaxSubmitJobPerUserLimit", ReasonAttention},
		{"AssocGrpCpuLimit", ReasonAttention},
		{"AssocGrpMemLimit", ReasonAttention},
		{"AssocGrpJobsLimit", ReasonAttention},
		{"AssocGrpBilling", ReasonAttention},
		{"AssocMaxJobsLimit", ReasonAttention},
		{"AssocMaxSubmitJobLimit", ReasonAttention},
		{"MaxCpuPerAccount", ReasonAttention},
		{"MaxJobsPerAccount", ReasonAttention},
		{"NonZeroExitCode", ReasonAttention},
		{"SystemFailure", ReasonAttention},
		{"JobLaunchFailure", ReasonAttention},

		// Never clears for this job.
		{"PartitionConfig", ReasonNever},
		{"PartitionNodeLimit", ReasonNever},
		{"PartitionTimeLimit", ReasonNever},
		{"BadConstraints", ReasonNever},
		{"InvalidAccount", ReasonNever},
		{"InvalidQOS", ReasonNever},
		{"QOSNotAllowed", ReasonNever},
		{"AccountNotAllowed", ReasonNever},
		{"DependencyNeverSatisfied", ReasonNever},
		{"JobHoldMaxRequeue", ReasonNever},
		{"DeadLine", ReasonNever},
		{"MaxMemPerLimit", ReasonNever},
		{"ReservationDeleted", ReasonNever},
		{"QOSMaxCpuPerJobLimit", ReasonNever},
		{"QOSMaxCpuMinutesPerJobLimit", ReasonNever},
		{"QOSMaxNodePerJobLimit", ReasonNever},
		{"QOSMaxWallDurationPerJobLimit", ReasonNever},
		{"QOSMaxMemoryPerJob", ReasonNever},
		{"QOSMaxMemoryPerNode", ReasonNever},
		{"QOSMaxGRESPerJob", ReasonNever},
		{"QOSMinCpuNotSatisfied", ReasonNever},
		{"QOSMinMemory", ReasonNever},
		{"QOSMinGRES", ReasonNever},
		{"AssocMaxCpuPerJobLimit", ReasonNever},
		{"AssocMaxNodePerJobLimit", ReasonNever},
		{"AssocMaxWallDurationPerJobLimit", ReasonNever},
		{"AssocMaxMemPerJob", ReasonNever},
		{"AssocMaxGRESPerJob", ReasonNever},
		{"AssocMaxCpuPerNode", ReasonNever},
		{" PartitionConfig ", ReasonNever},
	}
	for _, tt := range tests {
		if got := ClassifyReason(tt.reason); got != tt.want {
			t.Errorf("ClassifyReason(%q) = %v, want %v", tt.reason, got, tt.want)
		}
		if !KnownReason(tt.reason) {
			t.Errorf("KnownReason(%q) = false for a reason in the table", tt.reason)
		}
	}
}

func TestUnknownReasonsAreWaitingAndNotKnown(t *testing.T) {
	// A reason a newer Slurm adds must never end a container: it is waiting, and callers
	// log it once because KnownReason is false.
	for _, r := range []string{"SomethingSlurm23Added", "", "MaxSomething", "Partition"} {
		if got := ClassifyReason(r); got != ReasonWaiting {
			t.Errorf("ClassifyReason(%q) = %v, want waiting", r, got)
		}
		if KnownReason(r) {
			t.Errorf("KnownReason(%q) = true, want false", r)
		}
	}
}

func TestReasonClassNames(t *testing.T) {
	for c, want := range map[ReasonClass]string{ReasonWaiting: "waiting", ReasonAttention: "attention", ReasonNever: "never", 9: "unknown"} {
		if c.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(c), c.String(), want)
		}
	}
}
