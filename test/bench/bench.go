package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

// Options configure a benchmark run. Zero fields take the defaults of Defaults (or
// QuickDefaults with Quick).
type Options struct {
	// BinDir holds dispatch-slurm, fakearvados and fakeslurm (and crunchrun-standin).
	BinDir string `json:"bin_dir"`
	// ModuleDir is the module's root, for `go test -bench` (default: found from the working
	// directory). GoBench false skips the Go benchmarks.
	ModuleDir string `json:"module_dir"`
	GoBench   bool   `json:"go_bench"`
	// Go is the go command (default "go").
	Go string `json:"go"`
	// Real is "auto" (when scripts/local-slurm.sh status says up), "on" or "off".
	Real string `json:"real"`
	// Fake false skips the fake tier.
	Fake bool `json:"fake"`
	// Quick: small sizes, one run each (the CI smoke mode).
	Quick bool `json:"quick"`
	// Runs is the number of runs of the cheap figures; HeavyRuns of the large fake queue.
	Runs      int `json:"runs"`
	HeavyRuns int `json:"heavy_runs"`
	// RealN is the burst size on real Slurm (figures 1, 2, 4, 5); FakeN the sizes on fakeslurm
	// (each runs figures 1, 2, 4, 5; the growth rows compare the smallest with the largest).
	// Default FakeN: 1000 and 10000, and RealN too when the real tier does not run.
	RealN int   `json:"real_n"`
	FakeN []int `json:"fake_n"`
	// Poll is the API poll period and the squeue period.
	Poll time.Duration `json:"poll"`
	// SteadyPolls is the length of the steady-state window, in polls; IdlePolls of the idle one.
	SteadyPolls int `json:"steady_polls"`
	IdlePolls   int `json:"idle_polls"`
	// RawSbatch is the number of sbatch calls of each raw-rate loop (serial, and Parallel at once).
	RawSbatch int `json:"raw_sbatch"`
	Parallel  int `json:"parallel"`
	// Latency is the number of containers seeded one by one for figure 8, MeanGap the mean
	// time between them.
	Latency int           `json:"latency"`
	MeanGap time.Duration `json:"mean_gap"`
	// TLS serves the fake API over https (as real clusters do).
	TLS bool `json:"tls"`
	// Keep keeps the scenario directories (logs, call logs) instead of removing them.
	Keep bool `json:"keep"`
	// WorkDir is where scenario directories go (default os.TempDir()).
	WorkDir string `json:"work_dir"`
	// Wrapper is the counting wrapper binary, test/bench/cmd/slurmwrap (default: slurmwrap in
	// BinDir).
	Wrapper string `json:"-"`
	// Log gets progress lines (default io.Discard).
	Log io.Writer `json:"-"`
}

// Defaults are the options of a full run: about 10 minutes with real Slurm up on 2 cores.
func Defaults() Options {
	return Options{
		BinDir: "bin", GoBench: true, Go: "go", Real: "auto", Fake: true,
		Runs: 3, HeavyRuns: 1, RealN: 2000,
		Poll: time.Second, SteadyPolls: 5, IdlePolls: 5, RawSbatch: 200, Parallel: 8,
		Latency: 40, MeanGap: 250 * time.Millisecond, TLS: true,
	}
}

// QuickDefaults are the options of the quick mode: every figure, small sizes, one run each
// (about a minute).
func QuickDefaults() Options {
	o := Defaults()
	o.Quick, o.Runs, o.HeavyRuns = true, 1, 1
	o.RealN = 100
	o.Poll = 500 * time.Millisecond
	o.SteadyPolls, o.IdlePolls = 3, 3
	o.RawSbatch, o.Latency, o.MeanGap = 16, 10, 100*time.Millisecond
	return o
}

func (o *Options) fill() error {
	d := Defaults()
	if o.Quick {
		d = QuickDefaults()
	}
	if o.BinDir == "" {
		o.BinDir = d.BinDir
	}
	if o.Go == "" {
		o.Go = d.Go
	}
	if o.Real == "" {
		o.Real = d.Real
	}
	for _, p := range []struct {
		v *int
		d int
	}{{&o.Runs, d.Runs}, {&o.HeavyRuns, d.HeavyRuns}, {&o.RealN, d.RealN},
		{&o.SteadyPolls, d.SteadyPolls}, {&o.IdlePolls, d.IdlePolls}, {&o.RawSbatch, d.RawSbatch},
		{&o.Parallel, d.Parallel}, {&o.Latency, d.Latency}} {
		if *p.v <= 0 {
			*p.v = p.d
		}
	}
	if o.Poll <= 0 {
		o.Poll = d.Poll
	}
	if o.MeanGap <= 0 {
		o.MeanGap = d.MeanGap
	}
	if o.WorkDir == "" {
		o.WorkDir = os.TempDir()
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	abs, err := filepath.Abs(o.BinDir)
	if err != nil {
		return fmt.Errorf("bin dir: %w", err)
	}
	o.BinDir = abs
	if o.Wrapper == "" {
		o.Wrapper = filepath.Join(o.BinDir, "slurmwrap")
	}
	if o.Wrapper, err = filepath.Abs(o.Wrapper); err != nil {
		return fmt.Errorf("wrapper: %w", err)
	}
	for _, p := range []string{o.bin("dispatch-slurm"), o.bin("fakearvados"), o.bin("fakeslurm"), o.Wrapper} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s is missing (run make build and go build -o bin/ ./test/bench/cmd/slurmwrap, or give the bin directory): %w", p, err)
		}
	}
	if o.GoBench && o.ModuleDir == "" {
		if o.ModuleDir, err = findModule(); err != nil {
			return err
		}
	}
	switch o.Real {
	case "auto", "on", "off":
	default:
		return fmt.Errorf("real Slurm %q: want auto, on or off", o.Real)
	}
	return nil
}

func (o *Options) bin(name string) string { return filepath.Join(o.BinDir, name) }

func (o *Options) logf(format string, args ...any) {
	fmt.Fprintf(o.Log, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// findModule walks up from the working directory to the directory holding go.mod.
func findModule() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the module: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find the module: no go.mod above the working directory (give the module directory)")
		}
		dir = parent
	}
}

// realSlurmUp reports whether the real tier should run, and why not.
func (o *Options) realSlurmUp(ctx context.Context) (bool, string) {
	switch o.Real {
	case "off":
		return false, "skipped (real Slurm off)"
	case "on":
		return true, ""
	}
	script := "scripts/local-slurm.sh"
	if o.ModuleDir != "" {
		script = filepath.Join(o.ModuleDir, script)
	}
	if _, err := os.Stat(script); err == nil {
		out, err := runCmd(ctx, 30*time.Second, os.Environ(), "", script, "status")
		if err != nil {
			return false, "not up (scripts/local-slurm.sh status: " + strings.TrimSpace(out) + ")"
		}
		return true, ""
	}
	up, why := testenv.RealSlurmUp()
	return up, why
}

// Run measures every figure and returns the report. It fails only when it cannot start at
// all; a figure that cannot be measured is reported missing, with why.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	rep := &Report{Started: time.Now(), Host: hostInfo(ctx, o.Go), Options: o}
	rec := newRecorder(o.logf)
	problem := func(err error) {
		if err != nil {
			rep.Problems = append(rep.Problems, err.Error())
			o.logf("problem: %v", err)
		}
	}
	realUp, why := o.realSlurmUp(ctx)
	if len(o.FakeN) == 0 {
		o.FakeN = defaultFakeN(o.Quick, realUp, o.RealN)
		rep.Options.FakeN = o.FakeN
	}
	var tiers []Tier
	if o.Fake {
		tiers = append(tiers, FakeTier)
	}
	if realUp {
		tiers = append(tiers, RealTier)
		if v, err := runCmd(ctx, 10*time.Second, os.Environ(), "", "sbatch", "--version"); err == nil {
			rep.Host.Slurm = strings.TrimSpace(v)
		}
	} else if o.Real != "off" {
		rec.missing("1", "dispatch throughput", RealTier, "jobs/s", atLeast(300), "real Slurm "+why)
	}
	for _, tier := range tiers {
		if ctx.Err() != nil {
			break
		}
		problem(runIdle(ctx, &o, tier, rec))
		problem(runRawSbatch(ctx, &o, tier, rec))
		for _, n := range o.sizes(tier) {
			problem(runBursts(ctx, &o, tier, n, rec))
		}
		problem(runLatency(ctx, &o, tier, rec))
	}
	if o.Fake {
		growth(rec, o.FakeN)
	}
	if o.GoBench && ctx.Err() == nil {
		problem(runGoBench(ctx, &o, rec))
	}
	rep.Figures = rec.figures()
	rep.Details = rec.details
	rep.Took = time.Since(rep.Started).Round(time.Second).String()
	return rep, ctx.Err()
}

// defaultFakeN are the fakeslurm burst sizes: 1,000 and 10,000 (quick: 50 and 200), and the
// real tier's size as well when that tier does not run, so that its targets get a figure.
func defaultFakeN(quick, realUp bool, realN int) []int {
	sizes := []int{1000, 10000}
	if quick {
		sizes = []int{50, 200}
	}
	if !quick && !realUp && !slices.Contains(sizes, realN) {
		sizes = append(sizes, realN)
		slices.Sort(sizes)
	}
	return sizes
}

// sizes are the burst sizes of a tier.
func (o *Options) sizes(tier Tier) []int {
	if tier == RealTier {
		return []int{o.RealN}
	}
	return o.FakeN
}

// runsOf is how many runs a burst of n gets: HeavyRuns for the largest fake queue.
func (o *Options) runsOf(tier Tier, n int) int {
	if tier == FakeTier && len(o.FakeN) > 1 && n == maxOf(o.FakeN) {
		return o.HeavyRuns
	}
	return o.Runs
}

func maxOf(v []int) int {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func hostInfo(ctx context.Context, goCmd string) Host {
	h := Host{CPUs: runtime.NumCPU()}
	h.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64); err == nil {
					h.MemTotal = fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			h.Load1, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	h.Go = runtime.Version()
	if out, err := exec.CommandContext(ctx, goCmd, "env", "GOVERSION").Output(); err == nil {
		h.Go = strings.TrimSpace(string(out))
	}
	return h
}
