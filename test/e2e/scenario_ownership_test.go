package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// Scenario 8: containers locked by a second dispatcher's token (one with a job of its own, as
// a second dispatcher on the same Slurm account would have), and Slurm jobs that are not ours
// (names that are not container uuids of our cluster, or another user's), are never touched
// while our own containers run, through several orphan sweeps.
func TestOtherDispatchersContainersAndForeignJobsAreUntouched(t *testing.T) {
	forEachTier(t, func(t *testing.T, h *harness) {
		theirs := h.seed(ctr(50, 1, 64, "1"), ctr(49, 1, 64, "1"), ctr(48, 1, 64, "1"))
		for _, u := range theirs {
			h.api.lockAs(t, fakearvados.Dispatcher2Token, u)
		}
		if err := h.api.SetState(theirs[2], arvados.Running); err != nil {
			t.Fatal(err)
		}
		before := map[string]arvados.Container{}
		for _, u := range theirs {
			before[u] = h.api.get(t, u)
		}

		other := "q" + randomID(4)
		foreign := map[string]string{} // id → what it is
		add := func(what, name, partition string, extra ...string) {
			foreign[h.slurm.submitForeign(name, partition, "sleep 300", extra...)] = what
		}
		add("a pending job named not-a-container", "not-a-container", "down")
		add("a running job named not-a-container", "not-a-container", "debug")
		add("a pending job of another cluster's container", other+"-dz642-"+randomID(15), "down")
		add("a pending job with our prefix but no valid uuid", h.cluster+"-dz642-short", "down")
		add("a pending job of the other dispatcher's container", theirs[0], "down")
		if h.tier == realTier {
			add("another user's job named as one of our containers", h.uuid(), "down", "--uid=65534")
		} else {
			id := h.slurm.fake.SubmitAs("alice", 4242, "#!/bin/sh\nexec sleep 300\n",
				"--job-name="+h.uuid(), "--partition=down", "--output=/dev/null")
			foreign[id] = "another user's job named as one of our containers"
		}
		h.waitFor(30*time.Second, "the running foreign job to start", func() (bool, string) {
			for id, what := range foreign {
				if j, ok := h.slurm.jobByID(id); ok && strings.HasPrefix(what, "a running") {
					return j.State == "RUNNING", fmt.Sprintf("%+v", j)
				}
			}
			return false, "not found"
		})
		initial := map[string]job{}
		for id := range foreign {
			initial[id], _ = h.slurm.jobByID(id)
		}

		ours := h.seed(ctr(10, 1, 64, "1"), ctr(9, 1, 64, "1"), ctr(8, 1, 64, "1"), ctr(7, 1, 64, "1"))
		// The orphan sweep, the part most likely to touch jobs that are not ours, runs often.
		h.start("--orphan-sweep-period=500ms")
		h.waitStates(ours, 60*time.Second, arvados.Complete)
		// A few more cycles and sweeps for anything the dispatcher might still do to jobs it saw.
		h.waitSnapshots(3)
		h.waitFor(30*time.Second, "three orphan sweeps that read the other dispatcher's container", func() (bool, string) {
			n := 0
			for _, c := range h.api.Calls() {
				if c.Method == http.MethodGet && c.Path == "/arvados/v1/containers" && strings.Contains(c.Query, theirs[0]) {
					n++
				}
			}
			return n >= 3, fmt.Sprintf("%d reads so far", n)
		})

		for _, u := range theirs {
			c, was := h.api.get(t, u), before[u]
			if c.State != was.State || c.LockedByUUID != fakearvados.Dispatcher2TokenUUID || c.LockCount != was.LockCount || len(c.RuntimeStatus) != 0 {
				t.Errorf("another dispatcher's container changed: %s, was %s", describe(c), describe(was))
			}
			for _, call := range h.api.Calls() {
				if strings.Contains(call.Path, u) && call.Method != http.MethodGet && call.Who == "dispatcher" {
					t.Errorf("we wrote to another dispatcher's container: %s %s %v", call.Method, call.Path, call.Update)
				}
			}
		}
		for id, what := range foreign {
			j, ok := h.slurm.jobByID(id)
			was := initial[id]
			if !ok || j.State != was.State || j.Nice != was.Nice {
				t.Errorf("%s (%s) changed: %+v, was %+v", what, id, j, was)
			}
			for _, c := range h.slurm.calls() {
				if (c.Command == "scancel" || c.Command == "scontrol") && mentions(c.Args, id, was.Name) {
					t.Errorf("%s (%s) was the object of: %s", what, id, c)
				}
			}
		}
	})
}

// mentions reports whether args name the job id (alone or in a comma list) or the job name.
func mentions(args []string, id, name string) bool {
	idRe := regexp.MustCompile(`(^|[=,\s])` + regexp.QuoteMeta(id) + `($|[,\s])`)
	for _, a := range args {
		if idRe.MatchString(a) || a == id || strings.HasSuffix(a, "="+name) || a == name {
			return true
		}
	}
	return false
}

// Scenario 10: hostile records (shell metacharacters in partitions, malformed uuids, negative,
// absurd and overflowing sizes, missing constraints) do not crash the dispatcher, do not stop
// good containers, and nothing from them reaches a shell: no file is created by injection and
// every sbatch argument is sane.
func TestHostileRecordsNeitherCrashNorInjectNorBlockGoodContainers(t *testing.T) {
	opts := options{sbatchArgs: "--partition=%P --mem=%M --cpus-per-task=%C --tmp=%T"}
	forEachTierWith(t, opts, func(t *testing.T, h *harness) {
		marker := filepath.Join(os.TempDir(), "e2e-injected-"+randomID(10))
		hostile := map[string]arvados.Container{}
		add := func(what string, c arvados.Container) {
			c.Priority = 100 // ahead of the good ones
			if c.UUID == "" {
				c.UUID = h.uuid()
			}
			hostile[what] = c
		}
		inPartition := func(p ...string) arvados.Container { return ctr(0, 1, 64, "1", p...) }
		add("partition with ;", inPartition("debug;touch "+marker+"-semicolon"))
		add("partition with $()", inPartition("$(touch "+marker+"-dollar)"))
		add("partition with backquotes", inPartition("`touch "+marker+"-backquote`"))
		add("partition with quotes", inPartition("debug", "down' ; touch "+marker+"-quote ; '"))
		add("partition with a newline", inPartition("debug\ntouch "+marker+"-newline"))
		add("partition that is an option", inPartition("--wrap=touch "+marker+"-wrap"))
		add("very long partition", inPartition(strings.Repeat("p", 5000)))
		bad := ctr(0, 1, 64, "1")
		bad.UUID = h.cluster + "-dz642-$(touch${IFS}m)xxxxxx"
		add("uuid with $()", bad)
		bad = ctr(0, 1, 64, "1")
		bad.UUID = h.cluster + "-dz642-UPPERCASE012345"
		add("uuid in upper case", bad)
		bad = ctr(0, 1, 64, "1")
		bad.UUID = h.cluster + "-dz642-short"
		add("short uuid", bad)
		add("negative ram", ctr(0, 1, -1024, "1"))
		add("negative vcpus", ctr(0, -4, 64, "1"))
		add("huge vcpus", ctr(0, 1<<40, 64, "1"))
		overflow := ctr(0, 1, 0, "1")
		overflow.RuntimeConstraints.RAM, overflow.RuntimeConstraints.KeepCacheRAM = 1<<62, 1<<62
		add("ram that overflows with the keep cache", overflow)
		scratch := ctr(0, 1, 64, "1")
		scratch.ContainerImage = "fa3c1a9cb6783f85f2ecda037e07b8c3+99999999999999999"
		scratch.Mounts = map[string]arvados.Mount{"/tmp": {Kind: "tmp", Capacity: -1}}
		add("absurd image and negative scratch", scratch)
		missing := ctr(0, 0, 0, "1")
		missing.RuntimeConstraints = arvados.RuntimeConstraints{}
		add("missing runtime constraints", missing)

		var all []arvados.Container
		for _, c := range hostile {
			all = append(all, c)
		}
		h.seed(all...)
		good := h.seed(ctr(10, 1, 64, "1"), ctr(9, 2, 128, "1"), ctr(8, 1, 64, "1"), ctr(7, 1, 64, "1"))
		h.start()
		h.waitStates(good, 90*time.Second, arvados.Complete)
		// Let every hostile record settle: final, or still Queued without ever being locked.
		h.waitFor(60*time.Second, "every hostile record settled", func() (bool, string) {
			var open []string
			for what, c := range hostile {
				c = h.api.get(t, c.UUID)
				if !c.State.Final() && !(c.State == arvados.Queued && c.LockCount == 0) {
					open = append(open, what+": "+describe(c))
				}
			}
			return len(open) == 0, summarize(open)
		})
		if !h.current().alive() {
			t.Fatalf("the dispatcher died")
		}

		for what, c := range hostile {
			c = h.api.get(t, c.UUID)
			t.Logf("%-40s → %s", what, describe(c))
			if c.State == arvados.Cancelled {
				if msg, _ := c.RuntimeStatus["error"].(string); msg == "" {
					t.Errorf("%s: Cancelled without runtime_status.error", what)
				}
			}
			if c.LockCount > 1 {
				t.Errorf("%s: lock_count %d, want ≤ 1", what, c.LockCount)
			}
			if !arvados.ValidContainerUUID(c.UUID) {
				if n := len(h.slurm.sbatchByName()[c.UUID]); n > 0 {
					t.Errorf("%s: %d sbatch calls for an invalid uuid", what, n)
				}
			}
		}
		for _, c := range h.slurm.callsOf("sbatch") {
			checkSaneSbatch(t, h.cluster, c)
		}
		for _, pattern := range []string{marker + "*", filepath.Join(h.dir, "m*"), filepath.Join(h.dir, "slurm", "m*")} {
			if found, _ := filepath.Glob(pattern); len(found) > 0 {
				t.Errorf("files created by injection: %v", found)
			}
		}
	})
}

var (
	numberRe = regexp.MustCompile(`^[0-9]+$`)
	// partitionRe is what a sane --partition value looks like.
	partitionRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$`)
)

// checkSaneSbatch checks that an sbatch call's arguments are what a template can produce from
// a validated record: a container uuid of our cluster, a sane partition list, and sizes that
// are plain positive numbers that fit an int64.
func checkSaneSbatch(t *testing.T, cluster string, c slurmCall) {
	t.Helper()
	if name, _ := c.arg("--job-name"); !arvados.ValidContainerUUID(name) || !strings.HasPrefix(name, cluster+"-") {
		t.Errorf("sbatch with job name %q: %s", name, c)
	}
	if p, ok := c.arg("--partition"); ok && !partitionRe.MatchString(p) {
		t.Errorf("sbatch with partition %q: %s", p, c)
	}
	for _, k := range []string{"--mem", "--cpus-per-task", "--tmp", "--nice"} {
		v, ok := c.arg(k)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if !numberRe.MatchString(v) || err != nil || (k == "--cpus-per-task" && n < 1) {
			t.Errorf("sbatch with %s=%q: %s", k, v, c)
		}
	}
}
