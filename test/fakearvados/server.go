package fakearvados

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// Options configure a Server. The zero value is an http server on 127.0.0.1 with the defaults
// below.
type Options struct {
	// TLS serves https with a self-signed certificate for 127.0.0.1, ::1 and localhost;
	// HTTPClient trusts it and CertPEM returns it.
	TLS bool
	// MaxDispatchAttempts is the cluster's Containers.MaxDispatchAttempts (default 10).
	MaxDispatchAttempts int
	// ClusterID prefixes new uuids (default "zzzzz").
	ClusterID string
	// Now is the clock for record timestamps (default time.Now).
	Now func() time.Time
	// Addr is where New and Start listen (default "127.0.0.1:0"). It must be a loopback address.
	Addr string
	// Logger gets one Debug line per API request (default zap.NewNop()). Tokens never reach it.
	Logger *zap.Logger
}

// Server is a fake Arvados API server. All its methods are safe for concurrent use.
type Server struct {
	opts    Options
	now     func() time.Time
	log     *zap.Logger
	handler http.Handler

	mu     sync.RWMutex
	recs   map[string]*record
	logs   []logRecord
	tokens map[string]*token // by secret
	// authByContainer maps a container uuid to its runtime token while Locked or Running.
	authByContainer map[string]*token

	fmu     sync.Mutex
	faults  []*faultState
	latency time.Duration
	down    bool
	reqs    []Request
	stats   map[string]EndpointStats

	// Set when listening.
	url        string
	host       string
	certPEM    []byte
	roots      *x509.CertPool
	srv        *http.Server
	serveDone  chan struct{}
	inflight   sync.WaitGroup
	tmu        sync.Mutex
	transports []*http.Transport
	closeOnce  sync.Once
	// closing is closed when Close starts, to cut injected latency short.
	closing chan struct{}
}

// NewHandler returns a Server that does not listen: use Handler() with your own server.
// URL and Host return "" and HTTPClient returns a plain client.
func NewHandler(opts Options) *Server {
	if opts.MaxDispatchAttempts <= 0 {
		opts.MaxDispatchAttempts = 10
	}
	if opts.ClusterID == "" {
		opts.ClusterID = "zzzzz"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	s := &Server{
		opts:            opts,
		now:             opts.Now,
		log:             opts.Logger,
		recs:            map[string]*record{},
		tokens:          map[string]*token{},
		authByContainer: map[string]*token{},
		stats:           map[string]EndpointStats{},
		closing:         make(chan struct{}),
	}
	for _, t := range fixedTokens() {
		s.tokens[t.secret] = t
	}
	s.handler = s.buildHandler()
	return s
}

// New starts a Server listening on Options.Addr (127.0.0.1 and a free port by default). It
// panics if it cannot listen, like httptest.NewServer; use Start to get an error instead.
func New(opts Options) *Server {
	s, err := Start(opts)
	if err != nil {
		panic(fmt.Sprintf("fakearvados: %v", err))
	}
	return s
}

// Start is New returning an error.
func Start(opts Options) (*Server, error) {
	s := NewHandler(opts)
	if err := checkLoopback(s.opts.Addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.opts.Addr, err)
	}
	s.host = ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// TLS handshake errors from clients that do not trust the certificate would be noise.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	scheme := "http"
	if s.opts.TLS {
		cert, certPEM, err := selfSignedCert()
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		s.certPEM = certPEM
		s.roots = x509.NewCertPool()
		s.roots.AppendCertsFromPEM(certPEM)
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, s.srv.TLSConfig)
		scheme = "https"
	}
	s.url = scheme + "://" + s.host
	s.serveDone = make(chan struct{})
	go func() {
		defer close(s.serveDone)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// checkLoopback refuses listen addresses other than loopback ones: the fake has well-known
// tokens and must never be reachable from other machines.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q: only loopback addresses are allowed", addr)
	}
	return nil
}

// Handler serves the API under /arvados/v1/ and the test controls under /_fake/.
func (s *Server) Handler() http.Handler { return s.handler }

// URL is the base URL, "http://127.0.0.1:port" or "https://127.0.0.1:port".
func (s *Server) URL() string { return s.url }

// Host is "127.0.0.1:port", the value for ARVADOS_API_HOST.
func (s *Server) Host() string { return s.host }

// CertPEM is the server's self-signed certificate in PEM form (nil without TLS).
func (s *Server) CertPEM() []byte { return s.certPEM }

// ClusterID is the cluster id that prefixes new uuids.
func (s *Server) ClusterID() string { return s.opts.ClusterID }

// HTTPClient returns a client that trusts the server's certificate. Close closes its idle
// connections.
func (s *Server) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12}
	}
	s.tmu.Lock()
	s.transports = append(s.transports, tr)
	s.tmu.Unlock()
	return &http.Client{Transport: tr}
}

// Close stops the server, waits for requests in progress to end and closes the idle connections
// of the clients HTTPClient returned. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		if s.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				s.log.Debug("shutdown", zap.Error(err))
			}
			cancel()
			_ = s.srv.Close()
			<-s.serveDone
		}
		s.inflight.Wait()
		s.tmu.Lock()
		for _, tr := range s.transports {
			tr.CloseIdleConnections()
		}
		s.tmu.Unlock()
	})
}

// logRecord is a stored log entry.
type logRecord struct {
	log       arvados.Log
	createdAt time.Time
	owner     string
}
