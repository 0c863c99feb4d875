package demo

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
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
		if err := goBuild(filepath.Join(dir, name), modulePath+pkg); err != nil {
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

// goBuild builds pkg into out. go test puts $GOROOT/bin first in the tests' PATH. The
// binaries are static: fakeslurm runs once per Slurm command.
func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
