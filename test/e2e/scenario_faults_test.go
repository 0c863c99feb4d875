package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// Scenario 4: the API answers 503 to everything for 8 s mid-run (long enough for a backoff
// without a sensible cap to overshoot). Nothing is cancelled or unlocked because of it, locks
// are kept, and dispatch resumes at once after: containers seeded during the outage are
// locked within a poll period + 3 s of the API's return.
func TestAPIOutageCancelsNothingAndDispatchResumesWithinAPoll(t *testing.T) {
	const poll = 200 * time.Millisecond
	forEachTierWith(t, options{poll: poll}, func(t *testing.T, h *harness) {
		// Running through the outage, and waiting in a DOWN partition through it.
		running := h.seed(ctr(20, 1, 64, "16"), ctr(19, 1, 64, "16"), ctr(18, 1, 64, "16"))
		pending := h.seed(ctr(17, 1, 64, "1", "down"), ctr(16, 1, 64, "1", "down"))
		h.start()
		h.waitStates(running, 60*time.Second, arvados.Running)
		h.waitPendingJobs(pending, 30*time.Second)

		before := len(h.api.Calls())
		h.api.SetDown(true)
		down := time.Now()
		late := h.seed(ctr(30, 1, 64, "1"), ctr(29, 1, 64, "1"), ctr(28, 1, 64, "1"))
		h.waitFor(30*time.Second, "the dispatcher to meet the outage five times", func() (bool, string) {
			n := 0
			for _, c := range h.api.Calls()[before:] {
				if c.Status == http.StatusServiceUnavailable {
					n++
				}
			}
			return n >= 5, fmt.Sprintf("%d requests answered 503", n)
		})
		// The outage lasts 8 s in all: this is the fault's duration, not a wait.
		<-time.After(time.Until(down.Add(8 * time.Second)))
		h.api.SetDown(false)
		up := time.Now()
		var took time.Duration
		h.waitFor(poll+30*time.Second, "the containers seeded during the outage to be locked", func() (bool, string) {
			var queued []string
			for _, u := range late {
				if c := h.api.get(t, u); c.State == arvados.Queued {
					queued = append(queued, describe(c))
				}
			}
			took = time.Since(up)
			return len(queued) == 0, summarize(queued)
		})
		t.Logf("outage %v; locked %v after the API came back", up.Sub(down).Round(time.Millisecond), took.Round(time.Millisecond))
		if took > poll+3*time.Second {
			t.Errorf("dispatch resumed %v after the API came back, want ≤ a poll + 3 s (%v)", took, poll+3*time.Second)
		}

		h.waitStates(append(running, late...), 60*time.Second, arvados.Complete)
		for _, u := range pending {
			if c := h.api.get(t, u); c.State != arvados.Locked {
				t.Errorf("pending container after the outage: %s, want still Locked", describe(c))
			}
		}
		h.expectPendingJobs(pending)
		h.expectLockCount(append(append(running, pending...), late...), 1)
		h.expectNoUnlockOrCancel()
	})
}

// waitPendingJobs waits until every container has exactly one job, PENDING.
func (h *harness) waitPendingJobs(uuids []string, timeout time.Duration) {
	h.t.Helper()
	h.waitFor(timeout, fmt.Sprintf("%d pending jobs", len(uuids)), func() (bool, string) {
		jobs := h.slurm.jobsNamed(h.cluster + "-")
		var bad []string
		for _, u := range uuids {
			if js := jobs[u]; len(js) != 1 || js[0].State != "PENDING" {
				bad = append(bad, fmt.Sprintf("%s: %+v", u, js))
			}
		}
		return len(bad) == 0, summarize(bad)
	})
}

// expectPendingJobs checks that every container still has exactly one job, PENDING.
func (h *harness) expectPendingJobs(uuids []string) {
	h.t.Helper()
	jobs := h.slurm.jobsNamed(h.cluster + "-")
	for _, u := range uuids {
		if js := jobs[u]; len(js) != 1 || js[0].State != "PENDING" {
			h.t.Errorf("%s: want one PENDING job, have %+v", u, js)
		}
	}
}

// Scenario 5: squeue fails, then prints nothing with exit 0, for several periods each while
// containers run and others wait: nothing is cancelled, unlocked or submitted again. Here the
// dispatcher has seen every job in good snapshots before squeue breaks.
func TestSqueueFailingThenPrintingNothingCancelsNothing(t *testing.T) {
	forEachTier(t, func(t *testing.T, h *harness) { squeueBreaks(t, h, false) })
}

// Scenario 5 again, with squeue breaking as the first job is submitted: the dispatcher knows
// its jobs only from sbatch's answers, never from a good snapshot.
func TestSqueueBreakingRightAfterSubmitCancelsNothing(t *testing.T) {
	forEachTier(t, func(t *testing.T, h *harness) { squeueBreaks(t, h, true) })
}

func squeueBreaks(t *testing.T, h *harness, rightAfterSubmit bool) {
	running := h.seed(ctr(20, 1, 64, "10"), ctr(19, 1, 64, "10"), ctr(18, 1, 64, "10"))
	pending := h.seed(ctr(17, 1, 64, "1", "down"), ctr(16, 1, 64, "1", "down"))
	if rightAfterSubmit {
		h.slurm.faultAtSbatch(1, "squeue", "fail")
	}
	h.start()
	h.waitStates(running, 60*time.Second, arvados.Running)
	h.waitPendingJobs(pending, 30*time.Second)
	if !rightAfterSubmit {
		h.waitSnapshots(2)
	}

	for _, mode := range []string{"fail", "empty"} {
		h.slurm.setFault("squeue", mode, 0)
		h.waitFor(30*time.Second, "eight squeue runs that "+mode, func() (bool, string) {
			n := 0
			for _, c := range h.slurm.callsOf("squeue") {
				if c.Fault == mode && isSnapshot(c) {
					n++
				}
			}
			return n >= 8, fmt.Sprintf("%d so far", n)
		})
	}
	h.slurm.clearFault("squeue")

	h.waitStates(running, 60*time.Second, arvados.Complete)
	// Two more good snapshots, for anything the dispatcher might still do about the gap.
	h.waitSnapshots(2)
	h.expectScancelOnlyAfterFinal()
	for name, calls := range h.slurm.sbatchByName() {
		if len(calls) != 1 {
			t.Errorf("%s: %d sbatch calls, want 1", name, len(calls))
		}
	}
	for _, u := range pending {
		if c := h.api.get(t, u); c.State != arvados.Locked {
			t.Errorf("pending container: %s, want still Locked", describe(c))
		}
	}
	h.expectPendingJobs(pending)
	h.expectLockCount(append(running, pending...), 1)
	h.expectNoUnlockOrCancel()
}

// waitSnapshots waits until the dispatcher has run n more successful squeue snapshots.
func (h *harness) waitSnapshots(n int) {
	h.t.Helper()
	count := func() int {
		k := 0
		for _, c := range h.slurm.callsOf("squeue") {
			if c.Done && c.Exit == 0 && c.Fault == "" && isSnapshot(c) {
				k++
			}
		}
		return k
	}
	start := count()
	h.waitFor(30*time.Second, fmt.Sprintf("%d more squeue snapshots", n), func() (bool, string) {
		k := count() - start
		return k >= n, fmt.Sprintf("%d so far", k)
	})
}

// Scenario 6: sbatch fails transiently three times (controller unreachable): the container
// still runs, after four sbatch calls, with lock_count 1. And an sbatch whose answer is lost
// after the job was created (socket timeout) is followed by a lookup, not a second job.
func TestSbatchFailingTransientlyStillRunsWithOneLock(t *testing.T) {
	forEachTier(t, func(t *testing.T, h *harness) {
		h.slurm.setFault("sbatch", "fail", 3)
		first := h.seed(ctr(10, 1, 64, "500ms"))
		h.start()
		h.waitStates(first, 60*time.Second, arvados.Complete)
		calls := h.slurm.sbatchByName()[first[0]]
		var faults []string
		for _, c := range calls {
			faults = append(faults, c.Fault)
		}
		if len(calls) != 4 || strings.Join(faults, ",") != "fail,fail,fail," {
			t.Errorf("sbatch calls for %s: %d with faults %q, want 4: three failed, then one that worked", first[0], len(calls), faults)
		}

		h.slurm.setFault("sbatch", "ambiguous", 1)
		second := h.seed(ctr(10, 1, 64, "500ms"))
		h.waitStates(second, 60*time.Second, arvados.Complete)
		if calls := h.slurm.sbatchByName()[second[0]]; len(calls) != 1 {
			t.Errorf("sbatch calls for %s after an ambiguous failure: %d, want 1 (the job exists: look it up, do not submit again): %v", second[0], len(calls), calls)
		}
		both := append(first, second...)
		jobs := h.slurm.jobsNamed(h.cluster + "-")
		for _, u := range both {
			if len(jobs[u]) != 1 {
				t.Errorf("%s: %d jobs, want 1: %+v", u, len(jobs[u]), jobs[u])
			}
		}
		h.expectLockCount(both, 1)
		h.expectNoUnlockOrCancel()
	})
}

// expectScancelOnlyAfterFinal checks that every job the dispatcher cancelled belonged to a
// container that had already finished (Complete or Cancelled) when scancel started: cleaning
// up after crunch-run is fine, cancelling live work is not.
func (h *harness) expectScancelOnlyAfterFinal() {
	h.t.Helper()
	names := map[string]string{} // job id → name
	for _, j := range h.slurm.jobs() {
		names[j.ID] = j.Name
	}
	final := map[string]time.Time{} // container → when it was set final
	for _, c := range h.api.Calls() {
		st, _ := c.Update["state"].(string)
		if c.Status == http.StatusOK && (st == string(arvados.Complete) || st == string(arvados.Cancelled)) {
			uuid := strings.TrimPrefix(c.Path, "/arvados/v1/containers/")
			if _, seen := final[uuid]; !seen {
				final[uuid] = c.End
			}
		}
	}
	for _, c := range h.slurm.callsOf("scancel") {
		var targets []string
		for _, a := range c.Args {
			if name, ok := strings.CutPrefix(a, "--name="); ok {
				targets = append(targets, name)
			} else if !strings.HasPrefix(a, "-") {
				for _, id := range strings.Split(a, ",") {
					targets = append(targets, names[id])
				}
			}
		}
		for _, uuid := range targets {
			if at, ok := final[uuid]; !ok || at.After(c.Start) {
				h.t.Errorf("scancel of the job of %q, whose container was not finished: %s", uuid, c)
			}
		}
	}
}
