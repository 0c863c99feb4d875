package testenv

import (
	"fmt"
	"os"
	"os/exec"
)

// GoBuild builds the package pkg (an import path) into the file out, with the go command of
// the PATH (go test puts $GOROOT/bin first in the tests' PATH), the test's environment plus env
// (e.g. CGO_ENABLED=0), and flags (e.g. -race). The error carries the compiler's output.
func GoBuild(out, pkg string, env []string, flags ...string) error {
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
