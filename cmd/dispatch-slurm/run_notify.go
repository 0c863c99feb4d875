package main

import (
	"context"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// notifier tells systemd (Type=notify) how the dispatcher is doing: READY=1 once the first
// API poll and the first squeue snapshot have succeeded, WATCHDOG=1 every half WATCHDOG_USEC
// while the dispatcher's and the watcher's locks answer (a deadlock stops the pings and
// systemd restarts us; an API or Slurm outage does not: restarting would not fix it, and the
// health endpoint reports it), and STOPPING=1 when the run ends. Without NOTIFY_SOCKET it
// sends nothing.
type notifier struct {
	log *zap.Logger
	// notify sends one message (daemon.SdNotify); watchdog is the watchdog interval, 0 when
	// systemd expects no pings (daemon.SdWatchdogEnabled).
	notify   func(state string) (bool, error)
	watchdog time.Duration
	// readyEvery is how often readiness is checked before READY=1.
	readyEvery time.Duration
	newTicker  func(d time.Duration) (<-chan time.Time, func())
}

func newNotifier(log *zap.Logger) *notifier {
	n := &notifier{log: log, readyEvery: 100 * time.Millisecond,
		notify: func(state string) (bool, error) { return daemon.SdNotify(false, state) },
		newTicker: func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}}
	wd, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog: cannot read WATCHDOG_USEC; sending no watchdog pings", zap.Error(err))
	}
	n.watchdog = wd
	return n
}

// run sends the notifications until ctx is done, then STOPPING=1. ready reports whether the
// dispatcher is ready; alive returns once the dispatcher's state can be read (it blocks on a
// deadlock).
func (n *notifier) run(ctx context.Context, ready func() bool, alive func()) {
	n.send("STATUS=starting: waiting for the first API poll and squeue snapshot")
	readyC, stopReady := n.newTicker(n.readyEvery)
	var (
		wdC       <-chan time.Time
		stopWD    = func() {}
		readySent bool
	)
	if n.watchdog > 0 {
		wdC, stopWD = n.newTicker(n.watchdog / 2)
	}
	defer func() {
		stopWD()
		if stopReady != nil {
			stopReady()
		}
		n.send("STOPPING=1\nSTATUS=stopping: Slurm jobs keep running and are adopted at the next start")
	}()
	for {
		if !readySent && ready() {
			readySent = true
			stopReady()
			stopReady, readyC = nil, nil // a nil channel never delivers
			n.send("READY=1\nSTATUS=dispatching")
			n.log.Info("ready: the first API poll and squeue snapshot succeeded")
		}
		select {
		case <-ctx.Done():
			return
		case <-readyC:
		case <-wdC:
			alive()
			n.send("WATCHDOG=1")
		}
	}
}

func (n *notifier) send(state string) {
	if _, err := n.notify(state); err != nil {
		n.log.Warn("systemd notification failed", zap.Error(err))
	}
}
