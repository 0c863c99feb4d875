package soak

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

// Built once per test process by TestMain, into binDir.
var (
	binDir                                  string
	dispatcherBin, fakeslurmBin, standinBin string
)

const modulePath = "github.com/dispatch-slurm/dispatch-slurm"

func TestMain(m *testing.M) {
	code := runMain(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "soak: goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func runMain(m *testing.M) int {
	var err error
	binDir, err = os.MkdirTemp("", "dispatch-slurm-soak-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 1
	}
	defer os.RemoveAll(binDir)
	dispatcherBin = filepath.Join(binDir, "dispatch-slurm")
	fakeslurmBin = filepath.Join(binDir, "fakeslurm")
	standinBin = filepath.Join(binDir, "crunchrun-standin")
	var raceFlag []string
	if raceEnabled {
		// A data race in the dispatcher then shows up in its stderr, which the soak checks.
		raceFlag = []string{"-race"}
	}
	for _, b := range []struct {
		out, pkg string
		flags    []string
		env      []string
	}{
		{dispatcherBin, "/cmd/dispatch-slurm", raceFlag, nil},
		// Static, as fakeslurmtest builds it: thousands of short runs.
		{fakeslurmBin, "/test/fakeslurm", nil, []string{"CGO_ENABLED=0"}},
		{standinBin, "/test/crunchrun-standin", nil, nil},
	} {
		if err := testenv.GoBuild(b.out, modulePath+b.pkg, b.env, b.flags...); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			return 1
		}
	}
	return m.Run()
}
