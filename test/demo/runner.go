package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// runner is one demo run.
type runner struct {
	opts  Options
	out   io.Writer
	log   *zap.Logger
	start time.Time
	res   Result

	dir     string
	bins    map[string]string
	choice  choice
	probe   scriptProbe
	slurm   *slurmEnv
	api     *fakeAPI
	disp    *proc
	cfgPath string
	seeds   []Seed
	uuids   []string
	w       *watch
	view    *view
}

func (r *runner) since() time.Duration { return r.opts.Now().Sub(r.start) }

func (r *runner) say(format string, a ...any) { fmt.Fprintf(r.out, format+"\n", a...) }

func (r *runner) problem(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	r.res.Problems = append(r.res.Problems, msg)
	r.log.Warn(msg)
}

// run is the whole demo: set up, follow, clean up, report.
func (r *runner) run(ctx context.Context) error {
	switch r.opts.Slurm {
	case ChooseAuto, ChooseReal, ChooseFake:
	default:
		return fmt.Errorf("--slurm=%q: want auto, real or fake", r.opts.Slurm)
	}
	bins, err := binaries(r.opts.Bin)
	if err != nil {
		return err
	}
	r.bins = bins
	if r.dir, err = os.MkdirTemp(r.opts.TempDir, "dispatch-slurm-demo-"); err != nil {
		return fmt.Errorf("make the demo's directory: %w", err)
	}
	r.res.Dir = r.dir
	r.say("dispatch-slurm demo: Arvados containers become Slurm jobs, run and finish, without an Arvados cluster.")
	err = r.setUp(ctx)
	if err == nil {
		err = r.follow(ctx)
		r.settleJobs(ctx)
		r.view.finish(r.since(), r.w)
	}
	if err = interrupted(ctx, err); err != nil && (r.api != nil || r.choice.started) {
		r.say("\n%v\nStopping everything the demo started…", err)
	}
	r.cleanUp()
	r.report(err)
	r.removeDir()
	return err
}

// interrupted wraps err as ErrInterrupted when ctx has ended.
func interrupted(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && !errors.Is(err, ErrInterrupted) {
		return fmt.Errorf("%w: %w", ErrInterrupted, err)
	}
	return err
}

// setUp chooses Slurm, starts the fake API, seeds it and starts the dispatcher.
func (r *runner) setUp(ctx context.Context) error {
	r.probe = scriptProbe{script: r.opts.SlurmScript, out: func(s string) { r.say("%s", s) }}
	var err error
	if r.choice, err = chooseSlurm(ctx, r.opts.Slurm, r.probe); err != nil {
		return err
	}
	r.res.Backend, r.res.Why = r.choice.backend, r.choice.why
	switch r.choice.backend {
	case Real:
		r.say("Slurm: the real local Slurm: %s.", r.choice.why)
		r.slurm, err = newRealSlurm()
	default:
		r.say("Slurm: fakeslurm, running the jobs as local processes: %s.", r.choice.why)
		r.slurm, err = newFakeSlurm(r.bins["fakeslurm"], filepath.Join(r.dir, "fakeslurm"))
	}
	if err != nil {
		return err
	}
	cluster := randomID(5)
	r.res.ClusterID = cluster
	r.seeds = Seeds()
	var cs []arvados.Container
	for _, s := range r.seeds {
		u := cluster + "-dz642-" + randomID(15)
		r.uuids = append(r.uuids, u)
		cs = append(cs, s.Container(u))
	}
	r.w = newWatch(r.uuids, r.seeds)
	if r.api, err = startAPI(ctx, r.bins["fakearvados"], r.dir, cluster, environWithout("ARVADOS_"), 15*time.Second,
		r.opts.After); err != nil {
		return err
	}
	r.res.PIDs = append(r.res.PIDs, r.api.pid())
	if err := r.api.seed(ctx, cs); err != nil {
		return err
	}
	r.say("Fake Arvados API: %s (https, self-signed), cluster %s: %d containers seeded.", r.api.ready.URL, cluster, len(cs))
	if err := r.startDispatcher(); err != nil {
		return err
	}
	r.say("Dispatcher: %s run --config %s --rejection-hold=%s (poll %s, squeue %s); its log: %s (removed at the end unless --keep)",
		r.bins["dispatch-slurm"], r.cfgPath, rejectionHold, pollPeriod, squeuePeriod, r.disp.log)
	r.say("")
	name := map[Backend]string{Real: "real Slurm", Fake: "fakeslurm"}[r.choice.backend]
	r.view = newView(r.out, r.opts.Live, r.opts.Width, fmt.Sprintf("dispatch-slurm demo · %s · cluster %s", name, cluster))
	return nil
}

// startDispatcher writes the config and starts `dispatch-slurm run`.
func (r *runner) startDispatcher() error {
	work := filepath.Join(r.dir, "slurm")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return fmt.Errorf("make the jobs' directory: %w", err)
	}
	r.cfgPath = filepath.Join(r.dir, "dispatch-slurm.yml")
	mgmt, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	cfg := dispatcherConfig(configParams{APIHost: r.api.ready.Host, ClusterID: r.res.ClusterID,
		Standin: r.bins["crunchrun-standin"], Slurm: r.slurm.paths, WorkDir: work,
		Lock: filepath.Join(r.dir, "dispatch-slurm.lock"), Management: mgmt, MgmtToken: randomID(32)})
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("write the dispatcher's config: %w", err)
	}
	env := append(environWithout("ARVADOS_", "DISPATCH_SLURM_", "FAKESLURM_"),
		arvados.EnvToken+"="+r.api.ready.AdminToken)
	env = append(env, r.slurm.dispatcherEnv...)
	r.disp, err = startProc("dispatch-slurm", r.bins["dispatch-slurm"],
		[]string{"run", "--config=" + r.cfgPath, "--rejection-hold=" + rejectionHold},
		env, r.dir, filepath.Join(r.dir, "dispatch-slurm.log"))
	if err != nil {
		return err
	}
	r.res.PIDs = append(r.res.PIDs, r.disp.pid())
	return nil
}

// pollEvery is the period of the demo's look at the containers; jobsEvery of its squeue.
const (
	pollEvery = 100 * time.Millisecond
	jobsEvery = time.Second
)

// follow watches until every container is final, showing events; it drops the priority of
// the containers marked so once they run.
func (r *runner) follow(ctx context.Context) error {
	deadline := r.opts.After(r.opts.Timeout)
	lastJobs := -jobsEvery
	for {
		at := r.since()
		cs, err := r.api.containers(ctx)
		if err != nil {
			return err
		}
		evs := r.w.observeContainers(at, cs)
		if at-lastJobs >= jobsEvery {
			lastJobs = at
			if jobs, err := r.slurm.jobs(ctx, r.uuids); err == nil {
				evs = append(evs, r.w.observeJobs(at, jobs)...)
			} else {
				r.log.Warn("squeue failed", zap.Error(err))
			}
		}
		drops, err := r.dropPriorities(ctx, at)
		if err != nil {
			return err
		}
		r.emit(at, append(evs, drops...))
		if r.w.allFinal() {
			return nil
		}
		if r.disp.exited() {
			return fmt.Errorf("the dispatcher ended (%s) before the containers did; its log ends:\n%s",
				r.disp.exitText(), r.disp.tail(15))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrInterrupted, ctx.Err())
		case <-deadline:
			return fmt.Errorf("%d of %d containers had not ended after %v", len(r.uuids)-r.w.final(), len(r.uuids), r.opts.Timeout)
		case <-r.opts.After(pollEvery):
		}
	}
}

// dropPriorities sets priority 0 on the containers marked DropPriority that run now, after
// taking the containers list snapshot (the queue at its busiest).
func (r *runner) dropPriorities(ctx context.Context, at time.Duration) ([]Event, error) {
	var evs []Event
	for _, u := range r.w.toDrop() {
		if r.res.ListWhileRunning == "" {
			r.res.ListWhileRunning = r.containersList(ctx)
		}
		if err := r.api.setPriority(ctx, u, 0); err != nil {
			return evs, err
		}
		r.w.dropped[u] = true
		evs = append(evs, Event{At: at, Name: r.w.seeds[u].Name, UUID: u,
			Text: "the demo sets its priority to 0 (nobody wants it any more)"})
	}
	return evs, nil
}

func (r *runner) emit(at time.Duration, evs []Event) {
	for _, e := range evs {
		r.log.Info("event", zap.String("container", e.UUID), zap.String("state", e.Text))
		if r.opts.OnEvent != nil {
			r.opts.OnEvent(e)
		}
	}
	r.view.update(at, r.w, evs)
}

// settleJobs waits (up to 15 s) for the demo's jobs to end after their containers did: the
// stand-in exits right after its last update. It updates the view.
func (r *runner) settleJobs(ctx context.Context) {
	if r.slurm == nil || r.w == nil || !r.w.allFinal() {
		return
	}
	deadline := r.opts.After(15 * time.Second)
	for {
		jobs, err := r.slurm.jobs(ctx, r.uuids)
		if err == nil {
			at := r.since()
			r.emit(at, r.w.observeJobs(at, jobs))
			if len(liveIDs(jobs)) == 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-r.opts.After(pollEvery):
		}
	}
}

// liveIDs are the ids of the live jobs among jobs.
func liveIDs(jobs map[string]job) []string {
	var ids []string
	for _, j := range jobs {
		if j.live() {
			ids = append(ids, j.ID)
		}
	}
	return ids
}

// freeLoopbackAddr returns a loopback host:port free a moment ago, for the dispatcher's
// management endpoint (its default port may be taken by a dispatcher already running here).
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port for the management endpoint: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
