package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// cleanUp stops everything the demo started, in order: the dispatcher (so that it acts no
// more), the demo's live Slurm jobs (while the API is up, so that their crunch-run stand-ins
// can record the cancel), fakeslurm's job processes, the fake API, the local Slurm if the
// demo started it and nobody else uses it; then checks that no process it started is left.
func (r *runner) cleanUp() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if r.disp != nil {
		if err := r.disp.stop(15*time.Second, r.opts.After); err != nil {
			r.problem("the dispatcher did not stop cleanly after SIGTERM: %v; its log ends:\n%s", err, r.disp.tail(10))
		}
	}
	if r.slurm != nil && len(r.uuids) > 0 {
		r.endJobs(ctx)
	}
	if r.api != nil {
		if cs, err := r.api.containers(ctx); err == nil {
			r.w.observeContainers(r.since(), cs)
		}
		if r.disp != nil {
			r.res.ListAtEnd = r.containersList(ctx)
		}
	}
	if r.slurm != nil {
		pids, err := r.slurm.fakeProcesses()
		r.res.PIDs = append(r.res.PIDs, pids...)
		if err != nil {
			r.problem("%v", err)
		}
	}
	if r.api != nil {
		r.api.close()
		if err := r.api.stop(5*time.Second, r.opts.After); err != nil {
			r.problem("the fake API did not stop cleanly: %v", err)
		}
	}
	if r.choice.started {
		r.slurmDown(ctx)
	}
	for _, pid := range r.res.PIDs {
		if alive(pid) {
			r.res.Leftovers = append(r.res.Leftovers, pid)
		}
	}
	if len(r.res.Leftovers) > 0 {
		r.problem("processes the demo started are still running: %v", r.res.Leftovers)
	}
}

// removeDir removes the demo's directory, unless asked to keep it.
func (r *runner) removeDir() {
	if r.opts.Keep {
		r.say("Kept the demo's directory (config, logs, job output): %s", r.dir)
		return
	}
	if err := os.RemoveAll(r.dir); err != nil {
		r.problem("remove the demo's directory: %v", err)
		r.say("PROBLEM: %s", r.res.Problems[len(r.res.Problems)-1])
		r.res.OK = false
	}
}

// endJobs cancels the demo's jobs that are still live (by id) and waits for them to end.
func (r *runner) endJobs(ctx context.Context) {
	var ids []string
	deadline := r.opts.After(20 * time.Second)
	for cancelled := false; ; {
		jobs, err := r.slurm.jobs(ctx, r.uuids)
		if err != nil {
			r.problem("%v", err)
			return
		}
		if ids = liveIDs(jobs); len(ids) == 0 {
			return
		}
		if !cancelled {
			slices.Sort(ids)
			r.say("Cancelling the demo's Slurm jobs that are still live: %s", strings.Join(ids, " "))
			if err := r.slurm.cancel(ctx, ids); err != nil {
				r.problem("cancel the demo's jobs: %v", err)
			}
			cancelled = true
		}
		select {
		case <-deadline:
			r.res.LiveJobs = ids
			r.problem("the demo's Slurm jobs %v are still live", ids)
			return
		case <-r.opts.After(pollEvery):
		}
	}
}

// slurmDown stops the local Slurm the demo started, unless asked not to or someone else
// has jobs in it.
func (r *runner) slurmDown(ctx context.Context) {
	if r.opts.LeaveSlurmUp {
		r.say("The local Slurm the demo started stays up (make slurm-down stops it).")
		return
	}
	ours := map[string]bool{}
	for _, u := range r.uuids {
		ours[u] = true
	}
	others, err := r.slurm.othersJobs(ctx, ours)
	switch {
	case err != nil:
		r.say("The local Slurm the demo started stays up: cannot tell whether others use it (%v).", err)
	case others:
		r.say("The local Slurm the demo started stays up: other jobs are in its queue (make slurm-down stops it).")
	default:
		if err := r.probe.down(ctx); err != nil {
			r.problem("%v", err)
			return
		}
		r.say("Stopped the local Slurm the demo had started (scripts/local-slurm.sh down).")
	}
}

// containersList runs `dispatch-slurm containers list` against the fake API, as an
// administrator would, and returns what it printed.
func (r *runner) containersList(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bins["dispatch-slurm"], "containers", "list", "--config="+r.cfgPath)
	cmd.Env = append(environWithout("ARVADOS_", "DISPATCH_SLURM_", "FAKESLURM_"),
		arvados.EnvHost+"="+r.api.ready.Host, arvados.EnvToken+"="+r.api.ready.AdminToken, arvados.EnvInsecure+"=1")
	cmd.Env = append(cmd.Env, r.slurm.dispatcherEnv...)
	cmd.Dir = r.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s(containers list failed: %v)\n", out, err)
	}
	return string(out)
}

// report prints the summary table, the containers list outputs and the verdict, and sets
// Result.Outcomes and OK.
func (r *runner) report(runErr error) {
	if r.w == nil {
		return
	}
	r.res.Outcomes = outcomes(r.w)
	bad := 0
	for _, o := range r.res.Outcomes {
		if !o.OK {
			bad++
		}
	}
	r.res.OK = runErr == nil && bad == 0 && len(r.res.Problems) == 0
	r.say("\nHow each container ended (%s Slurm, cluster %s):\n", r.res.Backend, r.res.ClusterID)
	writeSummary(r.out, r.res.Outcomes)
	cmd := "ARVADOS_API_HOST=" + r.apiHost() + " ARVADOS_API_TOKEN=… ARVADOS_API_HOST_INSECURE=1 dispatch-slurm containers list --config=<the demo's config>"
	if r.res.ListWhileRunning != "" {
		r.say("\n$ %s\n  (while the abandoned container was Running, before its priority dropped)\n%s", cmd, r.res.ListWhileRunning)
	}
	if r.res.ListAtEnd != "" {
		when := "at the end: nothing is left to list once every container is final and its job gone"
		if !r.w.allFinal() {
			when = "at the end, after the dispatcher stopped: it keeps its locks, its jobs were cancelled"
		}
		r.say("$ %s\n  (%s)\n%s", cmd, when, r.res.ListAtEnd)
	}
	for _, p := range r.res.Problems {
		r.say("PROBLEM: %s", p)
	}
	interrupted := errors.Is(runErr, ErrInterrupted)
	if !r.res.OK && !interrupted && r.disp != nil {
		r.say("The dispatcher's log ends (%s):\n%s\n", r.disp.log, r.disp.tail(20))
	}
	took := r.opts.Now().Sub(r.start).Round(100 * time.Millisecond)
	stopped := "everything the demo started has stopped"
	if len(r.res.Leftovers) > 0 || len(r.res.LiveJobs) > 0 {
		stopped = "NOT everything the demo started has stopped"
	}
	switch {
	case r.res.OK:
		r.say("OK: all %d containers ended as expected in %v; %s.", len(r.res.Outcomes), took, stopped)
	case interrupted:
		r.say("Interrupted after %v, with %d of %d containers ended; %s.", took, r.w.final(), len(r.res.Outcomes), stopped)
	case bad > 0:
		r.say("FAILED: %d of %d containers did not end as expected (%v); %s.", bad, len(r.res.Outcomes), took, stopped)
	default:
		r.say("FAILED after %v; %s.", took, stopped)
	}
}

func (r *runner) apiHost() string {
	if r.api == nil {
		return "…"
	}
	return r.api.ready.Host
}
