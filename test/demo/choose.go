package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Backend is the Slurm the demo runs on.
type Backend string

// Backends.
const (
	Real Backend = "real"
	Fake Backend = "fake"
)

// Slurm choices (Options.Slurm).
const (
	ChooseAuto = "auto"
	ChooseReal = "real"
	ChooseFake = "fake"
)

// slurmProbe is what the choice looks at: the local Slurm script and the machine.
type slurmProbe interface {
	// status runs `local-slurm.sh status`: is the local Slurm up, and what it said.
	status(ctx context.Context) (bool, string)
	// canStart says whether `local-slurm.sh up` may be tried here (root on Debian, the
	// script present), and if not, why.
	canStart() (bool, string)
	// up runs `local-slurm.sh up`.
	up(ctx context.Context) error
}

// choice is the Slurm chosen, why, and whether the demo started it.
type choice struct {
	backend Backend
	why     string
	started bool
}

// chooseSlurm picks the backend for mode (auto, real or fake). With real, a Slurm that is not
// up and cannot be started is an error.
func chooseSlurm(ctx context.Context, mode string, p slurmProbe) (choice, error) {
	switch mode {
	case ChooseFake:
		return choice{backend: Fake, why: "asked for (--slurm=fake)"}, nil
	case ChooseAuto, ChooseReal:
	default:
		return choice{}, fmt.Errorf("--slurm=%q: want auto, real or fake", mode)
	}
	if up, said := p.status(ctx); up {
		return choice{backend: Real, why: "the local Slurm is up (" + said + ")"}, nil
	}
	ok, whyNot := p.canStart()
	if ok {
		err := p.up(ctx)
		if err == nil {
			return choice{backend: Real, why: "started the local Slurm with scripts/local-slurm.sh up", started: true}, nil
		}
		whyNot = "scripts/local-slurm.sh up failed: " + err.Error()
	}
	if mode == ChooseReal {
		return choice{}, fmt.Errorf("--slurm=real: the local Slurm is down and %s", whyNot)
	}
	return choice{backend: Fake, why: "no local Slurm: it is down and " + whyNot}, nil
}

// scriptProbe is the real slurmProbe: scripts/local-slurm.sh on this machine.
type scriptProbe struct {
	script string
	// out receives what `up` prints while it works (it may install packages).
	out func(string)
}

func (s scriptProbe) status(ctx context.Context) (bool, string) {
	if _, err := os.Stat(s.script); err != nil {
		return false, err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.script, "status").CombinedOutput()
	return err == nil, lastLine(string(out))
}

func (s scriptProbe) canStart() (bool, string) {
	if _, err := os.Stat(s.script); err != nil {
		return false, "there is no " + s.script + " to start it with"
	}
	if os.Geteuid() != 0 {
		return false, "starting it needs root"
	}
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		return false, "starting it needs Debian packages (this is not Debian)"
	}
	return true, ""
}

func (s scriptProbe) up(ctx context.Context) error {
	if s.out != nil {
		s.out("starting the local Slurm (scripts/local-slurm.sh up; the first time it installs Debian packages)…")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.script, "up").CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errors.New(lastLine(string(out)))
	}
	return nil
}

// down runs `local-slurm.sh down`.
func (s scriptProbe) down(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, s.script, "down").CombinedOutput(); err != nil {
		return fmt.Errorf("scripts/local-slurm.sh down: %w: %s", err, lastLine(string(out)))
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
