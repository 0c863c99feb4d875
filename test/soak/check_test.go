package soak

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

// testWorld is a world with a fake API that does not listen, for the checks.
func testWorld(t *testing.T) *world {
	t.Helper()
	a := &api{Server: fakearvados.NewHandler(fakearvados.Options{ClusterID: "soakx"})}
	t.Cleanup(a.Server.Close)
	return &world{cluster: "soakx", api: a, ours: map[string]*ctrInfo{}, seen: map[string]bool{},
		foreignCtrs: map[string]arvados.Container{}, foreignJobs: map[int]sim.Job{}}
}

func checks(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Check)
	}
	return out
}

const u1 = "soakx-dz642-aaaaaaaaaaaaaaa"

func TestCheckContainerJudgesEachEnding(t *testing.T) {
	unlock := apiCall{From: fromDispatcher, Method: http.MethodPost, Path: "/arvados/v1/containers/" + u1 + "/unlock", Status: 200}
	withError := map[string]any{"error": "Slurm job 7 ended (FAILED) while the container was Running"}
	for _, tc := range []struct {
		name    string
		c       arvados.Container
		info    ctrInfo
		unlocks []apiCall
		want    []string
	}{
		{name: "a Complete container nobody touched passes",
			c: arvados.Container{State: arvados.Complete, LockCount: 1}},
		{name: "a container cancelled by the user needs no error",
			c: arvados.Container{State: arvados.Cancelled, LockCount: 1}, info: ctrInfo{actions: []string{actCancel}}},
		{name: "a container whose priority the driver set to 0 may be cancelled without an error",
			c: arvados.Container{State: arvados.Cancelled, LockCount: 1}, info: ctrInfo{actions: []string{actZero}}},
		{name: "a container whose crunch-run was killed may be cancelled with an error",
			c: arvados.Container{State: arvados.Cancelled, LockCount: 1, RuntimeStatus: withError}, info: ctrInfo{actions: []string{actKill}}},
		{name: "a container whose command dies may be cancelled with an error",
			c: arvados.Container{State: arvados.Cancelled, LockCount: 1, RuntimeStatus: withError}, info: ctrInfo{dies: true}},
		{name: "a container cancelled after a kill but without an error lacks a reason",
			c: arvados.Container{State: arvados.Cancelled, LockCount: 1}, info: ctrInfo{actions: []string{actKill}},
			want: []string{CheckCancelReason}},
		{name: "a container cancelled with an error but nothing the driver did was cancelled for a transient fault",
			c:    arvados.Container{State: arvados.Cancelled, LockCount: 1, RuntimeStatus: withError},
			want: []string{CheckNoTransientCancel}},
		{name: "a priority change does not explain a cancellation",
			c: arvados.Container{State: arvados.Cancelled, LockCount: 1}, info: ctrInfo{actions: []string{actPriority}},
			want: []string{CheckNoTransientCancel, CheckCancelReason}},
		{name: "a container still Running after the drain is lost",
			c: arvados.Container{State: arvados.Running, LockCount: 1}, want: []string{CheckFinal}},
		{name: "an unlock after a killed crunch-run is the retry policy",
			c: arvados.Container{State: arvados.Complete, LockCount: 2}, info: ctrInfo{actions: []string{actKill}},
			unlocks: []apiCall{unlock}},
		{name: "an unlock nothing explains costs the user an attempt",
			c: arvados.Container{State: arvados.Complete, LockCount: 2}, unlocks: []apiCall{unlock},
			want: []string{CheckNoTransientUnlock}},
		{name: "a second lock nothing explains shows an unlock even when the log has none",
			c: arvados.Container{State: arvados.Complete, LockCount: 2}, want: []string{CheckNoTransientUnlock}},
		{name: "two unlocks after one priority 0 are one too many",
			c: arvados.Container{State: arvados.Complete, LockCount: 3}, info: ctrInfo{actions: []string{actZero, actPriority}},
			unlocks: []apiCall{unlock, unlock}, want: []string{CheckNoTransientUnlock}},
		{name: "an unlock by another token is not the dispatcher's",
			c:       arvados.Container{State: arvados.Complete, LockCount: 1},
			unlocks: []apiCall{{From: fromCrunchRun, Method: http.MethodPost, Path: unlock.Path, Status: 200}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := testWorld(t)
			tc.c.UUID, tc.info.uuid = u1, u1
			var r Report
			w.checkContainer(&r, &tc.info, tc.c, tc.unlocks, nil)
			if got := strings.Join(checks(w.violations), ","); got != strings.Join(tc.want, ",") {
				t.Errorf("violations %q, want %q: %v", got, tc.want, w.violations)
			}
		})
	}
}

func job(id int, name, state string, submit, end int64) sim.Job {
	return sim.Job{ID: id, Name: name, State: state, Submit: submit, End: end}
}

func TestCheckLiveJobsFlagsTwoLiveJobsOfOneContainerOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		jobs []sim.Job
		want int
	}{
		{"one live job and one finished are fine",
			[]sim.Job{job(1, u1, sim.StateCancelled, 10, 11), job(2, u1, sim.StateRunning, 12, 0)}, 0},
		{"a pending and a running job of one container break the invariant",
			[]sim.Job{job(1, u1, sim.StatePending, 10, 0), job(2, u1, sim.StateRunning, 12, 0)}, 1},
		{"a completing job is still live",
			[]sim.Job{{ID: 1, Name: u1, State: sim.StateCancelled, Completing: true}, job(2, u1, sim.StatePending, 12, 0)}, 1},
		{"two live jobs of a name that is not ours are not our business",
			[]sim.Job{job(1, "other", sim.StatePending, 10, 0), job(2, "other", sim.StatePending, 12, 0)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := testWorld(t)
			w.checkLiveJobs(tc.jobs)
			if len(w.violations) != tc.want {
				t.Errorf("%d violations, want %d: %v", len(w.violations), tc.want, w.violations)
			}
		})
	}
}

func TestCheckJobHistoryFlagsOverlapsLeftoversAndForeignSubmits(t *testing.T) {
	const foreign = "soakx-dz642-fffffffffffffff"
	for _, tc := range []struct {
		name  string
		state arvados.ContainerState
		jobs  []sim.Job
		want  []string
	}{
		{"a job submitted after the previous one ended is a retry", arvados.Complete,
			[]sim.Job{job(1, u1, sim.StateFailed, 10, 12), job(2, u1, sim.StateCompleted, 12, 15)}, nil},
		{"a job submitted before the previous one ended overlaps it", arvados.Complete,
			[]sim.Job{job(1, u1, sim.StateFailed, 10, 12), job(2, u1, sim.StateCompleted, 11, 15)}, []string{CheckOneLiveJob}},
		{"a live job left for a final container is a leftover", arvados.Cancelled,
			[]sim.Job{job(1, u1, sim.StateRunning, 10, 0)}, []string{CheckFinal}},
		{"a job for a container locked by another token is a foreign submit", arvados.Complete,
			[]sim.Job{job(1, foreign, sim.StateCompleted, 10, 11)}, []string{CheckForeign}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := testWorld(t)
			w.api.Seed(arvados.Container{UUID: u1, State: tc.state})
			w.ours[u1] = &ctrInfo{uuid: u1}
			w.foreignCtrs[foreign] = arvados.Container{UUID: foreign}
			var r Report
			w.checkJobHistory(&r, tc.jobs)
			if got := strings.Join(checks(w.violations), ","); got != strings.Join(tc.want, ",") {
				t.Errorf("violations %q, want %q: %v", got, tc.want, w.violations)
			}
		})
	}
}

func TestNamesJobFindsAJobByIDListOrName(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--batch", "--signal=TERM", "12"}, true},
		{[]string{"11,12,13"}, true},
		{[]string{"update", "JobId=11,12", "Nice=5"}, true},
		{[]string{"--name=soak-foreign-pending"}, true},
		{[]string{"--name=" + u1}, false},
		{[]string{"update", "JobId=112", "Nice=5"}, false},
		{[]string{"--signal=12", "7"}, false},
	} {
		if got := namesJob(tc.args, 12, "soak-foreign-pending"); got != tc.want {
			t.Errorf("namesJob(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestForeignContainerWritesAndChangesAreViolations(t *testing.T) {
	w := testWorld(t)
	const foreign = "soakx-dz642-fffffffffffffff"
	w.api.Seed(arvados.Container{UUID: foreign, State: arvados.Locked, Priority: 5, LockedByUUID: "zzzzz-gj3su-other", LockCount: 1})
	was, _ := w.api.Container(foreign)
	w.foreignCtrs[foreign] = was
	w.checkForeignContainers()
	if len(w.violations) != 0 {
		t.Fatalf("an untouched foreign container: %v", w.violations)
	}
	w.api.calls = []apiCall{
		{From: fromDispatcher, Method: http.MethodGet, Path: "/arvados/v1/containers/" + foreign, Status: 200},
		{From: fromDispatcher, Method: http.MethodPost, Path: "/arvados/v1/containers/" + foreign + "/unlock", Status: 403},
	}
	if err := w.api.SetPriority(foreign, 0); err != nil {
		t.Fatal(err)
	}
	w.checkForeignContainers()
	w.checkEnd(&Report{})
	if got := strings.Join(checks(w.violations), ","); got != CheckForeign+","+CheckForeign {
		t.Errorf("violations %q, want the change and the unlock attempt: %v", got, w.violations)
	}
}

func TestCheckOutputFindsTokensWithoutPrintingThem(t *testing.T) {
	w := testWorld(t)
	dir := t.TempDir()
	d := &dispatcher{stdout: filepath.Join(dir, "run-0.out"), stderr: filepath.Join(dir, "run-0.err")}
	w.runs = []*dispatcher{d}
	if err := os.WriteFile(d.stdout, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.stderr, []byte("{}\n{\"token\":\""+fakearvados.AdminToken+"\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.checkOutput()
	if len(w.violations) != 1 || w.violations[0].Check != CheckNoToken || !strings.Contains(w.violations[0].Evidence, "line 2") {
		t.Fatalf("violations %v, want one no-token violation at line 2", w.violations)
	}
	if strings.Contains(w.violations[0].String(), fakearvados.AdminToken) {
		t.Errorf("the violation prints the token")
	}
}

func TestGaveUpAtStartupOnlyForAnAPIOutageBeforeDispatching(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stderr string
		code   int
		want   bool
	}{
		{"an API outage at startup", `{"msg":"arvados request"}` + "\ndispatch-slurm: the API server 127.0.0.1:1 is unavailable: get current token: 503\n", 1, true},
		{"an API outage after it started dispatching", `{"msg":"dispatch-slurm starting"}` + "\ndispatch-slurm: the API server 127.0.0.1:1 is unavailable\n", 1, false},
		{"any other exit", "dispatch-slurm: something else\n", 1, false},
		{"a panic", "panic: oops\n", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "run.err")
			if err := os.WriteFile(p, []byte(tc.stderr), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := gaveUpAtStartup(&dispatcher{stderr: p, exitCode: tc.code}); got != tc.want {
				t.Errorf("gaveUpAtStartup = %v, want %v", got, tc.want)
			}
		})
	}
}
