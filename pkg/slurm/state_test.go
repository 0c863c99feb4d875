package slurm

import "testing"

func TestJobStatesArePendingAliveOrFinished(t *testing.T) {
	tests := []struct {
		state             string
		pending, finished bool
	}{
		{"PENDING", true, false},
		{"REQUEUED", true, false},
		{"REQUEUE_HOLD", true, false},
		{"RUNNING", false, false},
		{"COMPLETING", false, false},
		{"CONFIGURING", false, false},
		{"SUSPENDED", false, false},
		{"COMPLETED", false, true},
		{"CANCELLED", false, true},
		{"FAILED", false, true},
		{"TIMEOUT", false, true},
		{"NODE_FAIL", false, true},
		{"OUT_OF_MEMORY", false, true},
		{"PREEMPTED", false, true},
		{"BOOT_FAIL", false, true},
		{"DEADLINE", false, true},
	}
	for _, tt := range tests {
		if got := PendingState(tt.state); got != tt.pending {
			t.Errorf("PendingState(%s) = %v, want %v", tt.state, got, tt.pending)
		}
		if got := FinishedState(tt.state); got != tt.finished {
			t.Errorf("FinishedState(%s) = %v, want %v", tt.state, got, tt.finished)
		}
	}
}
