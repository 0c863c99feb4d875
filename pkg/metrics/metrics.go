package metrics

import (
	"errors"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/queue"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

const namespace = "dispatch_slurm"

// Buckets, in seconds.
var (
	// slurmBuckets reach sbatch's submit timeout (3 min).
	slurmBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 180}
	// apiBuckets reach a call's retry budget plus an attempt (about a minute).
	apiBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	// pollBuckets include the lock phase of a big queue.
	pollBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	// queueWaitBuckets go from "at once" to half a day waiting for room (max_jobs).
	queueWaitBuckets = []float64{.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600}
)

// Metrics holds dispatch-slurm's collectors and registry. Its observer methods are safe for
// concurrent use and never block.
type Metrics struct {
	reg *prometheus.Registry

	polls                                     *prometheus.HistogramVec
	locks, submits, unlocks, containerCancels *prometheus.CounterVec
	queueWait                                 prometheus.Histogram
	slurmCommands                             *prometheus.HistogramVec
	slurmErrors                               *prometheus.CounterVec
	apiCalls                                  *prometheus.HistogramVec
	apiErrors                                 *prometheus.CounterVec
	logDropped                                *prometheus.CounterVec
	buildInfo                                 *prometheus.GaugeVec
}

// New returns the metrics on a fresh registry, with build info for version and the standard
// Go runtime and process collectors.
func New(version string) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help,
			Buckets: buckets}, labels)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		polls: histogram("poll_duration_seconds",
			"Duration of API polls (list our containers, list the queue, read the rest, lock), by outcome (ok, error).",
			pollBuckets, "outcome"),
		locks: counter("locks_total",
			"Container lock requests, by outcome (ok; refused: someone else's or no longer queued; ambiguous; transient; error).", "outcome"),
		submits: counter("submits_total",
			"sbatch submissions, by outcome (ok; rejected: for good; ambiguous: the job may exist; transient; error).", "outcome"),
		unlocks: counter("unlocks_total",
			"Container unlocks (the job ended before crunch-run started), by outcome.", "outcome"),
		containerCancels: counter("container_cancels_total",
			"Containers cancelled by the dispatcher with a reason in runtime_status.error, by outcome.", "outcome"),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "queue_wait_seconds",
			Help:    "Time from the poll that first saw a container Queued to its Slurm job's submission.",
			Buckets: queueWaitBuckets}),
		slurmCommands: histogram("slurm_command_duration_seconds",
			"Duration of Slurm commands, by command (sbatch, squeue, scontrol, scancel) and outcome (ok, error).",
			slurmBuckets, "command", "outcome"),
		slurmErrors: counter("slurm_errors_total",
			"Failed Slurm commands, by command and class (transient, ambiguous, permanent, not_found, other).", "command", "class"),
		apiCalls: histogram("api_request_duration_seconds",
			"Duration of Arvados API calls, retries included, by method and endpoint class (uuids as {uuid}).",
			apiBuckets, "method", "endpoint"),
		apiErrors: counter("api_errors_total",
			"Failed Arvados API calls (after retries), by endpoint class and class (transient, ambiguous, refused, not_found, unauthenticated, other).",
			"endpoint", "class"),
		logDropped: counter("log_messages_dropped_total",
			"Log messages dropped by the rate limit on repeated identical warnings and errors, by level.", "level"),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
			Help: "Always 1; the labels say which build is running."}, []string{"version", "goversion"}),
	}
	m.buildInfo.WithLabelValues(version, goVersion()).Set(1)
	m.reg.MustRegister(m.polls, m.locks, m.submits, m.unlocks, m.containerCancels, m.queueWait,
		m.slurmCommands, m.slurmErrors, m.apiCalls, m.apiErrors, m.logDropped, m.buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus's exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ObserveAPICall is an arvados.Observer.
func (m *Metrics) ObserveAPICall(method, endpoint string, took time.Duration, err error) {
	m.apiCalls.WithLabelValues(method, endpoint).Observe(took.Seconds())
	if err != nil {
		m.apiErrors.WithLabelValues(endpoint, apiErrorClass(err)).Inc()
	}
}

var _ arvados.Observer = (*Metrics)(nil).ObserveAPICall

// apiErrorClass classifies a failed API call.
func apiErrorClass(err error) string {
	switch {
	case arvados.IsUnauthenticated(err):
		return "unauthenticated"
	case arvados.IsNotFound(err):
		return "not_found"
	case arvados.IsInvalid(err), arvados.IsForbidden(err):
		return "refused"
	case arvados.IsAmbiguous(err):
		return "ambiguous"
	case arvados.IsTransient(err):
		return "transient"
	}
	return "other"
}

// ObserveSlurmCommand is a slurm.Observer.
func (m *Metrics) ObserveSlurmCommand(cmd string, took time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
		m.slurmErrors.WithLabelValues(cmd, slurmErrorClass(err)).Inc()
	}
	m.slurmCommands.WithLabelValues(cmd, outcome).Observe(took.Seconds())
}

var _ slurm.Observer = (*Metrics)(nil).ObserveSlurmCommand

// slurmErrorClass classifies a failed Slurm command.
func slurmErrorClass(err error) string {
	switch slurm.ErrorClassOf(err) {
	case slurm.ClassPermanent:
		return "permanent"
	case slurm.ClassNotFound:
		return "not_found"
	case slurm.ClassTransientAmbiguous:
		return "ambiguous"
	case slurm.ClassTransient:
		return "transient"
	}
	return "other"
}

// LogDropped counts a log message the rate limit dropped (a zapcore.SamplerHook calls it).
func (m *Metrics) LogDropped(level string) { m.logDropped.WithLabelValues(level).Inc() }

// Queue returns the dispatcher's observer.
func (m *Metrics) Queue() queue.Observer { return queueObserver{m} }

type queueObserver struct{ m *Metrics }

var _ queue.Observer = queueObserver{}

func (q queueObserver) Polled(took time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	q.m.polls.WithLabelValues(outcome).Observe(took.Seconds())
}

func (q queueObserver) Locked(outcome string)    { q.m.locks.WithLabelValues(outcome).Inc() }
func (q queueObserver) Submitted(outcome string) { q.m.submits.WithLabelValues(outcome).Inc() }
func (q queueObserver) QueueWait(d time.Duration) {
	q.m.queueWait.Observe(d.Seconds())
}
func (q queueObserver) Unlocked(outcome string) { q.m.unlocks.WithLabelValues(outcome).Inc() }
func (q queueObserver) ContainerCancelled(outcome string) {
	q.m.containerCancels.WithLabelValues(outcome).Inc()
}

// errNoSources is Attach's error for a zero Sources.
var errNoSources = errors.New("metrics: Attach needs a Tracked, a Watcher and a LastPoll")

func goVersion() string { return runtime.Version() }
