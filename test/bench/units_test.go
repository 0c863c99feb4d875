package bench

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/bench/slurmwrap"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

func TestCallsAreClassifiedByWhatTheyDo(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		call                       Call
		snapshot, mutating, renice bool
		jobName                    string
	}{
		{"the watcher's squeue is a snapshot", Call{Name: "squeue", Args: []string{"--noheader", "--me", "--format=%i|%j"}}, true, false, false, ""},
		{"a squeue by name is a lookup", Call{Name: "squeue", Args: []string{"--me", "--name=zzzzz-dz642-000000000000000"}}, false, false, false, ""},
		{"a squeue by id is a lookup", Call{Name: "squeue", Args: []string{"--states=all", "--jobs=12"}}, false, false, false, ""},
		{"sbatch changes Slurm and names its job", Call{Name: "sbatch", Args: []string{"--parsable", "--job-name=zzzzz-dz642-000000000000001"}}, false, true, false, "zzzzz-dz642-000000000000001"},
		{"sbatch -J names its job too", Call{Name: "sbatch", Args: []string{"-J", "x"}}, false, true, false, "x"},
		{"scontrol update Nice is a renice", Call{Name: "scontrol", Args: []string{"update", "JobId=1,2", "Nice=10"}}, false, true, true, ""},
		{"scontrol show is not a renice", Call{Name: "scontrol", Args: []string{"show", "job", "1"}}, false, true, false, ""},
		{"scancel changes Slurm", Call{Name: "scancel", Args: []string{"1", "2"}}, false, true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.call
			if c.Snapshot() != tc.snapshot || c.Mutating() != tc.mutating || c.Renice() != tc.renice || c.JobName() != tc.jobName {
				t.Errorf("snapshot %v mutating %v renice %v job name %q; want %v %v %v %q", c.Snapshot(), c.Mutating(),
					c.Renice(), c.JobName(), tc.snapshot, tc.mutating, tc.renice, tc.jobName)
			}
		})
	}
}

func TestCallLogReadsOnlyCompleteLinesAsTheyArrive(t *testing.T) {
	path := filepath.Join(t.TempDir(), callLogName)
	l := NewCallLog(path)
	if calls, err := l.Update(); err != nil || len(calls) != 0 {
		t.Fatalf("before the log exists: %v, %v", calls, err)
	}
	start := time.Unix(100, 5)
	slurmwrap.Log(path, "sbatch", start, start.Add(time.Second), 0, []string{"--job-name=a\tb", "x\ny"})
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("squeue\t1\t2\t0\t--me"); err != nil { // no newline yet
		t.Fatal(err)
	}
	calls, err := l.Update()
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].Name != "sbatch" || !calls[0].Start.Equal(start) || calls[0].End.Sub(start) != time.Second ||
		strings.Join(calls[0].Args, "|") != "--job-name=a b|x y" {
		t.Fatalf("first read: %+v", calls)
	}
	if _, err := f.WriteString("\nnot a call\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	calls, err = l.Update()
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || calls[1].Name != "squeue" || calls[1].Args[0] != "--me" {
		t.Fatalf("second read: %+v", calls)
	}
}

// The wrapper runs the real command with the same input and arguments, returns its exit
// code and logs the call.
func TestWrapperPassesThroughAndLogsTheCall(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.sh")
	if err := os.WriteFile(real, []byte("#!/bin/sh\ncat\necho \"$@\"\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wrappers, err := installWrappers(filepath.Join(dir, "w"), exe, map[string]string{"sbatch": real, "squeue": real, "scancel": real, "scontrol": real})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(wrappers["sbatch"], "--job-name=x", "--parsable")
	cmd.Stdin = strings.NewReader("#!/bin/sh\n")
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("exit: %v, want exit code 3", err)
	}
	if string(out) != "#!/bin/sh\n--job-name=x --parsable\n" {
		t.Errorf("output %q", out)
	}
	calls, err := NewCallLog(filepath.Join(dir, "w", callLogName)).Update()
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].Exit != 3 || calls[0].JobName() != "x" || calls[0].End.Before(calls[0].Start) {
		t.Errorf("logged %+v", calls)
	}
}

func listReq(filters string, bytes int64) fakearvados.Request {
	return fakearvados.Request{Method: "GET", Path: "/arvados/v1/containers",
		Query: url.Values{"filters": {filters}}.Encode(), RespBytes: bytes}
}

func TestCostPerPollCountsCompletePollsOnly(t *testing.T) {
	locked := `[["locked_by_uuid","=","zzzzz-gj3su-000000000000000"]]`
	page2 := `[["locked_by_uuid","=","zzzzz-gj3su-000000000000000"],["uuid","\u003e","zzzzz-dz642-000000000000999"]]`
	queued := `[["state","=","Queued"],["priority","\u003e",0]]`
	reqs := []fakearvados.Request{
		listReq(queued, 7), // the tail of a poll cut by the window
		listReq(locked, 100), listReq(page2, 50), listReq(queued, 10),
		{Method: "PUT", Path: "/arvados/v1/containers/zzzzz-dz642-000000000000001", RespBytes: 40},
		listReq(locked, 100), listReq(page2, 50), listReq(queued, 10),
		listReq(locked, 100), // a poll that had not ended
	}
	if !pollStart(reqs[1]) || pollStart(reqs[2]) || pollStart(reqs[3]) || pollStart(reqs[4]) {
		t.Fatal("poll starts misclassified")
	}
	got := costPerPoll(reqs)
	if got.Polls != 2 || got.Requests != 3.5 || got.Bytes != (160*2+40)/2.0 {
		t.Errorf("got %+v, want 2 polls, 3.5 requests and 180 bytes per poll", got)
	}
	if got := costPerPoll(reqs[:2]); got.Polls != 0 {
		t.Errorf("one poll start: %+v, want no complete poll", got)
	}
	if !singleGET(fakearvados.Request{Method: "GET", Path: "/arvados/v1/containers/zzzzz-dz642-000000000000001"}) ||
		singleGET(fakearvados.Request{Method: "GET", Path: "/arvados/v1/containers/current"}) {
		t.Error("single GETs misclassified")
	}
}

func TestGoBenchmarkOutputIsParsedIntoMetrics(t *testing.T) {
	out := `goos: linux
BenchmarkSqueueParse100000Lines-2   	       3	  25073508 ns/op	 270.44 MB/s	14786602 B/op	       2 allocs/op
BenchmarkReniceChurnDrain1000/random-order-2           	       1	 399314675 ns/op	       987.0 renice-calls	       987.0 renice-ops
BenchmarkReniceChurnDrain1000/random-order-2           	       1	 399314675 ns/op	       987.0 renice-calls	       990.0 renice-ops
PASS`
	got := parseBenchOutput(out)
	if v := got["BenchmarkSqueueParse100000Lines"]["ns/op"]; len(v) != 1 || v[0] != 25073508 {
		t.Errorf("ns/op = %v", v)
	}
	if v := got["BenchmarkReniceChurnDrain1000/random-order"]["renice-ops"]; len(v) != 2 || v[1] != 990 {
		t.Errorf("renice-ops = %v", v)
	}
}

func TestMediansPercentilesAndTargets(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median of 3 = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median of 4 = %v", m)
	}
	v := make([]float64, 100)
	for i := range v {
		v[i] = float64(100 - i)
	}
	if p := percentile(v, 99); p != 99 {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile(v, 50); p != 50 {
		t.Errorf("p50 = %v", p)
	}
	for _, tc := range []struct {
		t    Target
		v    float64
		want bool
	}{
		{atMost(2), 2, true}, {atMost(2), 2.1, false}, {atLeast(300), 299, false}, {below(50000), 50000, false},
		{exactly(0), 0, true}, {Target{}, 1e9, true},
	} {
		if got := tc.t.Met(tc.v); got != tc.want {
			t.Errorf("%+v met by %v: %v", tc.t, tc.v, got)
		}
	}
}

func TestRecorderTakesTheMedianAndSaysWhatIsMissing(t *testing.T) {
	r := newRecorder(func(string, ...any) {})
	for _, v := range []float64{5, 1, 3} {
		r.add("3", "idle", FakeTier, "req", atMost(2), "", v)
	}
	r.missing("1", "throughput", RealTier, "jobs/s", atLeast(300), "real Slurm not up")
	figs := r.figures()
	if len(figs) != 2 || figs[0].ID != "1" || figs[0].Missing == "" || figs[1].Value != 3 || figs[1].Within == nil || *figs[1].Within {
		t.Fatalf("figures %+v", figs)
	}
}

// spin keeps the busy loop below from being optimized away.
var spin int

func TestProcessAccountingReadsOurOwnProcess(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
		spin++
	}
	cpu, err := cpuTime(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Errorf("cpu %v, %v", cpu, err)
	}
	rss, hwm, err := memory(os.Getpid())
	if err != nil || rss <= 0 || hwm < rss {
		t.Errorf("rss %d hwm %d, %v", rss, hwm, err)
	}
}
