package mgmt

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/queue"
)

// Paths.
const (
	PingPath    = "/_health/ping"
	MetricsPath = "/metrics"
)

// Config configures the endpoint's handler.
type Config struct {
	// Token is the management token /metrics and /dispatch/ require; "" disables them.
	Token string
	// Checks make up /_health/ping.
	Checks []Check
	// Tracked lists the dispatcher's containers (queue.Dispatcher.Tracked); nil: the
	// containers endpoint answers 404.
	Tracked func() []queue.Tracked
	// Metrics serves /metrics; nil: 404.
	Metrics http.Handler
	// Version is reported by /dispatch/containers.
	Version string
	// Started is when the dispatcher started (default: when the Server was made).
	Started time.Time
	// Logger defaults to zap.NewNop(). Requests are logged at Debug; refused ones at Info.
	Logger *zap.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Server is the management endpoint's handler; it is safe for concurrent use.
type Server struct {
	cfg Config
	mux *http.ServeMux
}

// New returns the handler.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Started.IsZero() {
		cfg.Started = cfg.Now()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET "+PingPath, s.ping)
	s.mux.Handle("GET "+MetricsPath, s.authorized(s.metrics))
	s.mux.Handle("GET "+ContainersPath, s.authorized(s.containers))
	return s
}

// Health evaluates the health check now.
func (s *Server) Health() Health {
	return evaluate(s.cfg.Checks, s.cfg.Now(), s.cfg.Started)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	h := s.Health()
	status := http.StatusOK
	if !h.OK() {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Metrics == nil {
		writeErrors(w, http.StatusNotFound, "no metrics here")
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}

func (s *Server) containers(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Tracked == nil {
		writeErrors(w, http.StatusNotFound, "no dispatcher here")
		return
	}
	writeJSON(w, http.StatusOK, ContainersResponse{Version: s.cfg.Version, Time: s.cfg.Now().UTC(),
		Health: s.Health(), Containers: containersOf(s.cfg.Tracked())})
}

// authorized wraps h with the management token check (see the package documentation).
func (s *Server) authorized(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := func(status int, msg string) {
			s.cfg.Logger.Info("management request refused", zap.String("path", r.URL.Path),
				zap.String("remote", r.RemoteAddr), zap.Int("status", status), zap.String("reason", msg))
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="dispatch-slurm"`)
			}
			writeErrors(w, status, msg)
		}
		switch tok, ok := bearer(r.Header.Get("Authorization")); {
		case s.cfg.Token == "":
			refuse(http.StatusNotFound, "disabled: no management token is configured (ManagementToken, management.token)")
		case !ok:
			refuse(http.StatusUnauthorized, "authorization required")
		case subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) != 1:
			refuse(http.StatusForbidden, "authorization error")
		default:
			s.cfg.Logger.Debug("management request", zap.String("path", r.URL.Path), zap.String("remote", r.RemoteAddr))
			h(w, r)
		}
	})
}

// bearer takes the token of an "Authorization: Bearer <token>" (or "OAuth2 <token>") header.
func bearer(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || (!strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "OAuth2")) {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeErrors answers in the Arvados API's error format.
func writeErrors(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string][]string{"errors": {msg}})
}

// Listener serves a handler on one address until its context ends.
type Listener struct {
	ln  net.Listener
	srv *http.Server
	log *zap.Logger
}

// Listen listens on addr (host:port; port 0 picks a free one, see Addr). h may be nil and
// set later with SetHandler, before Serve.
func Listen(addr string, h http.Handler, log *zap.Logger) (*Listener, error) {
	if log == nil {
		log = zap.NewNop()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("management endpoint: listen on %s: %w", addr, err)
	}
	return &Listener{ln: ln, log: log, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: zap.NewStdLog(log.Named("http"))}}, nil
}

// SetHandler sets the handler; call it before Serve.
func (l *Listener) SetHandler(h http.Handler) { l.srv.Handler = h }

// Addr is the address listened on (host:port), with the port chosen when 0 was asked.
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Serve serves until ctx is done, then shuts down (requests in flight get 5 s) and returns.
// It returns the server's error if it stopped by itself.
func (l *Listener) Serve(ctx context.Context) error {
	if l.srv.Handler == nil {
		l.srv.Handler = http.NotFoundHandler() // never http.DefaultServeMux
	}
	done := make(chan error, 1)
	go func() { done <- l.srv.Serve(l.ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("management endpoint stopped: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.srv.Shutdown(sctx); err != nil {
		_ = l.srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("management endpoint: %w", err)
	}
	return nil
}

// Close stops listening without serving (for a start-up that fails before Serve).
func (l *Listener) Close() error { return l.ln.Close() }
