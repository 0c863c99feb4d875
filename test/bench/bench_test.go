package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dispatch-slurm/dispatch-slurm/test/bench/slurmwrap"
)

func TestMain(m *testing.M) {
	// Started as a wrapper (TestWrapperPassesThroughAndLogsTheCall links the test binary as
	// one), be the wrapper.
	if name := filepath.Base(os.Args[0]); slices.Contains(slurmwrap.Commands, name) {
		if _, err := os.Stat(filepath.Join(filepath.Dir(os.Args[0]), name+".real")); err == nil {
			os.Exit(slurmwrap.Main())
		}
	}
	goleak.VerifyTestMain(m)
}

// buildBinaries builds what the driver runs into dir.
func buildBinaries(t *testing.T, dir string) {
	t.Helper()
	for _, pkg := range []string{"./cmd/dispatch-slurm", "./test/fakeslurm", "./test/fakearvados/cmd/fakearvados",
		"./test/crunchrun-standin", "./test/bench/cmd/slurmwrap"} {
		cmd := exec.Command("go", "build", "-o", dir+"/", pkg)
		cmd.Dir = moduleDir(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
}

func moduleDir(t *testing.T) string {
	t.Helper()
	dir, err := findModule()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// The quick mode at the fake tier produces every figure with a value. It checks that the
// driver keeps working, not the figures: it asserts nothing about timings.
func TestQuickModeProducesEveryFigure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dispatcher for about half a minute")
	}
	bin := t.TempDir()
	buildBinaries(t, bin)
	var log strings.Builder
	o := QuickDefaults()
	o.BinDir, o.ModuleDir, o.Real, o.WorkDir = bin, moduleDir(t), "off", t.TempDir()
	o.Log = &log
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	if len(rep.Problems) > 0 {
		t.Errorf("problems: %s\n%s", strings.Join(rep.Problems, "\n"), log.String())
	}
	want := map[string]bool{}
	for _, f := range rep.Figures {
		want[f.ID] = true
		if f.Missing != "" || len(f.Values) == 0 {
			t.Errorf("figure %s %q (%s): missing: %s", f.ID, f.Name, f.Tier, f.Missing)
		}
		if f.Tier == string(RealTier) {
			t.Errorf("figure %s %q ran at the real tier with Real off", f.ID, f.Name)
		}
	}
	for i := 1; i <= 8; i++ {
		if !want[fmt.Sprint(i)] {
			t.Errorf("no figure %d", i)
		}
	}
	var table strings.Builder
	if err := rep.PrintTable(&table); err != nil {
		t.Fatal(err)
	}
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	if err := rep.WriteJSON(jsonPath); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s\n%s", log.String(), table.String())
	// Nothing of the scenarios is left behind.
	left, _ := filepath.Glob(filepath.Join(o.WorkDir, "dispatch-slurm-bench-*"))
	if len(left) > 0 {
		t.Errorf("scenario directories left behind: %v", left)
	}
}
