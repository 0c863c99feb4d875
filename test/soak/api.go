package soak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// Listener names in apiCall.From.
const (
	fromDispatcher = "dispatcher"
	fromCrunchRun  = "crunch-run"
)

// api is the fake Arvados API on two loopback listeners sharing one fakearvados.Server: the
// dispatcher's, where faults apply, and the crunch-run stand-ins' (and the driver's), without
// faults. Every API request is recorded with the container fields of updates.
type api struct {
	*fakearvados.Server
	dispatcherURL, crunchRunURL string
	servers                     []*http.Server
	// client is the driver's, for lockAs.
	client *http.Client

	mu      sync.Mutex
	calls   []apiCall
	burst   int           // requests still to answer with a 5xx
	status  int           // the status of the burst
	latency time.Duration // added to each of the dispatcher's requests
	closing chan struct{}
}

// apiCall is one API request. It never holds a token.
type apiCall struct {
	At           time.Time
	From         string
	Method, Path string
	Status       int
	// Injected: answered by an injected fault, never reached the fake.
	Injected bool
	// Update is the container={...} of a PUT or PATCH.
	Update map[string]any
}

func startAPI(cluster string) (*api, error) {
	a := &api{Server: fakearvados.NewHandler(fakearvados.Options{ClusterID: cluster}), closing: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{}}}
	for _, from := range []string{fromDispatcher, fromCrunchRun} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			a.close()
			return nil, fmt.Errorf("listen for the fake API: %w", err)
		}
		srv := &http.Server{Handler: a.handler(from), ReadHeaderTimeout: 10 * time.Second}
		a.servers = append(a.servers, srv)
		u := "http://" + ln.Addr().String()
		if from == fromDispatcher {
			a.dispatcherURL = u
		} else {
			a.crunchRunURL = u
		}
		go func() { _ = srv.Serve(ln) }()
	}
	return a, nil
}

func (a *api) close() {
	close(a.closing)
	a.client.CloseIdleConnections()
	for _, s := range a.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			_ = s.Close()
		}
		cancel()
	}
	a.Server.Close()
}

// inject5xx makes the dispatcher's next n requests fail with status.
func (a *api) inject5xx(n, status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.burst, a.status = n, status
}

// setLatency adds d to each of the dispatcher's requests.
func (a *api) setLatency(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.latency = d
}

func (a *api) clearFaults() {
	a.inject5xx(0, 0)
	a.setLatency(0)
}

func (a *api) handler(from string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := apiCall{At: time.Now(), From: from, Method: r.Method, Path: r.URL.Path}
		if r.Method == http.MethodPut || r.Method == http.MethodPatch {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
			r.Body = io.NopCloser(bytes.NewReader(body))
			c.Update = fakearvados.UpdateAttrs(r.Header.Get("Content-Type"), body)
		}
		status, delay := a.fault(from)
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
			case <-a.closing:
			}
		}
		if status != 0 {
			c.Status, c.Injected = status, true
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"errors":["soak: injected fault"]}`)
		} else {
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			a.Server.Handler().ServeHTTP(sw, r)
			c.Status = sw.status
		}
		if strings.HasPrefix(r.URL.Path, "/arvados/v1/") {
			a.mu.Lock()
			a.calls = append(a.calls, c)
			a.mu.Unlock()
		}
	})
}

// fault returns the status to answer (0: none) and the latency to add for one request.
func (a *api) fault(from string) (int, time.Duration) {
	if from != fromDispatcher {
		return 0, 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.burst > 0 {
		a.burst--
		return a.status, a.latency
	}
	return 0, a.latency
}

// Calls returns the API requests so far, oldest first.
func (a *api) Calls() []apiCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]apiCall(nil), a.calls...)
}

// lockAs locks a container with another token, as a second dispatcher would, and optionally
// moves it to Running, through the crunch-run listener (no faults).
func (a *api) lockAs(ctx context.Context, token, uuid string, running bool) error {
	if err := a.post(ctx, token, http.MethodPost, "/arvados/v1/containers/"+uuid+"/lock", nil); err != nil {
		return err
	}
	if !running {
		return nil
	}
	form := url.Values{"container": {`{"state":"Running"}`}}
	return a.post(ctx, token, http.MethodPut, "/arvados/v1/containers/"+uuid, form)
}

func (a *api) post(ctx context.Context, token, method, path string, form url.Values) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.crunchRunURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return nil
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

// uuidOf returns the container uuid a request path names ("" for none).
func uuidOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/arvados/v1/containers/")
	if !ok {
		return ""
	}
	uuid, _, _ := strings.Cut(rest, "/")
	return uuid
}

var errNoCandidate = errors.New("nothing to act on")
