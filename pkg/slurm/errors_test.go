package slurm

import (
	"errors"
	"strings"
	"testing"
)

func TestClassifyText(t *testing.T) {
	// Texts verbatim from Slurm (slurm_errno.c, sbatch.c) as the commands print them. The
	// permanent and not-found ones are also in testdata/, captured from the real commands.
	tests := []struct {
		text string
		want ErrorClass
	}{
		{"sbatch: error: Batch job submission failed: Socket timed out on send/recv operation", ClassTransientAmbiguous},
		{"squeue: error: slurm_receive_msg: Zero Bytes were transmitted or received", ClassTransientAmbiguous},
		{"sbatch: error: Batch job submission failed: Unable to contact slurm controller (receive failure)", ClassTransientAmbiguous},
		{"sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)", ClassTransient},
		{"sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying", ClassTransient},
		{"sbatch: error: Batch job submission failed: Resource temporarily unavailable", ClassTransient},
		{"sbatch: error: Slurm job queue full, sleeping and retrying.", ClassTransient},
		{"sbatch: error: Batch job submission failed: Unable to create job record, try again", ClassTransient},
		{"sbatch: error: Batch job submission failed: MaxJobCount limit reached", ClassTransient},
		{"sbatch: error: Batch job submission failed: Slurm backup controller in standby mode", ClassTransient},
		{"sbatch: error: Batch job submission failed: Rate limit exceeded, please retry momentarily", ClassTransient},
		{"sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)", ClassTransient},
		{"scancel: error: Kill job error on job id 5: Job can not be altered now, try again later", ClassTransient},
		{"sbatch: error: Batch job submission failed: Requested node configuration is not available", ClassPermanent},
		{"sbatch: error: Batch job submission failed: Invalid feature specification", ClassPermanent},
		{"sbatch: error: Batch job submission failed: Invalid partition name specified", ClassPermanent},
		{"sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified", ClassPermanent},
		{"sbatch: error: Batch job submission failed: Invalid qos specification", ClassPermanent},
		{"sbatch: error: Batch job submission failed: Requested time limit is invalid (missing or exceeds some limit)", ClassPermanent},
		{"sbatch: error: Batch job submission failed: Access/permission denied", ClassPermanent},
		{"sbatch: unrecognized option '--nam=abc'", ClassPermanent},
		{"slurm_load_jobs error: Invalid job id specified", ClassNotFound},
		{"Job has already finished for job 12", ClassNotFound},
		{"something nobody has seen", ClassUnknown},
		{"", ClassUnknown},
	}
	for _, tt := range tests {
		if got := ClassifyText(tt.text); got != tt.want {
			t.Errorf("ClassifyText(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestSlurmMessage(t *testing.T) {
	tests := []struct{ stderr, want string }{
		{"sbatch: error: Batch job submission failed: Invalid feature specification\n", "Invalid feature specification"},
		{"sbatch: error: Memory specification can not be satisfied\nsbatch: error: Batch job submission failed: Requested node configuration is not available\n",
			"Requested node configuration is not available (Memory specification can not be satisfied)"},
		{"sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying\nsbatch: error: Batch job submission failed: Resource temporarily unavailable\n",
			"Resource temporarily unavailable (Slurm temporarily unable to accept job, sleeping and retrying)"},
		{"", ""},
		{strings.Repeat("x", 1000), strings.Repeat("x", 400) + "…"},
	}
	for _, tt := range tests {
		if got := slurmMessage(tt.stderr); got != tt.want {
			t.Errorf("slurmMessage(%q) = %q, want %q", tt.stderr, got, tt.want)
		}
	}
}

func TestClassifiedErrorsWrapTheCommandError(t *testing.T) {
	ce := &CommandError{Name: "sbatch", ExitCode: 1, Stderr: "sbatch: error: Batch job submission failed: Invalid qos specification\n", Err: errors.New("exit status 1")}
	err := classify(ce)
	var got *CommandError
	if !errors.As(err, &got) || got != ce {
		t.Fatal("the *CommandError is not reachable")
	}
	if !errors.Is(err, ErrPermanent) || errors.Is(err, ErrTransient) || errors.Is(err, ErrNotFound) {
		t.Errorf("classes: %v", err)
	}
	if !strings.Contains(err.Error(), "Invalid qos specification") {
		t.Errorf("Error() = %q", err.Error())
	}
	nf := classify(&CommandError{Name: "squeue", ExitCode: 1, Stderr: "slurm_load_jobs error: Invalid job id specified\n", Err: errors.New("exit status 1")})
	if !errors.Is(nf, ErrNotFound) || errors.Is(nf, ErrTransient) || errors.Is(nf, ErrPermanent) {
		t.Errorf("not found: %v", nf)
	}
	if !errors.Is(classify(errors.New("odd")), ErrTransient) || !IsAmbiguous(classify(errors.New("odd"))) {
		t.Error("an error that is not a CommandError must be transient and ambiguous")
	}
	for c, want := range map[ErrorClass]string{ClassUnknown: "unknown", ClassTransient: "transient",
		ClassTransientAmbiguous: "transient-ambiguous", ClassPermanent: "permanent", ClassNotFound: "not-found"} {
		if c.String() != want {
			t.Errorf("%d.String() = %q", int(c), c.String())
		}
	}
}
