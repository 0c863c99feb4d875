package e2e

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// Scenario 1: 50 containers of mixed sizes and priorities all end Complete, with exactly one
// sbatch each, whose argv says what the record asks for. The API is served over TLS with a
// self-signed certificate (ARVADOS_API_HOST_INSECURE=1), as a test cluster's would be.
func TestFiftyContainersOfMixedSizesAndPrioritiesAllCompleteWithOneSbatchEach(t *testing.T) {
	forEachTierWith(t, options{tls: true}, func(t *testing.T, h *harness) {
		want := map[string]arvados.Container{}
		var cs []arvados.Container
		for i := range 50 {
			// Priorities of both eras: small ones (old servers) and user priority × 2^50 −
			// creation time in ms (modern ones); sizes that fit the node (16 CPUs).
			prio := int64(1 + (i*37)%97)
			if i%3 == 0 {
				prio = int64(1+i%5)<<50 - int64(1_700_000_000_000+i)
			}
			c := ctr(prio, 1+i%4, int64(64+32*(i%5)), fmt.Sprintf("%dms", 200+(i*53)%800))
			c.UUID = h.uuid()
			want[c.UUID] = c
			cs = append(cs, c)
		}
		uuids := h.seed(cs...)
		// crunch-run's arguments, with a space and a quote to carry into the batch script.
		h.start("--runtime-engine=singularity", `--crunch-run-args=--note='a b' --x="it's"`)
		h.waitStates(uuids, 120*time.Second, arvados.Complete)

		calls := h.slurm.sbatchByName()
		for _, u := range uuids {
			got := calls[u]
			if len(got) != 1 {
				t.Errorf("%s: %d sbatch calls, want 1: %v", u, len(got), got)
				continue
			}
			checkSbatchArgv(t, got[0], want[u])
			checkBatchScript(t, got[0].Stdin, u, []string{"--runtime-engine=singularity", "--note=a b", "--x=it's"})
		}
		for name, got := range calls {
			if _, ok := want[name]; !ok {
				t.Errorf("sbatch for a job name that is no container of ours: %q (%d calls)", name, len(got))
			}
		}
		h.expectLockCount(uuids, 1)
		h.expectNoUnlockOrCancel()
		// The stand-in exits right after it completes its container; then its job ends.
		var jobs map[string][]job
		h.waitFor(30*time.Second, "every job ended", func() (bool, string) {
			jobs = h.slurm.jobsNamed(h.cluster + "-")
			for name, js := range jobs {
				if len(js) > 0 && js[0].live() {
					return false, fmt.Sprintf("%s: %+v", name, js[0])
				}
			}
			return true, ""
		})
		for name, js := range jobs {
			for _, j := range js {
				if j.State != "COMPLETED" {
					t.Errorf("job %s of %s ended %s, want COMPLETED", j.ID, name, j.State)
				}
			}
		}
	})
}

// checkSbatchArgv checks one sbatch call against the container it was for (template
// defaultSbatchArgs, --reserve-ram=16).
func checkSbatchArgv(t *testing.T, c slurmCall, ctr arvados.Container) {
	t.Helper()
	expect := map[string]string{
		"--job-name":      ctr.UUID,
		"--mem":           strconv.FormatInt(ctr.RuntimeConstraints.RAM>>20+16, 10),
		"--cpus-per-task": strconv.Itoa(ctr.RuntimeConstraints.VCPUs),
	}
	for k, v := range expect {
		if got, ok := c.arg(k); !ok || got != v {
			t.Errorf("%s: sbatch %s=%q (present %v), want %q; argv %q", ctr.UUID, k, got, ok, v, c.Args)
		}
	}
	nice, ok := c.arg("--nice")
	if n, err := strconv.Atoi(nice); !ok || err != nil || n < 0 {
		t.Errorf("%s: sbatch --nice=%q (present %v), want a number ≥ 0; argv %q", ctr.UUID, nice, ok, c.Args)
	}
	for _, flag := range []string{"--no-requeue", "--parsable"} {
		if !contains(c.Args, flag) {
			t.Errorf("%s: sbatch without %s; argv %q", ctr.UUID, flag, c.Args)
		}
	}
	if p, ok := c.arg("--partition"); ok && len(ctr.SchedulingParameters.Partitions) == 0 {
		t.Errorf("%s: sbatch --partition=%q for a container that names none (the %%P argument should be dropped); argv %q", ctr.UUID, p, c.Args)
	}
}

// checkBatchScript checks the script sbatch was given: "#!/bin/sh", then one exec line of
// single-quoted words: the stand-in, crunch-run's arguments (in their order, with the
// runtime engine anywhere among them), the container uuid.
func checkBatchScript(t *testing.T, script, uuid string, args []string) {
	t.Helper()
	exec, ok := strings.CutPrefix(script, "#!/bin/sh\nexec ")
	words, err := singleQuotedWords(strings.TrimSuffix(exec, "\n"))
	if !ok || !strings.HasSuffix(exec, "\n") || strings.Count(exec, "\n") != 1 || err != nil {
		t.Errorf("%s: batch script is not #!/bin/sh and one exec line of quoted words (%v):\n%s", uuid, err, script)
		return
	}
	if len(words) < 2 || words[0] != standinBin || words[len(words)-1] != uuid {
		t.Errorf("%s: batch script runs %q, want the stand-in first and the uuid last", uuid, words)
		return
	}
	middle := words[1 : len(words)-1]
	var rest []string
	for _, w := range middle {
		if w != args[0] {
			rest = append(rest, w)
		}
	}
	if len(rest) != len(middle)-1 || strings.Join(rest, "\x00") != strings.Join(args[1:], "\x00") {
		t.Errorf("%s: crunch-run arguments in the batch script %q, want %q and %q", uuid, middle, args[0], args[1:])
	}
}

// singleQuotedWords splits a line of words separated by single spaces, each written as
// single-quoted pieces joined by \' (the only quoting the batch script may use), and refuses
// anything else.
func singleQuotedWords(line string) ([]string, error) {
	var words []string
	var w strings.Builder
	for i := 0; i < len(line); {
		switch {
		case line[i] == ' ' && w.Len() > 0:
			words = append(words, w.String())
			w.Reset()
			i++
		case strings.HasPrefix(line[i:], `\'`):
			w.WriteByte('\'')
			i += 2
		case line[i] == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote at %d", i)
			}
			w.WriteString(line[i+1 : i+1+end])
			i += end + 2
		default:
			return nil, fmt.Errorf("unquoted %q at %d", line[i], i)
		}
	}
	if w.Len() > 0 {
		words = append(words, w.String())
	}
	return words, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Scenario 2: a user sets priority 0 on a Running container: its job is gone and the container
// Cancelled within 3 polls. Another Running container is not disturbed.
func TestPriorityZeroWhileRunningEndsJobAndContainerWithinThreePolls(t *testing.T) {
	const poll = 500 * time.Millisecond
	forEachTierWith(t, options{poll: poll}, func(t *testing.T, h *harness) {
		uuids := h.seed(ctr(10, 1, 64, "60"), ctr(9, 1, 64, "4"))
		victim, bystander := uuids[0], uuids[1]
		h.start()
		h.waitStates(uuids, 60*time.Second, arvados.Running)
		h.waitFor(30*time.Second, "the victim's job RUNNING", func() (bool, string) {
			js := h.slurm.jobsNamed(victim)[victim]
			return len(js) == 1 && js[0].State == "RUNNING", fmt.Sprintf("%+v", js)
		})

		t0 := time.Now()
		if err := h.api.SetPriority(victim, 0); err != nil {
			t.Fatal(err)
		}
		var took time.Duration
		h.waitFor(3*poll+30*time.Second, "the victim Cancelled and its job gone", func() (bool, string) {
			c := h.api.get(t, victim)
			js := h.slurm.jobsNamed(victim)[victim]
			live := len(js) > 0 && js[0].live()
			took = time.Since(t0)
			return c.State == arvados.Cancelled && !live, fmt.Sprintf("%s; jobs %+v", describe(c), js)
		})
		if took > 3*poll {
			t.Errorf("priority 0 → Cancelled and no job took %v, want ≤ 3 polls (%v)", took, 3*poll)
		}
		t.Logf("priority 0 → Cancelled and no job: %v (3 polls = %v)", took, 3*poll)

		h.waitStates([]string{bystander}, 30*time.Second, arvados.Complete)
		h.expectLockCount(uuids, 1)
		for _, c := range h.api.unlocks() {
			t.Errorf("unexpected unlock: %s by %s", c.Path, c.Who)
		}
	})
}

// Scenario 3: the dispatcher (with the Slurm commands it is running) is killed with SIGKILL at
// random points while 30 containers are in flight, five times, and restarted each time: no
// container ever has two jobs, none loses its lock, all end Complete.
func TestKilledFiveTimesWhileThirtyInFlightNoContainerGetsTwoJobs(t *testing.T) {
	forEachTier(t, func(t *testing.T, h *harness) {
		seed := rand.Uint64()
		rng := rand.New(rand.NewPCG(seed, 0))
		t.Logf("random seed %d", seed)
		var cs []arvados.Container
		for i := range 30 {
			// Two cpus each: eight at a time on 16 CPUs, so some wait in Slurm.
			cs = append(cs, ctr(int64(100+i), 2, 64, fmt.Sprintf("%dms", 1500+rng.IntN(2000))))
		}
		uuids := h.seed(cs...)
		h.start()
		for kill := range 5 {
			// A random point in the dispatcher's life: this delay is the scenario, not a wait.
			<-time.After(time.Duration(150+rng.IntN(1500)) * time.Millisecond)
			h.current().kill()
			states := map[arvados.ContainerState]int{}
			for _, u := range uuids {
				states[h.api.get(t, u).State]++
			}
			t.Logf("kill %d after %v: containers %v", kill+1, time.Since(h.current().started).Round(time.Millisecond), states)
			if states[arvados.Complete] == len(uuids) {
				t.Errorf("kill %d: every container had already finished; the scenario needs them in flight", kill+1)
			}
			h.start()
		}
		h.waitStates(uuids, 120*time.Second, arvados.Complete)

		jobs := h.slurm.jobsNamed(h.cluster + "-")
		for _, u := range uuids {
			if n := len(jobs[u]); n != 1 {
				t.Errorf("%s: %d jobs, want exactly 1: %+v (sbatch calls %v)", u, n, jobs[u], h.slurm.sbatchByName()[u])
			}
		}
		h.expectLockCount(uuids, 1)
		h.expectNoUnlockOrCancel()
	})
}

// SIGTERM stops the dispatcher with exit code 0 and leaves jobs running; the next start adopts
// them from the API and squeue (DESIGN.md invariant 7).
func TestSIGTERMLeavesJobsRunningAndRestartAdoptsThem(t *testing.T) {
	forEachTier(t, func(t *testing.T, h *harness) {
		uuids := h.seed(ctr(5, 1, 64, "4"), ctr(4, 1, 64, "4"), ctr(3, 1, 64, "4"))
		h.start()
		h.waitStates(uuids, 60*time.Second, arvados.Running)
		if code := h.current().stop(10 * time.Second); code != 0 {
			t.Errorf("exit code after SIGTERM: %d, want 0", code)
		}
		for _, u := range uuids {
			js := h.slurm.jobsNamed(u)[u]
			if len(js) != 1 || !js[0].live() {
				t.Errorf("%s: after SIGTERM its job should still be alive: %+v", u, js)
			}
			if c := h.api.get(t, u); c.State != arvados.Running && c.State != arvados.Complete {
				t.Errorf("after SIGTERM: %s, want Running (or Complete)", describe(c))
			}
		}
		h.start()
		h.waitStates(uuids, 60*time.Second, arvados.Complete)
		h.expectLockCount(uuids, 1)
		h.expectNoUnlockOrCancel()
		for name, calls := range h.slurm.sbatchByName() {
			if len(calls) != 1 {
				t.Errorf("%s: %d sbatch calls, want 1", name, len(calls))
			}
		}
	})
}
