// Command bench measures dispatch-slurm against the figures of the benchmark issue and prints
// one table (figure, value, target, within target?, runs) and writes the same as JSON.
//
// Example:
//
//	make bench                                   # bin/bench --bin bin --json bench-results.json
//	BENCH_QUICK=1 make bench                     # every figure, small sizes: about a minute
//	make bench BENCH_FLAGS='--real=off --runs=1' # fakeslurm only, one run each
//
// It exits 0 when every figure has a value (whether or not within target: these are figures,
// not timed tests), 1 when some figure could not be measured, 2 when it cannot run at all.
// The dispatcher runs Slurm's commands through the counting wrapper bin/slurmwrap
// (test/bench/cmd/slurmwrap), which `make bench` builds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/dispatch-slurm/dispatch-slurm/test/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "small sizes, one run each, about a minute (also BENCH_QUICK=1)")
	jsonPath := fs.String("json", "bench-results.json", "write the results as JSON here (\"\" for none)")
	binDir := fs.String("bin", "bin", "directory holding dispatch-slurm, fakearvados, fakeslurm (make build) and slurmwrap")
	module := fs.String("module", "", "module root for go test -bench (default: found from the working directory)")
	goCmd := fs.String("go", "go", "the go command")
	real := fs.String("real", "auto", "real Slurm tier: auto (when scripts/local-slurm.sh status says up), on, off")
	noFake := fs.Bool("no-fake", false, "skip the fakeslurm tier")
	noGo := fs.Bool("no-gobench", false, "skip the Go benchmarks (figures 6, 7)")
	runs := fs.Int("runs", 0, "runs of each cheap figure (default 3; quick 1)")
	heavy := fs.Int("heavy-runs", 0, "runs of the largest fakeslurm burst (default 1)")
	realN := fs.Int("real-n", 0, "burst size on real Slurm (default 2000; quick 100)")
	fakeN := fs.String("fake-n", "", "burst sizes on fakeslurm, comma-separated (default 1000,10000, plus --real-n when the real tier does not run; quick 50,200)")
	poll := fs.Duration("poll", 0, "API poll and squeue period (default 1s; quick 500ms)")
	steadyPolls := fs.Int("steady-polls", 0, "polls in the steady-state window (default 5)")
	idlePolls := fs.Int("idle-polls", 0, "polls in the idle window (default 5)")
	raw := fs.Int("raw-sbatch", 0, "sbatch calls per raw-rate loop (default 200)")
	parallel := fs.Int("parallel", 0, "parallel sbatch loops for the raw rate (default 8)")
	latency := fs.Int("latency", 0, "containers seeded one by one for the latency figure (default 40)")
	gap := fs.Duration("mean-gap", 0, "mean time between those containers (default 250ms)")
	noTLS := fs.Bool("no-tls", false, "serve the fake API over http instead of https")
	keep := fs.Bool("keep", false, "keep the scenario directories (dispatcher logs, Slurm call logs)")
	workDir := fs.String("workdir", "", "where scenario directories go (default $TMPDIR)")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bench [flags]\n\nExample:\n  make build && go build -o bin/ ./test/bench/cmd/... && bin/bench --json bench-results.json\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	o := bench.Defaults()
	if *quick {
		o = bench.QuickDefaults()
	}
	o.BinDir, o.ModuleDir, o.Go, o.Real = *binDir, *module, *goCmd, *real
	o.Fake, o.GoBench, o.TLS, o.Keep, o.WorkDir = !*noFake, !*noGo, !*noTLS, *keep, *workDir
	setIf(&o.Runs, *runs)
	setIf(&o.HeavyRuns, *heavy)
	setIf(&o.RealN, *realN)
	setIf(&o.SteadyPolls, *steadyPolls)
	setIf(&o.IdlePolls, *idlePolls)
	setIf(&o.RawSbatch, *raw)
	setIf(&o.Parallel, *parallel)
	setIf(&o.Latency, *latency)
	if *poll > 0 {
		o.Poll = *poll
	}
	if *gap > 0 {
		o.MeanGap = *gap
	}
	if *fakeN != "" {
		o.FakeN = nil
		for s := range strings.SplitSeq(*fakeN, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				fmt.Fprintf(stderr, "bench: --fake-n %q: want positive integers separated by commas\n", *fakeN)
				return 2
			}
			o.FakeN = append(o.FakeN, n)
		}
	}
	if !*quiet {
		o.Log = stderr
	}
	rep, err := bench.Run(ctx, o)
	if rep == nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	if perr := rep.PrintTable(stdout); perr != nil {
		fmt.Fprintln(stderr, "bench:", perr)
		return 2
	}
	if *jsonPath != "" {
		if werr := rep.WriteJSON(*jsonPath); werr != nil {
			fmt.Fprintln(stderr, "bench:", werr)
			return 2
		}
		fmt.Fprintf(stdout, "results: %s\n", *jsonPath)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	for _, f := range rep.Figures {
		if f.Missing != "" {
			return 1
		}
	}
	return 0
}

func setIf(p *int, v int) {
	if v > 0 {
		*p = v
	}
}
