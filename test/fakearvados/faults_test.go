package fakearvados_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// get sends a GET and returns the answer or the transport error.
func (h *harness) get(path string) (resp, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, h.s.URL()+path, nil)
	if err != nil {
		return resp{}, err
	}
	req.Header.Set("Authorization", "Bearer "+fakearvados.AdminToken)
	res, err := h.hc.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}, err
}

func TestTheNextNMatchingRequestsFailWithRetryAfter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	h.s.InjectFault(fakearvados.Fault{Status: 503, RetryAfter: "2", Count: 2, PathPrefix: "/arvados/v1/containers", Method: "GET"})

	// Other paths and other methods are not affected.
	wantStatus(t, h.do("GET", "/arvados/v1/api_client_authorizations/current", fakearvados.AdminToken, nil), 200)
	uuid := h.seedOne(arvados.Container{Priority: 1})
	wantStatus(t, h.lock(fakearvados.AdminToken, uuid), 200)

	for i := range 2 {
		r := h.list(fakearvados.AdminToken, nil)
		wantError(t, r, 503, "injected fault")
		if got := r.header.Get("Retry-After"); got != "2" {
			t.Fatalf("request %d: Retry-After %q, want 2", i, got)
		}
	}
	wantStatus(t, h.list(fakearvados.AdminToken, nil), 200)
}

func TestAFaultWithoutACountLastsUntilCleared(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	h.s.InjectFault(fakearvados.Fault{Status: 429})
	for range 3 {
		wantStatus(t, h.list(fakearvados.AdminToken, nil), 429)
	}
	h.s.ClearFaults()
	wantStatus(t, h.list(fakearvados.AdminToken, nil), 200)
}

func TestAFaultWithStatusZeroClosesTheConnection(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	h.s.InjectFault(fakearvados.Fault{Status: 0, Count: 1})
	_, err := h.get("/arvados/v1/containers")
	if err == nil {
		t.Fatal("a request met by a closed connection succeeded")
	}
	wantStatus(t, h.list(fakearvados.AdminToken, nil), 200)
	if reqs := h.s.Requests(); reqs[0].Status != 0 {
		t.Fatalf("the aborted request is logged with status %d, want 0", reqs[0].Status)
	}
}

func TestAnOutageAnswers503UntilItEnds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuid := h.seedOne(arvados.Container{Priority: 1})
	h.s.SetDown(true)
	wantError(t, h.list(fakearvados.AdminToken, nil), 503, "outage")
	wantStatus(t, h.lock(fakearvados.AdminToken, uuid), 503)
	wantStatus(t, h.do("GET", "/arvados/v1/api_client_authorizations/current", "", nil), 503)
	if c := h.container(uuid); c.State != arvados.Queued {
		t.Fatalf("a lock during an outage took effect: %s", c.State)
	}
	h.s.SetDown(false)
	wantStatus(t, h.lock(fakearvados.AdminToken, uuid), 200)
}

func TestLatencyDelaysEveryRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	const d = 150 * time.Millisecond
	h.s.SetLatency(d)
	start := time.Now()
	wantStatus(t, h.list(fakearvados.AdminToken, nil), 200)
	if took := time.Since(start); took < d {
		t.Fatalf("request took %v with %v latency", took, d)
	}
	h.s.SetLatency(0)
}

func TestAClientThatGivesUpDoesNotWaitOutTheLatency(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	h.s.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.s.URL()+"/arvados/v1/containers", nil)
	if _, err := h.hc.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the client's deadline", err)
	}
	// Close (in Cleanup) must not wait an hour either.
}

func TestTheRequestLogHasTokenUUIDsNeverSecrets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuid := h.seedOne(arvados.Container{Priority: 1})
	wantStatus(t, h.lock(fakearvados.AdminToken, uuid), 200)
	secret := h.do("GET", "/arvados/v1/containers/"+uuid+"/auth", fakearvados.AdminToken, nil).obj(t)["api_token"].(string)
	h.do("GET", "/arvados/v1/containers", "", url.Values{"api_token": {fakearvados.Dispatcher2Token}, "limit": {"1"}})
	h.do("GET", "/arvados/v1/containers/"+uuid, secret, nil)
	h.do("POST", "/arvados/v1/containers/"+uuid+"/unlock", "", url.Values{"api_token": {fakearvados.AdminToken}})
	h.do("GET", "/arvados/v1/containers", "not-a-real-token", nil)
	h.do("GET", "/arvados/v1/containers", fakearvados.UserToken, nil)

	reqs := h.s.Requests()
	wantTokens := []string{fakearvados.AdminTokenUUID, fakearvados.AdminTokenUUID, fakearvados.Dispatcher2TokenUUID,
		h.s.AuthUUID(uuid), fakearvados.AdminTokenUUID, "invalid", fakearvados.UserTokenUUID}
	if len(reqs) != len(wantTokens) {
		t.Fatalf("%d requests logged, want %d: %+v", len(reqs), len(wantTokens), reqs)
	}
	for i, r := range reqs {
		if i == 3 {
			// The container token was revoked by the unlock; it was valid when used.
			if r.Token == "" || r.Token == "invalid" {
				t.Errorf("request %d: token %q, want the container token's uuid", i, r.Token)
			}
			continue
		}
		if r.Token != wantTokens[i] {
			t.Errorf("request %d (%s %s): token %q, want %q", i, r.Method, r.Path, r.Token, wantTokens[i])
		}
		if r.RequestID == "" || r.Status == 0 {
			t.Errorf("request %d lacks a request id or status: %+v", i, r)
		}
	}
	if reqs[2].Query != "limit=1" {
		t.Errorf("query logged as %q, want the api_token dropped", reqs[2].Query)
	}
	logged, _ := json.Marshal(map[string]any{"requests": reqs, "stats": h.s.Stats()})
	for _, s := range []string{fakearvados.AdminToken, fakearvados.Dispatcher2Token, fakearvados.UserToken, secret, "not-a-real-token"} {
		if strings.Contains(string(logged), s) {
			t.Errorf("the request log contains a token secret %q…", s[:8])
		}
	}
}

func TestStatsCountRequestsPerEndpoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuids := h.s.SeedN(3, arvados.Container{Priority: 1})
	for _, u := range uuids {
		wantStatus(t, h.lock(fakearvados.AdminToken, u), 200)
	}
	wantStatus(t, h.list(fakearvados.AdminToken, nil), 200)
	wantStatus(t, h.list(fakearvados.AdminToken, nil), 200)
	st := h.s.Stats()
	if got := st["POST /arvados/v1/containers/{uuid}/lock"]; got.Count != 3 || got.Bytes == 0 {
		t.Errorf("lock stats %+v, want 3 requests with bytes", got)
	}
	if got := st["GET /arvados/v1/containers"]; got.Count != 2 || got.Bytes == 0 {
		t.Errorf("list stats %+v, want 2 requests with bytes", got)
	}
	var sum int64
	for _, r := range h.s.Requests() {
		sum += r.RespBytes
	}
	if total := st["POST /arvados/v1/containers/{uuid}/lock"].Bytes + st["GET /arvados/v1/containers"].Bytes; total != sum {
		t.Errorf("stats count %d bytes, the request log %d", total, sum)
	}
	h.s.ResetRequests()
	if len(h.s.Requests()) != 0 || len(h.s.Stats()) != 0 {
		t.Error("ResetRequests left requests or stats")
	}
}

func TestHTTPSWithTheServersClient(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{TLS: true})
	if !strings.HasPrefix(h.s.URL(), "https://127.0.0.1:") || !strings.HasSuffix(h.s.URL(), h.s.Host()) {
		t.Fatalf("URL %q, Host %q", h.s.URL(), h.s.Host())
	}
	wantStatus(t, h.do("GET", "/arvados/v1/api_client_authorizations/current", fakearvados.AdminToken, nil), 200)

	// A client that does not trust the certificate fails verification...
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, h.s.URL()+"/arvados/v1/containers", nil)
	_, err := (&http.Client{Transport: tr}).Do(req)
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &uerr) {
		t.Fatalf("an untrusting client got %v, want an unknown-authority error", err)
	}
	// ...and one that trusts CertPEM (as the standalone program's cert file) succeeds, by name too.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(h.s.CertPEM()) {
		t.Fatal("CertPEM is not a PEM certificate")
	}
	tr2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr2.CloseIdleConnections()
	byName := strings.Replace(h.s.URL(), "127.0.0.1", "localhost", 1)
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodGet, byName+"/arvados/v1/containers", nil)
	req.Header.Set("Authorization", "Bearer "+fakearvados.AdminToken)
	res, err := (&http.Client{Transport: tr2}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
}

func TestTheDebugLogNamesTokenUUIDsNeverSecrets(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	h := newHarness(t, fakearvados.Options{Logger: zap.New(core)})
	wantStatus(t, h.list(fakearvados.AdminToken, nil), 200)
	h.do("GET", "/arvados/v1/containers", "", url.Values{"api_token": {fakearvados.UserToken}})
	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("%d log entries, want one per request", len(entries))
	}
	var all strings.Builder
	for _, e := range entries {
		for k, v := range e.ContextMap() {
			fmt.Fprintf(&all, "%s=%v ", k, v)
		}
	}
	if !strings.Contains(all.String(), fakearvados.AdminTokenUUID) {
		t.Errorf("the log does not name the token's uuid: %s", all.String())
	}
	for _, secret := range []string{fakearvados.AdminToken, fakearvados.UserToken} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("the log contains a token secret: %s", all.String())
		}
	}
}
