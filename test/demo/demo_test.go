package demo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// syncBuffer is a bytes.Buffer safe for the demo's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeOptions runs the demo on fakeslurm with the test's binaries, its directory under the
// test's temp dir.
func fakeOptions(t *testing.T) Options {
	return Options{Slurm: ChooseFake, Bin: binDir, TempDir: t.TempDir(), Timeout: 45 * time.Second}
}

// expectNothingLeft checks that every process the demo started has ended, that none of its
// jobs is live and that its directory is gone.
func expectNothingLeft(t *testing.T, res Result) {
	t.Helper()
	if len(res.PIDs) < 2 {
		t.Errorf("the demo reports %d processes started (%v), want at least the fake API and the dispatcher", len(res.PIDs), res.PIDs)
	}
	for _, pid := range res.PIDs {
		if alive(pid) {
			t.Errorf("process %d that the demo started is still running", pid)
		}
	}
	if len(res.Leftovers) > 0 || len(res.LiveJobs) > 0 {
		t.Errorf("the demo reports leftovers: processes %v, live jobs %v", res.Leftovers, res.LiveJobs)
	}
	if _, err := os.Stat(res.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo's directory %s is still there (stat: %v)", res.Dir, err)
	}
}

func TestDemoOnFakeslurmEndsEveryContainerAsExpected(t *testing.T) {
	var out syncBuffer
	res, err := Run(context.Background(), fakeOptions(t), &out)
	if err != nil || !res.OK {
		t.Fatalf("Run: err %v, OK %v, problems %v; output:\n%s", err, res.OK, res.Problems, out.String())
	}
	if res.Backend != Fake {
		t.Errorf("backend %q, want fake", res.Backend)
	}
	seeds := Seeds()
	if len(res.Outcomes) != len(seeds) {
		t.Fatalf("%d outcomes for %d seeds", len(res.Outcomes), len(seeds))
	}
	for i, o := range res.Outcomes {
		if o.Name != seeds[i].Name || !o.OK || o.State != seeds[i].Expect {
			t.Errorf("%s ended %s (ok %v: %s), want %s", o.Name, o.State, o.OK, o.Problem, seeds[i].ExpectText())
		}
		if o.JobID == "" {
			t.Errorf("%s: no Slurm job id (even a rejected sbatch leaves a FAILED job)", o.Name)
		}
		if !strings.HasPrefix(o.UUID, res.ClusterID+"-dz642-") {
			t.Errorf("%s: uuid %s is not of the demo's cluster %s", o.Name, o.UUID, res.ClusterID)
		}
	}
	byName := map[string]Outcome{}
	for _, o := range res.Outcomes {
		byName[o.Name] = o
	}
	for name, want := range map[string]string{
		"too-much-ram":  "Requested node configuration is not available",
		"too-many-cpus": "PartitionConfig",
		"abandoned":     "priority to 0",
	} {
		if !strings.Contains(byName[name].Why, want) {
			t.Errorf("%s: why %q lacks %q", name, byName[name].Why, want)
		}
	}
	text := out.String()
	for _, want := range []string{"Slurm: fakeslurm", "NAME  ", "SLURM JOB", "UUID  ", "STATE  ", "OK: all 20 containers ended as expected"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(res.ListWhileRunning, byName["abandoned"].UUID) {
		t.Errorf("containers list while running lacks the abandoned container:\n%s", res.ListWhileRunning)
	}
	if !strings.Contains(res.ListWhileRunning, "from the dispatcher at") || !strings.Contains(res.ListWhileRunning, "DISPATCHER") {
		t.Errorf("containers list while running did not consult the dispatcher's management endpoint:\n%s", res.ListWhileRunning)
	}
	for _, tok := range []string{fakearvados.AdminToken, fakearvados.Dispatcher2Token, fakearvados.UserToken} {
		if strings.Contains(text, tok) {
			t.Errorf("the output shows a token")
		}
	}
	expectNothingLeft(t, res)
}

func TestInterruptedDemoStopsEverythingItStarted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := fakeOptions(t)
	// Interrupt once a few containers run (their jobs are live processes).
	var mu sync.Mutex
	running := 0
	opts.OnEvent = func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasSuffix(e.Text, "→ "+string(arvados.Running)) {
			if running++; running == 3 {
				cancel()
			}
		}
	}
	var out syncBuffer
	res, err := Run(ctx, opts, &out)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run: err %v, want ErrInterrupted; output:\n%s", err, out.String())
	}
	if res.OK {
		t.Errorf("an interrupted demo says OK")
	}
	if len(res.PIDs) < 3 {
		t.Errorf("the demo reports %d processes (%v): want the fake API, the dispatcher and jobs", len(res.PIDs), res.PIDs)
	}
	if !strings.Contains(out.String(), "Interrupted after") {
		t.Errorf("output does not say it was interrupted:\n%s", out.String())
	}
	expectNothingLeft(t, res)
}

func TestDemoWithoutBinariesSaysToBuildThem(t *testing.T) {
	var out syncBuffer
	_, err := Run(context.Background(), Options{Slurm: ChooseFake, Bin: t.TempDir()}, &out)
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("Run without binaries: %v, want a hint to run make build", err)
	}
}
