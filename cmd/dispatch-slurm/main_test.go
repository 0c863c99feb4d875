package main

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func TestTheFirstSignalDrainsAndTheSecondExits(t *testing.T) {
	first, again := make(chan struct{}, 2), make(chan struct{}, 2)
	stop := onSignals(func() { first <- struct{}{} }, func() { again <- struct{}{} })
	defer stop()
	wait := func(c chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s was not called", what)
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wait(first, "the drain")
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wait(again, "the exit")
	if len(first) != 0 {
		t.Error("the second signal drained again")
	}
}
