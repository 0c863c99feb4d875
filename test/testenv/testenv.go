// Package testenv tells tests which tiers this machine can run. The real-Slurm tier runs when a
// local Slurm is up (scripts/local-slurm.sh up); with CI=true it must run, so a missing Slurm
// fails the test instead of skipping it.
package testenv

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	realOnce sync.Once
	realUp   bool
	realWhy  string
)

// CI reports whether we run under CI (CI=true), where no tier may be skipped.
func CI() bool { return os.Getenv("CI") == "true" }

// RealSlurmUp reports whether a real Slurm answers on this machine, and if not, why.
func RealSlurmUp() (bool, string) {
	realOnce.Do(func() {
		if os.Getenv("DISPATCH_SLURM_NO_REAL") == "1" && !CI() {
			realWhy = "DISPATCH_SLURM_NO_REAL=1"
			return
		}
		for _, b := range []string{"sbatch", "squeue", "scancel", "scontrol"} {
			if _, err := exec.LookPath(b); err != nil {
				realWhy = b + " not in PATH (run scripts/local-slurm.sh up as root)"
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "scontrol", "ping").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "UP") {
			realWhy = "scontrol ping: " + strings.TrimSpace(string(out)) + " (run scripts/local-slurm.sh up as root)"
			return
		}
		realUp = true
	})
	return realUp, realWhy
}

// RequireRealSlurm skips the test when no real Slurm is up, except under CI where it fails.
func RequireRealSlurm(t testing.TB) {
	t.Helper()
	up, why := RealSlurmUp()
	if up {
		return
	}
	if CI() {
		t.Fatalf("real Slurm is required with CI=true but is not up: %s", why)
	}
	t.Skipf("real Slurm not up: %s", why)
}
