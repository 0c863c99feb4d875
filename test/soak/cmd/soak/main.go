// Command soak runs the dispatcher's fault-injection soak (package test/soak) and exits 1 when
// an invariant broke, 2 when the soak could not run.
//
//	soak --duration=5m --bin-dir=bin
//	soak --seed=1733000000 --duration=2m   # replay a run's choices
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/dispatch-slurm/dispatch-slurm/test/soak"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o soak.Options
	binDir := fs.String("bin-dir", "bin", "directory holding dispatch-slurm, fakeslurm and crunchrun-standin (make build)")
	fs.StringVar(&o.Dir, "dir", "", "working directory, kept for inspection (default: a new directory in $TMPDIR)")
	fs.Int64Var(&o.Seed, "seed", 0, "seed of the random choices (default: from the clock; printed)")
	fs.DurationVar(&o.Duration, "duration", 0, "how long to create containers and inject faults (default 5m)")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", 0, "most time for every container to become final after that (default 2m)")
	fs.DurationVar(&o.FaultEvery, "fault-every", 0, "mean time between faults (default 1s)")
	fs.DurationVar(&o.ContainerEvery, "container-every", 0, "mean time between new containers (default 400ms)")
	fs.StringVar(&o.LogLevel, "log-level", "", "the dispatcher's log level (default debug)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: soak [flags]\n\nRuns dispatch-slurm against the fake API and fake Slurm while injecting faults,\nthen checks its invariants. Exit code 1: a violation; 2: the soak could not run.\n\nExample:\n  soak --duration=5m --bin-dir=bin\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	o.DispatcherBin = filepath.Join(*binDir, "dispatch-slurm")
	o.FakeslurmBin = filepath.Join(*binDir, "fakeslurm")
	o.StandinBin = filepath.Join(*binDir, "crunchrun-standin")
	for _, p := range []*string{&o.DispatcherBin, &o.FakeslurmBin, &o.StandinBin} {
		abs, err := filepath.Abs(*p)
		if err == nil {
			*p = abs
		}
		if _, err := os.Stat(*p); err != nil {
			fmt.Fprintf(stderr, "soak: %v (run make build first)\n", err)
			return 2
		}
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "dispatch-slurm-soak-")
		if err != nil {
			fmt.Fprintln(stderr, "soak:", err)
			return 2
		}
		o.Dir = d
	}
	rep, err := soak.Run(ctx, o, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "soak:", err)
		return 2
	}
	if len(rep.Violations) > 0 {
		return 1
	}
	return 0
}
