package queue

import (
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

// TestRealSlurm runs the dispatcher against the machine's Slurm: containers run to Complete
// with one sbatch each, one no node can hold is cancelled with Slurm's message, and one whose
// priority drops to 0 while running is cancelled with its job.
func TestRealSlurm(t *testing.T) {
	testenv.RequireRealSlurm(t)
	t.Parallel()
	s := newStack(t, stackOptions{real: true})
	ok := s.srv.SeedN(4, small("0.5"))
	big := small("0.5")
	big.RuntimeConstraints.RAM = 1 << 44
	zero := small("60")
	ids := s.srv.Seed(big, zero)
	s.waitStates([]string{ids[1]}, 30*time.Second, arvados.Running)
	if err := s.srv.SetPriority(ids[1], 0); err != nil {
		t.Fatal(err)
	}
	s.waitStates(ok, 60*time.Second, arvados.Complete)
	s.waitStates(ids, 30*time.Second, arvados.Cancelled)
	if msg, _ := s.container(ids[0]).RuntimeStatus["error"].(string); !strings.HasPrefix(msg, "Slurm rejected the job: ") {
		t.Errorf("runtime_status.error %q, want Slurm's rejection", msg)
	}
	for _, u := range append(ok, ids...) {
		if c := s.container(u); c.LockCount != 1 {
			t.Errorf("%s: lock_count %d, want 1", u, c.LockCount)
		}
	}
	s.waitFor("every tracker forgotten", 30*time.Second, func() bool { return len(s.d.Tracked()) == 0 })
}
