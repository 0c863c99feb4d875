package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// The harness's own promises, so that a scenario cannot pass because a fault was never
// injected or a call never logged: the wrappers log every call with its arguments and exit
// code, apply counted and open-ended faults, and the ambiguous sbatch fault really creates
// the job.
func TestWrappersLogCallsAndInjectFaults(t *testing.T) {
	forEachTier(t, func(t *testing.T, h *harness) {
		s := h.slurm
		run := func(stdin, name string, args ...string) (string, int) {
			t.Helper()
			cmd := exec.Command(s.wrappers[name], args...)
			cmd.Env = s.env
			cmd.Dir = h.dir
			cmd.Stdin = strings.NewReader(stdin)
			out, err := cmd.Output()
			if ee, ok := err.(*exec.ExitError); ok {
				return string(out), ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			return string(out), 0
		}
		script := "#!/bin/sh\nexec sleep 60\n"
		submit := func(name string) (string, int) {
			return run(script, "sbatch", "--parsable", "--job-name="+name, "--partition=down", "--output=/dev/null", "--time=1")
		}

		s.setFault("sbatch", "fail", 2)
		for i := range 2 {
			if _, code := submit(h.uuid()); code != 1 {
				t.Errorf("faulted sbatch %d: exit %d, want 1", i, code)
			}
		}
		okName := h.uuid()
		if out, code := submit(okName); code != 0 || strings.TrimSpace(out) == "" {
			t.Errorf("sbatch after the counted fault: exit %d, output %q", code, out)
		}
		s.setFault("sbatch", "ambiguous", 1)
		ambName := h.uuid()
		if _, code := submit(ambName); code != 1 {
			t.Errorf("ambiguous sbatch: exit %d, want 1", code)
		}
		jobs := s.jobsNamed(h.cluster + "-")
		if len(jobs[okName]) != 1 || len(jobs[ambName]) != 1 || len(jobs) != 2 {
			t.Errorf("jobs after 2 failed, 1 good and 1 ambiguous sbatch: %+v", jobs)
		}

		s.setFault("squeue", "empty", 0)
		for range 3 {
			if out, code := run("", "squeue", "--noheader", "--format=%i"); code != 0 || out != "" {
				t.Errorf("empty squeue: exit %d, output %q", code, out)
			}
		}
		s.setFault("squeue", "fail", 0)
		if _, code := run("", "squeue", "--noheader"); code != 1 {
			t.Errorf("failing squeue: exit %d, want 1", code)
		}
		s.clearFault("squeue")
		if out, code := run("", "squeue", "--noheader", "--format=%j", "--name="+okName); code != 0 || strings.TrimSpace(out) != okName {
			t.Errorf("squeue after the fault cleared: exit %d, output %q", code, out)
		}

		s.faultAtSbatch(2, "squeue", "empty")
		if _, code := submit(h.uuid()); code != 0 {
			t.Errorf("sbatch before the armed fault: exit %d", code)
		}
		if _, code := run("", "squeue", "--noheader"); code != 0 {
			t.Errorf("squeue before the armed fault: exit %d", code)
		}
		lastName := h.uuid()
		if _, code := submit(lastName); code != 0 {
			t.Errorf("sbatch that arms the fault: exit %d", code)
		}
		if out, code := run("", "squeue", "--noheader", "--format=%j", "--name="+lastName); code != 0 || out != "" {
			t.Errorf("squeue after the armed fault: exit %d, output %q, want nothing", code, out)
		}
		s.clearFault("squeue")

		calls := s.calls()
		var got []string
		for _, c := range calls {
			if !c.Done {
				t.Errorf("call not logged as done: %s", c)
			}
			got = append(got, c.Command+":"+c.Fault)
		}
		want := "sbatch:fail sbatch:fail sbatch: sbatch:ambiguous squeue:empty squeue:empty squeue:empty squeue:fail squeue: sbatch: squeue: sbatch: squeue:empty"
		if strings.Join(got, " ") != want {
			t.Errorf("logged calls:\n got %s\nwant %s", strings.Join(got, " "), want)
		}
		if name, _ := calls[2].arg("--job-name"); name != okName || calls[2].Exit != 0 {
			t.Errorf("third call: %s", calls[2])
		}
		if !isSnapshot(calls[4]) || isSnapshot(calls[8]) {
			t.Errorf("isSnapshot: %v for %s, %v for %s", isSnapshot(calls[4]), calls[4], isSnapshot(calls[8]), calls[8])
		}
	})
}
