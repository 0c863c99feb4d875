package soak

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

// world is one soak run: the fakes, the dispatcher runs, what the driver did, and the
// violations found. Only the driver's goroutine uses rng, ours and runs; the sampler reads the
// foreign sets (fixed before it starts) and adds violations under mu.
type world struct {
	o       Options
	out     io.Writer
	rng     *rand.Rand
	cluster string
	api     *api
	slurm   *fakeSlurm
	config  string
	env     []string

	runs []*dispatcher
	// faultLog is faults.log in the run's directory: every driver action with its time.
	faultLog io.Writer
	// startupExits counts runs that gave up at startup because the API was unavailable.
	startupExits int
	restartAt    time.Time // a restart is due then (zero: none pending)

	ours   map[string]*ctrInfo
	order  []string
	faults map[string]int

	foreignCtrs map[string]arvados.Container
	foreignJobs map[int]sim.Job

	mu sync.Mutex
	// live: the run is under way (violations are printed as found).
	live       bool
	violations []Violation
	seen       map[string]bool
	sampleErrs int
}

// ctrInfo is what the driver knows of one of the containers it created.
type ctrInfo struct {
	uuid string
	// down: in the DOWN partition, its job never starts; dies: its command makes crunch-run
	// exit 3 once Running.
	down, dies bool
	// What the driver did to it, in order (one of the action* constants each).
	actions []string
}

// Driver actions recorded per container.
const (
	actKill     = "killed its crunch-run"
	actZero     = "set its priority to 0"
	actPriority = "changed its priority"
	actCancel   = "cancelled it (user)"
)

func (c *ctrInfo) did(action string) int {
	n := 0
	for _, a := range c.actions {
		if a == action {
			n++
		}
	}
	return n
}

// violate records a violation once per key.
func (w *world) violate(key string, v Violation) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[key] {
		return
	}
	w.seen[key] = true
	w.violations = append(w.violations, v)
	if w.live {
		fmt.Fprintf(w.out, "soak: violation at %s: %s\n", time.Now().Format("15:04:05.000"), v)
	}
}

// lockedWriter serializes writes from the driver and the sampler.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (w *world) violationCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.violations)
}

// jitter returns a duration uniformly within ±50% of mean.
func (w *world) jitter(mean time.Duration) time.Duration {
	return mean/2 + time.Duration(w.rng.Int64N(int64(mean)+1))
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomID returns n characters of [a-z0-9] from the run's RNG, starting with a letter.
func (w *world) randomID(n int) string {
	b := make([]byte, n)
	for i := range b {
		if i == 0 {
			b[i] = idAlphabet[w.rng.IntN(26)]
		} else {
			b[i] = idAlphabet[w.rng.IntN(len(idAlphabet))]
		}
	}
	return string(b)
}

func (w *world) newUUID() string { return w.cluster + "-dz642-" + w.randomID(15) }

// container is one of the stream: 1 cpu, 64 MiB, a sleep of 0.5–3 s, a priority of 1–1000;
// one in twenty waits in the DOWN partition (until a user cancels it), one in thirty has
// crunch-run die once Running.
func (w *world) container() (arvados.Container, *ctrInfo) {
	info := &ctrInfo{uuid: w.newUUID()}
	c := arvados.Container{
		UUID:               info.uuid,
		Priority:           1 + w.rng.Int64N(1000),
		ContainerImage:     "fa3c1a9cb6783f85f2ecda037e07b8c3+167",
		Command:            []string{"sleep", fmt.Sprintf("%.1f", 0.5+2.5*w.rng.Float64())},
		RuntimeConstraints: arvados.RuntimeConstraints{RAM: 64 << 20, VCPUs: 1},
	}
	switch r := w.rng.IntN(60); {
	case r < 3:
		info.down = true
		c.SchedulingParameters.Partitions = []string{"down"}
	case r < 5:
		info.dies = true
		c.Command = []string{"exit", "3"}
	}
	return c, info
}

func (w *world) createContainer() {
	c, info := w.container()
	w.ours[info.uuid] = info
	w.order = append(w.order, info.uuid)
	w.api.Seed(c)
}

// seedForeign makes what the dispatcher must never touch: containers of our cluster locked by
// another dispatcher's token (two Locked, one Running), and Slurm jobs that are not ours: one
// of another user named like one of our containers, and three of our user whose names are not
// our cluster's container uuids (one running, two pending).
func (w *world) seedForeign(ctx context.Context) error {
	w.foreignCtrs = map[string]arvados.Container{}
	for i := range 3 {
		c, _ := w.container()
		c.SchedulingParameters.Partitions = nil
		c.Command = []string{"sleep", "1"}
		w.api.Seed(c)
		if err := w.api.lockAs(ctx, fakearvados.Dispatcher2Token, c.UUID, i == 2); err != nil {
			return fmt.Errorf("lock a foreign container: %w", err)
		}
		got, _ := w.api.Container(c.UUID)
		w.foreignCtrs[c.UUID] = got
	}
	script := "#!/bin/sh\nexec sleep 100000\n"
	dir := w.o.Dir
	other := w.newUUID()
	if _, err := w.slurm.admin.SubmitAs("soak-other-user", 4242, dir, script,
		"--job-name="+other, "--partition=down", "--output=/dev/null"); err != nil {
		return fmt.Errorf("submit a foreign job: %w", err)
	}
	for _, args := range [][]string{
		{"--job-name=soak-foreign-running", "--partition=debug", "--mem=64", "--cpus-per-task=1"},
		{"--job-name=soak-foreign-pending", "--partition=down"},
		{"--job-name=yyyyy-dz642-" + w.randomID(15), "--partition=down"},
	} {
		if _, err := w.slurm.submit(ctx, dir, script, append(args, "--output=/dev/null")...); err != nil {
			return fmt.Errorf("submit a foreign job: %w", err)
		}
	}
	jobs, err := w.slurm.jobs()
	if err != nil {
		return err
	}
	w.foreignJobs = map[int]sim.Job{}
	for _, j := range jobs {
		w.foreignJobs[j.ID] = j
	}
	if len(w.foreignJobs) != 4 {
		return fmt.Errorf("want 4 foreign jobs, the fake Slurm has %d", len(w.foreignJobs))
	}
	return nil
}

func (w *world) current() *dispatcher {
	if len(w.runs) == 0 {
		return nil
	}
	return w.runs[len(w.runs)-1]
}

func (w *world) startDispatcher() error {
	adopt, emptyArmed := 0, false
	for _, c := range w.api.Containers() {
		if w.ours[c.UUID] != nil && (c.State == arvados.Locked || c.State == arvados.Running) {
			adopt++
		}
	}
	if fs, err := w.slurm.admin.Faults(); err == nil {
		for _, f := range fs {
			emptyArmed = emptyArmed || (f.Command == "squeue" && f.Kind == sim.FaultEmpty)
		}
	}
	d, err := startDispatcher(len(w.runs), w.o.DispatcherBin, w.o.Dir, w.config, w.env)
	if err != nil {
		return err
	}
	w.runs = append(w.runs, d)
	w.restartAt = time.Time{}
	w.logf("start-dispatcher", "run %d; %d containers to adopt; squeue-empty armed: %v", d.n, adopt, emptyArmed)
	return nil
}

// logf writes one line to faults.log.
func (w *world) logf(kind, format string, a ...any) {
	if w.faultLog != nil {
		fmt.Fprintf(w.faultLog, "%s %-28s %s\n", time.Now().Format("15:04:05.000"), kind, fmt.Sprintf(format, a...))
	}
}

// tendDispatcher restarts the dispatcher when a restart is due, and reports (and restarts) one
// that exited by itself.
func (w *world) tendDispatcher(now time.Time) error {
	d := w.current()
	if d != nil && !d.alive() && !d.killed {
		d.killed = true
		if gaveUpAtStartup(d) {
			// As systemd's Restart=on-failure would, after RestartSec.
			w.startupExits++
			w.restartAt = now.Add(time.Second)
		} else {
			w.violate(fmt.Sprintf("exit-%d", d.n), Violation{Check: CheckDispatcherHealth,
				Evidence: fmt.Sprintf("dispatcher run %d exited by itself with code %d; tail of %s:\n%s", d.n, d.exitCode, d.stderr, tail(d.stderr, 15))})
			w.restartAt = now
		}
	}
	if !w.restartAt.IsZero() && !now.Before(w.restartAt) {
		return w.startDispatcher()
	}
	return nil
}

// progress prints one line about the run so far.
func (w *world) progress(phase string, since time.Time) {
	var final, open int
	for _, c := range w.api.Containers() {
		if _, ok := w.ours[c.UUID]; !ok {
			continue
		}
		if c.State.Final() {
			final++
		} else {
			open++
		}
	}
	total := 0
	for _, n := range w.faults {
		total += n
	}
	fmt.Fprintf(w.out, "soak: %s %5s containers=%d final=%d open=%d faults=%d dispatcher-runs=%d violations=%d\n",
		phase, time.Since(since).Round(time.Second), len(w.ours), final, open, total, len(w.runs), w.violationCount())
}

// gaveUpAtStartup reports whether a dispatcher run exited with code 1 before it started
// dispatching because the API was unavailable: its designed answer to an API outage at
// startup (a bounded retry budget, then exit for the service manager to restart it), not a
// failure of the soak's invariants.
func gaveUpAtStartup(d *dispatcher) bool {
	b, err := readFile(d.stderr)
	if err != nil || d.exitCode != 1 || bytes.Contains(b, []byte(`"dispatch-slurm starting"`)) {
		return false
	}
	last := tail(d.stderr, 1)
	return strings.Contains(last, "is unavailable")
}
