package slurm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type observedCommand struct {
	cmd   string
	took  time.Duration
	class ErrorClass
	ok    bool
}

func TestTheObserverHearsOfEveryCommandWithItsClass(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply reply
		run   func(c *CLI) error
		want  observedCommand
	}{
		{"a submit that went through is observed without an error",
			reply{stdout: "42\n"},
			func(c *CLI) error {
				_, err := c.Submit(context.Background(), SubmitRequest{Name: testUUID, Script: []byte("#!/bin/sh\n")})
				return err
			},
			observedCommand{cmd: "sbatch", ok: true}},
		{"a rejected submit is observed as permanent",
			reply{exitCode: 1, stderr: "sbatch: error: Batch job submission failed: Invalid partition name specified\n"},
			func(c *CLI) error {
				_, err := c.Submit(context.Background(), SubmitRequest{Name: testUUID, Script: []byte("#!/bin/sh\n")})
				return err
			},
			observedCommand{cmd: "sbatch", class: ClassPermanent}},
		{"a squeue that lost the controller's answer is observed as ambiguous",
			reply{exitCode: 1, stderr: "squeue: error: Socket timed out on send/recv operation\n"},
			func(c *CLI) error { _, err := c.Snapshot(context.Background()); return err },
			observedCommand{cmd: "squeue", class: ClassTransientAmbiguous}},
		{"a renice of a gone job is observed as not found",
			reply{exitCode: 1, stderr: "scontrol: error: Invalid job id specified for job 7\n"},
			func(c *CLI) error { _, err := c.Renice(context.Background(), 5, []string{"7"}); return err },
			observedCommand{cmd: "scontrol", class: ClassNotFound}},
		{"an unreachable controller is observed as transient",
			reply{exitCode: 1, stderr: "scancel: error: Unable to contact slurm controller (connect failure)\n"},
			func(c *CLI) error { return c.Cancel(context.Background(), CancelRequest{IDs: []string{"7"}}) },
			observedCommand{cmd: "scancel", class: ClassTransient}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu  sync.Mutex
				got []observedCommand
			)
			c := newTestCLI(t, CLIConfig{Observe: func(cmd string, took time.Duration, err error) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, observedCommand{cmd: cmd, took: took, class: ErrorClassOf(err), ok: err == nil})
			}}, &fakeRunner{replies: []reply{tc.reply}})
			_ = tc.run(c)
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 {
				t.Fatalf("observed %+v, want one command", got)
			}
			o := got[0]
			if o.cmd != tc.want.cmd || o.class != tc.want.class || o.ok != tc.want.ok || o.took <= 0 {
				t.Errorf("observed %+v (class %s), want %+v (class %s) with a positive duration", o, o.class, tc.want, tc.want.class)
			}
		})
	}
}

func TestErrorClassOfAnUnclassifiedErrorIsUnknown(t *testing.T) {
	if c := ErrorClassOf(errors.New("refused before running")); c != ClassUnknown {
		t.Errorf("class %s, want unknown", c)
	}
	if c := ErrorClassOf(nil); c != ClassUnknown {
		t.Errorf("class of nil %s, want unknown", c)
	}
}
