package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

// binDir holds the programs the demo runs, built once per test process by TestMain.
var binDir string

const modulePath = "github.com/dispatch-slurm/dispatch-slurm"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dispatch-slurm-demo-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo test:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	for name, pkg := range map[string]string{
		"dispatch-slurm":    "/cmd/dispatch-slurm",
		"fakearvados":       "/test/fakearvados/cmd/fakearvados",
		"fakeslurm":         "/test/fakeslurm",
		"crunchrun-standin": "/test/crunchrun-standin",
	} {
		if err := testenv.GoBuild(filepath.Join(dir, name), modulePath+pkg, []string{"CGO_ENABLED=0"}); err != nil {
			fmt.Fprintln(os.Stderr, "demo test:", err)
			return 1
		}
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}
