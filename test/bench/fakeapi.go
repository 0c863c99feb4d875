package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// fakeAPI is a running fakearvados process and a client for its /_fake/ controls.
type fakeAPI struct {
	proc  *process
	ready struct {
		URL        string `json:"url"`
		Host       string `json:"host"`
		Cert       string `json:"cert"`
		AdminToken string `json:"admin_token"`
		ClusterID  string `json:"cluster_id"`
	}
	http *http.Client
}

// startFakeAPI starts fakearvados (https on a free loopback port unless !useTLS) with new
// uuids of cluster, and waits for its ready line.
func startFakeAPI(ctx context.Context, bin, cluster, dir string, useTLS bool) (*fakeAPI, error) {
	outPath := filepath.Join(dir, "fakearvados.out")
	out, err := os.Create(outPath)
	if err != nil {
		return nil, fmt.Errorf("start fakearvados: %w", err)
	}
	defer out.Close()
	args := []string{"--listen=127.0.0.1:0", "--cluster-id=" + cluster, "--tls=" + fmt.Sprint(useTLS),
		"--cert-out=" + filepath.Join(dir, "fakearvados.pem")}
	p, err := startProcess("fakearvados", bin, args, os.Environ(), dir, dir, out)
	if err != nil {
		return nil, err
	}
	a := &fakeAPI{proc: p}
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(outPath)
		if line, _, ok := bytes.Cut(b, []byte("\n")); ok {
			if err := json.Unmarshal(line, &a.ready); err != nil {
				_ = p.stop(5 * time.Second)
				return nil, fmt.Errorf("fakearvados's ready line %q: %w", line, err)
			}
			break
		}
		if !p.alive() || time.Now().After(deadline) {
			_ = p.stop(5 * time.Second)
			return nil, fmt.Errorf("fakearvados did not get ready: %s", p.tail(10))
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			_ = p.stop(5 * time.Second)
			return nil, err
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a.ready.Cert != "" {
		pem, err := os.ReadFile(a.ready.Cert)
		if err != nil {
			_ = p.stop(5 * time.Second)
			return nil, fmt.Errorf("read fakearvados's certificate: %w", err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	a.http = &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	return a, nil
}

// env is the dispatcher's API environment. The token is the fake's well-known admin token.
func (a *fakeAPI) env() []string {
	if strings.HasPrefix(a.ready.URL, "https://") {
		return []string{"ARVADOS_API_HOST=" + a.ready.Host, "ARVADOS_API_TOKEN=" + a.ready.AdminToken,
			"ARVADOS_API_HOST_INSECURE=1"}
	}
	return []string{"ARVADOS_API_HOST=" + a.ready.URL, "ARVADOS_API_TOKEN=" + a.ready.AdminToken,
		"ARVADOS_API_HOST_INSECURE=0"}
}

func (a *fakeAPI) close() {
	if a.proc != nil {
		_ = a.proc.stop(10 * time.Second)
	}
	a.http.CloseIdleConnections()
}

// control calls a /_fake/ control: POST with body (JSON-encoded) or GET when body is nil,
// decoding the answer into out (if not nil).
func (a *fakeAPI) control(ctx context.Context, path string, body, out any) error {
	method, rd := http.MethodGet, io.Reader(nil)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("fake control %s: %w", path, err)
		}
		method, rd = http.MethodPost, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.ready.URL+"/_fake/"+path, rd)
	if err != nil {
		return fmt.Errorf("fake control %s: %w", path, err)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("fake control %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("fake control %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fake control %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("fake control %s: decode the answer: %w", path, err)
		}
	}
	return nil
}

// seedN adds n containers like tmpl (priorities tmpl.Priority+i) and returns their uuids.
func (a *fakeAPI) seedN(ctx context.Context, n int, tmpl arvados.Container) ([]string, error) {
	var r struct {
		UUIDs []string `json:"uuids"`
	}
	err := a.control(ctx, "seedn", map[string]any{"n": n, "template": tmpl}, &r)
	return r.UUIDs, err
}

func (a *fakeAPI) setState(ctx context.Context, uuid string, st arvados.ContainerState) error {
	return a.control(ctx, "state", map[string]any{"uuid": uuid, "state": st}, nil)
}

func (a *fakeAPI) resetRequests(ctx context.Context) error {
	return a.control(ctx, "reset-requests", struct{}{}, nil)
}

func (a *fakeAPI) requests(ctx context.Context) ([]fakearvados.Request, error) {
	var r []fakearvados.Request
	err := a.control(ctx, "requests", nil, &r)
	return r, err
}

func (a *fakeAPI) stats(ctx context.Context) (map[string]fakearvados.EndpointStats, error) {
	r := map[string]fakearvados.EndpointStats{}
	err := a.control(ctx, "stats", nil, &r)
	return r, err
}

func (a *fakeAPI) containers(ctx context.Context) ([]arvados.Container, error) {
	var r []arvados.Container
	err := a.control(ctx, "containers", nil, &r)
	return r, err
}

// pollStart reports whether an API request starts a dispatcher poll: the first page of the
// list of containers locked by our token (later pages carry a ["uuid",">",…] filter).
func pollStart(r fakearvados.Request) bool {
	if r.Method != http.MethodGet || r.Path != "/arvados/v1/containers" {
		return false
	}
	q, err := url.ParseQuery(r.Query)
	if err != nil {
		return false
	}
	var filters [][]any
	if json.Unmarshal([]byte(q.Get("filters")), &filters) != nil {
		return false
	}
	locked, keyset := false, false
	for _, f := range filters {
		if len(f) != 3 {
			continue
		}
		switch f[0] {
		case "locked_by_uuid":
			locked = locked || f[1] == "="
		case "uuid":
			keyset = keyset || f[1] == ">"
		}
	}
	return locked && !keyset
}

// singleGET reports whether a request reads one container by uuid.
func singleGET(r fakearvados.Request) bool {
	rest, ok := strings.CutPrefix(r.Path, "/arvados/v1/containers/")
	return ok && r.Method == http.MethodGet && arvados.ValidContainerUUID(rest)
}

// perPoll is what complete polls cost, from a request log: the requests from the first poll
// start up to (not including) the last one.
type perPoll struct {
	Polls    int
	Requests float64
	Bytes    float64
}

func costPerPoll(reqs []fakearvados.Request) perPoll {
	var starts []int
	for i, r := range reqs {
		if pollStart(r) {
			starts = append(starts, i)
		}
	}
	if len(starts) < 2 {
		return perPoll{}
	}
	var n, bytes int64
	for _, r := range reqs[starts[0]:starts[len(starts)-1]] {
		n++
		bytes += r.RespBytes
	}
	polls := len(starts) - 1
	return perPoll{Polls: polls, Requests: float64(n) / float64(polls), Bytes: float64(bytes) / float64(polls)}
}
