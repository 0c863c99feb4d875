package fakearvados_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// stepClock returns a clock that advances one millisecond per reading, so that records written
// one after the other have distinct, ordered timestamps.
func stepClock() func() time.Time {
	var mu sync.Mutex
	now := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Millisecond)
		return now
	}
}

// harness is a fake server and a client for raw HTTP calls to it.
type harness struct {
	t  *testing.T
	s  *fakearvados.Server
	hc *http.Client
}

func newHarness(t *testing.T, opts fakearvados.Options) *harness {
	t.Helper()
	if opts.Now == nil {
		opts.Now = stepClock()
	}
	s := fakearvados.New(opts)
	t.Cleanup(s.Close)
	return &harness{t: t, s: s, hc: s.HTTPClient()}
}

// resp is an API answer.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// obj decodes the body as a JSON object, numbers kept exact.
func (r resp) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode response %q: %v", r.body, err)
	}
	return m
}

// errs returns the "errors" of an error answer and checks the error_token's form.
func (r resp) errs(t *testing.T) []string {
	t.Helper()
	var e struct {
		Errors     []string `json:"errors"`
		ErrorToken string   `json:"error_token"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || len(e.Errors) == 0 {
		t.Fatalf("response %d %q is not an Arvados error (%v)", r.status, r.body, err)
	}
	if !errorToken.MatchString(e.ErrorToken) {
		t.Errorf("error_token %q does not look like <unix time>+<8 hex>", e.ErrorToken)
	}
	return e.Errors
}

// items decodes a list answer's items.
func (r resp) items(t *testing.T) []map[string]any {
	t.Helper()
	raw, _ := r.obj(t)["items"].([]any)
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i] = x.(map[string]any)
	}
	return out
}

// do sends a request with parameters the way Arvados clients do: in the query string for GET,
// as a form body otherwise.
func (h *harness) do(method, path, token string, p url.Values) resp {
	h.t.Helper()
	u := h.s.URL() + path
	var body io.Reader
	if method == http.MethodGet {
		if len(p) > 0 {
			u += "?" + p.Encode()
		}
	} else if p != nil {
		body = strings.NewReader(p.Encode())
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return h.send(req)
}

// doJSON sends the parameters as a JSON object body.
func (h *harness) doJSON(method, path, token string, body any) resp {
	h.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		h.t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, h.s.URL()+path, bytes.NewReader(b))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return h.send(req)
}

func (h *harness) send(req *http.Request) resp {
	h.t.Helper()
	res, err := h.hc.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// The API calls a dispatcher makes.

func (h *harness) list(token string, p url.Values) resp {
	h.t.Helper()
	return h.do(http.MethodGet, "/arvados/v1/containers", token, p)
}

func (h *harness) lock(token, uuid string) resp {
	h.t.Helper()
	return h.do(http.MethodPost, "/arvados/v1/containers/"+uuid+"/lock", token, url.Values{})
}

func (h *harness) unlock(token, uuid string) resp {
	h.t.Helper()
	return h.do(http.MethodPost, "/arvados/v1/containers/"+uuid+"/unlock", token, url.Values{})
}

// update sends container={...} as one form field, as Arvados clients do.
func (h *harness) update(token, uuid string, attrs map[string]any) resp {
	h.t.Helper()
	b, err := json.Marshal(attrs)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(http.MethodPut, "/arvados/v1/containers/"+uuid, token, url.Values{"container": {string(b)}})
}

func (h *harness) container(uuid string) arvados.Container {
	h.t.Helper()
	c, ok := h.s.Container(uuid)
	if !ok {
		h.t.Fatalf("container %s is gone", uuid)
	}
	return c
}

// seedOne seeds one container and returns its uuid.
func (h *harness) seedOne(c arvados.Container) string {
	return h.s.Seed(c)[0]
}

// jsonParam encodes v as Go's encoding/json does (so ">" becomes "\u003e").
func jsonParam(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantStatus(t *testing.T, r resp, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
}

// wantError checks an error answer's status and that its first message contains want.
func wantError(t *testing.T, r resp, status int, want string) {
	t.Helper()
	wantStatus(t, r, status)
	errs := r.errs(t)
	if !strings.Contains(errs[0], want) {
		t.Fatalf("error %q does not contain %q", errs[0], want)
	}
}
