package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/mgmt"
	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

// mgmtToken is the management token of the operations scenarios (the harness checks that no
// run ever prints it).
const mgmtToken = "mgmt0e2e0token0123456789abcdefghijklmnopqrstuvwxyz"

// opsConfig writes our YAML with the management token and a short API retry budget (so that
// an outage fails polls within a second or two), and returns --config for it.
func (h *harness) opsConfig() string {
	h.t.Helper()
	path := filepath.Join(h.dir, "ops.yml")
	yml := "management:\n  token: " + mgmtToken + "\napi:\n  max_elapsed: 1s\n  timeout: 2s\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return "--config=" + path
}

// startWithEnv starts a dispatcher with extra environment variables and extra flags.
func (h *harness) startWithEnv(env []string, extra ...string) *dispatcher {
	h.t.Helper()
	d := startDispatcher(h.t, len(h.runs), h.dir, append(h.env(), env...), h.args(extra...))
	h.runs = append(h.runs, d)
	return d
}

// mgmtURL waits for the dispatcher to log where its management endpoint listens.
func (h *harness) mgmtURL(d *dispatcher) string {
	h.t.Helper()
	var addr string
	h.waitFor(30*time.Second, "the management endpoint's address in the log", func() (bool, string) {
		for _, l := range d.logs() {
			if a, ok := l["addr"].(string); ok && strings.HasPrefix(fmt.Sprint(l["msg"]), "management endpoint listening") {
				addr = a
				return true, ""
			}
		}
		return false, "not logged yet"
	})
	return "http://" + addr
}

// mgmtGet GETs a management path with the given Authorization header ("" for none).
func mgmtGet(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// ping returns /_health/ping's status and answer.
func ping(t *testing.T, base string) (int, mgmt.Health) {
	t.Helper()
	status, body := mgmtGet(t, base+mgmt.PingPath, "")
	var h mgmt.Health
	if status != 0 {
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("ping answered %d with %q, not JSON: %v", status, body, err)
		}
	}
	return status, h
}

// The acceptance scenario of the operations issue for health: /_health/ping says OK while the
// API poll and squeue succeed, turns 503 saying the API is failing while the API is down, and
// OK again once it is back. Fake tier only: it is about the dispatcher, not Slurm.
func TestHealthFailsWhileTheAPIIsDownAndRecovers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeTier, options{})
	h.seed(ctr(10, 1, 64, "30"))
	d := h.start(h.opsConfig())
	base := h.mgmtURL(d)
	waitPing := func(what string, want int, check func(mgmt.Health) bool) {
		t.Helper()
		h.waitFor(30*time.Second, what, func() (bool, string) {
			status, health := ping(t, base)
			return status == want && check(health), fmt.Sprintf("%d %+v", status, health)
		})
	}
	waitPing("ping OK", http.StatusOK, func(hl mgmt.Health) bool { return hl.OK() })

	h.api.SetDown(true)
	waitPing("ping failing because of the API", http.StatusServiceUnavailable, func(hl mgmt.Health) bool {
		return hl.Health == "ERROR" && (hl.Checks["api"] != "OK" || hl.Checks["dispatch"] != "OK") &&
			hl.Checks["squeue"] == "OK"
	})
	_, failing := ping(t, base)
	t.Logf("while the API is down: %s", failing.Error)
	if !strings.Contains(failing.Error, "api") && !strings.Contains(failing.Error, "API poll") {
		t.Errorf("the error %q does not say that the API poll fails", failing.Error)
	}
	h.api.SetDown(false)
	waitPing("ping OK again", http.StatusOK, func(hl mgmt.Health) bool { return hl.OK() })
	h.expectNoUnlockOrCancel()
}

// The acceptance scenario for metrics, the management endpoint and systemd: three containers
// run; /metrics and /dispatch/containers refuse without the token; with it, the parsed metrics
// count what happened (three locks, three submits, three queue waits, as many sbatch as the
// Slurm wrapper saw); the notify socket got READY=1, watchdog pings and, at SIGTERM,
// STOPPING=1.
func TestMetricsCountTheScenarioAndTheEndpointNeedsTheToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeTier, options{})
	sock := testenv.ListenNotify(t)
	uuids := h.seed(ctr(10, 1, 64, "3"), ctr(9, 1, 64, "3"), ctr(8, 1, 64, "3"))
	d := h.startWithEnv([]string{"NOTIFY_SOCKET=" + sock.Path, "WATCHDOG_USEC=400000"}, h.opsConfig())
	base := h.mgmtURL(d)

	for _, path := range []string{mgmt.MetricsPath, mgmt.ContainersPath} {
		for _, tc := range []struct {
			auth string
			want int
		}{{"", http.StatusUnauthorized}, {"Bearer not-the-token", http.StatusForbidden}} {
			if status, body := mgmtGet(t, base+path, tc.auth); status != tc.want {
				t.Errorf("%s with %q: %d %s, want %d", path, tc.auth, status, body, tc.want)
			}
		}
	}

	h.waitStates(uuids, 60*time.Second, arvados.Running)
	got, err := mgmt.FetchContainers(context.Background(), base, mgmtToken)
	if err != nil {
		t.Fatalf("FetchContainers: %v", err)
	}
	var listed []string
	for _, c := range got.Containers {
		listed = append(listed, c.UUID)
		if c.JobID == "" && c.State == "Running" {
			t.Errorf("a running container without its job: %+v", c)
		}
	}
	slices.Sort(listed)
	want := slices.Sorted(slices.Values(uuids))
	if !slices.Equal(listed, want) {
		t.Errorf("/dispatch/containers lists %v, want %v", listed, want)
	}
	sock.WaitFor(t, "READY=1", 20*time.Second)

	h.waitStates(uuids, 60*time.Second, arvados.Complete)
	var mfs map[string]*dto.MetricFamily
	h.waitFor(30*time.Second, "the metrics to show three submits", func() (bool, string) {
		mfs = scrape(t, base)
		n := value(mfs, "dispatch_slurm_submits_total", map[string]string{"outcome": "ok"})
		return n == 3, fmt.Sprintf("%g submits", n)
	})
	sbatch := len(h.slurm.callsOf("sbatch"))
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"dispatch_slurm_locks_total", map[string]string{"outcome": "ok"}, 3},
		{"dispatch_slurm_submits_total", map[string]string{"outcome": "ok"}, 3},
		{"dispatch_slurm_queue_wait_seconds", nil, 3},
		{"dispatch_slurm_slurm_command_duration_seconds", map[string]string{"command": "sbatch", "outcome": "ok"}, float64(sbatch)},
		{"dispatch_slurm_api_request_duration_seconds", map[string]string{"method": "POST", "endpoint": "containers/{uuid}/lock"}, 3},
		{"dispatch_slurm_build_info", nil, 1},
		{"dispatch_slurm_healthy", nil, 1},
	} {
		if got := value(mfs, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %g, want %g", tc.name, tc.labels, got, tc.want)
		}
	}
	if v := value(mfs, "dispatch_slurm_poll_duration_seconds", map[string]string{"outcome": "ok"}); v < 2 {
		t.Errorf("%g good polls counted, want several", v)
	}

	sock.WaitFor(t, "WATCHDOG=1", 20*time.Second)
	if code := d.stop(15 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	sock.WaitFor(t, "STOPPING=1", 20*time.Second)
}

// scrape reads /metrics with the token and parses it.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	status, body := mgmtGet(t, base+mgmt.MetricsPath, "Bearer "+mgmtToken)
	if status != http.StatusOK {
		t.Fatalf("/metrics with the token: %d %s", status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// value is the value of the series of name whose labels include labels: a counter's or
// gauge's value, a histogram's count; the sum over the series that match.
func value(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	mf, ok := mfs[name]
	if !ok {
		return -1
	}
	var sum float64
	for _, m := range mf.GetMetric() {
		match := true
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}
