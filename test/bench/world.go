package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// world is one scenario: a fake API with a fresh random cluster id, a Slurm backend behind
// the counting wrappers, and the dispatcher runs.
type world struct {
	o       *Options
	tier    Tier
	cluster string
	dir     string
	api     *fakeAPI
	slurm   *slurmEnv
	disp    *process
	runs    int
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomID returns n random [a-z0-9], the first a letter other than z (the fake's default
// cluster is zzzzz).
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		if i == 0 {
			b[i] = idAlphabet[int(b[i])%25]
		} else {
			b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
		}
	}
	return string(b)
}

func newWorld(ctx context.Context, o *Options, tier Tier, label string) (w *world, err error) {
	w = &world{o: o, tier: tier, cluster: randomID(5)}
	w.dir, err = os.MkdirTemp(o.WorkDir, "dispatch-slurm-bench-"+label+"-")
	if err != nil {
		return nil, fmt.Errorf("scenario directory: %w", err)
	}
	defer func() {
		if err != nil {
			w.close(context.WithoutCancel(ctx))
		}
	}()
	if err := os.MkdirAll(filepath.Join(w.dir, "submit"), 0o755); err != nil {
		return w, fmt.Errorf("scenario directory: %w", err)
	}
	if w.slurm, err = newSlurmEnv(tier, w.dir, o.Wrapper, o.bin("fakeslurm"), w.cluster); err != nil {
		return w, err
	}
	if w.api, err = startFakeAPI(ctx, o.bin("fakearvados"), w.cluster, w.dir, o.TLS); err != nil {
		return w, err
	}
	return w, nil
}

// close stops the dispatcher and the API, cleans up our Slurm jobs and removes the directory
// (unless Keep).
func (w *world) close(ctx context.Context) {
	if w.disp != nil {
		if err := w.disp.stop(30 * time.Second); err != nil {
			w.o.logf("%s: dispatcher: %v", w.tier, err)
		}
	}
	if w.api != nil {
		w.api.close()
	}
	if w.slurm != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		if err := w.slurm.cleanup(cctx); err != nil {
			w.o.logf("%s: clean up Slurm: %v", w.tier, err)
		}
		cancel()
	}
	if w.o.Keep {
		w.o.logf("kept %s", w.dir)
	} else if w.dir != "" {
		_ = os.RemoveAll(w.dir)
	}
}

// template is a small container whose job goes to the partition that keeps jobs pending.
func template() arvados.Container {
	return arvados.Container{
		Priority:             1,
		ContainerImage:       "fa3c1a9cb6783f85f2ecda037e07b8c3+167",
		Command:              []string{"sleep", "600"},
		RuntimeConstraints:   arvados.RuntimeConstraints{RAM: 64 << 20, VCPUs: 1},
		SchedulingParameters: arvados.SchedulingParameters{Partitions: []string{"down"}},
	}
}

// startDispatcher starts `dispatch-slurm run` with room for maxJobs containers.
func (w *world) startDispatcher(maxJobs int) error {
	sbatchArgs := "--partition=%P --mem=%M --cpus-per-task=%C --output=/dev/null"
	if w.tier == RealTier {
		sbatchArgs += " --time=10" // bounds anything left behind
	}
	standin := w.o.bin("crunchrun-standin")
	if _, err := os.Stat(standin); err != nil {
		standin = "/bin/true"
	}
	poll := w.o.Poll.String()
	args := []string{"run",
		"--cluster-id=" + w.cluster,
		"--poll-period=" + poll,
		"--squeue-period=" + poll,
		"--max-jobs=" + strconv.Itoa(maxJobs),
		"--crunch-run-command=" + standin,
		"--sbatch-args=" + sbatchArgs,
		"--reserve-ram=16",
		"--sbatch-path=" + w.slurm.wrappers["sbatch"],
		"--squeue-path=" + w.slurm.wrappers["squeue"],
		"--scancel-path=" + w.slurm.wrappers["scancel"],
		"--scontrol-path=" + w.slurm.wrappers["scontrol"],
		"--slurm-dir=" + filepath.Join(w.dir, "submit"),
		"--lock-file=" + filepath.Join(w.dir, "dispatch-slurm.lock"),
		"--log-level=info",
		"--log-format=json",
	}
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ARVADOS_") || strings.HasPrefix(kv, "FAKESLURM_") || strings.HasPrefix(kv, "DISPATCH_SLURM_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(append(env, w.api.env()...), w.slurm.dispEnv...)
	w.runs++
	p, err := startProcess(fmt.Sprintf("dispatch-slurm-%d", w.runs), w.o.bin("dispatch-slurm"), args, env, w.dir, w.dir, nil)
	if err != nil {
		return err
	}
	w.disp = p
	return nil
}

// stopDispatcher sends SIGTERM and waits for the exit.
func (w *world) stopDispatcher() error {
	if w.disp == nil {
		return nil
	}
	err := w.disp.stop(30 * time.Second)
	w.disp = nil
	if err != nil {
		return fmt.Errorf("stop the dispatcher: %w", err)
	}
	return nil
}

// errDied is returned when the dispatcher exits while a figure waits on it.
var errDied = errors.New("the dispatcher exited")

func (w *world) checkAlive() error {
	if w.disp != nil && !w.disp.alive() {
		return fmt.Errorf("%w: %v; stderr:\n%s", errDied, w.disp.err, w.disp.tail(15))
	}
	return nil
}

// listRequests counts the dispatcher's list requests so far.
func (w *world) listRequests(ctx context.Context) (int, error) {
	st, err := w.api.stats(ctx)
	if err != nil {
		return 0, err
	}
	return st["GET /arvados/v1/containers"].Count, nil
}

// waitPolled waits until the dispatcher has made at least n list requests since the stats
// were last reset.
func (w *world) waitPolled(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got, err := w.listRequests(ctx)
		if err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		if err := w.checkAlive(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the dispatcher made %d list requests in %s, want %d", got, timeout, n)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}
