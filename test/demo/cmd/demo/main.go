// Command demo runs the dispatch-slurm demo (`make demo`): the fake Arvados API seeded with
// about twenty containers, the dispatcher, and Slurm (the real local one, or fakeslurm), with
// a live view and a summary. It exits 0 only if every container ended as expected.
//
//	demo --slurm=auto|real|fake --bin=bin
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/dispatch-slurm/dispatch-slurm/test/demo"
)

func main() {
	// SIGHUP (the terminal closed) and SIGPIPE (stdout piped into a reader that quit, such as
	// head) would otherwise kill the demo before it stops what it started.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := demo.Options{}
	fs.StringVar(&opts.Slurm, "slurm", demo.ChooseAuto,
		"auto: the local Slurm if it is up or can be started (root on Debian), else fakeslurm; real; fake")
	fs.StringVar(&opts.Bin, "bin", "bin", "directory of the built programs (make build)")
	fs.StringVar(&opts.SlurmScript, "slurm-script", "", "the local Slurm script (default: scripts/local-slurm.sh, else ../scripts/local-slurm.sh from --bin)")
	fs.DurationVar(&opts.Timeout, "timeout", 90*time.Second, "give up if the containers have not all ended by then")
	fs.BoolVar(&opts.Keep, "keep", false, "keep the demo's directory (config, logs, job output)")
	fs.BoolVar(&opts.LeaveSlurmUp, "leave-slurm-up", false, "leave a local Slurm that the demo started running")
	plain := fs.Bool("plain", false, "print lines instead of redrawing the view in place on a terminal")
	verbose := fs.Bool("verbose", false, "log what the demo does to stderr")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: demo [flags]\n\nExample:\n  make build && bin/demo --slurm=fake\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if f, ok := stdout.(*os.File); ok && !*plain && term.IsTerminal(int(f.Fd())) {
		opts.Live = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			opts.Width = w
		}
	}
	if *verbose {
		l, err := zap.NewDevelopment()
		if err != nil {
			fmt.Fprintln(stderr, "demo:", err)
			return 1
		}
		opts.Logger = l
	}
	res, err := demo.Run(ctx, opts, stdout)
	switch {
	case errors.Is(err, demo.ErrInterrupted):
		fmt.Fprintln(stderr, "demo: interrupted")
		return 130
	case err != nil:
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	case !res.OK:
		return 1
	}
	return 0
}
