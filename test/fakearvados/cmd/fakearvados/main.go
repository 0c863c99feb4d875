// Command fakearvados runs the fake Arvados API server on a loopback address, for the demo and the
// benchmarks. When ready it prints one JSON line on stdout:
//
//	{"url":"https://127.0.0.1:40123","host":"127.0.0.1:40123","cert":"/tmp/fakearvados-123.pem",
//	 "admin_token":"...","admin_token_uuid":"...","dispatcher2_token":"...","user_token":"...",
//	 "cluster_id":"zzzzz"}
//
// and serves until SIGTERM or SIGINT. The test controls are under /_fake/ on the same listener
// (no token; loopback clients only), for example:
//
//	curl --cacert "$cert" -d '[{"priority":1}]' "$url/_fake/seed"
//	curl --cacert "$cert" "$url/_fake/stats"
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakearvados:", err)
		os.Exit(1)
	}
}

type ready struct {
	URL              string `json:"url"`
	Host             string `json:"host"`
	Cert             string `json:"cert"`
	AdminToken       string `json:"admin_token"`
	AdminTokenUUID   string `json:"admin_token_uuid"`
	Dispatcher2Token string `json:"dispatcher2_token"`
	UserToken        string `json:"user_token"`
	ClusterID        string `json:"cluster_id"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakearvados", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to listen on")
	useTLS := fs.Bool("tls", true, "serve https with a self-signed certificate")
	certOut := fs.String("cert-out", "", "write the certificate (PEM) here (default: a temporary file, removed on exit)")
	seed := fs.String("seed", "", "JSON file with an array of containers to start with")
	maxAttempts := fs.Int("max-dispatch-attempts", 10, "Containers.MaxDispatchAttempts")
	clusterID := fs.String("cluster-id", "zzzzz", "cluster id for new uuids")
	verbose := fs.Bool("verbose", false, "log every API request to stderr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: fakearvados [flags]\n\nExample:\n  fakearvados --listen 127.0.0.1:8443 --seed containers.json\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := zap.NewNop()
	if *verbose {
		cfg := zap.NewDevelopmentConfig()
		cfg.OutputPaths = []string{"stderr"}
		l, err := cfg.Build()
		if err != nil {
			return fmt.Errorf("build logger: %w", err)
		}
		logger = l
	}
	var seeds []arvados.Container
	if *seed != "" {
		b, err := os.ReadFile(*seed)
		if err != nil {
			return fmt.Errorf("read seed file: %w", err)
		}
		if err := json.Unmarshal(b, &seeds); err != nil {
			return fmt.Errorf("parse seed file %s: %w", *seed, err)
		}
	}
	s, err := fakearvados.Start(fakearvados.Options{
		TLS: *useTLS, MaxDispatchAttempts: *maxAttempts, ClusterID: *clusterID, Addr: *listen, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer s.Close()
	s.Seed(seeds...)
	certPath, err := writeCert(s.CertPEM(), *certOut)
	if err != nil {
		return err
	}
	if *certOut == "" && certPath != "" {
		defer os.Remove(certPath) // our temporary file: nobody else will remove it
	}
	line, _ := json.Marshal(ready{
		URL: s.URL(), Host: s.Host(), Cert: certPath,
		AdminToken: fakearvados.AdminToken, AdminTokenUUID: fakearvados.AdminTokenUUID,
		Dispatcher2Token: fakearvados.Dispatcher2Token, UserToken: fakearvados.UserToken,
		ClusterID: s.ClusterID(),
	})
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return fmt.Errorf("print ready line: %w", err)
	}
	<-ctx.Done()
	return nil
}

// writeCert writes the certificate to path (or a new temporary file) and returns where.
func writeCert(pem []byte, path string) (string, error) {
	if pem == nil {
		return "", nil
	}
	if path == "" {
		f, err := os.CreateTemp("", "fakearvados-*.pem")
		if err != nil {
			return "", fmt.Errorf("create certificate file: %w", err)
		}
		path = f.Name()
		if err := f.Close(); err != nil {
			return "", fmt.Errorf("create certificate file: %w", err)
		}
	}
	if err := os.WriteFile(path, pem, 0o644); err != nil {
		return "", fmt.Errorf("write certificate: %w", err)
	}
	return path, nil
}
