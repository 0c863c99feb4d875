// Command dispatch-slurm runs Arvados containers as Slurm batch jobs, and is the admin CLI for
// the containers it dispatches. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := onSignals(cancel, func() {
		fmt.Fprintln(os.Stderr, "dispatch-slurm: second signal: exiting at once")
		os.Exit(exitFailure)
	})
	defer stop()
	if err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "dispatch-slurm:", err)
		os.Exit(exitCode(err))
	}
}

// onSignals calls first on the first SIGTERM or SIGINT (drain: stop polling, leave jobs
// running) and again on the second (exit at once). It returns a function that stops listening.
func onSignals(first, again func()) func() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-done:
				return
			case <-sigs:
				if n++; n == 1 {
					first()
				} else {
					again()
				}
			}
		}
	}()
	return func() { signal.Stop(sigs); close(done) }
}
