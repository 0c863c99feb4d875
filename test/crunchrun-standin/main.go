package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

const (
	prefix          = "crunch-run stand-in: "
	defaultDuration = time.Second
	maxDuration     = 24 * time.Hour
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	os.Exit(run(context.Background(), os.Args[1:], sigs, os.Stderr))
}

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, sigs <-chan os.Signal, stderr io.Writer) int {
	say := func(format string, a ...any) { fmt.Fprintf(stderr, prefix+format+"\n", a...) }
	uuid, err := parseArgs(args)
	if err != nil {
		say("%v", err)
		say("usage: crunchrun-standin [--crunch-run-flag=value ...] <container-uuid>")
		return 2
	}
	cfg, err := arvados.ConfigFromEnv()
	if err == nil {
		var c *arvados.Client
		if c, err = arvados.NewClient(cfg); err == nil {
			return standin{c: c, uuid: uuid, say: say}.run(ctx, sigs)
		}
	}
	say("%v", err)
	return 1
}

// parseArgs returns the container uuid: the last argument. crunch-run's flags before it are
// ignored.
func parseArgs(args []string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("no container uuid given")
	}
	uuid := args[len(args)-1]
	if !arvados.ValidContainerUUID(uuid) {
		return "", fmt.Errorf("the last argument %q is not a container uuid", uuid)
	}
	return uuid, nil
}

// plan is what the container's command asks the stand-in to do.
type plan struct {
	wait time.Duration
	// die, if set, exits with this code right after Running, leaving the container Running.
	die *int
}

// planFor reads the container's command: ["sleep", N] waits N (seconds, or a Go duration);
// ["exit", N] dies with exit code N once Running; anything else waits defaultDuration.
func planFor(command []string) plan {
	if len(command) == 2 && command[0] == "exit" {
		if n, err := strconv.Atoi(command[1]); err == nil {
			return plan{die: &n}
		}
	}
	if len(command) == 2 && command[0] == "sleep" {
		if d, ok := parseWait(command[1]); ok {
			return plan{wait: d}
		}
	}
	return plan{wait: defaultDuration}
}

func parseWait(s string) (time.Duration, bool) {
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(secs) {
			return 0, false
		}
		d = time.Duration(min(secs, maxDuration.Seconds()) * float64(time.Second))
	}
	if d < 0 || d > maxDuration {
		return 0, false
	}
	return d, true
}

type standin struct {
	c    *arvados.Client
	uuid string
	say  func(string, ...any)
}

func (s standin) run(ctx context.Context, sigs <-chan os.Signal) int {
	ctr, err := s.c.GetContainer(ctx, s.uuid, "uuid", "state", "command")
	if err != nil {
		s.say("%v", err)
		return 1
	}
	if ctr.State != arvados.Locked {
		s.say("container %s is %s, not Locked: crunch-run only starts containers the dispatcher has locked", s.uuid, ctr.State)
		return 1
	}
	if _, err := s.c.UpdateContainer(ctx, s.uuid, arvados.ContainerUpdate{State: new(arvados.Running)}); err != nil {
		s.say("set %s Running: %v", s.uuid, err)
		return 1
	}
	p := planFor(ctr.Command)
	if p.die != nil {
		s.say("container %s is Running; dying with exit code %d as its command asks", s.uuid, *p.die)
		return *p.die
	}
	s.say("container %s is Running for %s", s.uuid, p.wait)
	timer := time.NewTimer(p.wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return s.finish(ctx, arvados.ContainerUpdate{State: new(arvados.Complete), ExitCode: new(0)})
	case sig := <-sigs:
		reason := prefix + "received " + signalName(sig)
		s.say("%s: cancelling %s", reason, s.uuid)
		return s.finish(ctx, arvados.ContainerUpdate{State: new(arvados.Cancelled),
			RuntimeStatus: map[string]any{"error": reason}})
	case <-ctx.Done():
		s.say("%v", ctx.Err())
		return 1
	}
}

// finish applies the final update. If the server refuses it because the container already
// finished (the dispatcher or a user cancelled it), that is reported and is not a failure.
func (s standin) finish(ctx context.Context, u arvados.ContainerUpdate) int {
	_, err := s.c.UpdateContainer(ctx, s.uuid, u)
	if err == nil {
		s.say("container %s is %s", s.uuid, *u.State)
		return 0
	}
	if arvados.IsInvalid(err) {
		if ctr, gerr := s.c.GetContainer(ctx, s.uuid, "uuid", "state"); gerr == nil && ctr.State.Final() {
			s.say("container %s was already %s", s.uuid, ctr.State)
			return 0
		}
	}
	s.say("set %s %s: %v", s.uuid, *u.State, err)
	return 1
}

func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return strings.ToUpper(sig.String())
}
