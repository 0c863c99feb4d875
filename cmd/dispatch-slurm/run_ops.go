package main

import (
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/config"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/metrics"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/mgmt"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/queue"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

// opsConfig is what run needs for operations: the management endpoint and the health's
// freshness limits.
type opsConfig struct {
	// listen is management.listen ("" : no endpoint); listenIsDefault says nobody chose it,
	// so that a port already taken is logged rather than fatal.
	listen          string
	listenIsDefault bool
	token           string
	// pollMaxAge and squeueMaxAge: how old the last good API poll and squeue snapshot may be
	// before /_health/ping fails.
	pollMaxAge, squeueMaxAge time.Duration
}

// opsConfigFrom maps a valid configuration.
func opsConfigFrom(cfg *config.Config) opsConfig {
	elapsed, timeout := cfg.API.MaxElapsed, cfg.API.Timeout
	if elapsed == 0 {
		elapsed = arvados.DefaultMaxElapsed
	}
	if timeout == 0 {
		timeout = arvados.DefaultTimeout
	}
	query := cfg.Slurm.QueryTimeout
	if query == 0 {
		query = slurm.DefaultQueryTimeout
	}
	return opsConfig{
		listen:          cfg.Management.Listen,
		listenIsDefault: cfg.Source("management.listen").Kind == config.FromDefault,
		token:           cfg.Management.Token.Value(),
		// Three periods, plus the longest a poll that retries its way through a blip may
		// take; a hung call ends within that too, and then counts as a failed poll.
		pollMaxAge:   3*cfg.Dispatch.PollPeriod + elapsed + timeout,
		squeueMaxAge: 3*cfg.Dispatch.SqueuePeriod + query,
	}
}

// logFormat is logging.format, or console when stderr is a terminal and json otherwise.
func logFormat(configured string) string {
	if configured != "" {
		return configured
	}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		return "console"
	}
	return "json"
}

// Log rate limit: per level and message, the first logSampleFirst warnings or errors a minute
// are written, then one in logSampleThereafter. Info and debug (state changes, decisions) are
// never dropped.
const (
	logSampleTick       = time.Minute
	logSampleFirst      = 10
	logSampleThereafter = 100
)

// newLogger writes to w in format at level; repeated identical warnings and errors are
// rate-limited, and dropped reports each message it drops (nil: nobody).
func newLogger(w io.Writer, format string, level zapcore.Level, dropped func(level string)) *zap.Logger {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if format == "console" {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(ec)
	}
	ws := zapcore.Lock(zapcore.AddSync(w))
	below := zap.LevelEnablerFunc(func(l zapcore.Level) bool { return l >= level && l < zapcore.WarnLevel })
	above := zap.LevelEnablerFunc(func(l zapcore.Level) bool { return l >= level && l >= zapcore.WarnLevel })
	hook := func(e zapcore.Entry, d zapcore.SamplingDecision) {
		if d&zapcore.LogDropped != 0 && dropped != nil {
			dropped(e.Level.String())
		}
	}
	sampled := zapcore.NewSamplerWithOptions(zapcore.NewCore(enc.Clone(), ws, above),
		logSampleTick, logSampleFirst, logSampleThereafter, zapcore.SamplerHook(hook))
	return zap.New(zapcore.NewTee(zapcore.NewCore(enc, ws, below), sampled))
}

// notifyEnv are systemd's variables for this process alone: they must not reach Slurm jobs
// through sbatch's environment.
var notifyEnv = []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}

// slurmEnviron is our environment without systemd's per-process variables.
func slurmEnviron() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(notifyEnv, k)
	})
}

// ops is what run starts besides the watcher and the dispatcher: metrics, the management
// endpoint, systemd notifications.
type ops struct {
	metrics  *metrics.Metrics
	listener *mgmt.Listener
	server   *mgmt.Server
	log      *zap.Logger
}

// listen binds the management endpoint early, so that a taken port is known before anything
// else starts. A port taken at the default address is logged and the dispatcher runs
// without the endpoint; at a chosen address it is an error.
func (o *ops) listen(oc opsConfig) error {
	if oc.listen == "" {
		o.log.Info("no management endpoint (management.listen is empty)")
		return nil
	}
	l, err := mgmt.Listen(oc.listen, nil, o.log.Named("mgmt"))
	switch {
	case err != nil && oc.listenIsDefault:
		o.log.Error("the management endpoint could not listen at its default address; running without it "+
			"(set management.listen, or Services.DispatchSLURM.InternalURLs)", zap.Error(err))
		return nil
	case err != nil:
		return err
	}
	o.listener = l
	return nil
}

// attach wires the health checks, the metrics' scrape-time sources and the endpoint to the
// running dispatcher and watcher.
func (o *ops) attach(oc opsConfig, d *queue.Dispatcher, w *squeue.Watcher, started time.Time) error {
	lastSnapshot := func() time.Time { return w.Stats().LastSnapshot }
	o.server = mgmt.New(mgmt.Config{
		Token: oc.token,
		Checks: []mgmt.Check{
			{Name: "dispatch", Healthy: d.Healthy},
			{Name: "api", Last: d.LastPoll, MaxAge: oc.pollMaxAge},
			{Name: "squeue", Healthy: w.Healthy, Last: lastSnapshot, MaxAge: oc.squeueMaxAge},
		},
		Tracked: d.Tracked, Metrics: o.metrics.Handler(), Version: version, Started: started,
		Logger: o.log.Named("mgmt"),
	})
	if o.listener != nil {
		o.listener.SetHandler(o.server)
		msg := "management endpoint listening"
		if oc.token == "" {
			msg += "; no management token is configured, so only /_health/ping answers"
		}
		o.log.Info(msg, zap.String("addr", o.listener.Addr()))
	}
	return o.metrics.Attach(metrics.Sources{Tracked: d.Tracked, Watcher: w, LastPoll: d.LastPoll,
		Healthy: func() bool { return o.server.Health().OK() }, Started: started})
}

// serve runs the endpoint and the systemd notifications until ctx is done.
func (o *ops) serve(ctx context.Context, wg *sync.WaitGroup, d *queue.Dispatcher, w *squeue.Watcher) {
	if o.listener != nil {
		wg.Go(func() {
			if err := o.listener.Serve(ctx); err != nil {
				o.log.Error("management endpoint failed", zap.Error(err))
			}
		})
	}
	n := newNotifier(o.log)
	wg.Go(func() {
		n.run(ctx, func() bool { return !d.LastPoll().IsZero() && !w.Stats().LastSnapshot.IsZero() },
			func() { d.Healthy(); w.Healthy() })
	})
}

// close releases what listen took when run ends before serve.
func (o *ops) close() {
	if o.listener != nil {
		_ = o.listener.Close()
	}
}
