package slurm

import (
	"context"
	"errors"
	"os/exec"
	"strings"
)

// Classes of failures, for errors.Is. Every error a Client returns for a failed Slurm command
// is exactly one of them.
var (
	// ErrTransient: Slurm is busy, down or slow, or answered something we do not recognize.
	// Retry later with backoff; keep locks; cost users nothing.
	ErrTransient = errors.New("slurm: transient failure")
	// ErrPermanent: Slurm refused the request and will refuse it again unchanged. The error
	// is a *RejectError carrying Slurm's message.
	ErrPermanent = errors.New("slurm: request rejected")
	// ErrNotFound: the job does not exist (any more).
	ErrNotFound = errors.New("slurm: job not found")
	// ErrUnsupported: this backend cannot do what was asked.
	ErrUnsupported = errors.New("slurm: not supported by this backend")
)

// RejectError is a permanent rejection. Message is Slurm's own one-line explanation, fit to
// show users in runtime_status.error, e.g. "Requested node configuration is not available
// (Memory specification can not be satisfied)".
type RejectError struct {
	Message string
	Err     error // the *CommandError
}

func (e *RejectError) Error() string { return "slurm rejected the request: " + e.Message }

// Is makes errors.Is(err, ErrPermanent) true.
func (e *RejectError) Is(target error) bool { return target == ErrPermanent }

func (e *RejectError) Unwrap() error { return e.Err }

// TransientError is a failure worth retrying.
type TransientError struct {
	// Message is Slurm's explanation when it gave one ("" when it did not, e.g. on timeout).
	Message string
	// Ambiguous means the command may have taken effect although it failed: an sbatch that
	// timed out, lost its connection after sending, or failed in a way we do not recognize may
	// have created the job. Look the job up by name before submitting again.
	Ambiguous bool
	Err       error // the *CommandError
}

func (e *TransientError) Error() string {
	if e.Ambiguous {
		return "slurm failed, the outcome is unknown: " + e.Err.Error()
	}
	return "slurm failed temporarily: " + e.Err.Error()
}

// Is makes errors.Is(err, ErrTransient) true.
func (e *TransientError) Is(target error) bool { return target == ErrTransient }

func (e *TransientError) Unwrap() error { return e.Err }

// errNotStarted marks a command that was never started (no free slot before ctx ended).
var errNotStarted = errors.New("command not started")

// notFoundError marks a command that failed because the job does not exist.
type notFoundError struct{ err error }

func (e *notFoundError) Error() string        { return e.err.Error() }
func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }
func (e *notFoundError) Unwrap() error        { return e.err }

// IsAmbiguous reports whether err leaves open whether the command took effect (see
// TransientError.Ambiguous). After an ambiguous sbatch failure, look the name up before
// submitting again.
func IsAmbiguous(err error) bool {
	var te *TransientError
	return errors.As(err, &te) && te.Ambiguous
}

// ErrorClass is what one of Slurm's error messages means for the caller.
type ErrorClass int

// Error classes.
const (
	// ClassUnknown: a message we do not know. Treated as transient and ambiguous.
	ClassUnknown ErrorClass = iota
	// ClassTransient: retry later; the request did not take effect.
	ClassTransient
	// ClassTransientAmbiguous: retry later, but the request may have taken effect.
	ClassTransientAmbiguous
	// ClassPermanent: the same request will be refused again.
	ClassPermanent
	// ClassNotFound: the job does not exist (any more).
	ClassNotFound
)

func (c ErrorClass) String() string {
	switch c {
	case ClassTransient:
		return "transient"
	case ClassTransientAmbiguous:
		return "transient-ambiguous"
	case ClassPermanent:
		return "permanent"
	case ClassNotFound:
		return "not-found"
	default:
		return "unknown"
	}
}

// knownMessages are Slurm's texts (slurm_strerror in src/common/slurm_errno.c, and sbatch's
// own retry messages in src/sbatch/sbatch.c), in the order they are tried. Substring match:
// commands prefix them ("sbatch: error: Batch job submission failed: …").
var knownMessages = []struct {
	text  string
	class ErrorClass
}{
	// The job does not exist (any more).
	{"Invalid job id specified", ClassNotFound},
	{"Job has already finished", ClassNotFound},
	{"Job/step already completing or completed", ClassNotFound},

	// The controller is unreachable: nothing was sent, nothing happened.
	{"Unable to contact slurm controller (connect failure)", ClassTransient},
	{"Communication connection failure", ClassTransient},
	{"Connection timed out establishing", ClassTransient},
	{"Slurm backup controller in standby mode", ClassTransient},
	{"Controller is in standby mode", ClassTransient},
	{"Rate limit exceeded", ClassTransient},
	// The controller said no for now.
	{"Slurm temporarily unable to accept job", ClassTransient},
	{"Resource temporarily unavailable", ClassTransient},
	{"Slurm job queue full", ClassTransient},
	{"Unable to create job record, try again", ClassTransient},
	{"MaxJobCount limit reached", ClassTransient},
	{"Job can not be altered now, try again later", ClassTransient},
	{"Requested operation is presently disabled", ClassTransient},
	{"System submissions disabled", ClassTransient},
	{"Unable to connect to database", ClassTransient},
	// Accounting/QOS policy at submit time: a per-user submit limit clears when jobs end, a
	// size limit does not, and the text does not say which. We treat it as transient so it
	// never costs an attempt; the caller shows Message as a warning.
	{"Job violates accounting/QOS policy", ClassTransient},
	// The request was sent and the answer was lost: it may have taken effect.
	{"Socket timed out on send/recv operation", ClassTransientAmbiguous},
	{"Zero Bytes were transmitted or received", ClassTransientAmbiguous},
	{"Unable to contact slurm controller (send failure)", ClassTransientAmbiguous},
	{"Unable to contact slurm controller (receive failure)", ClassTransientAmbiguous},
	{"Message receive failure", ClassTransientAmbiguous},
	{"Header lengths are longer than data received", ClassTransientAmbiguous},

	// Permanent: the job as asked can never be accepted here.
	{"Requested node configuration is not available", ClassPermanent},
	{"Requested partition configuration not available now", ClassPermanent},
	{"Invalid feature specification", ClassPermanent},
	{"Invalid partition name specified", ClassPermanent},
	{"No partition specified or system default partition", ClassPermanent},
	{"Invalid account or account/partition combination specified", ClassPermanent},
	{"Invalid qos specification", ClassPermanent},
	{"Invalid generic resource (gres) specification", ClassPermanent},
	{"Invalid Trackable RESource (TRES) specification", ClassPermanent},
	{"Requested reservation is invalid", ClassPermanent},
	{"Access denied to requested reservation", ClassPermanent},
	{"Invalid node name specified", ClassPermanent},
	{"Requested nodes not in this partition", ClassPermanent},
	{"More processors requested than permitted", ClassPermanent},
	{"Node count specification invalid", ClassPermanent},
	{"Memory required by task is not available", ClassPermanent},
	{"Requested time limit is invalid", ClassPermanent},
	{"Invalid wckey specification", ClassPermanent},
	{"Invalid license specification", ClassPermanent},
	{"User's group not permitted to use this partition", ClassPermanent},
	{"Access/permission denied", ClassPermanent},
	{"Invalid user id", ClassPermanent},
	{"Invalid --nice value", ClassPermanent},
	{"Nice value out of range", ClassPermanent},
	// sbatch's own argument checks (exit 255 before contacting the controller).
	{"Invalid --mem specification", ClassPermanent},
	{"Invalid --tmp specification", ClassPermanent},
	{"invalid partition specified", ClassPermanent},
	{"Invalid numeric value", ClassPermanent},
	{"unrecognized option", ClassPermanent},
	{"invalid option", ClassPermanent},
}

// ClassifyText classifies Slurm's error output (one or more lines). The first known message
// found decides.
func ClassifyText(text string) ErrorClass {
	for _, m := range knownMessages {
		if strings.Contains(text, m.text) {
			return m.class
		}
	}
	return ClassUnknown
}

// classify turns a failed command into a classified error: a *RejectError (ErrPermanent), a
// *TransientError (ErrTransient, maybe ambiguous) or ErrNotFound, each wrapping err.
func classify(err error) error {
	var ce *CommandError
	if !errors.As(err, &ce) {
		return &TransientError{Ambiguous: true, Err: err}
	}
	switch {
	case errors.Is(err, errNotStarted):
		return &TransientError{Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// Killed before it said anything: whatever it was doing may have happened.
		return &TransientError{Ambiguous: true, Err: err}
	case errors.Is(err, exec.ErrNotFound), ce.ExitCode == -1 && ce.Stderr == "" && isStartError(ce.Err):
		// Could not even start: nothing happened.
		return &TransientError{Err: err}
	}
	switch ClassifyText(ce.Stderr) {
	case ClassNotFound:
		return &notFoundError{err: err}
	case ClassTransient:
		return &TransientError{Message: slurmMessage(ce.Stderr), Err: err}
	case ClassPermanent:
		return &RejectError{Message: slurmMessage(ce.Stderr), Err: err}
	default:
		return &TransientError{Message: slurmMessage(ce.Stderr), Ambiguous: true, Err: err}
	}
}

// isStartError reports whether err says the program could not be started at all.
func isStartError(err error) bool {
	var ee *exec.ExitError
	return !errors.As(err, &ee)
}

// slurmMessage extracts Slurm's explanation from a command's stderr: the text of its last
// error line without the "sbatch: error: " and "Batch job submission failed: " prefixes,
// followed by the detail lines before it in parentheses, e.g. "Requested node configuration
// is not available (Memory specification can not be satisfied)".
func slurmMessage(stderr string) string {
	var msgs []string
	for line := range strings.SplitSeq(stderr, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		// "sbatch: error: X", "scontrol: error: X", "slurm_load_jobs error: X".
		if i := strings.Index(line, "error: "); i >= 0 {
			line = line[i+len("error: "):]
		}
		line = strings.TrimPrefix(line, "Batch job submission failed: ")
		if line != "" {
			msgs = append(msgs, line)
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	last := msgs[len(msgs)-1]
	var details []string
	for _, m := range msgs[:len(msgs)-1] {
		if !strings.Contains(last, m) {
			details = append(details, m)
		}
	}
	if len(details) > 0 {
		last += " (" + strings.Join(details, "; ") + ")"
	}
	const maxLen = 400
	if len(last) > maxLen {
		last = last[:maxLen] + "…"
	}
	return last
}
