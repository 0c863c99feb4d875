package soak

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

// The invariants checked, as named in Violation.Check.
const (
	// CheckOneLiveJob: never two live jobs (pending, running, completing) for one container,
	// in any sample of the job table, nor overlapping in the job history at the end (a job
	// submitted before the previous one of the same name ended).
	CheckOneLiveJob = "one-live-job"
	// CheckFinal: after the drain every container is Complete or Cancelled (none lost), and
	// no live job of ours is left for a final container.
	CheckFinal = "all-final"
	// CheckCancelReason: a Cancelled container has runtime_status.error, or the driver
	// cancelled it or set its priority to 0.
	CheckCancelReason = "cancel-has-reason"
	// CheckNoTransientCancel: every Cancelled container has a cause the driver made: it
	// cancelled it, set its priority to 0, killed its crunch-run, or gave it a command that
	// dies. Anything else was cancelled because of a transient fault (or a bug).
	CheckNoTransientCancel = "no-cancel-on-transient-fault"
	// CheckNoTransientUnlock: a container is unlocked only after the driver killed its
	// crunch-run or set its priority to 0: for each container, the dispatcher's successful
	// unlocks (in the request log) and lock_count − 1 are at most the number of such
	// actions.
	CheckNoTransientUnlock = "no-unlock-on-transient-fault"
	// CheckForeign: foreign Slurm jobs (another user's, or names that are not our cluster's
	// container uuids) stay live with their nice, and no scancel or scontrol names them;
	// containers locked by another token keep their state, lock and priority, and the
	// dispatcher never writes to them nor submits a job for them.
	CheckForeign = "foreign-untouched"
	// CheckNoToken: no API token in the dispatcher's output nor in Slurm command lines.
	CheckNoToken = "no-token-in-logs"
	// CheckDispatcherHealth: the dispatcher never exits by itself, never panics or races,
	// and exits 0 on SIGTERM.
	CheckDispatcherHealth = "dispatcher-health"
)

// seenKey reports whether a violation with that key was recorded.
func (w *world) seenKey(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[key]
}

// sample checks the live invariants once: live jobs per container, foreign jobs and
// containers.
func (w *world) sample() {
	jobs, err := w.slurm.jobs()
	if err != nil {
		w.mu.Lock()
		w.sampleErrs++
		w.mu.Unlock()
		return
	}
	w.checkLiveJobs(jobs)
	w.checkForeignJobs(jobs)
	w.checkForeignContainers()
}

func (w *world) checkLiveJobs(jobs []sim.Job) {
	byName := map[string][]sim.Job{}
	for _, j := range jobs {
		if live(j) && strings.HasPrefix(j.Name, w.cluster+"-") {
			byName[j.Name] = append(byName[j.Name], j)
		}
	}
	for name, js := range byName {
		if len(js) < 2 {
			continue
		}
		w.violate(liveKey(name), Violation{Check: CheckOneLiveJob, Container: name,
			Evidence: "live at once: " + describeJobs(js)})
	}
}

// liveKey is the key of a container's one-live-job violation: one per container, from the
// first sample that showed it.
func liveKey(name string) string { return "live:" + name }

func describeJobs(js []sim.Job) string {
	var parts []string
	for _, j := range js {
		parts = append(parts, fmt.Sprintf("job %d %s (submitted %d, ended %d, reason %s)", j.ID, j.ShownState(), j.Submit, j.End, j.Reason))
	}
	return strings.Join(parts, "; ")
}

func (w *world) checkForeignJobs(jobs []sim.Job) {
	byID := map[int]sim.Job{}
	for _, j := range jobs {
		byID[j.ID] = j
	}
	for id, was := range w.foreignJobs {
		j, ok := byID[id]
		switch {
		case !ok || !live(j):
			w.violate(fmt.Sprintf("foreign-job-%d", id), Violation{Check: CheckForeign,
				Evidence: fmt.Sprintf("foreign job %d (%s, user %s) is no longer live: %s", id, was.Name, was.User, describeJobs([]sim.Job{j}))})
		case j.Nice != was.Nice:
			w.violate(fmt.Sprintf("foreign-nice-%d", id), Violation{Check: CheckForeign,
				Evidence: fmt.Sprintf("foreign job %d (%s) reniced from %d to %d", id, was.Name, was.Nice, j.Nice)})
		}
	}
}

func (w *world) checkForeignContainers() {
	for uuid, was := range w.foreignCtrs {
		c, _ := w.api.Container(uuid)
		if c.State != was.State || c.LockedByUUID != was.LockedByUUID || c.LockCount != was.LockCount || c.Priority != was.Priority {
			w.violate("foreign-ctr-"+uuid, Violation{Check: CheckForeign, Container: uuid,
				Evidence: fmt.Sprintf("container locked by another token changed: was %s, now %s", describe(was), describe(c))})
		}
	}
}

// describe is a one-line summary of a container.
func describe(c arvados.Container) string {
	s := fmt.Sprintf("%s prio=%d lock_count=%d locked_by=%q", c.State, c.Priority, c.LockCount, c.LockedByUUID)
	if e, _ := c.RuntimeStatus["error"].(string); e != "" {
		s += fmt.Sprintf(" error=%q", e)
	}
	return s
}

// checkEnd runs the end-of-run checks on our containers, the request log, the job history
// and the Slurm calls.
func (w *world) checkEnd(r *Report) {
	calls := w.api.Calls()
	unlocks := map[string][]apiCall{}
	cancelledBy := map[string][]string{}
	for _, c := range calls {
		uuid := uuidOf(c.Path)
		if c.From == fromDispatcher {
			r.APIRequests++
			if c.Injected {
				r.Injected5xx++
			}
		}
		if _, foreign := w.foreignCtrs[uuid]; foreign && c.From == fromDispatcher && c.Method != http.MethodGet && !c.Injected {
			w.violate("foreign-write-"+uuid, Violation{Check: CheckForeign, Container: uuid,
				Evidence: fmt.Sprintf("the dispatcher sent %s %s (status %d) for a container locked by another token", c.Method, c.Path, c.Status)})
		}
		if c.Status != http.StatusOK || c.Injected || uuid == "" {
			continue
		}
		switch {
		case c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/unlock"):
			unlocks[uuid] = append(unlocks[uuid], c)
			if c.From == fromDispatcher {
				r.Unlocks++
			}
		case c.Update["state"] == string(arvados.Cancelled):
			cancelledBy[uuid] = append(cancelledBy[uuid], fmt.Sprintf("%s at %s: %v", c.From, c.At.Format("15:04:05.000"), c.Update))
		}
	}
	for _, uuid := range w.order {
		c, _ := w.api.Container(uuid)
		w.checkContainer(r, w.ours[uuid], c, unlocks[uuid], cancelledBy[uuid])
	}
}

func (w *world) checkContainer(r *Report, info *ctrInfo, c arvados.Container, unlocks []apiCall, cancelledBy []string) {
	kills, zeros, cancels := info.did(actKill), info.did(actZero), info.did(actCancel)
	history := fmt.Sprintf("%s; driver: %v; set Cancelled by: %v", describe(c), info.actions, cancelledBy)
	switch c.State {
	case arvados.Complete:
		r.Complete++
	case arvados.Cancelled:
		r.Cancelled++
		errText, _ := c.RuntimeStatus["error"].(string)
		switch {
		case cancels+zeros > 0:
			r.CancelledByDriver++
		case kills > 0 || info.dies:
			r.CancelledAfterKill++
		default:
			w.violate("cancel-"+c.UUID, Violation{Check: CheckNoTransientCancel, Container: c.UUID,
				Evidence: "Cancelled with nothing the driver did to explain it: " + history})
		}
		if errText == "" && cancels+zeros == 0 {
			w.violate("reason-"+c.UUID, Violation{Check: CheckCancelReason, Container: c.UUID,
				Evidence: "Cancelled without runtime_status.error: " + history})
		}
	default:
		r.NotFinal++
		w.violate("final-"+c.UUID, Violation{Check: CheckFinal, Container: c.UUID,
			Evidence: "not final after the drain: " + history})
	}
	explained := kills + zeros
	var ours []string
	for _, u := range unlocks {
		if u.From == fromDispatcher {
			ours = append(ours, u.At.Format("15:04:05.000"))
		}
	}
	if len(ours) > explained || c.LockCount-1 > explained {
		w.violate("unlock-"+c.UUID, Violation{Check: CheckNoTransientUnlock, Container: c.UUID,
			Evidence: fmt.Sprintf("%d unlocks by the dispatcher (at %v) and lock_count %d, but the driver killed its crunch-run %d times and set its priority to 0 %d times: %s",
				len(ours), ours, c.LockCount, kills, zeros, history)})
	}
}

// checkJobHistory checks, over every job the fake Slurm remembers, that no job of one of our
// containers was submitted before the previous one ended, that no live job of ours is left
// for a final container, and that no job was ever submitted for a foreign container.
func (w *world) checkJobHistory(r *Report, jobs []sim.Job) {
	byName := map[string][]sim.Job{}
	for _, j := range jobs {
		if _, foreign := w.foreignJobs[j.ID]; foreign {
			continue
		}
		byName[j.Name] = append(byName[j.Name], j)
		if w.ours[j.Name] != nil {
			r.Jobs++
		}
		if _, ok := w.foreignCtrs[j.Name]; ok {
			w.violate(fmt.Sprintf("foreign-submit-%d", j.ID), Violation{Check: CheckForeign, Container: j.Name,
				Evidence: fmt.Sprintf("job %d submitted for a container locked by another token", j.ID)})
		}
	}
	for name, js := range byName {
		slices.SortFunc(js, func(a, b sim.Job) int { return a.ID - b.ID })
		for i := 1; i < len(js); i++ {
			prev, next := js[i-1], js[i]
			if (!prev.Finished() || next.Submit < prev.End) && !w.seenKey(liveKey(name)) {
				w.violate(fmt.Sprintf("overlap-%d-%d", prev.ID, next.ID), Violation{Check: CheckOneLiveJob, Container: name,
					Evidence: "a job submitted before the previous one ended: " + describeJobs([]sim.Job{prev, next})})
			}
		}
		if c, ok := w.api.Container(name); ok && c.State.Final() {
			for _, j := range js {
				if live(j) {
					w.violate(fmt.Sprintf("leftover-%d", j.ID), Violation{Check: CheckFinal, Container: name,
						Evidence: fmt.Sprintf("job %d still %s although the container is %s", j.ID, j.ShownState(), c.State)})
				}
			}
		}
	}
}

// checkSlurmCalls checks that no scancel or scontrol names a foreign job (by id or name), and
// that no command line holds a token.
func (w *world) checkSlurmCalls() error {
	calls, err := sim.Calls(w.slurm.stateDir)
	if err != nil {
		return fmt.Errorf("read the fake Slurm's calls: %w", err)
	}
	for _, c := range calls {
		line := strings.Join(c.Args, " ")
		for what, secret := range secrets {
			if strings.Contains(line, secret) {
				w.violate("token-call-"+what, Violation{Check: CheckNoToken,
					Evidence: fmt.Sprintf("%s on the command line of %s", what, c.Command)})
			}
		}
		if c.Command != "scancel" && c.Command != "scontrol" {
			continue
		}
		for id, j := range w.foreignJobs {
			if namesJob(c.Args, id, j.Name) {
				w.violate(fmt.Sprintf("foreign-call-%d", id), Violation{Check: CheckForeign,
					Evidence: fmt.Sprintf("%s %s names foreign job %d (%s)", c.Command, line, id, j.Name)})
			}
		}
	}
	return nil
}

// namesJob reports whether Slurm arguments name a job by id (alone, in a list, or JobId=) or
// by name.
func namesJob(args []string, id int, name string) bool {
	sid := strconv.Itoa(id)
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--name="); ok && slices.Contains(strings.Split(v, ","), name) {
			return true
		}
		v, _ := strings.CutPrefix(a, "JobId=")
		v, _ = strings.CutPrefix(v, "jobid=")
		if !strings.HasPrefix(v, "-") && slices.Contains(strings.Split(v, ","), sid) {
			return true
		}
	}
	return false
}

// secrets are the fake API's tokens: none may appear in the dispatcher's output.
var secrets = map[string]string{
	"the dispatcher's token":        fakearvados.AdminToken,
	"the second dispatcher's token": fakearvados.Dispatcher2Token,
	"a user's token":                fakearvados.UserToken,
}

// checkOutput greps every dispatcher run's stdout and stderr for tokens, panics and data races.
func (w *world) checkOutput() {
	for _, d := range w.runs {
		for _, p := range []string{d.stdout, d.stderr} {
			b, err := readFile(p)
			if err != nil {
				w.violate("read-"+p, Violation{Check: CheckNoToken, Evidence: fmt.Sprintf("cannot read %s: %v", p, err)})
				continue
			}
			for what, secret := range secrets {
				if n := lineOf(b, secret); n > 0 {
					w.violate("token-"+p+what, Violation{Check: CheckNoToken,
						Evidence: fmt.Sprintf("%s in %s, line %d", what, filepath.Base(p), n)})
				}
			}
			for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
				if n := lineOf(b, bad); n > 0 {
					w.violate("bad-"+p+bad, Violation{Check: CheckDispatcherHealth,
						Evidence: fmt.Sprintf("%q in %s, line %d", bad, filepath.Base(p), n)})
				}
			}
		}
	}
}

// lineOf returns the 1-based line of the first occurrence of s in b, or 0.
func lineOf(b []byte, s string) int {
	i := bytes.Index(b, []byte(s))
	if i < 0 {
		return 0
	}
	return bytes.Count(b[:i], []byte("\n")) + 1
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
