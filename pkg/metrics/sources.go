package metrics

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/queue"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

// Watcher is what the metrics read from the squeue watcher at scrape time.
type Watcher interface {
	Stats() squeue.Stats
	Jobs() []slurm.Job
}

var _ Watcher = (*squeue.Watcher)(nil)

// Sources are read when Prometheus scrapes.
type Sources struct {
	// Tracked lists the dispatcher's containers (queue.Dispatcher.Tracked).
	Tracked func() []queue.Tracked
	// Watcher is the squeue watcher.
	Watcher Watcher
	// LastPoll is when the last good API poll started (queue.Dispatcher.LastPoll).
	LastPoll func() time.Time
	// Healthy, if set, is the management endpoint's verdict (dispatch_slurm_healthy).
	Healthy func() bool
	// Started is when the dispatcher started: the ages count from it before the first
	// poll or snapshot.
	Started time.Time
	// Now defaults to time.Now.
	Now func() time.Time
}

// containerStates are always reported, at 0 when no tracked container is in them, so that
// dashboards and alerts see the series.
var containerStates = []string{"Queued", "Locked", "Running", "Complete", "Cancelled"}

// Attach registers the metrics read at scrape time from s.
func (m *Metrics) Attach(s Sources) error {
	if s.Tracked == nil || s.Watcher == nil || s.LastPoll == nil {
		return errNoSources
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	return m.reg.Register(&scrapeCollector{s: s})
}

var (
	descTracked = prometheus.NewDesc(namespace+"_containers_tracked",
		"Containers the dispatcher tracks, by container state as last read.", []string{"state"}, nil)
	descJobs = prometheus.NewDesc(namespace+"_slurm_jobs",
		"Our live Slurm jobs in the latest good squeue snapshot, by Slurm state and pending reason (its first word; None when not pending).",
		[]string{"state", "reason"}, nil)
	descSnapshotAge = prometheus.NewDesc(namespace+"_snapshot_age_seconds",
		"Seconds since the latest good squeue snapshot started (since start-up before the first).", nil, nil)
	descPollAge = prometheus.NewDesc(namespace+"_poll_age_seconds",
		"Seconds since the latest good API poll started (since start-up before the first).", nil, nil)
	descSnapshots = prometheus.NewDesc(namespace+"_squeue_snapshots_total",
		"squeue runs of the watcher, by result (good, suspect: jobs missing unexplained, failed).", []string{"result"}, nil)
	descJobCancels = prometheus.NewDesc(namespace+"_job_cancels_total",
		"Slurm jobs of unwanted containers cancelled (ok: jobs; error: scancel calls that failed).", []string{"outcome"}, nil)
	descRenices = prometheus.NewDesc(namespace+"_renices_total",
		"Renices of our pending jobs into container priority order (ok: jobs; error: scontrol calls that failed).", []string{"outcome"}, nil)
	descLookups = prometheus.NewDesc(namespace+"_lookups_total",
		"Targeted job lookups that confirm a job's absence, by outcome (ok, error).", []string{"outcome"}, nil)
	descReniceDisabled = prometheus.NewDesc(namespace+"_renice_disabled",
		"1 when renicing turned itself off because Slurm's priorities ignore nice.", nil, nil)
	descHealthy = prometheus.NewDesc(namespace+"_healthy",
		"1 while /_health/ping says OK.", nil, nil)
)

// scrapeCollector reads the sources at scrape time.
type scrapeCollector struct{ s Sources }

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTracked, descJobs, descSnapshotAge, descPollAge, descSnapshots,
		descJobCancels, descRenices, descLookups, descReniceDisabled} {
		ch <- d
	}
	if c.s.Healthy != nil {
		ch <- descHealthy
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.s.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	age := func(t time.Time) float64 {
		if t.IsZero() {
			t = c.s.Started
		}
		return max(0, now.Sub(t).Seconds())
	}

	states := map[string]int{}
	for _, s := range containerStates {
		states[s] = 0
	}
	for _, t := range c.s.Tracked() {
		states[t.State]++
	}
	for s, n := range states {
		gauge(descTracked, float64(n), s)
	}

	type jobKey struct{ state, reason string }
	jobs := map[jobKey]int{}
	for _, j := range c.s.Watcher.Jobs() {
		k := jobKey{state: j.State, reason: "None"}
		if slurm.PendingState(j.State) && j.Reason != "" {
			k.reason = slurm.ReasonKey(j.Reason)
		}
		jobs[k]++
	}
	keys := make([]jobKey, 0, len(jobs))
	for k := range jobs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].state+keys[i].reason < keys[j].state+keys[j].reason })
	for _, k := range keys {
		gauge(descJobs, float64(jobs[k]), k.state, k.reason)
	}

	st := c.s.Watcher.Stats()
	gauge(descSnapshotAge, age(st.LastSnapshot))
	gauge(descPollAge, age(c.s.LastPoll()))
	counter(descSnapshots, st.SnapshotsOK-st.SnapshotsSuspect, "good")
	counter(descSnapshots, st.SnapshotsSuspect, "suspect")
	counter(descSnapshots, st.SnapshotsFailed, "failed")
	counter(descJobCancels, st.CancelledJobs, "ok")
	counter(descJobCancels, st.CancelErrors, "error")
	counter(descRenices, st.RenicedJobs, "ok")
	counter(descRenices, st.ReniceErrors, "error")
	counter(descLookups, st.Lookups-st.LookupErrors, "ok")
	counter(descLookups, st.LookupErrors, "error")
	gauge(descReniceDisabled, boolValue(st.ReniceDisabled))
	if c.s.Healthy != nil {
		gauge(descHealthy, boolValue(c.s.Healthy()))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
