package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

const faultsFileName = "faults.json"

// FaultKind names a way a command misbehaves.
type FaultKind string

// Fault kinds.
const (
	// FaultFail prints Stderr and exits with ExitCode (default 1) without doing anything.
	FaultFail FaultKind = "fail"
	// FaultLatency sleeps Delay, then runs the command normally.
	FaultLatency FaultKind = "latency"
	// FaultHang blocks until the command is killed, without doing anything.
	FaultHang FaultKind = "hang"
	// FaultEmpty prints nothing and exits 0 without doing anything.
	FaultEmpty FaultKind = "empty"
	// FaultGarbage runs the command and adds Stdout (default: lines no parser accepts) to
	// its output.
	FaultGarbage FaultKind = "garbage"
	// FaultSubmitThenFail (sbatch) creates the job, then prints Stderr (default: a
	// socket timeout) and exits with ExitCode (default 1): the ambiguous failure.
	FaultSubmitThenFail FaultKind = "submit-then-fail"
	// FaultSubmitThenHang (sbatch) creates the job, then blocks until killed.
	FaultSubmitThenHang FaultKind = "submit-then-hang"
	// FaultControllerDown answers as the command does when slurmctld is unreachable.
	FaultControllerDown FaultKind = "controller-down"
	// FaultBusy (sbatch) makes slurmctld answer EAGAIN to Count submission attempts:
	// sbatch prints "Slurm temporarily unable to accept job, sleeping and retrying" and
	// retries (up to 15 times, sleeping 1, 2, … SubmitRetryUnit), as with MaxJobCount.
	FaultBusy FaultKind = "busy"
)

// Fault is one injected misbehaviour, kept in <state>/faults.json.
type Fault struct {
	// Command is sbatch, squeue, scancel or scontrol; empty means every command.
	Command string    `json:"command,omitempty"`
	Kind    FaultKind `json:"kind"`
	// Count is how many calls (for FaultBusy: submission attempts) the fault affects; 0
	// means every call until the faults are cleared.
	Count    int      `json:"count,omitempty"`
	Stderr   string   `json:"stderr,omitempty"`
	Stdout   string   `json:"stdout,omitempty"`
	ExitCode int      `json:"exit_code,omitempty"`
	Delay    Duration `json:"delay,omitempty"`
}

// DefaultGarbage is what FaultGarbage adds to a command's output when Stdout is empty.
const DefaultGarbage = "garbage that no parser should accept\n|||\n\n"

// DefaultAmbiguousStderr is what FaultSubmitThenFail prints when Stderr is empty.
const DefaultAmbiguousStderr = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n"

// Validate reports a fault that cannot be injected.
func (f Fault) Validate() error {
	switch f.Command {
	case "", "sbatch", "squeue", "scancel", "scontrol":
	default:
		return fmt.Errorf("fault: unknown command %q", f.Command)
	}
	switch f.Kind {
	case FaultFail, FaultLatency, FaultHang, FaultEmpty, FaultGarbage, FaultControllerDown:
	case FaultSubmitThenFail, FaultSubmitThenHang, FaultBusy:
		if f.Command != "sbatch" {
			return fmt.Errorf("fault %s: only for sbatch", f.Kind)
		}
	default:
		return fmt.Errorf("fault: unknown kind %q", f.Kind)
	}
	if f.Count < 0 {
		return errors.New("fault: negative count")
	}
	return nil
}

func readFaults(dir string) ([]Fault, error) {
	b, err := os.ReadFile(filepath.Join(dir, faultsFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read faults: %w", err)
	}
	var fs []Fault
	if err := json.Unmarshal(b, &fs); err != nil {
		return nil, fmt.Errorf("parse faults: %w", err)
	}
	return fs, nil
}

func writeFaults(dir string, fs []Fault) error {
	if len(fs) == 0 {
		err := os.Remove(filepath.Join(dir, faultsFileName))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("clear faults: %w", err)
		}
		return nil
	}
	b, err := json.MarshalIndent(fs, "", "  ")
	if err != nil {
		return fmt.Errorf("encode faults: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, faultsFileName), b)
}

// applied is what the faults matching one call ask for.
type applied struct {
	delay time.Duration
	mode  *Fault // the first fault that changes what the call does, if any
}

// takeFaults consumes the faults that match one call of cmd. Kinds in skip are left
// alone (FaultBusy is consumed per submission attempt instead). The caller holds the lock.
func takeFaults(dir, cmd string, skip ...FaultKind) (applied, error) {
	var a applied
	fs, err := readFaults(dir)
	if err != nil || len(fs) == 0 {
		return a, err
	}
	changed := false
	kept := fs[:0:0]
	for _, f := range fs {
		match := f.Command == "" || f.Command == cmd
		for _, k := range skip {
			if f.Kind == k {
				match = false
			}
		}
		if match && f.Kind == FaultLatency {
			a.delay += f.Delay.D()
		} else if match && a.mode == nil {
			f := f
			a.mode = &f
		} else {
			match = false
		}
		if match && f.Count > 0 {
			changed = true
			f.Count--
			if f.Count == 0 {
				continue
			}
		}
		kept = append(kept, f)
	}
	if changed {
		if err := writeFaults(dir, kept); err != nil {
			return a, err
		}
	}
	return a, nil
}

// takeBusy consumes one FaultBusy for a submission attempt and reports whether there was one.
func takeBusy(dir string) (bool, error) {
	fs, err := readFaults(dir)
	if err != nil {
		return false, err
	}
	for i, f := range fs {
		if f.Kind != FaultBusy {
			continue
		}
		if f.Count > 0 {
			fs[i].Count--
			if fs[i].Count == 0 {
				fs = append(fs[:i], fs[i+1:]...)
			}
			if err := writeFaults(dir, fs); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	return false, nil
}
