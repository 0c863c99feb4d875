package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestVersionPrintsTheBuildVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := newApp(&out, &errOut).RunContext(context.Background(), []string{"dispatch-slurm", "version"}); err != nil {
		t.Fatalf("version: %v (stderr %q)", err, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "dispatch-slurm "+version+" ") {
		t.Fatalf("version output %q does not start with the version %q", out.String(), version)
	}
}

func TestUnknownFlagIsAUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	err := newApp(&out, &errOut).RunContext(context.Background(), []string{"dispatch-slurm", "--no-such-flag"})
	if err == nil {
		t.Fatal("an unknown flag was accepted")
	}
	if got := exitCode(err); got != exitUsage {
		t.Fatalf("exit code %d for %v, want %d", got, err, exitUsage)
	}
}
