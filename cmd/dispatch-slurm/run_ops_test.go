package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

func TestTheNotifierSendsReadyWatchdogAndStopping(t *testing.T) {
	sock := testenv.ListenNotify(t)
	t.Setenv("NOTIFY_SOCKET", sock.Path)
	t.Setenv("WATCHDOG_USEC", "100000") // pings every 50 ms
	t.Setenv("WATCHDOG_PID", "")
	n := newNotifier(zap.NewNop())
	if n.watchdog != 100*time.Millisecond {
		t.Fatalf("watchdog %v, want 100ms from WATCHDOG_USEC", n.watchdog)
	}
	n.readyEvery = 5 * time.Millisecond
	var (
		mu      sync.Mutex
		isReady bool
		pings   int
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.run(ctx, func() bool { mu.Lock(); defer mu.Unlock(); return isReady },
			func() { mu.Lock(); defer mu.Unlock(); pings++ })
	}()
	sock.WaitFor(t, "WATCHDOG=1", 10*time.Second)
	if slices.Contains(sock.Lines(), "READY=1") {
		t.Fatal("READY=1 before the dispatcher was ready")
	}
	mu.Lock()
	isReady = true
	mu.Unlock()
	sock.WaitFor(t, "READY=1", 10*time.Second)
	cancel()
	<-done
	sock.WaitFor(t, "STOPPING=1", 10*time.Second)
	lines := sock.Lines()
	if i, j := slices.Index(lines, "READY=1"), slices.Index(lines, "STOPPING=1"); i > j {
		t.Errorf("READY=1 after STOPPING=1: %q", lines)
	}
	if n := strings.Count(strings.Join(lines, "\n"), "READY=1"); n != 1 {
		t.Errorf("READY=1 sent %d times, want once", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if pings == 0 {
		t.Error("the watchdog pinged without checking that the dispatcher answers")
	}
}

func TestWithoutNotifySocketTheNotifierSendsNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	n := newNotifier(zap.NewNop())
	if n.watchdog != 0 {
		t.Errorf("watchdog %v without WATCHDOG_USEC", n.watchdog)
	}
	real, tries := n.notify, 0
	n.notify = func(state string) (bool, error) {
		tries++
		sent, err := real(state)
		if sent || err != nil {
			t.Errorf("%q: sent %v, error %v without a socket", state, sent, err)
		}
		return sent, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.run(ctx, func() bool { return true }, func() {})
	if tries == 0 {
		t.Error("nothing was even tried")
	}
}

func TestSlurmCommandsDoNotInheritSystemdsVariables(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("DISPATCH_SLURM_TEST_KEEP", "1")
	env := slurmEnviron()
	for _, kv := range env {
		if strings.HasPrefix(kv, "NOTIFY_SOCKET=") || strings.HasPrefix(kv, "WATCHDOG_USEC=") {
			t.Errorf("%s reaches Slurm", kv)
		}
	}
	if !slices.Contains(env, "DISPATCH_SLURM_TEST_KEEP=1") {
		t.Error("the rest of the environment is lost")
	}
}

func TestRepeatedIdenticalWarningsAreRateLimitedButInfoNeverIs(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	dropped := map[string]int{}
	log := newLogger(&buf, "json", zapcore.InfoLevel, func(level string) { mu.Lock(); dropped[level]++; mu.Unlock() })
	for i := range 500 {
		log.Warn("sbatch failed; keeping the lock and retrying later", zap.Int("n", i))
		log.Info("container state changed", zap.Int("n", i))
	}
	log.Debug("not at info level")
	count := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		count[rec["level"].(string)]++
	}
	// The first 10, then one in 100 of the remaining 490 (the 100th, 200th… after them).
	if count["warn"] != logSampleFirst+4 {
		t.Errorf("%d warnings written of 500, want %d", count["warn"], logSampleFirst+4)
	}
	if count["info"] != 500 || count["debug"] != 0 {
		t.Errorf("%d infos and %d debugs written, want 500 and 0", count["info"], count["debug"])
	}
	mu.Lock()
	defer mu.Unlock()
	if dropped["warn"] != 500-count["warn"] {
		t.Errorf("dropped %v, want the %d warnings not written", dropped, 500-count["warn"])
	}
}

func TestTheConsoleFormatIsNotJSON(t *testing.T) {
	var buf bytes.Buffer
	newLogger(&buf, "console", zapcore.InfoLevel, nil).Info("locked", zap.String("container", "zzzzz-dz642-000000000000001"))
	if s := buf.String(); !strings.Contains(s, "INFO\tlocked") || strings.HasPrefix(s, "{") {
		t.Errorf("console line %q", s)
	}
	if f := logFormat("json"); f != "json" {
		t.Errorf("a configured format is kept: %q", f)
	}
	if f := logFormat(""); f != "json" && !term.IsTerminal(int(os.Stderr.Fd())) {
		t.Errorf("format on a non-terminal %q, want json", f)
	}
}
