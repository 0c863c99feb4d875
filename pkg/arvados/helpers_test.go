package arvados

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testToken is the secret that must never show up in an error or a log line.
const testToken = "v2/zzzzz-gj3su-000000000000000/s3cr3tTokenValue0123456789abcdefghijklmnopq"

const testUUID = "zzzzz-dz642-000000000000001"

// fakeClock is the injected clock: Sleep records the wait and advances Now at once.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return nil
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// testEnv is a client wired to a test server, a fake clock and an observed logger. At cleanup
// it checks that no log line carries the token and closes idle connections (goleak).
type testEnv struct {
	c     *Client
	clock *fakeClock
	logs  *observer.ObservedLogs
}

// newTestClient returns a client for the server at rawURL ("http://127.0.0.1:port").
// mutate, if not nil, adjusts the configuration before NewClient.
func newTestClient(t *testing.T, rawURL string, mutate func(*Config)) *testEnv {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	clock := newFakeClock()
	cfg := Config{Host: u.Host, Token: testToken, Scheme: u.Scheme, Logger: zap.New(core),
		Now: clock.Now, Sleep: clock.Sleep}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	// Draws at the top of the range make the waits predictable: exactly d.
	c.jitter = func() float64 { return 1 }
	// Every error any request returns is checked for the token, not only those a test
	// looks at.
	var mu sync.Mutex
	var errs []error
	c.errorHook = func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	t.Cleanup(func() {
		c.CloseIdleConnections()
		assertLogsHaveNoToken(t, logs)
		mu.Lock()
		defer mu.Unlock()
		for _, err := range errs {
			assertNoToken(t, err)
		}
	})
	return &testEnv{c: c, clock: clock, logs: logs}
}

func assertLogsHaveNoToken(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, testToken) || strings.Contains(line, "s3cr3t") {
			t.Errorf("log line contains the token: %s", line)
		}
	}
}

// assertNoToken fails if err's message contains the token or any recognisable part of it.
func assertNoToken(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if msg := err.Error(); strings.Contains(msg, testToken) || strings.Contains(msg, "s3cr3t") {
		t.Errorf("error contains the token: %s", msg)
	}
}

// recorder is an httptest handler that records requests and answers from a script.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
	// answer returns the reply to the n-th request (n from 0); nil answers 200 {}.
	answer func(n int, r *http.Request) reply
}

// reply is what the recorder answers. hangup closes the connection without answering; block
// answers nothing until the client gives up.
type reply struct {
	status int
	header http.Header
	body   string
	hangup bool
	block  bool
}

type recorded struct {
	Method, Path, RawQuery, Body string
	Header                       http.Header
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	n := len(rec.reqs)
	rec.reqs = append(rec.reqs, recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Body: string(body), Header: r.Header.Clone()})
	rec.mu.Unlock()
	rep := reply{status: http.StatusOK, body: "{}"}
	if rec.answer != nil {
		rep = rec.answer(n, r)
	}
	if rep.hangup {
		hijackClose(w)
		return
	}
	if rep.block {
		<-r.Context().Done()
		return
	}
	for k, vs := range rep.header {
		w.Header()[k] = vs
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func (rec *recorder) Requests() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.reqs...)
}

// serve starts an httptest server around rec.
func serve(t *testing.T, rec *recorder) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return srv
}

// hijackClose answers nothing: it reads the request and closes the connection, so the client
// has sent its request and gets no response (an ambiguous failure).
func hijackClose(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}
