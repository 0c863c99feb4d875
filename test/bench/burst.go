package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// quietPolls: Slurm is settled once this many squeue snapshots passed without a change.
const quietPolls = 3

// settleLimit bounds the wait for Slurm calls to stop after the last submission.
const settleLimit = 90 * time.Second

// runBursts runs the burst scenario (figures 1, 2, 4 and 5) at size n, runsOf times.
func runBursts(ctx context.Context, o *Options, tier Tier, n int, rec *recorder) error {
	runs := o.runsOf(tier, n)
	var errs []error
	for i := range runs {
		if ctx.Err() != nil {
			break
		}
		o.logf("%s: burst of %d, run %d/%d", tier, n, i+1, runs)
		if err := burstRun(ctx, o, tier, n, rec); err != nil {
			errs = append(errs, fmt.Errorf("%s burst of %d, run %d: %w", tier, n, i+1, err))
			o.logf("%v", errs[len(errs)-1])
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// burstNote describes the burst, for the table.
func burstNote(n int, o *Options) string {
	return fmt.Sprintf("N=%d, poll %s", n, o.Poll)
}

func burstRun(ctx context.Context, o *Options, tier Tier, n int, rec *recorder) error {
	w, err := newWorld(ctx, o, tier, fmt.Sprintf("burst%d", n))
	if err != nil {
		return err
	}
	defer w.close(ctx)
	if err := w.startDispatcher(n + 100); err != nil {
		return err
	}
	if err := w.waitPolled(ctx, 2, 30*time.Second); err != nil {
		return fmt.Errorf("first poll: %w", err)
	}
	b, err := burst(ctx, w, n)
	if err != nil {
		return err
	}
	note := burstNote(n, o)
	id1 := "1"
	rec.add(id1, fmt.Sprintf("dispatch throughput, N=%d", n), tier, "jobs/s", throughputTarget(tier, n), note, b.rate)
	rec.add(id1, fmt.Sprintf("seconds until every one of N=%d has a job", n), tier, "s", secondsTarget(tier, n), note, b.took.Seconds())
	rec.add("2", fmt.Sprintf("settling: polls after the last submission, N=%d", n), tier, "polls", atMost(3),
		"squeue snapshots after the last sbatch that were followed by a change", float64(b.pollsAfter))
	rec.add("2", fmt.Sprintf("settling: seconds from creation until the last change, N=%d", n), tier, "s", Target{},
		"last sbatch/scontrol/scancel", b.settled.Seconds())
	rec.add("2", fmt.Sprintf("settling: renice calls, N=%d", n), tier, "calls", atMost(100), "scontrol update during burst and settling", float64(b.renices))
	rec.add("2", fmt.Sprintf("settling: Slurm calls (sbatch+scontrol+scancel), N=%d", n), tier, "calls", Target{},
		fmt.Sprintf("%d submitted", n), float64(b.mutating))
	if b.notQuiet {
		for _, name := range []string{"settling: polls after the last submission", "settling: seconds from creation until the last change",
			"settling: renice calls", "settling: Slurm calls (sbatch+scontrol+scancel)"} {
			rec.annotate("2", fmt.Sprintf("%s, N=%d", name, n), tier, "NOT QUIET "+settleLimit.String()+" after the last sbatch: lower bound")
		}
	}
	if b.sbatch != n {
		rec.add("2", fmt.Sprintf("settling: extra sbatch calls, N=%d", n), tier, "calls", exactly(0), "sbatch beyond one per container", float64(b.sbatch-n))
	}

	rec.detail("%s burst %d: %d jobs in %.2fs (%.0f/s); last change %.2fs after creation, %d polls after the last sbatch%s; %d sbatch, %d renice, %d scontrol/scancel in all",
		tier, n, n, b.took.Seconds(), b.rate, b.settled.Seconds(), b.pollsAfter, map[bool]string{true: " (NOT QUIET: still changing " + settleLimit.String() + " after it)"}[b.notQuiet],
		b.sbatch, b.renices, b.mutating-b.sbatch)
	if err := setHalfRunning(ctx, w, b.uuids); err != nil {
		return err
	}
	st, err := steady(ctx, w, n)
	if err != nil {
		return err
	}
	if !st.quiet {
		rec.detail("%s steady %d: the dispatcher was still busy after a minute of waiting; measured anyway", tier, n)
	}
	rec.detail("%s steady %d: %d polls, %.1f requests and %.0f KB per poll, %.1f ms CPU per poll, RSS %.0f MB (peak %.0f MB); requests: %s",
		tier, n, st.polls, st.requests, st.bytes/1000, st.cpu.Seconds()*1000, float64(st.rss)/1e6, float64(st.hwm)/1e6, st.byEndpoint)
	snote := fmt.Sprintf("%d tracked, half Running; %d polls", n, st.polls)
	rec.add("4", fmt.Sprintf("steady %d: API requests per poll", n), tier, "req", atMost(2), snote, st.requests)
	rec.add("4", fmt.Sprintf("steady %d: response bytes per poll", n), tier, "KB", atMost(500), snote, st.bytes/1000)
	rec.add("4", fmt.Sprintf("steady %d: dispatcher CPU per poll", n), tier, "ms", atMost(30), snote+"; utime+stime", st.cpu.Seconds()*1000)
	rec.add("4", fmt.Sprintf("steady %d: dispatcher RSS", n), tier, "MB", atMost(60), fmt.Sprintf("VmRSS; peak VmHWM %.0f MB", float64(st.hwm)/1e6), float64(st.rss)/1e6)

	r, err := restart(ctx, w, n)
	if err != nil {
		return err
	}
	if r.notQuiet {
		rec.detail("%s restart %d: NOT QUIET after %s; the figures are lower bounds", tier, n, restartLimit)
	}
	rec.detail("%s restart %d: quiet after %.2fs, %.2f CPU-s, %d Slurm changes; requests until quiet: %s",
		tier, n, r.quiet.Seconds(), r.cpu.Seconds(), r.mutating, r.byEndpoint)
	rnote := fmt.Sprintf("%d in flight, half Running", n)
	if r.notQuiet {
		rnote += "; NOT QUIET after " + restartLimit.String() + ": lower bound"
	}
	rec.add("5", fmt.Sprintf("restart %d: seconds until quiet", n), tier, "s", atMost(5), rnote, r.quiet.Seconds())
	rec.add("5", fmt.Sprintf("restart %d: single-container GETs", n), tier, "req", exactly(0), rnote, float64(r.singleGETs))
	rec.add("5", fmt.Sprintf("restart %d: CPU of the new process until quiet", n), tier, "s", atMost(3), rnote, r.cpu.Seconds())
	rec.add("5", fmt.Sprintf("restart %d: API requests until quiet", n), tier, "req", Target{}, rnote+"; all kinds", float64(r.requests))
	rec.add("5", fmt.Sprintf("restart %d: Slurm changes (sbatch+scontrol+scancel)", n), tier, "calls", Target{}, rnote, float64(r.mutating))
	return nil
}

// throughputTarget: ≥ 300 jobs/s on real Slurm; on fakeslurm, 10,000 within 30 s.
func throughputTarget(tier Tier, n int) Target {
	if tier == RealTier {
		return atLeast(300)
	}
	return Target{}
}

func secondsTarget(tier Tier, n int) Target {
	if tier == FakeTier && n >= 10000 {
		return atMost(30)
	}
	return Target{}
}

// burstResult is what one burst measured.
type burstResult struct {
	uuids []string
	// took: from just before the containers were created until the last sbatch returned.
	took     time.Duration
	rate     float64
	settled  time.Duration // from creation until the last sbatch/scontrol/scancel
	sbatch   int
	renices  int
	mutating int
	// notQuiet: calls had not stopped settleLimit after the last submission.
	notQuiet bool
	// pollsAfter counts the snapshots that started after the last sbatch and ended before
	// the last change: the cycles it took to settle.
	pollsAfter int
}

// burst creates n Queued containers at once and waits until each has a job and Slurm calls
// have stopped for quietPolls snapshots.
func burst(ctx context.Context, w *world, n int) (*burstResult, error) {
	before, err := w.slurm.calls.Update()
	if err != nil {
		return nil, err
	}
	skip := len(before)
	t0 := time.Now()
	uuids, err := w.api.seedN(ctx, n, template())
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, u := range uuids {
		want[u] = true
	}
	res := &burstResult{uuids: uuids}
	timeout := 2*time.Minute + time.Duration(n)*20*time.Millisecond
	deadline := time.Now().Add(timeout)
	var lastSubmit time.Time
	for {
		calls, err := w.slurm.calls.Update()
		if err != nil {
			return nil, err
		}
		got := map[string]bool{}
		for _, c := range calls[skip:] {
			if c.Name == "sbatch" && c.Exit == 0 && want[c.JobName()] {
				got[c.JobName()] = true
				if c.End.After(lastSubmit) {
					lastSubmit = c.End
				}
			}
		}
		if len(got) == n {
			break
		}
		if err := w.checkAlive(); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d containers have a job after %s", len(got), n, timeout)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	res.took = lastSubmit.Sub(t0)
	res.rate = float64(n) / res.took.Seconds()

	// Settling: until quietPolls snapshots have passed with no change, or settleLimit after
	// the last submission (then the figures are lower bounds).
	deadline = lastSubmit.Add(settleLimit)
	for {
		calls, err := w.slurm.calls.Update()
		if err != nil {
			return nil, err
		}
		calls = calls[skip:]
		var lastChange time.Time
		var lastChangeStart time.Time
		for _, c := range calls {
			if c.Mutating() && c.End.After(lastChange) {
				lastChange, lastChangeStart = c.End, c.Start
			}
		}
		quiet := 0
		for _, c := range calls {
			if c.Snapshot() && c.Start.After(lastChange) {
				quiet++
			}
		}
		timedOut := time.Now().After(deadline)
		if quiet >= quietPolls || timedOut {
			res.notQuiet = timedOut && quiet < quietPolls
			res.settled = lastChange.Sub(t0)
			for _, c := range calls {
				switch {
				case c.Name == "sbatch":
					res.sbatch++
				case c.Renice():
					res.renices++
				}
				if c.Mutating() {
					res.mutating++
				}
				if c.Snapshot() && c.Start.After(lastSubmit) && !c.End.After(lastChangeStart) {
					res.pollsAfter++
				}
			}
			return res, nil
		}
		if err := w.checkAlive(); err != nil {
			return nil, err
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// setHalfRunning marks the first half of the containers Running, as crunch-run would (their
// jobs stay pending), a few at a time.
func setHalfRunning(ctx context.Context, w *world, uuids []string) error {
	half := uuids[:len(uuids)/2]
	ch := make(chan string)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for u := range ch {
				if err := w.api.setState(ctx, u, arvados.Running); err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, u := range half {
		ch <- u
	}
	close(ch)
	wg.Wait()
	if first != nil {
		return fmt.Errorf("set containers Running: %w", first)
	}
	return nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
