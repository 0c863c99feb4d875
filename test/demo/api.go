package demo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// apiReady is the line fakearvados prints when it serves (see its main.go). The tokens are
// the fake's well-known ones; the demo never prints them.
type apiReady struct {
	URL        string `json:"url"`
	Host       string `json:"host"`
	Cert       string `json:"cert"`
	AdminToken string `json:"admin_token"`
	ClusterID  string `json:"cluster_id"`
}

// fakeAPI is the running fake Arvados API and a client of its /_fake/ controls.
type fakeAPI struct {
	*proc
	ready apiReady
	hc    *http.Client
}

// startAPI starts fakearvados on a loopback port with TLS, its certificate and logs in dir,
// and waits (up to wait) for its ready line.
func startAPI(ctx context.Context, bin, dir, clusterID string, env []string, wait time.Duration,
	after func(time.Duration) <-chan time.Time) (*fakeAPI, error) {
	out := filepath.Join(dir, "fakearvados.out")
	args := []string{"--listen=127.0.0.1:0", "--tls", "--cluster-id=" + clusterID,
		"--cert-out=" + filepath.Join(dir, "fakearvados.pem")}
	// stdout (the ready line) and stderr share the file: the ready line is its first JSON line.
	p, err := startProc("fakearvados", bin, args, env, dir, out)
	if err != nil {
		return nil, err
	}
	a := &fakeAPI{proc: p}
	deadline := after(wait)
	for {
		if a.ready, err = readReady(out); err == nil {
			break
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("fakearvados ended (%s) before it was ready: %s", p.exitText(), p.tail(5))
		case <-deadline:
			_ = p.stop(time.Second, after)
			return nil, fmt.Errorf("fakearvados not ready after %v: %s", wait, p.tail(5))
		case <-ctx.Done():
			_ = p.stop(time.Second, after)
			return nil, ctx.Err()
		case <-after(20 * time.Millisecond):
		}
	}
	pem, err := os.ReadFile(a.ready.Cert)
	if err != nil {
		_ = p.stop(time.Second, after)
		return nil, fmt.Errorf("read the fake API's certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	a.hc = &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	return a, nil
}

var errNotReady = errors.New("no ready line yet")

// readReady reads the first JSON line of fakearvados's output.
func readReady(path string) (apiReady, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return apiReady{}, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r apiReady
		if err := json.Unmarshal([]byte(line), &r); err == nil && r.URL != "" && r.Host != "" {
			return r, nil
		}
	}
	return apiReady{}, errNotReady
}

// close drops the client's idle connections (and their goroutines).
func (a *fakeAPI) close() { a.hc.CloseIdleConnections() }

// control calls a /_fake/ control: POST with body in JSON (GET when body is nil), decoding
// the answer into out (when not nil).
func (a *fakeAPI) control(ctx context.Context, path string, body, out any) error {
	method, rd := http.MethodGet, io.Reader(nil)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("fake API %s: %w", path, err)
		}
		method, rd = http.MethodPost, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.ready.URL+"/_fake/"+path, rd)
	if err != nil {
		return fmt.Errorf("fake API %s: %w", path, err)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("fake API %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("fake API %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fake API %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("fake API %s: decode the answer: %w", path, err)
		}
	}
	return nil
}

// seed adds containers.
func (a *fakeAPI) seed(ctx context.Context, cs []arvados.Container) error {
	var got struct {
		UUIDs []string `json:"uuids"`
	}
	if err := a.control(ctx, "seed", cs, &got); err != nil {
		return err
	}
	if len(got.UUIDs) != len(cs) {
		return fmt.Errorf("fake API seed: %d uuids for %d containers", len(got.UUIDs), len(cs))
	}
	return nil
}

// setPriority changes a container's priority, as its user would.
func (a *fakeAPI) setPriority(ctx context.Context, uuid string, p int64) error {
	return a.control(ctx, "priority", map[string]any{"uuid": uuid, "priority": p}, nil)
}

// containers returns every container.
func (a *fakeAPI) containers(ctx context.Context) ([]arvados.Container, error) {
	var cs []arvados.Container
	err := a.control(ctx, "containers", nil, &cs)
	return cs, err
}
