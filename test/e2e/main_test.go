package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

// Built once per test process by TestMain.
var (
	// workDir holds the binaries and every scenario's files that jobs may still write to
	// after the test ended (job output, the submit directory). Removed when the process ends.
	workDir string
	// dispatcherBin is dispatch-slurm, built with -race when the tests are.
	dispatcherBin string
	// standinBin is the crunch-run stand-in, the command of every job.
	standinBin string
)

const modulePath = "github.com/dispatch-slurm/dispatch-slurm"

// EnvBinary names an environment variable holding a prebuilt dispatch-slurm to test instead of
// building one from this tree (e.g. a release build).
const EnvBinary = "DISPATCH_SLURM_E2E_BINARY"

// EnvKeep names an environment variable that, set to anything, keeps the scenarios'
// directories (dispatcher logs, Slurm call logs, job output) after the tests.
const EnvKeep = "DISPATCH_SLURM_E2E_KEEP"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	workDir, err = os.MkdirTemp("", "dispatch-slurm-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if os.Getenv(EnvKeep) == "" {
		defer os.RemoveAll(workDir)
	} else {
		defer fmt.Fprintln(os.Stderr, "e2e: kept", workDir)
	}
	dispatcherBin = filepath.Join(workDir, "dispatch-slurm")
	standinBin = filepath.Join(workDir, "crunchrun-standin")
	var raceFlag []string
	if raceEnabled {
		// A data race in the dispatcher then shows up in its stderr, which the harness checks.
		raceFlag = []string{"-race"}
	}
	if prebuilt := os.Getenv(EnvBinary); prebuilt != "" {
		dispatcherBin = prebuilt
	} else if err := testenv.GoBuild(dispatcherBin, modulePath+"/cmd/dispatch-slurm", nil, raceFlag...); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := testenv.GoBuild(standinBin, modulePath+"/test/crunchrun-standin", nil); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}
