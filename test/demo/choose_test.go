package demo

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// probe is a slurmProbe with canned answers that records whether up was tried.
type probe struct {
	isUp     bool
	startOK  bool
	whyNot   string
	upErr    error
	upCalled bool
}

func (p *probe) status(context.Context) (bool, string) { return p.isUp, "up: debug* up 1 idle" }
func (p *probe) canStart() (bool, string)              { return p.startOK, p.whyNot }
func (p *probe) up(context.Context) error {
	p.upCalled = true
	return p.upErr
}

func TestChooseSlurm(t *testing.T) {
	for _, tc := range []struct {
		name        string
		mode        string
		probe       probe
		want        Backend
		started     bool
		tryUp       bool
		whyHas, err string
	}{
		{name: "fake is fake, whatever the machine", mode: "fake", probe: probe{isUp: true},
			want: Fake, whyHas: "--slurm=fake"},
		{name: "auto takes the local Slurm that is up", mode: "auto", probe: probe{isUp: true},
			want: Real, whyHas: "is up"},
		{name: "auto starts the local Slurm as root on Debian", mode: "auto", probe: probe{startOK: true},
			want: Real, started: true, tryUp: true, whyHas: "started"},
		{name: "auto falls back to fakeslurm when starting fails, saying why", mode: "auto",
			probe: probe{startOK: true, upErr: errors.New("apt-get install failed")},
			want:  Fake, tryUp: true, whyHas: "apt-get install failed"},
		{name: "auto falls back to fakeslurm without root, saying why", mode: "auto",
			probe: probe{whyNot: "starting it needs root"}, want: Fake, whyHas: "needs root"},
		{name: "real takes the local Slurm that is up", mode: "real", probe: probe{isUp: true}, want: Real},
		{name: "real starts the local Slurm when it can", mode: "real", probe: probe{startOK: true},
			want: Real, started: true, tryUp: true},
		{name: "real without a Slurm that can start is an error", mode: "real",
			probe: probe{whyNot: "starting it needs root"}, tryUp: false, err: "needs root"},
		{name: "an unknown mode is an error", mode: "maybe", err: "want auto, real or fake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.probe
			got, err := chooseSlurm(context.Background(), tc.mode, &p)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.backend != tc.want || got.started != tc.started || p.upCalled != tc.tryUp {
				t.Errorf("got %+v (up tried: %v), want backend %s, started %v, up tried %v", got, p.upCalled, tc.want, tc.started, tc.tryUp)
			}
			if !strings.Contains(got.why, tc.whyHas) {
				t.Errorf("why %q lacks %q", got.why, tc.whyHas)
			}
		})
	}
}
