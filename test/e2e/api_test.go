package e2e

import (
	"bytes"
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

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// api is the fake Arvados API of one scenario, served by an httptest server through a
// middleware that records what fakearvados.Requests does not: when each request started and
// ended, which of the well-known tokens made it, and the container fields of updates. The
// dispatcher and the jobs' stand-ins share the dispatcher's token (as crunch-run does), so
// "who" tells the dispatcher apart from the second dispatcher and the test, not from jobs.
type api struct {
	*fakearvados.Server
	srv *httptest.Server
	tls bool

	mu    sync.Mutex
	calls []apiCall
}

// apiCall is one API request as the middleware saw it. It never holds a token.
type apiCall struct {
	Start, End   time.Time
	Method, Path string
	// Query is the raw query string (the dispatcher sends its token in a header, never here).
	Query  string
	Status int
	// Who is "dispatcher" (AdminToken), "dispatcher2" (Dispatcher2Token) or "other".
	Who string
	// Update is the container={...} of a PUT or PATCH.
	Update map[string]any
}

func startAPI(t *testing.T, clusterID string, useTLS bool) *api {
	t.Helper()
	a := &api{Server: fakearvados.NewHandler(fakearvados.Options{ClusterID: clusterID}), tls: useTLS}
	h := http.HandlerFunc(a.serve)
	if useTLS {
		a.srv = httptest.NewTLSServer(h)
	} else {
		a.srv = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		a.srv.CloseClientConnections()
		a.srv.Close()
		a.Server.Close()
	})
	return a
}

func (a *api) serve(w http.ResponseWriter, r *http.Request) {
	c := apiCall{Start: time.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Who: who(r)}
	if r.Method == http.MethodPut || r.Method == http.MethodPatch {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		c.Update = fakearvados.UpdateAttrs(r.Header.Get("Content-Type"), body)
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	a.Server.Handler().ServeHTTP(sw, r)
	c.Status, c.End = sw.status, time.Now()
	if strings.HasPrefix(r.URL.Path, "/arvados/v1/") {
		a.mu.Lock()
		a.calls = append(a.calls, c)
		a.mu.Unlock()
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func who(r *http.Request) string {
	h := r.Header.Get("Authorization")
	switch {
	case strings.HasSuffix(h, " "+fakearvados.AdminToken):
		return "dispatcher"
	case strings.HasSuffix(h, " "+fakearvados.Dispatcher2Token):
		return "dispatcher2"
	}
	return "other"
}

// Calls returns the API requests so far, in the order they ended.
func (a *api) Calls() []apiCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]apiCall(nil), a.calls...)
}

// Env is what the dispatcher needs to reach the API as its admin token.
func (a *api) Env() []string {
	u, _ := url.Parse(a.srv.URL)
	if a.tls {
		return []string{"ARVADOS_API_HOST=" + u.Host, "ARVADOS_API_TOKEN=" + fakearvados.AdminToken,
			"ARVADOS_API_HOST_INSECURE=1"}
	}
	return []string{"ARVADOS_API_HOST=" + a.srv.URL, "ARVADOS_API_TOKEN=" + fakearvados.AdminToken,
		"ARVADOS_API_HOST_INSECURE=0"}
}

// lockAs locks a container with another token through the API, as a second dispatcher would.
func (a *api) lockAs(t *testing.T, token, uuid string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.srv.URL+"/arvados/v1/containers/"+uuid+"/lock", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("lock %s as another dispatcher: %v", uuid, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("lock %s as another dispatcher: %s: %s", uuid, resp.Status, b)
	}
}

// get returns a container, failing the test when it does not exist.
func (a *api) get(t *testing.T, uuid string) arvados.Container {
	t.Helper()
	c, ok := a.Container(uuid)
	if !ok {
		t.Fatalf("container %s does not exist", uuid)
	}
	return c
}

// describe is a one-line summary of a container for failure messages.
func describe(c arvados.Container) string {
	s := fmt.Sprintf("%s %s prio=%d locks=%d by=%s", c.UUID, c.State, c.Priority, c.LockCount, c.LockedByUUID)
	if e, _ := c.RuntimeStatus["error"].(string); e != "" {
		if len(e) > 200 {
			e = e[:200] + "…"
		}
		s += fmt.Sprintf(" error=%q", e)
	}
	return s
}

// unlocks returns the unlock requests made so far, by anyone.
func (a *api) unlocks() []apiCall {
	var out []apiCall
	for _, c := range a.Calls() {
		if c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/unlock") {
			out = append(out, c)
		}
	}
	return out
}

// cancels returns the successful updates that set state Cancelled.
func (a *api) cancels() []apiCall {
	var out []apiCall
	for _, c := range a.Calls() {
		if c.Update["state"] == string(arvados.Cancelled) && c.Status == http.StatusOK {
			out = append(out, c)
		}
	}
	return out
}
