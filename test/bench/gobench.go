package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// goBenchFigure maps a metric of a Go benchmark to a row of the table.
type goBenchFigure struct {
	id, name string
	pkg      string // package directory, relative to the module
	bench    string // benchmark name without the -GOMAXPROCS suffix
	metric   string // unit as the benchmark reports it
	scale    float64
	unit     string
	target   Target
	note     string
}

var goBenchFigures = []goBenchFigure{
	{id: "6", name: "squeue parsing, 100,000 lines", pkg: "./pkg/slurm", bench: "BenchmarkSqueueParse100000Lines",
		metric: "ns/op", scale: 1e-6, unit: "ms", target: atMost(100), note: "slurm.ParseSqueue"},
	{id: "6", name: "watcher memory per tracked job", pkg: "./pkg/squeue", bench: "BenchmarkWatcherMemoryPerJob",
		metric: "B/job", scale: 1, unit: "B", note: "heap of a squeue.Watcher following 10,000 jobs"},
	{id: "6", name: "watcher bookkeeping per squeue cycle, 10,000 jobs", pkg: "./pkg/squeue", bench: "BenchmarkWatcherMemoryPerJob",
		metric: "ms/cycle", scale: 1, unit: "ms", note: "without running squeue"},
	{id: "6", name: "dispatcher memory per tracked container", pkg: "./pkg/queue", bench: "BenchmarkPollWith10000Tracked",
		metric: "B/tracked", scale: 1, unit: "B", note: "heap of queue.Dispatcher + watcher after adopting 10,000"},
	{id: "4", name: "in-process poll of 10,000 tracked", pkg: "./pkg/queue", bench: "BenchmarkPollWith10000Tracked",
		metric: "ns/op", scale: 1e-6, unit: "ms", note: "queue.Dispatcher.Poll, includes the in-process fake API server"},
	{id: "7", name: "renice operations to drain 1,000 from the top, random order", pkg: "./pkg/squeue",
		bench: "BenchmarkReniceChurnDrain1000/random-order", metric: "renice-ops", scale: 1, unit: "ops",
		target: below(1000 * 1000 / 20), note: "PlanRenice simulation, setup included"},
	{id: "7", name: "renice operations to drain 1,000 from the top, priority order", pkg: "./pkg/squeue",
		bench: "BenchmarkReniceChurnDrain1000/priority-order", metric: "renice-ops", scale: 1, unit: "ops",
		target: below(1000 * 1000 / 20), note: "PlanRenice simulation, setup included"},
}

// runGoBench runs the Go benchmarks behind figures 6 and 7 (Runs times each, with -count)
// and records their metrics.
func runGoBench(ctx context.Context, o *Options, rec *recorder) error {
	pkgs, names := []string{}, []string{}
	seenPkg, seenName := map[string]bool{}, map[string]bool{}
	for _, g := range goBenchFigures {
		if !seenPkg[g.pkg] {
			seenPkg[g.pkg] = true
			pkgs = append(pkgs, g.pkg)
		}
		top, _, _ := strings.Cut(g.bench, "/")
		if !seenName[top] {
			seenName[top] = true
			names = append(names, top)
		}
	}
	benchtime := "1x"
	if !o.Quick {
		benchtime = "3x"
	}
	args := append([]string{"test", "-run", "^$", "-bench", "^(" + strings.Join(names, "|") + ")$",
		"-benchtime", benchtime, "-count", strconv.Itoa(o.Runs)}, pkgs...)
	o.logf("go %s", strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.Go, args...)
	cmd.Dir = o.ModuleDir
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	results := parseBenchOutput(string(out))
	for _, g := range goBenchFigures {
		vs := results[g.bench][g.metric]
		if len(vs) == 0 {
			why := "no result"
			if err != nil {
				why = "go test failed: " + err.Error()
			}
			rec.missing(g.id, g.name, "go", g.unit, g.target, why)
			continue
		}
		for _, v := range vs {
			rec.add(g.id, g.name, "go", g.unit, g.target, g.note, v*g.scale)
		}
	}
	if err != nil {
		return fmt.Errorf("go test -bench: %w\n%s", err, tailLines(string(out), 20))
	}
	return nil
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseBenchOutput reads `go test -bench` output: benchmark → metric unit → values (one per
// -count run).
func parseBenchOutput(out string) map[string]map[string][]float64 {
	res := map[string]map[string][]float64{}
	for line := range strings.SplitSeq(out, "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			if res[m[1]] == nil {
				res[m[1]] = map[string][]float64{}
			}
			res[m[1]][f[i+1]] = append(res[m[1]][f[i+1]], v)
		}
	}
	return res
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// growth adds, for the fake tier, how each steady-state figure grows from the smallest to the
// largest queue.
func growth(rec *recorder, sizes []int) {
	if len(sizes) < 2 {
		return
	}
	lo, hi := sizes[0], sizes[0]
	for _, n := range sizes {
		lo, hi = min(lo, n), max(hi, n)
	}
	for _, m := range []string{"API requests per poll", "response bytes per poll", "dispatcher CPU per poll", "dispatcher RSS"} {
		a := rec.byKey["4\x00"+fmt.Sprintf("steady %d: %s", lo, m)+"\x00"+string(FakeTier)]
		b := rec.byKey["4\x00"+fmt.Sprintf("steady %d: %s", hi, m)+"\x00"+string(FakeTier)]
		name := fmt.Sprintf("growth %d→%d: %s", lo, hi, m)
		if a == nil || b == nil || len(a.Values) == 0 || len(b.Values) == 0 || median(a.Values) == 0 {
			rec.missing("4", name, FakeTier, "×", Target{}, "needs both sizes")
			continue
		}
		rec.add("4", name, FakeTier, "×", Target{}, fmt.Sprintf("queue ×%.0f", float64(hi)/float64(lo)),
			median(b.Values)/median(a.Values))
	}
	// Whole-process memory per tracked container, from the RSS at both sizes.
	a := rec.byKey["4\x00"+fmt.Sprintf("steady %d: dispatcher RSS", lo)+"\x00"+string(FakeTier)]
	b := rec.byKey["4\x00"+fmt.Sprintf("steady %d: dispatcher RSS", hi)+"\x00"+string(FakeTier)]
	name := "dispatcher RSS per tracked container"
	if a == nil || b == nil || len(a.Values) == 0 || len(b.Values) == 0 {
		rec.missing("6", name, FakeTier, "KB", Target{}, "needs both sizes")
		return
	}
	rec.add("6", name, FakeTier, "KB", Target{}, fmt.Sprintf("(RSS at %d − RSS at %d) / %d", hi, lo, hi-lo),
		(median(b.Values)-median(a.Values))*1e6/1e3/float64(hi-lo))
}
