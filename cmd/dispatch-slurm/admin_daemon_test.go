package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/mgmt"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/queue"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// The management tokens of the tests: the dispatcher's, and one it refuses.
const (
	mgmtToken      = "mgmtTokenOfTheTestDispatcher0123456789"
	wrongMgmtToken = "notTheDispatchersMgmtToken0123456789"
)

// fakeDispatcher serves the management endpoint of a dispatcher that tracks tracked and
// requires token, with checks as its health; it returns the endpoint's host:port and the
// number of requests it has had.
func fakeDispatcher(t *testing.T, token string, tracked []queue.Tracked, checks ...mgmt.Check) (string, *atomic.Int32) {
	t.Helper()
	var requests atomic.Int32
	h := mgmt.New(mgmt.Config{Token: token, Checks: checks, Version: "v-test",
		Tracked: func() []queue.Tracked { return tracked }})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), &requests
}

// downAddr is a host:port where nothing listens.
func downAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// mgmtConfig writes a configuration file holding the management token and returns
// --config for it.
func mgmtConfig(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dispatch-slurm.yml")
	if err := os.WriteFile(p, []byte("management:\n  token: "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return "--config=" + p
}

// runList runs an admin command and returns stdout, stderr and the error, failing the test
// if a token (the API's or a management one) appears in any of them.
func runList(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	out, errOut, err := appOutput(args...)
	all := out + errOut
	if err != nil {
		all += err.Error()
	}
	for _, secret := range []string{fakearvados.AdminToken, mgmtToken, wrongMgmtToken} {
		if strings.Contains(all, secret) {
			t.Errorf("a token appears in the output of %v", args)
		}
	}
	return out, errOut, err
}

// containerRowsOf parses containers list --json.
func containerRowsOf(t *testing.T, out string) map[string]containerRow {
	t.Helper()
	var rows []containerRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("containers list --json: %v\n%s", err, out)
	}
	m := map[string]containerRow{}
	for _, r := range rows {
		m[r.UUID] = r
	}
	return m
}

// lineWith returns the line of out that mentions s.
func lineWith(out, s string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

func TestContainersListShowsWhatTheRunningDispatcherDecidedAndWhy(t *testing.T) {
	ac := newAdminCluster(t)
	waitPartitionDown(t, ac)
	const sbatchErr = "sbatch: error: Batch job submission failed: Invalid account"
	addr, _ := fakeDispatcher(t, mgmtToken, []queue.Tracked{
		{UUID: ac.partitionDown, State: "Locked", Priority: 1, JobID: ac.jobs[ac.partitionDown], SlurmState: "PENDING",
			Reason: "PartitionDown", Action: "wait", Why: "pending"},
		{UUID: ac.lockedNoJob, State: "Locked", Priority: 1, Action: "submit", Why: "no job in Slurm", LastError: sbatchErr},
		// What the dispatcher last read is older than what the API says now.
		{UUID: ac.healthy, State: "Queued", Priority: 1, Action: "wait", Why: "not Locked", Adopted: true},
	}, mgmt.Check{Name: "api", Healthy: func() (bool, string) { return false, "3 polls failed in a row" }})
	args := []string{mgmtConfig(t, mgmtToken), "--management-listen=" + addr}

	out, errOut, err := runList(t, ac.adminArgs(append([]string{"containers", "list", "--json"}, args...)...)...)
	if err != nil {
		t.Fatalf("containers list: %v\n%s", err, errOut)
	}
	if !strings.HasPrefix(errOut, "from the dispatcher at http://"+addr+" ") {
		t.Errorf("stderr does not start by saying the list comes from the dispatcher at %s:\n%s", addr, errOut)
	}
	if want := "the dispatcher reports it is unhealthy (ERROR): api: 3 polls failed in a row"; !strings.Contains(errOut, want) {
		t.Errorf("stderr does not say %q:\n%s", want, errOut)
	}
	rows := containerRowsOf(t, out)
	for _, tc := range []struct {
		name string
		uuid string
		want *dispatcherInfo
	}{
		{"a container whose job waits shows the dispatcher's wait", ac.partitionDown,
			&dispatcherInfo{State: "Locked", JobID: ac.jobs[ac.partitionDown], Action: "wait", Why: "pending"}},
		{"a container sbatch refused shows the dispatcher's last error", ac.lockedNoJob,
			&dispatcherInfo{State: "Locked", Action: "submit", Why: "no job in Slurm", LastError: sbatchErr}},
		{"a container the dispatcher saw in another state shows what it saw", ac.healthy,
			&dispatcherInfo{State: "Queued", Action: "wait", Why: "not Locked", Adopted: true}},
		{"a queued container, which the dispatcher does not track, has no dispatcher fields", ac.queued, nil},
		{"a running container the dispatcher does not track has no dispatcher fields", ac.runningNoJob, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := rows[tc.uuid]
			if !ok {
				t.Fatalf("%s is not listed", tc.uuid)
			}
			switch {
			case (r.Dispatcher == nil) != (tc.want == nil):
				t.Errorf("dispatcher fields %+v, want %+v", r.Dispatcher, tc.want)
			case tc.want != nil && *r.Dispatcher != *tc.want:
				t.Errorf("dispatcher fields %+v, want %+v", *r.Dispatcher, *tc.want)
			}
		})
	}
	if r := rows[ac.partitionDown]; r.State != "Locked" || r.Reason != "PartitionDown" || !r.Stuck {
		t.Errorf("the API and squeue are no longer the source of the row: %+v", r)
	}

	table, errOut, err := runList(t, ac.adminArgs(append([]string{"containers", "list"}, args...)...)...)
	if err != nil {
		t.Fatalf("containers list: %v\n%s", err, errOut)
	}
	t.Logf("containers list:\n%s", table)
	for uuid, want := range map[string]string{
		"UUID ":          "DISPATCHER",
		ac.lockedNoJob:   "submit: no job in Slurm; last error: " + sbatchErr,
		ac.healthy:       "wait: not Locked (it last saw Queued)",
		ac.runningNoJob:  "not tracked",
		ac.partitionDown: "wait: pending",
	} {
		if line := lineWith(table, uuid); !strings.HasSuffix(line, want) {
			t.Errorf("the line of %s does not end with %q: %q", uuid, want, line)
		}
	}

	out, errOut, err = runList(t, ac.adminArgs(append([]string{"jobs", "list", "--json"}, args...)...)...)
	if err != nil {
		t.Fatalf("jobs list: %v\n%s", err, errOut)
	}
	var jobs []jobRow
	if err := json.Unmarshal([]byte(out), &jobs); err != nil {
		t.Fatalf("jobs list --json: %v\n%s", err, out)
	}
	for _, j := range jobs {
		switch tracked := j.Name == ac.partitionDown || j.Name == ac.healthy; {
		case tracked && (j.Dispatcher == nil || j.Dispatcher.Action != "wait"):
			t.Errorf("the job of %s, which the dispatcher tracks, has dispatcher fields %+v", j.Name, j.Dispatcher)
		case !tracked && j.Dispatcher != nil:
			t.Errorf("the job of %s, which the dispatcher does not track, has dispatcher fields %+v", j.Name, j.Dispatcher)
		}
	}
}

func TestTheListsFallBackToTheAPIAndSqueueWhenTheDispatcherCannotBeAsked(t *testing.T) {
	ac := newAdminCluster(t)
	tracked := []queue.Tracked{{UUID: ac.healthy, State: "Locked", Action: "wait", Why: "pending"}}
	for _, tc := range []struct {
		name string
		args func(t *testing.T) []string
		// says is in the note of auto and the error of --source=dispatcher, which exits
		// with exit.
		says []string
		exit int
	}{
		{"a dispatcher that is down", func(t *testing.T) []string {
			return []string{mgmtConfig(t, mgmtToken), "--management-listen=" + downAddr(t)}
		}, []string{"not reachable at http://", "connection refused"}, exitFailure},
		{"a wrong management token", func(t *testing.T) []string {
			addr, _ := fakeDispatcher(t, mgmtToken, tracked)
			return []string{mgmtConfig(t, wrongMgmtToken), "--management-listen=" + addr}
		}, []string{"answered 403: authorization error", "check management.token and management.listen"}, exitFailure},
		{"a dispatcher with no management token of its own", func(t *testing.T) []string {
			addr, _ := fakeDispatcher(t, "", tracked)
			return []string{mgmtConfig(t, mgmtToken), "--management-listen=" + addr}
		}, []string{"answered 404: disabled: no management token is configured"}, exitFailure},
		{"another service at the management address", func(t *testing.T) []string {
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("<html>It works!</html>"))
			}))
			t.Cleanup(other.Close)
			return []string{mgmtConfig(t, mgmtToken), "--management-listen=" + strings.TrimPrefix(other.URL, "http://")}
		}, []string{"is not a dispatch-slurm management endpoint"}, exitFailure},
		{"no management token in our configuration", func(t *testing.T) []string {
			addr, _ := fakeDispatcher(t, mgmtToken, tracked)
			return []string{"--management-listen=" + addr}
		}, []string{"no management token is configured (management.token"}, exitUsage},
		{"a management endpoint on port 0, which the dispatcher chooses", func(t *testing.T) []string {
			return []string{mgmtConfig(t, mgmtToken), "--management-listen=127.0.0.1:0"}
		}, []string{"management.listen has port 0 (http://127.0.0.1:0)", "--management-listen"}, exitUsage},
		{"no management endpoint in our configuration", func(t *testing.T) []string {
			return []string{mgmtConfig(t, mgmtToken), "--management-listen="}
		}, []string{"management.listen is empty"}, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args(t)
			for _, cmd := range [][]string{{"containers", "list"}, {"jobs", "list"}} {
				out, errOut, err := runList(t, ac.adminArgs(append(append(cmd, "--json"), args...)...)...)
				if err != nil {
					t.Fatalf("%v with --source=auto: %v, want the API's and squeue's list\n%s", cmd, err, errOut)
				}
				t.Logf("%v: stderr: %s", cmd, errOut)
				if !strings.HasPrefix(errOut, "dispatcher not consulted (") || !strings.HasSuffix(errOut, "): reading the API and squeue\n") {
					t.Errorf("%v: stderr does not say that it reads the API and squeue without the dispatcher:\n%s", cmd, errOut)
				}
				for _, s := range tc.says {
					if !strings.Contains(errOut, s) {
						t.Errorf("%v: stderr does not say %q:\n%s", cmd, s, errOut)
					}
				}
				if strings.Contains(out, `"dispatcher"`) || !strings.Contains(out, ac.healthy) {
					t.Errorf("%v: want the list without dispatcher fields:\n%s", cmd, out)
				}

				out, _, err = runList(t, ac.adminArgs(append(append(cmd, "--source=dispatcher"), args...)...)...)
				if err == nil || exitCode(err) != tc.exit {
					t.Fatalf("%v --source=dispatcher: err %v (exit %d), want exit %d", cmd, err, exitCode(err), tc.exit)
				}
				for _, s := range append([]string{"--source=dispatcher: "}, tc.says...) {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%v --source=dispatcher: error %q does not say %q", cmd, err, s)
					}
				}
				t.Logf("%v --source=dispatcher: %v", cmd, err)
				if out != "" {
					t.Errorf("%v --source=dispatcher printed a list without the dispatcher:\n%s", cmd, out)
				}
			}
		})
	}
}

func TestSourceDirectDoesNotAskTheDispatcher(t *testing.T) {
	ac := newAdminCluster(t)
	addr, requests := fakeDispatcher(t, mgmtToken, []queue.Tracked{{UUID: ac.healthy, State: "Locked", Action: "wait"}})
	for _, cmd := range [][]string{{"containers", "list"}, {"jobs", "list"}} {
		out, errOut, err := runList(t, ac.adminArgs(append(cmd, "--source=direct", mgmtConfig(t, mgmtToken), "--management-listen="+addr)...)...)
		if err != nil {
			t.Fatalf("%v --source=direct: %v\n%s", cmd, err, errOut)
		}
		if errOut != "reading the API and squeue (--source=direct: the dispatcher is not asked)\n" {
			t.Errorf("%v --source=direct: stderr %q", cmd, errOut)
		}
		if strings.Contains(out, "DISPATCHER") || !strings.Contains(out, ac.jobs[ac.healthy]) {
			t.Errorf("%v --source=direct: want the table without the DISPATCHER column:\n%s", cmd, out)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the dispatcher was asked %d times", n)
	}
	if _, _, err := runList(t, "containers", "list", "--source=daemon"); err == nil || exitCode(err) != exitUsage ||
		!strings.Contains(err.Error(), `--source "daemon"`) {
		t.Errorf("--source=daemon: err %v (exit %d), want a usage error naming it", err, exitCode(err))
	}
}

func TestADispatcherThatDoesNotAnswerInTimeIsNotWaitedFor(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	d := dispatcherEndpoint{url: hang.URL, token: mgmtToken, timeout: 50 * time.Millisecond}
	start := time.Now()
	_, err := d.ask(context.Background())
	if err == nil || !strings.Contains(err.Error(), "did not answer within 50ms") {
		t.Errorf("err %v, want one saying it did not answer within 50ms", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("asking took %s", took)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.timeout = time.Minute
	if _, err := d.ask(ctx); err == nil || strings.Contains(err.Error(), "did not answer") || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("err %v, want the caller's cancellation, not the dispatcher's fault", err)
	}
}

func TestTheSourceLineSaysWhenTheDispatchersAnswerIsNotFresh(t *testing.T) {
	now := time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		at      time.Time
		says    string
		notSays string
	}{
		{"an answer of a second ago says nothing of its date", now.Add(-time.Second), "", "dated"},
		{"an answer of 12 seconds ago says how old it is", now.Add(-12 * time.Second), "; the dispatcher's answer is dated 2026-11-29T15:59:48Z, 12s ago", ""},
		{"an answer from the future says the clocks differ", now.Add(2 * time.Minute), "dated 2026-11-29T16:02:00Z, 2m ahead of this host's clock", ""},
		{"an undated answer says so", time.Time{}, "answer is undated", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &dispatcherView{url: "http://127.0.0.1:9007", resp: mgmt.ContainersResponse{Version: "v1", Time: tc.at,
				Containers: make([]mgmt.Container, 3)}}
			line := v.sourceLine(now, dispatcherStaleAfter)
			if !strings.HasPrefix(line, "from the dispatcher at http://127.0.0.1:9007 (version v1, tracking 3 containers) and from the API and squeue") {
				t.Errorf("line %q", line)
			}
			if !strings.Contains(line, tc.says) || (tc.notSays != "" && strings.Contains(line, tc.notSays)) {
				t.Errorf("line %q, want it to say %q and not %q", line, tc.says, tc.notSays)
			}
		})
	}
}

func TestTheHealthLineSaysWhatTheDispatcherReportsFailing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		health mgmt.Health
		want   string
	}{
		{"a healthy dispatcher gets no line", mgmt.Health{Health: "OK", Checks: map[string]string{"api": "OK"}}, ""},
		{"a dispatcher that does not report its health gets no line", mgmt.Health{}, ""},
		{"an unhealthy dispatcher's error is shown", mgmt.Health{Health: "ERROR", Error: "squeue: last success 2m ago"},
			"the dispatcher reports it is unhealthy (ERROR): squeue: last success 2m ago"},
		{"without an error, the failing checks are shown in order", mgmt.Health{Health: "ERROR",
			Checks: map[string]string{"squeue": "suspect", "api": "down", "dispatch": "OK"}},
			"the dispatcher reports it is unhealthy (ERROR): api: down; squeue: suspect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &dispatcherView{resp: mgmt.ContainersResponse{Health: tc.health}}
			if got := v.healthLine(); got != tc.want {
				t.Errorf("health line %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTheDispatcherColumnSaysWhatItDecidedAndWhy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		info  *dispatcherInfo
		state string
		ours  bool
		want  string
	}{
		{"a container of ours it does not track is marked", nil, "Locked", true, "not tracked"},
		{"a queued container it does not track is left blank", nil, "Queued", false, ""},
		{"a decision without a reason is the action alone", &dispatcherInfo{State: "Locked", Action: "wait"}, "Locked", true, "wait"},
		{"a decision shows its reason", &dispatcherInfo{State: "Locked", Action: "submit", Why: "no job in Slurm"}, "Locked", true,
			"submit: no job in Slurm"},
		{"the last error follows the reason", &dispatcherInfo{State: "Locked", Action: "wait", Why: "backing off after a failure",
			LastError: "sbatch failed"}, "Locked", true, "wait: backing off after a failure; last error: sbatch failed"},
		{"a state the API no longer shows is named", &dispatcherInfo{State: "Locked", Action: "wait", Why: "running; waiting for squeue"},
			"Complete", false, "wait: running; waiting for squeue (it last saw Locked)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dispatcherCell(tc.info, tc.state, tc.ours); got != tc.want {
				t.Errorf("cell %q, want %q", got, tc.want)
			}
		})
	}
}
