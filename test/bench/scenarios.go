package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// runIdle measures figure 3, Runs times: API requests, bytes and CPU per poll with an empty
// queue.
func runIdle(ctx context.Context, o *Options, tier Tier, rec *recorder) error {
	var first error
	for i := range o.Runs {
		if ctx.Err() != nil {
			break
		}
		o.logf("%s: idle, run %d/%d", tier, i+1, o.Runs)
		if err := idleRun(ctx, o, tier, rec); err != nil {
			first = cmpErr(first, fmt.Errorf("%s idle, run %d: %w", tier, i+1, err))
		}
	}
	return first
}

func idleRun(ctx context.Context, o *Options, tier Tier, rec *recorder) error {
	w, err := newWorld(ctx, o, tier, "idle")
	if err != nil {
		return err
	}
	defer w.close(ctx)
	if err := w.startDispatcher(1000); err != nil {
		return err
	}
	if err := w.waitPolled(ctx, 2, 30*time.Second); err != nil {
		return err
	}
	if err := sleepCtx(ctx, o.Poll); err != nil {
		return err
	}
	if err := w.api.resetRequests(ctx); err != nil {
		return err
	}
	pid := w.disp.pid()
	cpu0, err := cpuTime(pid)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := sleepCtx(ctx, time.Duration(o.IdlePolls)*o.Poll+o.Poll/2); err != nil {
		return err
	}
	cpu1, err := cpuTime(pid)
	if err != nil {
		return err
	}
	periods := time.Since(t0).Seconds() / o.Poll.Seconds()
	reqs, err := w.api.requests(ctx)
	if err != nil {
		return err
	}
	pp := costPerPoll(reqs)
	if pp.Polls == 0 {
		return fmt.Errorf("no complete poll in %d poll periods", o.IdlePolls)
	}
	note := fmt.Sprintf("empty queue, %d polls", pp.Polls)
	rec.add("3", "idle: API requests per poll", tier, "req", atMost(2), note, pp.Requests)
	rec.add("3", "idle: response bytes per poll", tier, "B", Target{}, note, pp.Bytes)
	rec.add("3", "idle: dispatcher CPU per poll", tier, "ms", Target{}, note+"; includes its squeue cycle", float64(cpu1-cpu0)/periods/1e6)
	return nil
}

// runLatency measures figure 8, Runs times: from a container's creation to its sbatch.
func runLatency(ctx context.Context, o *Options, tier Tier, rec *recorder) error {
	var first error
	for i := range o.Runs {
		if ctx.Err() != nil {
			break
		}
		o.logf("%s: latency, run %d/%d", tier, i+1, o.Runs)
		if err := latencyRun(ctx, o, tier, rec); err != nil {
			first = cmpErr(first, fmt.Errorf("%s latency, run %d: %w", tier, i+1, err))
		}
	}
	return first
}

func latencyRun(ctx context.Context, o *Options, tier Tier, rec *recorder) error {
	w, err := newWorld(ctx, o, tier, "latency")
	if err != nil {
		return err
	}
	defer w.close(ctx)
	if err := w.startDispatcher(o.Latency + 100); err != nil {
		return err
	}
	if err := w.waitPolled(ctx, 2, 30*time.Second); err != nil {
		return err
	}
	want := map[string]bool{}
	for range o.Latency {
		// Uniform gaps in [0, 2×mean): creations fall at random phases of the poll.
		if err := sleepCtx(ctx, time.Duration(rand.Int64N(int64(2*o.MeanGap)))); err != nil {
			return err
		}
		uuids, err := w.api.seedN(ctx, 1, template())
		if err != nil {
			return err
		}
		want[uuids[0]] = true
	}
	submitted := map[string]time.Time{}
	deadline := time.Now().Add(time.Minute + 10*o.Poll)
	for len(submitted) < len(want) {
		calls, err := w.slurm.calls.Update()
		if err != nil {
			return err
		}
		for _, c := range calls {
			if name := c.JobName(); want[name] {
				if t, ok := submitted[name]; !ok || c.Start.Before(t) {
					submitted[name] = c.Start
				}
			}
		}
		if err := w.checkAlive(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d containers submitted", len(submitted), len(want))
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	ctrs, err := w.api.containers(ctx)
	if err != nil {
		return err
	}
	var lat []float64
	for _, c := range ctrs {
		if t, ok := submitted[c.UUID]; ok {
			lat = append(lat, float64(t.Sub(c.CreatedAt))/1e6)
		}
	}
	locked := lockTimes(w)
	var toLock, toSbatch []float64
	for _, c := range ctrs {
		l, ok1 := locked[c.UUID]
		t, ok2 := submitted[c.UUID]
		if ok1 && ok2 {
			toLock = append(toLock, float64(l.Sub(c.CreatedAt))/1e6)
			toSbatch = append(toSbatch, float64(t.Sub(l))/1e6)
		}
	}
	rec.detail("%s latency: Queued → sbatch p50 %.0f ms, p99 %.0f ms; of which Queued → locked p50 %.0f ms, p99 %.0f ms, locked → sbatch p50 %.0f ms, p99 %.0f ms",
		tier, percentile(lat, 50), percentile(lat, 99), percentile(toLock, 50), percentile(toLock, 99),
		percentile(toSbatch, 50), percentile(toSbatch, 99))
	note := fmt.Sprintf("%d containers one by one, mean gap %s, poll %s", len(lat), o.MeanGap, o.Poll)
	target := atMost(float64(o.Poll+200*time.Millisecond) / 1e6)
	rec.add("8", "latency Queued → sbatch, p50", tier, "ms", Target{}, note, percentile(lat, 50))
	rec.add("8", "latency Queued → sbatch, p99", tier, "ms", target, note, percentile(lat, 99))
	return nil
}

// lockTimes reads when the dispatcher logged each lock (its JSON log: msg "locked").
func lockTimes(w *world) map[string]time.Time {
	out := map[string]time.Time{}
	for i := 1; i <= w.runs; i++ {
		b, err := os.ReadFile(filepath.Join(w.dir, fmt.Sprintf("dispatch-slurm-%d.err", i)))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			var l struct {
				Msg       string `json:"msg"`
				TS        string `json:"ts"`
				Container string `json:"container"`
			}
			if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "locked" {
				continue
			}
			if t, err := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS); err == nil {
				out[l.Container] = t
			}
		}
	}
	return out
}

// runRawSbatch measures the raw sbatch rates of the tier (not through the wrapper), Runs
// times: a serial loop, and Parallel loops at once. Jobs are held in the partition that keeps
// them pending, named after a fresh cluster id, and cancelled at the end.
func runRawSbatch(ctx context.Context, o *Options, tier Tier, rec *recorder) error {
	var first error
	for i := range o.Runs {
		if ctx.Err() != nil {
			break
		}
		o.logf("%s: raw sbatch, run %d/%d", tier, i+1, o.Runs)
		if err := rawRun(ctx, o, tier, rec); err != nil {
			first = cmpErr(first, fmt.Errorf("%s raw sbatch, run %d: %w", tier, i+1, err))
		}
	}
	return first
}

func rawRun(ctx context.Context, o *Options, tier Tier, rec *recorder) error {
	w, err := newWorld(ctx, o, tier, "raw")
	if err != nil {
		return err
	}
	defer w.close(ctx)
	var mu sync.Mutex
	var ids []string
	defer func() {
		if len(ids) > 0 {
			if err := w.slurm.cancel(context.WithoutCancel(ctx), ids); err != nil {
				o.logf("%v", err)
			}
		}
	}()
	submit := func(sbatch string) error {
		args := []string{"--parsable", "--hold", "--partition=down", "--output=/dev/null",
			"--job-name=" + w.cluster + "-dz642-" + randomID(15)}
		if tier == RealTier {
			args = append(args, "--time=10")
		}
		out, err := runCmd(ctx, 3*time.Minute, w.slurm.env, "#!/bin/sh\ntrue\n", sbatch, args...)
		if err != nil {
			return err
		}
		id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
		return nil
	}
	t0 := time.Now()
	for range o.RawSbatch {
		if err := submit(w.slurm.real["sbatch"]); err != nil {
			return err
		}
	}
	serial := float64(o.RawSbatch) / time.Since(t0).Seconds()
	parallel, err := inParallel(o.RawSbatch, o.Parallel, func() error { return submit(w.slurm.real["sbatch"]) })
	if err != nil {
		return err
	}
	// The same through the counting wrapper the dispatcher's calls go through: its cost.
	wrapped, err := inParallel(o.RawSbatch, o.Parallel, func() error { return submit(w.slurm.wrappers["sbatch"]) })
	if err != nil {
		return err
	}
	note := fmt.Sprintf("%d sbatch --hold, direct", o.RawSbatch)
	rec.add("1", "raw sbatch rate, serial loop", tier, "jobs/s", Target{}, note, serial)
	rec.add("1", fmt.Sprintf("raw sbatch rate, %d in parallel", o.Parallel), tier, "jobs/s", Target{}, note, parallel)
	rec.add("1", fmt.Sprintf("raw sbatch rate, %d in parallel, through the counting wrapper", o.Parallel), tier, "jobs/s", Target{},
		fmt.Sprintf("%d sbatch --hold, as the dispatcher runs them here", o.RawSbatch), wrapped)
	return nil
}

// inParallel runs f n times, p at once, and returns the rate (calls per second).
func inParallel(n, p int, f func() error) (float64, error) {
	t0 := time.Now()
	work := make(chan struct{})
	errs := make(chan error, p)
	var wg sync.WaitGroup
	for range p {
		wg.Go(func() {
			for range work {
				if err := f(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var ferr error
feed:
	for range n {
		select {
		case work <- struct{}{}:
		case ferr = <-errs:
			break feed
		}
	}
	close(work)
	wg.Wait()
	if ferr != nil {
		return 0, ferr
	}
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}
