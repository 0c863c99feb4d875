package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// Scenario 7: a container asking for more memory than any node is Cancelled after one sbatch,
// with Slurm's message in runtime_status.error and lock_count 1; one asking for more cpus than
// any node (accepted, then pending PartitionConfig forever) likewise, with the reason, and its
// job is gone. A container that fits runs meanwhile.
func TestUnsatisfiableContainersAreCancelledWithSlurmsReasonAfterOneSbatch(t *testing.T) {
	forEachTier(t, func(t *testing.T, h *harness) {
		uuids := h.seed(
			ctr(10, 1, h.slurm.memMiB+1024, "1"),
			ctr(10, h.slurm.cpus+1, 64, "1"),
			ctr(5, 1, 64, "1"),
		)
		bigMem, bigCPU, fits := uuids[0], uuids[1], uuids[2]
		h.start()
		h.waitStates([]string{bigMem, bigCPU}, 60*time.Second, arvados.Cancelled)
		h.waitStates([]string{fits}, 60*time.Second, arvados.Complete)

		for u, want := range map[string]string{
			bigMem: "Requested node configuration is not available",
			bigCPU: "PartitionConfig",
		} {
			c := h.api.get(t, u)
			if msg, _ := c.RuntimeStatus["error"].(string); !strings.Contains(msg, want) {
				t.Errorf("%s: runtime_status.error = %q, want Slurm's %q in it", u, msg, want)
			}
			if n := len(h.slurm.sbatchByName()[u]); n != 1 {
				t.Errorf("%s: %d sbatch calls, want 1", u, n)
			}
		}
		h.waitFor(30*time.Second, "the PartitionConfig job gone", func() (bool, string) {
			js := h.slurm.jobsNamed(bigCPU)[bigCPU]
			return len(js) == 1 && !js[0].live(), fmt.Sprintf("%+v", js)
		})
		h.expectLockCount(uuids, 1)
		for _, c := range h.api.unlocks() {
			t.Errorf("unexpected unlock: %s by %s", c.Path, c.Who)
		}
	})
}

// Scenario 11: the sbatch template names a partition that does not exist, so Slurm rejects
// every container the same way. That is our misconfiguration: nothing is cancelled or
// unlocked, submitting pauses, and the dispatcher says it is unhealthy with Slurm's message.
// Once the configuration is fixed and the dispatcher restarted, every container runs with
// lock_count 1.
func TestMisconfiguredPartitionPausesWithoutCancellingAndRecoversAfterFix(t *testing.T) {
	forEachTier(t, func(t *testing.T, h *harness) {
		const slurmSays = "Invalid partition name specified"
		good := h.opts.sbatchArgs
		h.opts.sbatchArgs = "--partition=nosuch" + randomID(6) + " --mem=%M --cpus-per-task=%C"
		var cs []arvados.Container
		for i := range 6 {
			cs = append(cs, ctr(int64(10+i), 1, 64, "1"))
		}
		uuids := h.seed(cs...)
		h.start()

		var health []logLine
		h.waitFor(30*time.Second, "a log line saying the dispatcher is unhealthy or paused, with Slurm's message", func() (bool, string) {
			health = h.findLog(func(l logLine) bool {
				s := strings.ToLower(l.text())
				return strings.Contains(l.text(), slurmSays) &&
					(strings.Contains(s, "unhealthy") || strings.Contains(s, "paus") || strings.Contains(s, "misconfig"))
			})
			return len(health) > 0, fmt.Sprintf("%d sbatch calls so far", len(h.slurm.callsOf("sbatch")))
		})
		t.Logf("health: %s", health[0].text())

		// Ten more polls (two list requests each) while paused: nothing may be cancelled, nor
		// submitted in bulk.
		sbatchBefore := len(h.slurm.callsOf("sbatch"))
		h.waitListRequests(20)
		sbatchDuring := len(h.slurm.callsOf("sbatch")) - sbatchBefore
		t.Logf("sbatch calls: %d before the pause was reported, %d in the next ten polls", sbatchBefore, sbatchDuring)
		if sbatchDuring > len(uuids) {
			t.Errorf("%d sbatch calls in ten polls while paused; want no more than one per container (%d)", sbatchDuring, len(uuids))
		}
		for _, u := range uuids {
			c := h.api.get(t, u)
			if c.State != arvados.Locked && c.State != arvados.Queued {
				t.Errorf("while misconfigured: %s, want Locked (or still Queued)", describe(c))
			}
			if c.LockCount > 1 {
				t.Errorf("while misconfigured: %s, lock_count > 1", describe(c))
			}
		}
		h.expectNoUnlockOrCancel()

		if code := h.current().stop(10 * time.Second); code != 0 {
			t.Errorf("exit code after SIGTERM: %d, want 0", code)
		}
		h.opts.sbatchArgs = good
		h.start()
		h.waitStates(uuids, 60*time.Second, arvados.Complete)
		h.expectLockCount(uuids, 1)
		h.expectNoUnlockOrCancel()
	})
}

// waitListRequests waits until the dispatcher has listed containers n more times (a poll lists
// twice: the containers locked by us, then the queue).
func (h *harness) waitListRequests(n int) {
	h.t.Helper()
	count := func() int {
		k := 0
		for _, c := range h.api.Calls() {
			if c.Method == http.MethodGet && c.Path == "/arvados/v1/containers" && c.Who == "dispatcher" {
				k++
			}
		}
		return k
	}
	start := count()
	h.waitFor(30*time.Second, fmt.Sprintf("%d more list requests", n), func() (bool, string) {
		k := count() - start
		return k >= n, fmt.Sprintf("%d so far", k)
	})
}
