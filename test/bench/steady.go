package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// endpoints summarizes request counts by endpoint, most first.
func endpoints(st map[string]fakearvados.EndpointStats) string {
	keys := slices.Collect(maps.Keys(st))
	slices.SortFunc(keys, func(a, b string) int { return st[b].Count - st[a].Count })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s ×%d (%d KB)", k, st[k].Count, st[k].Bytes/1000))
	}
	return strings.Join(parts, ", ")
}

// steadyResult is the cost of the steady state, per poll.
type steadyResult struct {
	// quiet is false when the dispatcher was still busy (not only polling) when the window
	// started, after a minute of waiting.
	quiet      bool
	byEndpoint string
	polls      int
	requests   float64
	bytes      float64
	cpu        time.Duration
	rss, hwm   int64
}

// steady waits until the dispatcher is quiet, then measures SteadyPolls polls: API requests
// and response bytes per poll (from the request log, complete polls only), dispatcher CPU per
// poll period (utime+stime over the window), and RSS at the end.
func steady(ctx context.Context, w *world, n int) (*steadyResult, error) {
	q, err := waitQuiet(ctx, w, time.Now(), 0, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("before the steady state: %w", err)
	}
	if err := w.api.resetRequests(ctx); err != nil {
		return nil, err
	}
	pid := w.disp.pid()
	cpu0, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := sleepCtx(ctx, time.Duration(w.o.SteadyPolls)*w.o.Poll+w.o.Poll/2); err != nil {
		return nil, err
	}
	cpu1, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(t0)
	rss, hwm, err := memory(pid)
	if err != nil {
		return nil, err
	}
	if err := w.checkAlive(); err != nil {
		return nil, err
	}
	reqs, err := w.api.requests(ctx)
	if err != nil {
		return nil, err
	}
	pp := costPerPoll(reqs)
	if pp.Polls == 0 {
		return nil, fmt.Errorf("no complete poll in the steady-state window of %s", elapsed)
	}
	periods := elapsed.Seconds() / w.o.Poll.Seconds()
	st := map[string]fakearvados.EndpointStats{}
	for _, r := range reqs {
		k := r.Method + " " + r.Path
		if singleGET(r) {
			k = "GET /arvados/v1/containers/{uuid}"
		}
		e := st[k]
		e.Count++
		e.Bytes += r.RespBytes
		st[k] = e
	}
	return &steadyResult{quiet: q.quiet, byEndpoint: endpoints(st), polls: pp.Polls, requests: pp.Requests, bytes: pp.Bytes,
		cpu: time.Duration(float64(cpu1-cpu0) / periods), rss: rss, hwm: hwm}, nil
}

// restartResult is what a restart cost until quiet.
// restartLimit bounds the wait for a restarted dispatcher to be quiet.
const restartLimit = 3 * time.Minute

type restartResult struct {
	// notQuiet: still busy at restartLimit (the figures are lower bounds).
	notQuiet bool
	// byEndpoint counts the API requests until quiet, by endpoint.
	byEndpoint string
	quiet      time.Duration
	cpu        time.Duration
	requests   int
	singleGETs int
	mutating   int
}

// restart stops the dispatcher with SIGTERM, starts a new one and measures it until quiet.
func restart(ctx context.Context, w *world, n int) (*restartResult, error) {
	if err := w.stopDispatcher(); err != nil {
		return nil, err
	}
	if err := w.api.resetRequests(ctx); err != nil {
		return nil, err
	}
	before, err := w.slurm.calls.Update()
	if err != nil {
		return nil, err
	}
	skip := len(before)
	t0 := time.Now()
	if err := w.startDispatcher(n + 100); err != nil {
		return nil, err
	}
	// The first poll of a process with no trackers: the pages of our n containers (a short or
	// empty page ends them) and the list of queued ones.
	q, err := waitQuiet(ctx, w, t0, n/1000+2, restartLimit)
	if err != nil {
		return nil, fmt.Errorf("after the restart: %w", err)
	}
	st, err := w.api.stats(ctx)
	if err != nil {
		return nil, err
	}
	calls, err := w.slurm.calls.Update()
	if err != nil {
		return nil, err
	}
	r := &restartResult{notQuiet: !q.quiet, quiet: q.at.Sub(t0), cpu: q.cpu, requests: q.requests,
		singleGETs: st["GET /arvados/v1/containers/{uuid}"].Count, byEndpoint: endpoints(st)}
	for _, c := range calls[skip:] {
		if c.Mutating() {
			r.mutating++
		}
	}
	return r, nil
}

// quietPoint is when the dispatcher last did anything but poll.
type quietPoint struct {
	// quiet is false when the dispatcher was still busy at the limit.
	quiet    bool
	at       time.Time
	cpu      time.Duration // the process's CPU time then
	requests int           // API requests then
}

// waitQuiet samples the fake API's counters, the Slurm call log and the dispatcher's CPU every
// 100 ms until nothing but polls has happened for quietPolls poll periods, after at least
// firstPoll list requests. Activity is any API request other than a list, and any sbatch,
// scontrol or scancel. It returns the last activity (or the first poll, if later); after limit
// it gives up and returns the last activity so far with quiet false.
func waitQuiet(ctx context.Context, w *world, since time.Time, firstPoll int, limit time.Duration) (*quietPoint, error) {
	pid := w.disp.pid()
	deadline := since.Add(limit)
	lastActivity := -1
	var q quietPoint
	var polled time.Time
	if firstPoll == 0 {
		polled = since
	}
	for {
		now := time.Now()
		st, err := w.api.stats(ctx)
		if err != nil {
			return nil, err
		}
		calls, err := w.slurm.calls.Update()
		if err != nil {
			return nil, err
		}
		cpu, err := cpuTime(pid)
		if err != nil {
			if aerr := w.checkAlive(); aerr != nil {
				return nil, aerr
			}
			return nil, err
		}
		activity, lists, total := 0, 0, 0
		for k, v := range st {
			total += v.Count
			if k == "GET /arvados/v1/containers" {
				lists = v.Count
			} else {
				activity += v.Count
			}
		}
		for _, c := range calls {
			if c.Mutating() && c.End.After(since) {
				activity++
			}
		}
		if polled.IsZero() && lists >= firstPoll {
			polled = now
			if q.at.Before(now) {
				q = quietPoint{at: now, cpu: cpu, requests: total}
			}
		}
		if activity != lastActivity {
			lastActivity = activity
			q = quietPoint{at: now, cpu: cpu, requests: total}
			if q.at.Before(polled) {
				q.at = polled
			}
		}
		if !polled.IsZero() && now.Sub(q.at) >= time.Duration(quietPolls)*w.o.Poll+w.o.Poll/2 {
			if q.at.Before(since) {
				q.at = since
			}
			q.quiet = true
			return &q, nil
		}
		if err := w.checkAlive(); err != nil {
			return nil, err
		}
		if now.After(deadline) {
			if polled.IsZero() {
				return nil, fmt.Errorf("no complete poll within %s", limit)
			}
			return &q, nil
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}
