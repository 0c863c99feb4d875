package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/queue"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeWatcher struct {
	stats squeue.Stats
	jobs  []slurm.Job
}

func (f *fakeWatcher) Stats() squeue.Stats { return f.stats }
func (f *fakeWatcher) Jobs() []slurm.Job   { return f.jobs }

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// scenario feeds a Metrics what a small run does: three containers locked and submitted, one
// lock refused, one sbatch rejected, API and Slurm errors, and scrape-time sources.
func scenario(t *testing.T) *Metrics {
	t.Helper()
	m := New("v1.2.3")
	q := m.Queue()
	for range 3 {
		q.Locked("ok")
		q.Submitted("ok")
		q.QueueWait(2 * time.Second)
	}
	q.Locked("refused")
	q.Submitted("rejected")
	q.Unlocked("ok")
	q.ContainerCancelled("ok")
	q.Polled(40*time.Millisecond, nil)
	q.Polled(time.Second, errors.New("list failed"))
	m.ObserveAPICall("POST", "containers/{uuid}/lock", 20*time.Millisecond, nil)
	m.ObserveAPICall("GET", "containers", 30*time.Millisecond, &arvados.HTTPError{Status: http.StatusServiceUnavailable})
	m.ObserveSlurmCommand("sbatch", 50*time.Millisecond, nil)
	m.ObserveSlurmCommand("sbatch", 50*time.Millisecond, &slurm.RejectError{Message: "Invalid partition name specified"})
	m.ObserveSlurmCommand("squeue", 10*time.Millisecond, &slurm.TransientError{Ambiguous: true, Err: errors.New("timeout")})
	m.LogDropped("warn")
	w := &fakeWatcher{
		stats: squeue.Stats{SnapshotsOK: 10, SnapshotsSuspect: 2, SnapshotsFailed: 1, CancelledJobs: 4, CancelErrors: 1,
			RenicedJobs: 6, Lookups: 5, LookupErrors: 2, LastSnapshot: t0.Add(-3 * time.Second)},
		jobs: []slurm.Job{
			{ID: "1", State: "PENDING", Reason: "Resources"},
			{ID: "2", State: "PENDING", Reason: "ReqNodeNotAvail, UnavailableNodes:n[1-3]"},
			{ID: "3", State: "PENDING", Reason: "ReqNodeNotAvail, Reserved for maintenance"},
			{ID: "4", State: "RUNNING", Reason: "None"},
		},
	}
	err := m.Attach(Sources{
		Tracked: func() []queue.Tracked {
			return []queue.Tracked{{UUID: "zzzzz-dz642-000000000000001", State: "Locked"}, {UUID: "zzzzz-dz642-000000000000002", State: "Running"},
				{UUID: "zzzzz-dz642-000000000000003", State: "Running"}}
		},
		Watcher:  w,
		LastPoll: func() time.Time { return time.Time{} },
		Healthy:  func() bool { return true },
		Started:  t0.Add(-time.Minute),
		Now:      func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTheMetricsSayWhatTheScenarioDid(t *testing.T) {
	m := scenario(t)
	for _, tc := range []struct {
		name   string
		metric string
		want   string
	}{
		{"three locks went through and one was refused", "dispatch_slurm_locks_total", `
dispatch_slurm_locks_total{outcome="ok"} 3
dispatch_slurm_locks_total{outcome="refused"} 1
`},
		{"three submits went through and one was rejected", "dispatch_slurm_submits_total", `
dispatch_slurm_submits_total{outcome="ok"} 3
dispatch_slurm_submits_total{outcome="rejected"} 1
`},
		{"tracked containers are counted by state, every state present", "dispatch_slurm_containers_tracked", `
dispatch_slurm_containers_tracked{state="Cancelled"} 0
dispatch_slurm_containers_tracked{state="Complete"} 0
dispatch_slurm_containers_tracked{state="Locked"} 1
dispatch_slurm_containers_tracked{state="Queued"} 0
dispatch_slurm_containers_tracked{state="Running"} 2
`},
		{"jobs are counted by state and the first word of their pending reason", "dispatch_slurm_slurm_jobs", `
dispatch_slurm_slurm_jobs{reason="None",state="RUNNING"} 1
dispatch_slurm_slurm_jobs{reason="ReqNodeNotAvail",state="PENDING"} 2
dispatch_slurm_slurm_jobs{reason="Resources",state="PENDING"} 1
`},
		{"the snapshot age is computed at scrape", "dispatch_slurm_snapshot_age_seconds", `
dispatch_slurm_snapshot_age_seconds 3
`},
		{"before the first good poll its age counts from start-up", "dispatch_slurm_poll_age_seconds", `
dispatch_slurm_poll_age_seconds 60
`},
		{"squeue runs are split into good, suspect and failed", "dispatch_slurm_squeue_snapshots_total", `
dispatch_slurm_squeue_snapshots_total{result="failed"} 1
dispatch_slurm_squeue_snapshots_total{result="good"} 8
dispatch_slurm_squeue_snapshots_total{result="suspect"} 2
`},
		{"slurm errors are counted by command and class", "dispatch_slurm_slurm_errors_total", `
dispatch_slurm_slurm_errors_total{class="ambiguous",command="squeue"} 1
dispatch_slurm_slurm_errors_total{class="permanent",command="sbatch"} 1
`},
		{"API errors are counted by endpoint and class", "dispatch_slurm_api_errors_total", `
dispatch_slurm_api_errors_total{class="transient",endpoint="containers"} 1
`},
		{"health is a gauge", "dispatch_slurm_healthy", `
dispatch_slurm_healthy 1
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			help := helpLine(t, m, tc.metric)
			if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(help+tc.want), tc.metric); err != nil {
				t.Error(err)
			}
		})
	}
	if n := testutil.CollectAndCount(m.queueWait); n != 1 {
		t.Errorf("queue wait series %d, want 1", n)
	}
	if got := testutil.ToFloat64(m.buildInfo.WithLabelValues("v1.2.3", goVersion())); got != 1 {
		t.Errorf("build info %g, want 1", got)
	}
}

// helpLine returns the # HELP and # TYPE lines of a metric as the registry has them.
func helpLine(t *testing.T, m *Metrics, name string) string {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return "# HELP " + name + " " + mf.GetHelp() + "\n# TYPE " + name + " " + strings.ToLower(mf.GetType().String()) + "\n"
		}
	}
	t.Fatalf("no metric %s", name)
	return ""
}

func TestTheHandlerServesTheTextFormatWithEveryNamePrefixed(t *testing.T) {
	m := scenario(t)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "dispatch_slurm_") && !strings.HasPrefix(line, "go_") && !strings.HasPrefix(line, "process_") {
			t.Errorf("a series outside dispatch_slurm_ (and the standard go_, process_): %s", line)
		}
		if strings.Contains(line, "dz642") {
			t.Errorf("a container uuid in a label: %s", line)
		}
	}
	if !strings.Contains(string(body), `dispatch_slurm_build_info{goversion="`) {
		t.Error("no build info")
	}
}

func TestAttachRefusesMissingSources(t *testing.T) {
	if err := New("dev").Attach(Sources{}); err == nil {
		t.Error("Attach accepted no sources")
	}
}
