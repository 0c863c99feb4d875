package mgmt

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/queue"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "mgmt-token-0123456789abcdefghijklmnopqrstuvwxyzABCD"

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// world is what the checks look at, settable by a test.
type world struct {
	mu                     sync.Mutex
	now                    time.Time
	lastPoll, lastSnap     time.Time
	dispatchOK, squeueOK   bool
	dispatchWhy, squeueWhy string
}

func newWorld() *world {
	return &world{now: t0, lastPoll: t0.Add(-time.Second), lastSnap: t0.Add(-time.Second), dispatchOK: true, squeueOK: true}
}

func (w *world) get(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
}

func (w *world) checks() []Check {
	return []Check{
		{Name: "dispatch", Healthy: func() (ok bool, why string) { w.get(func() { ok, why = w.dispatchOK, w.dispatchWhy }); return }},
		{Name: "api", Last: func() (t time.Time) { w.get(func() { t = w.lastPoll }); return }, MaxAge: 30 * time.Second},
		{Name: "squeue", Healthy: func() (ok bool, why string) { w.get(func() { ok, why = w.squeueOK, w.squeueWhy }); return },
			Last: func() (t time.Time) { w.get(func() { t = w.lastSnap }); return }, MaxAge: 10 * time.Second},
	}
}

func newTestServer(t *testing.T, w *world, tok string) *httptest.Server {
	t.Helper()
	s := New(Config{Token: tok, Checks: w.checks(), Version: "v-test", Started: t0.Add(-time.Minute),
		Now: func() (n time.Time) { w.get(func() { n = w.now }); return },
		Metrics: http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(rw, "dispatch_slurm_up 1\n")
		}),
		Tracked: func() []queue.Tracked {
			return []queue.Tracked{{UUID: "zzzzz-dz642-000000000000001", State: "Locked", Priority: 1 << 52, JobID: "17",
				SlurmState: "PENDING", Reason: "Priority", Action: "wait", Why: "job pending", Supervisor: true}}
		}})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url, auth string) (int, string) {
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
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPingSaysWhatFails(t *testing.T) {
	for _, tc := range []struct {
		name       string
		change     func(w *world)
		wantStatus int
		wantError  []string
	}{
		{"all recent and healthy is OK", func(*world) {}, 200, nil},
		{"a poll older than its max age is an error", func(w *world) { w.lastPoll = t0.Add(-31 * time.Second) },
			503, []string{"api: last success 31s ago, more than 30s"}},
		{"no poll yet is an error saying since when", func(w *world) { w.lastPoll = time.Time{} },
			503, []string{"api: no success yet since start-up 1m0s ago"}},
		{"the watcher's own verdict is reported", func(w *world) { w.squeueOK, w.squeueWhy = false, "squeue failed 3 times in a row: boom" },
			503, []string{"squeue: squeue failed 3 times in a row: boom"}},
		{"several failures are all reported", func(w *world) {
			w.dispatchOK, w.dispatchWhy = false, "submitting paused"
			w.lastSnap = t0.Add(-time.Hour)
		}, 503, []string{"dispatch: submitting paused", "squeue: last success 1h0m0s ago, more than 10s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			tc.change(w)
			srv := newTestServer(t, w, token)
			status, body := get(t, srv.URL+PingPath, "")
			if status != tc.wantStatus {
				t.Errorf("status %d, want %d: %s", status, tc.wantStatus, body)
			}
			var h Health
			if err := json.Unmarshal([]byte(body), &h); err != nil {
				t.Fatalf("not JSON: %v: %s", err, body)
			}
			if tc.wantError == nil {
				if body != "{\"health\":\"OK\",\"checks\":{\"api\":\"OK\",\"dispatch\":\"OK\",\"squeue\":\"OK\"}}\n" {
					t.Errorf("body %s", body)
				}
				return
			}
			if h.Health != "ERROR" {
				t.Errorf("health %q, want ERROR", h.Health)
			}
			for _, want := range tc.wantError {
				if !strings.Contains(h.Error, want) {
					t.Errorf("error %q does not say %q", h.Error, want)
				}
			}
		})
	}
}

func TestPingTurnsFailingAndRecovers(t *testing.T) {
	w := newWorld()
	srv := newTestServer(t, w, token)
	if s, _ := get(t, srv.URL+PingPath, ""); s != 200 {
		t.Fatalf("status %d at first", s)
	}
	w.get(func() { w.now = w.now.Add(time.Minute) }) // nothing succeeds for a minute
	if s, body := get(t, srv.URL+PingPath, ""); s != 503 || !strings.Contains(body, "api: last success") {
		t.Fatalf("status %d after a minute without a poll: %s", s, body)
	}
	w.get(func() { w.lastPoll, w.lastSnap = w.now, w.now })
	if s, body := get(t, srv.URL+PingPath, ""); s != 200 {
		t.Fatalf("status %d after the poll and squeue succeeded again: %s", s, body)
	}
}

func TestTheManagementPathsRefuseWithoutTheToken(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured string
		auth       string
		wantStatus int
	}{
		{"no header is 401", token, "", 401},
		{"a wrong token is 403", token, "Bearer nottheright-token", 403},
		{"a token in another scheme is 401", token, "Basic " + token, 401},
		{"the token is 200", token, "Bearer " + token, 200},
		{"the token as OAuth2 is 200", token, "OAuth2 " + token, 200},
		{"no token configured is 404 even with a header", "", "Bearer " + token, 404},
	} {
		for _, path := range []string{MetricsPath, ContainersPath} {
			t.Run(tc.name+" on "+path, func(t *testing.T) {
				srv := newTestServer(t, newWorld(), tc.configured)
				status, body := get(t, srv.URL+path, tc.auth)
				if status != tc.wantStatus {
					t.Errorf("status %d, want %d: %s", status, tc.wantStatus, body)
				}
				if status != 200 && !strings.Contains(body, `"errors"`) {
					t.Errorf("refusal without an errors body: %s", body)
				}
				if strings.Contains(body, token) {
					t.Error("the answer holds the token")
				}
			})
		}
	}
}

func TestPingNeedsNoTokenAndIgnoresAWrongOne(t *testing.T) {
	srv := newTestServer(t, newWorld(), token)
	for _, auth := range []string{"", "Bearer wrong"} {
		if s, body := get(t, srv.URL+PingPath, auth); s != 200 {
			t.Errorf("ping with %q: %d %s", auth, s, body)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+PingPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST ping: %d, want 405", resp.StatusCode)
	}
}

func TestFetchContainersReadsWhatTheServerTracks(t *testing.T) {
	w := newWorld()
	srv := newTestServer(t, w, token)
	got, err := FetchContainers(context.Background(), srv.URL+"/", token)
	if err != nil {
		t.Fatal(err)
	}
	want := Container{UUID: "zzzzz-dz642-000000000000001", State: "Locked", Priority: 1 << 52, JobID: "17",
		SlurmState: "PENDING", Reason: "Priority", Action: "wait", Why: "job pending", Supervisor: true}
	if len(got.Containers) != 1 || got.Containers[0] != want {
		t.Errorf("containers %+v, want [%+v]", got.Containers, want)
	}
	if !got.Health.OK() || got.Version != "v-test" || !got.Time.Equal(t0) {
		t.Errorf("health %+v, version %q, time %v", got.Health, got.Version, got.Time)
	}
	for _, tc := range []struct{ name, tok, want string }{
		{"a wrong token is an error saying so", "wrong", "403: authorization error"},
		{"no token is an error saying one is needed", "", "401: authorization required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FetchContainers(context.Background(), srv.URL, tc.tok)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	srv.Close()
	if _, err := FetchContainers(context.Background(), srv.URL, token); err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("a closed endpoint: %v", err)
	}
}

func TestListenServesUntilTheContextEnds(t *testing.T) {
	l, err := Listen("127.0.0.1:0", New(Config{Checks: newWorld().checks(), Now: func() time.Time { return t0 }}), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx) }()
	if s, _ := get(t, "http://"+l.Addr()+PingPath, ""); s != 200 {
		t.Errorf("ping %d", s)
	}
	if _, err := Listen(l.Addr(), http.NotFoundHandler(), nil); err == nil {
		t.Error("a second listener on the same address was accepted")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestBaseURLReachesTheEndpointFromThisHost(t *testing.T) {
	for _, tc := range []struct{ name, listen, want string }{
		{"loopback is kept", "127.0.0.1:9007", "http://127.0.0.1:9007"},
		{"a host name is kept", "head.example.org:9007", "http://head.example.org:9007"},
		{"every IPv4 address is reached on loopback", "0.0.0.0:9007", "http://127.0.0.1:9007"},
		{"a port alone is reached on loopback", ":9007", "http://127.0.0.1:9007"},
		{"every IPv6 address is reached on ::1", "[::]:9007", "http://[::1]:9007"},
		{"no endpoint is no URL", "", ""},
		{"no port is no URL", "localhost", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := BaseURL(tc.listen); got != tc.want {
				t.Errorf("BaseURL(%q) = %q, want %q", tc.listen, got, tc.want)
			}
		})
	}
}
