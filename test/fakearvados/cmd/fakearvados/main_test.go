package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// buildProgram builds this command into a temporary directory.
func buildProgram(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "fakearvados")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// started is a running program and what it printed when ready.
type started struct {
	cmd    *exec.Cmd
	ready  ready
	stderr *bytes.Buffer
}

// start runs the program and waits (with a deadline) for its ready line.
func start(t *testing.T, bin string, args ...string) *started {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &started{cmd: cmd, stderr: &stderr}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := make(chan string, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("the program exited without a ready line; stderr: %s", stderr.String())
		}
		if err := json.Unmarshal([]byte(line), &p.ready); err != nil {
			t.Fatalf("ready line %q: %v", line, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no ready line within 30s; stderr: %s", stderr.String())
	}
	return p
}

// stop sends SIGTERM and returns the exit error (nil for status 0).
func (p *started) stop(t *testing.T) error {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the program did not exit within 30s of SIGTERM")
		return nil
	}
}

func TestTheProgramServesHTTPSAndItsControlsAndStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	bin := buildProgram(t)
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.json")
	if err := os.WriteFile(seed, []byte(`[{"priority":5},{"priority":0}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	certPath := filepath.Join(dir, "cert.pem")
	p := start(t, bin, "--listen", "127.0.0.1:0", "--seed", seed, "--cert-out", certPath, "--max-dispatch-attempts", "2")

	r := p.ready
	if !strings.HasPrefix(r.URL, "https://127.0.0.1:") || r.URL != "https://"+r.Host || r.Cert != certPath ||
		r.AdminToken != fakearvados.AdminToken || r.AdminTokenUUID != fakearvados.AdminTokenUUID {
		t.Fatalf("ready line %+v", r)
	}
	pem, err := os.ReadFile(r.Cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", r.Cert)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	call := func(method, path, token string, form url.Values) (int, []byte) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(context.Background(), method, r.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}

	// The seed file was loaded; a control adds one more.
	st, body := call("POST", "/_fake/seed", "", nil)
	if st != 400 {
		t.Fatalf("seeding nothing: %d %s", st, body)
	}
	req, _ := http.NewRequestWithContext(context.Background(), "POST", r.URL+"/_fake/seed", strings.NewReader(`[{"priority":9}]`))
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var seeded struct{ UUIDs []string }
	if err := json.NewDecoder(res.Body).Decode(&seeded); err != nil || len(seeded.UUIDs) != 1 {
		t.Fatalf("seed control: %v %v", err, seeded)
	}
	res.Body.Close()

	st, body = call("GET", "/arvados/v1/containers", r.AdminToken, nil)
	var list struct {
		ItemsAvailable int `json:"items_available"`
	}
	if err := json.Unmarshal(body, &list); st != 200 || err != nil || list.ItemsAvailable != 3 {
		t.Fatalf("list: %d %s", st, body)
	}

	// --max-dispatch-attempts 2: the second unlock cancels.
	uuid := seeded.UUIDs[0]
	for range 2 {
		if st, body := call("POST", "/arvados/v1/containers/"+uuid+"/lock", r.AdminToken, url.Values{}); st != 200 {
			t.Fatalf("lock: %d %s", st, body)
		}
		if st, body := call("POST", "/arvados/v1/containers/"+uuid+"/unlock", r.AdminToken, url.Values{}); st != 200 {
			t.Fatalf("unlock: %d %s", st, body)
		}
	}
	if _, body := call("GET", "/arvados/v1/containers/"+uuid, r.AdminToken, nil); !strings.Contains(string(body), `"state":"Cancelled"`) {
		t.Fatalf("after two lock/unlock cycles with --max-dispatch-attempts 2: %s", body)
	}

	var stats map[string]fakearvados.EndpointStats
	st, body = call("GET", "/_fake/stats", "", nil)
	if err := json.Unmarshal(body, &stats); st != 200 || err != nil || stats["POST /arvados/v1/containers/{uuid}/lock"].Count != 2 {
		t.Fatalf("stats: %d %s", st, body)
	}

	if err := p.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, p.stderr.String())
	}
}

func TestTheProgramCanServePlainHTTP(t *testing.T) {
	t.Parallel()
	p := start(t, buildProgram(t), "--tls=false")
	if !strings.HasPrefix(p.ready.URL, "http://127.0.0.1:") || p.ready.Cert != "" {
		t.Fatalf("ready line %+v", p.ready)
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

func TestRunRefusesANonLoopbackAddress(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":8443"} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"--listen", addr}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("--listen %s: err = %v, want a refusal naming loopback", addr, err)
		}
		if stdout.Len() != 0 {
			t.Errorf("--listen %s printed %q", addr, stdout.String())
		}
	}
}

func TestRunRejectsABadSeedFile(t *testing.T) {
	t.Parallel()
	seed := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(seed, []byte(`{"not":"a list"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"--seed", seed}, io.Discard, io.Discard)
	var syntax *json.UnmarshalTypeError
	if !errors.As(err, &syntax) {
		t.Fatalf("err = %v, want a JSON type error", err)
	}
}

func TestRunStopsWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--tls=false"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var r ready
	if err := json.Unmarshal([]byte(line), &r); err != nil || r.Host == "" {
		t.Fatalf("ready line %q: %v", line, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after its context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	_, _ = io.Copy(io.Discard, pr)
}

func TestACertificateInATemporaryFileIsRemovedOnExitAndOneGivenIsKept(t *testing.T) {
	t.Parallel()
	bin := buildProgram(t)
	temp := start(t, bin, "--listen", "127.0.0.1:0")
	if _, err := os.Stat(temp.ready.Cert); err != nil {
		t.Fatalf("the ready line names %q: %v", temp.ready.Cert, err)
	}
	given := filepath.Join(t.TempDir(), "cert.pem")
	kept := start(t, bin, "--listen", "127.0.0.1:0", "--cert-out", given)
	for _, p := range []*started{temp, kept} {
		if err := p.stop(t); err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, p.stderr.String())
		}
	}
	if _, err := os.Stat(temp.ready.Cert); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary certificate %s is still there after exit (stat: %v)", temp.ready.Cert, err)
	}
	if _, err := os.Stat(given); err != nil {
		t.Errorf("the certificate written to --cert-out is gone: %v", err)
	}
}
