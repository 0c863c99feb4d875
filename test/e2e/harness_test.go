package e2e

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// forEachTier runs a scenario once per tier, as parallel subtests named "fake" and "real".
func forEachTier(t *testing.T, scenario func(t *testing.T, h *harness)) {
	forEachTierWith(t, options{}, scenario)
}

// forEachTierWith is forEachTier with harness options.
func forEachTierWith(t *testing.T, o options, scenario func(t *testing.T, h *harness)) {
	for _, tr := range tiers {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			scenario(t, newHarness(t, tr, o))
		})
	}
}

// options shape one scenario's world and the dispatcher's default flags.
type options struct {
	// tls serves the API over https with a self-signed certificate (ARVADOS_API_HOST_INSECURE=1).
	tls bool
	// poll and squeue are --poll-period and --squeue-period (default 200ms and 100ms).
	poll, squeue time.Duration
	// sbatchArgs is --sbatch-args (default defaultSbatchArgs plus, on the real tier, a time
	// limit so that nothing outlives a crashed test for long).
	sbatchArgs string
}

// defaultSbatchArgs: partitions from the container (Slurm's default partition, debug, when it
// names none), memory and cpus from its constraints. Job output goes to the submit directory.
const defaultSbatchArgs = "--partition=%P --mem=%M --cpus-per-task=%C"

// harness is one scenario's world: a fake API with a random cluster id, a Slurm (fake or real)
// whose commands the dispatcher runs through logging wrappers, and the dispatcher runs.
type harness struct {
	t       *testing.T
	tier    tier
	cluster string
	// dir is the scenario's directory (dispatcher logs, submit directory, wrappers), under
	// workDir so that jobs still running after the test can write to it.
	dir   string
	api   *api
	slurm *slurmEnv
	opts  options
	runs  []*dispatcher
}

func newHarness(t *testing.T, tr tier, o options) *harness {
	t.Helper()
	if o.poll == 0 {
		o.poll = 200 * time.Millisecond
	}
	if o.squeue == 0 {
		o.squeue = 100 * time.Millisecond
	}
	if o.sbatchArgs == "" {
		o.sbatchArgs = defaultSbatchArgs
	}
	h := &harness{t: t, tier: tr, cluster: randomID(5), opts: o}
	dir, err := os.MkdirTemp(workDir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-")
	if err != nil {
		t.Fatal(err)
	}
	h.dir = dir
	if err := os.MkdirAll(filepath.Join(dir, "slurm"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.slurm = newSlurmEnv(t, tr, h.cluster, dir)
	h.api = startAPI(t, h.cluster, o.tls)
	t.Cleanup(h.finish)
	return h
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomID returns n random characters of [a-z0-9], starting with a letter.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		if i == 0 {
			b[i] = idAlphabet[int(b[i])%26]
		} else {
			b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
		}
	}
	return string(b)
}

// uuid returns a fresh container uuid of the scenario's cluster.
func (h *harness) uuid() string { return h.cluster + "-dz642-" + randomID(15) }

// sbatchArgs is the --sbatch-args value for the tier.
func (h *harness) sbatchArgs(template string) string {
	if h.tier == realTier {
		return template + " --time=10"
	}
	return template
}

// args are the dispatcher's flags: the harness's defaults, then extra (later flags win).
func (h *harness) args(extra ...string) []string {
	a := []string{
		"--cluster-id=" + h.cluster,
		"--poll-period=" + h.opts.poll.String(),
		"--squeue-period=" + h.opts.squeue.String(),
		"--crunch-run-command=" + standinBin,
		"--sbatch-args=" + h.sbatchArgs(h.opts.sbatchArgs),
		"--reserve-ram=16",
		"--sbatch-path=" + h.slurm.wrappers["sbatch"],
		"--squeue-path=" + h.slurm.wrappers["squeue"],
		"--scancel-path=" + h.slurm.wrappers["scancel"],
		"--scontrol-path=" + h.slurm.wrappers["scontrol"],
		"--slurm-dir=" + filepath.Join(h.dir, "slurm"),
		"--lock-file=" + filepath.Join(h.dir, "dispatch-slurm.lock"),
		"--log-level=debug",
		"--log-format=json",
		// A free port: scenarios run in parallel (mgmtAddr reads the one chosen from the log).
		"--management-listen=127.0.0.1:0",
	}
	return append(a, extra...)
}

// env is the dispatcher's environment: ours without ARVADOS_* and FAKESLURM_*, the API's, the
// backend's.
func (h *harness) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ARVADOS_") || strings.HasPrefix(kv, "FAKESLURM_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, h.api.Env()...)
	return append(env, h.slurm.extraEnv...)
}

// start starts a dispatcher with the default flags and extra ones.
func (h *harness) start(extra ...string) *dispatcher {
	h.t.Helper()
	d := startDispatcher(h.t, len(h.runs), h.dir, h.env(), h.args(extra...))
	h.runs = append(h.runs, d)
	return d
}

// current is the latest dispatcher run.
func (h *harness) current() *dispatcher {
	if len(h.runs) == 0 {
		return nil
	}
	return h.runs[len(h.runs)-1]
}

// waitFor polls cond every 50ms until it holds, failing the test after timeout with the last
// status cond gave. The dispatcher must stay alive meanwhile.
func (h *harness) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, status := cond()
		if ok {
			return
		}
		if d := h.current(); d != nil && !d.expectExit && !d.alive() {
			h.t.Fatalf("dispatcher exited (code %d) while waiting for %s; last status: %s", d.exitCode, what, status)
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waited %v for %s; last status: %s", timeout, what, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStates waits until every container is in one of states.
func (h *harness) waitStates(uuids []string, timeout time.Duration, states ...arvados.ContainerState) {
	h.t.Helper()
	h.waitFor(timeout, fmt.Sprintf("%d containers %v", len(uuids), states), func() (bool, string) {
		var bad []string
		for _, u := range uuids {
			c := h.api.get(h.t, u)
			if !slices.Contains(states, c.State) {
				if c.State.Final() {
					h.t.Fatalf("waiting for %v: %s can never get there", states, describe(c))
				}
				bad = append(bad, describe(c))
			}
		}
		return len(bad) == 0, summarize(bad)
	})
}

func summarize(lines []string) string {
	if len(lines) > 8 {
		return fmt.Sprintf("%d not yet, e.g. %s", len(lines), strings.Join(lines[:8], "; "))
	}
	return strings.Join(lines, "; ")
}

// seed adds containers and returns their uuids; containers without a uuid get one of our
// cluster.
func (h *harness) seed(cs ...arvados.Container) []string {
	for i := range cs {
		if cs[i].UUID == "" {
			cs[i].UUID = h.uuid()
		}
	}
	return h.api.Seed(cs...)
}

// ctr is a container of our stand-in: it sleeps for sleep (seconds or a Go duration) once
// Running. ramMiB is its runtime_constraints.ram in MiB.
func ctr(priority int64, vcpus int, ramMiB int64, sleep string, partitions ...string) arvados.Container {
	return arvados.Container{
		Priority:       priority,
		ContainerImage: "fa3c1a9cb6783f85f2ecda037e07b8c3+167",
		Command:        []string{"sleep", sleep},
		RuntimeConstraints: arvados.RuntimeConstraints{
			RAM: ramMiB << 20, VCPUs: vcpus,
		},
		SchedulingParameters: arvados.SchedulingParameters{Partitions: partitions},
	}
}

// expectLockCount checks every container's lock_count.
func (h *harness) expectLockCount(uuids []string, want int) {
	h.t.Helper()
	for _, u := range uuids {
		if c := h.api.get(h.t, u); c.LockCount != want {
			h.t.Errorf("lock_count = %d, want %d: %s", c.LockCount, want, describe(c))
		}
	}
}

// expectNoUnlockOrCancel checks that nobody unlocked or cancelled a container through the API.
func (h *harness) expectNoUnlockOrCancel() {
	h.t.Helper()
	for _, c := range h.api.unlocks() {
		h.t.Errorf("unexpected unlock: %s %s (%d) by %s", c.Method, c.Path, c.Status, c.Who)
	}
	for _, c := range h.api.cancels() {
		h.t.Errorf("unexpected cancel: %s %s %v by %s", c.Method, c.Path, c.Update, c.Who)
	}
}

// findLog returns the dispatcher's log records (all runs) for which match holds.
func (h *harness) findLog(match func(logLine) bool) []logLine {
	var out []logLine
	for _, d := range h.runs {
		for _, l := range d.logs() {
			if match(l) {
				out = append(out, l)
			}
		}
	}
	return out
}

// secrets must never appear in anything the dispatcher prints.
var secrets = map[string]string{
	"the dispatcher's token (AdminToken)": fakearvados.AdminToken,
	"the second dispatcher's token":       fakearvados.Dispatcher2Token,
	"the plain user's token":              fakearvados.UserToken,
	"the management token":                mgmtToken,
}

// finish runs when the scenario ends, before the API and Slurm are torn down: it stops the
// dispatcher (SIGTERM must end it with exit code 0), checks what every run printed and that
// no container ever had two jobs, and on failure prints what helps to understand it.
func (h *harness) finish() {
	t := h.t
	for _, d := range h.runs {
		if !d.expectExit && !d.alive() {
			t.Errorf("dispatcher %d exited by itself with code %d", d.n, d.exitCode)
			d.expectExit = true
		}
		if !d.expectExit {
			if code := d.stop(15 * time.Second); code != 0 {
				t.Errorf("dispatcher %d: exit code %d after SIGTERM, want 0", d.n, code)
			}
		}
	}
	for _, d := range h.runs {
		stdout, stderr := d.output()
		for what, s := range secrets {
			if strings.Contains(string(stdout), s) || strings.Contains(string(stderr), s) {
				t.Errorf("dispatcher %d printed %s", d.n, what)
			}
		}
		for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
			if strings.Contains(string(stderr), bad) {
				t.Errorf("dispatcher %d stderr has %q", d.n, bad)
			}
		}
	}
	h.expectOneJobPerContainer()
	if t.Failed() {
		h.explain()
	}
}

// expectOneJobPerContainer checks that no job name of our cluster has two jobs (live or
// finished, as long as Slurm remembers them).
func (h *harness) expectOneJobPerContainer() {
	h.t.Helper()
	for name, js := range h.slurm.jobsNamed(h.cluster + "-") {
		if len(js) > 1 {
			h.t.Errorf("container %s has %d jobs: %+v", name, len(js), js)
		}
	}
}

// explain logs what helps to understand a failure: the dispatcher's stderr tails, the Slurm
// calls by command, containers that did not finish, and our jobs.
func (h *harness) explain() {
	t := h.t
	t.Logf("scenario directory: %s (cluster %s, tier %s)", h.dir, h.cluster, h.tier)
	for _, d := range h.runs {
		t.Logf("dispatcher %d stderr (tail):\n%s", d.n, d.tail(60))
	}
	count := map[string]int{}
	for _, c := range h.slurm.calls() {
		count[c.Command]++
	}
	t.Logf("Slurm calls by the dispatcher: %v", count)
	var open []string
	for _, c := range h.api.Containers() {
		if !c.State.Final() {
			open = append(open, describe(c))
		}
	}
	sort.Strings(open)
	t.Logf("containers not final: %d\n%s", len(open), strings.Join(open, "\n"))
	var jobs []string
	for _, js := range h.slurm.jobsNamed(h.cluster + "-") {
		for _, j := range js {
			jobs = append(jobs, fmt.Sprintf("%s %s %s %s prio=%d nice=%d", j.ID, j.Name, j.State, j.Reason, j.Priority, j.Nice))
		}
	}
	sort.Strings(jobs)
	t.Logf("our jobs: %d\n%s", len(jobs), strings.Join(jobs, "\n"))
}
