package soak

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// Run runs one soak: setup, Duration of containers and faults, the drain, the checks. It
// prints progress and the report on out. The error is for a soak that could not run (setup,
// the fakes failing); broken invariants are in Report.Violations.
func Run(ctx context.Context, o Options, out io.Writer) (Report, error) {
	w, err := newWorld(o, out)
	if err != nil {
		return Report{}, err
	}
	r := Report{Seed: w.o.Seed, Cluster: w.cluster, Dir: w.o.Dir}
	fmt.Fprintf(out, "soak: seed %d (replay: --seed=%d), cluster %s, %v then a drain of at most %v, directory %s\n",
		w.o.Seed, w.o.Seed, w.cluster, w.o.Duration, w.o.DrainTimeout, w.o.Dir)
	defer w.close()
	if err := w.setup(); err != nil {
		return r, err
	}
	if err := w.seedForeign(ctx); err != nil {
		return r, err
	}
	if err := w.startDispatcher(); err != nil {
		return r, err
	}
	w.mu.Lock()
	w.live = true
	w.mu.Unlock()
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.sampleLoop(sampleCtx)
	}()
	runErr := w.loop(ctx, &r)
	if runErr == nil {
		runErr = w.drain(ctx, &r)
	}
	stopSampling()
	wg.Wait()
	w.mu.Lock()
	w.live = false
	w.mu.Unlock()
	if runErr != nil {
		return r, runErr
	}
	return w.finish(&r)
}

// newWorld checks the options, fills in the defaults and the seed, and picks the cluster id.
func newWorld(o Options, out io.Writer) (*world, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano()
	}
	w := &world{o: o, out: &lockedWriter{w: out}, rng: rand.New(rand.NewPCG(uint64(o.Seed), 0x50a4)),
		ours: map[string]*ctrInfo{}, faults: map[string]int{}, seen: map[string]bool{}}
	w.cluster = w.randomID(5)
	return w, nil
}

// setup starts the fake API and the fake Slurm and writes the dispatcher's configuration. close
// undoes what it did, even when it failed half-way.
func (w *world) setup() error {
	o := w.o
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	faultLog, err := os.Create(filepath.Join(o.Dir, "faults.log"))
	if err != nil {
		return err
	}
	w.faultLog = faultLog
	if w.api, err = startAPI(w.cluster); err != nil {
		return err
	}
	if w.slurm, err = startFakeSlurm(o.FakeslurmBin, o.Dir, o.Duration+o.DrainTimeout+time.Minute); err != nil {
		return err
	}
	crunchRun, err := writeCrunchRun(o.Dir, o.StandinBin, w.api.crunchRunURL)
	if err != nil {
		return err
	}
	if w.config, err = writeConfig(o.Dir, w.cluster, o, w.slurm, crunchRun); err != nil {
		return err
	}
	w.env = dispatcherEnv(w.api, w.slurm)
	return nil
}

// close kills any dispatcher still running and every job's processes, and stops the API.
func (w *world) close() {
	for _, d := range w.runs {
		if d.alive() {
			_ = d.kill()
		}
	}
	if w.slurm != nil {
		if err := w.slurm.shutdown(); err != nil {
			fmt.Fprintf(w.out, "soak: shut down the fake Slurm: %v\n", err)
		}
	}
	if w.api != nil {
		w.api.close()
	}
	if f, ok := w.faultLog.(*os.File); ok {
		f.Close()
	}
}

func (w *world) sampleLoop(ctx context.Context) {
	t := time.NewTicker(w.o.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.sample()
		}
	}
}

// loop creates containers and injects faults for Duration.
func (w *world) loop(ctx context.Context, r *Report) error {
	start := time.Now()
	end := start.Add(w.o.Duration)
	nextCtr, nextFault := start, start.Add(w.jitter(w.o.FaultEvery))
	nextProgress := start.Add(w.o.ProgressEvery)
	var in injector
	for now := time.Now(); now.Before(end); now = time.Now() {
		if err := w.tendDispatcher(now); err != nil {
			return err
		}
		if !now.Before(nextCtr) {
			w.createContainer()
			nextCtr = now.Add(w.jitter(w.o.ContainerEvery))
		}
		if !in.latencyUntil.IsZero() && now.After(in.latencyUntil) {
			w.api.setLatency(0)
			in.latencyUntil = time.Time{}
		}
		if !now.Before(nextFault) {
			if err := w.injectNext(&in, now); err != nil {
				return err
			}
			nextFault = now.Add(w.jitter(w.o.FaultEvery))
		}
		if w.o.ProgressEvery > 0 && !now.Before(nextProgress) {
			w.progress("run  ", start)
			nextProgress = now.Add(w.o.ProgressEvery)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	r.Ran = time.Since(start)
	return nil
}

// drain stops the faults and the stream, then waits until every container of ours is final and
// no live job of ours is left, or DrainTimeout. As users would, it cancels containers that can
// never finish by themselves: those waiting in the DOWN partition, and those back in the queue
// with priority 0.
func (w *world) drain(ctx context.Context, r *Report) error {
	start := time.Now()
	w.api.clearFaults()
	if err := w.slurm.admin.ClearFaults(); err != nil {
		return fmt.Errorf("clear the fake Slurm's faults: %w", err)
	}
	if d := w.current(); d != nil && !d.alive() && !w.restartAt.IsZero() {
		w.restartAt = start
	}
	deadline := start.Add(w.o.DrainTimeout)
	nextProgress := start.Add(w.o.ProgressEvery)
	for {
		now := time.Now()
		if err := w.tendDispatcher(now); err != nil {
			return err
		}
		open := 0
		for _, c := range w.api.Containers() {
			info := w.ours[c.UUID]
			if info == nil || c.State.Final() {
				continue
			}
			open++
			if info.down || (c.Priority == 0 && c.State == arvados.Queued) {
				if err := w.cancel(c.UUID); err != nil {
					return err
				}
			}
		}
		if open == 0 && !w.liveJobsOfOurs() || now.After(deadline) {
			break
		}
		if w.o.ProgressEvery > 0 && !now.Before(nextProgress) {
			w.progress("drain", start)
			nextProgress = now.Add(w.o.ProgressEvery)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	r.Drained = time.Since(start)
	return nil
}

// liveJobsOfOurs reports whether any job of one of our containers is still live.
func (w *world) liveJobsOfOurs() bool {
	jobs, err := w.slurm.jobs()
	if err != nil {
		return true
	}
	for _, j := range jobs {
		if w.ours[j.Name] != nil && live(j) {
			return true
		}
	}
	return false
}

// finish stops the dispatcher with SIGTERM, runs the end checks and prints the report.
func (w *world) finish(r *Report) (Report, error) {
	w.sample()
	if d := w.current(); d != nil {
		if d.alive() {
			if code := d.stop(20 * time.Second); code != 0 {
				w.violate("sigterm", Violation{Check: CheckDispatcherHealth,
					Evidence: fmt.Sprintf("dispatcher run %d exited with code %d after SIGTERM, want 0; tail:\n%s", d.n, code, tail(d.stderr, 15))})
			}
		} else if !d.killed {
			w.violate(fmt.Sprintf("exit-%d", d.n), Violation{Check: CheckDispatcherHealth,
				Evidence: fmt.Sprintf("dispatcher run %d exited by itself with code %d", d.n, d.exitCode)})
		}
	}
	jobs, err := w.slurm.jobs()
	if err != nil {
		return *r, fmt.Errorf("read the fake Slurm's jobs: %w", err)
	}
	w.checkEnd(r)
	w.checkJobHistory(r, jobs)
	if err := w.checkSlurmCalls(); err != nil {
		return *r, err
	}
	w.checkOutput()
	r.Created = len(w.ours)
	r.DispatcherRuns, r.StartupExits = len(w.runs), w.startupExits
	r.Faults = map[string]int{}
	for _, k := range Kinds {
		r.Faults[k] = w.faults[k]
	}
	w.mu.Lock()
	all := append([]Violation(nil), w.violations...)
	sampleErrs := w.sampleErrs
	w.mu.Unlock()
	sort.SliceStable(all, func(i, j int) bool { return all[i].Check < all[j].Check })
	r.Violations = all
	r.print(w.out, sampleErrs)
	return *r, nil
}

// print writes the report.
func (r Report) print(out io.Writer, sampleErrs int) {
	fmt.Fprintf(out, "\nsoak report (seed %d, cluster %s, ran %v, drained in %v)\n", r.Seed, r.Cluster,
		r.Ran.Round(time.Second), r.Drained.Round(100*time.Millisecond))
	fmt.Fprintf(out, "faults injected:\n")
	total := 0
	for _, k := range Kinds {
		fmt.Fprintf(out, "  %-28s %5d\n", k, r.Faults[k])
		total += r.Faults[k]
	}
	fmt.Fprintf(out, "  %-28s %5d\n", "total", total)
	fmt.Fprintf(out, "containers: %d created, %d Complete, %d Cancelled (%d by the driver as a user, %d after crunch-run died or was killed), %d not final\n",
		r.Created, r.Complete, r.Cancelled, r.CancelledByDriver, r.CancelledAfterKill, r.NotFinal)
	fmt.Fprintf(out, "slurm jobs of our containers: %d; unlocks by the dispatcher: %d; dispatcher runs: %d (%d gave up at startup: API unavailable)\n",
		r.Jobs, r.Unlocks, r.DispatcherRuns, r.StartupExits)
	fmt.Fprintf(out, "dispatcher API requests: %d (%d answered by an injected 5xx)\n", r.APIRequests, r.Injected5xx)
	if sampleErrs > 0 {
		fmt.Fprintf(out, "samples that could not read the job table: %d\n", sampleErrs)
	}
	fmt.Fprintf(out, "violations: %d\n", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(out, "  %s\n", v)
	}
	fmt.Fprintf(out, "logs and state: %s\n", r.Dir)
}
