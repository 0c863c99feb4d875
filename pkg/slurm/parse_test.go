package slurm

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSqueue(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		jobs    []Job
		skipped int
	}{
		{"empty output is an empty queue", "", nil, 0},
		{"blank lines are ignored", "\n  \n\r\n", nil, 0},
		{"one job", "12|" + testUUID + "|PENDING|5|999995|PartitionDown\n",
			[]Job{{ID: "12", Name: testUUID, State: "PENDING", Nice: 5, Priority: 999995, Reason: "PartitionDown"}}, 0},
		{"no final newline, CRLF endings", "1|a|RUNNING|0|1|None\r\n2|b|PENDING|0|1|Priority",
			[]Job{{ID: "1", Name: "a", State: "RUNNING", Priority: 1, Reason: "None"},
				{ID: "2", Name: "b", State: "PENDING", Priority: 1, Reason: "Priority"}}, 0},
		{"the reason keeps spaces and bars", "3|c|PENDING|0|1|ReqNodeNotAvail, UnavailableNodes:n[1-3]|x\n",
			[]Job{{ID: "3", Name: "c", State: "PENDING", Priority: 1, Reason: "ReqNodeNotAvail, UnavailableNodes:n[1-3]|x"}}, 0},
		{"a negative nice and an empty name", "4||PENDING|-5|1000005|None\n",
			[]Job{{ID: "4", State: "PENDING", Nice: -5, Priority: 1000005, Reason: "None"}}, 0},
		{"a job array and a heterogeneous job", "5_[1-3]|arr|PENDING|0|1|None\n6+0|het|RUNNING|0|1|None\n",
			[]Job{{ID: "5_[1-3]", Name: "arr", State: "PENDING", Priority: 1, Reason: "None"},
				{ID: "6+0", Name: "het", State: "RUNNING", Priority: 1, Reason: "None"}}, 0},
		{"garbage lines are counted and skipped", strings.Join([]string{
			"JOBID|NAME|STATE|NICE|PRIORITY|REASON",
			"squeue: error: something",
			"7|x|PENDING|zero|1|None",
			"8|x|PENDING|0|high|None",
			"9|x|pending|0|1|None",
			"10|x|PENDING|0",
			"x10|x|PENDING|0|1|None",
			"|x|PENDING|0|1|None",
			"11|x|PENDING|0|1|None",
		}, "\n"), []Job{{ID: "11", Name: "x", State: "PENDING", Priority: 1, Reason: "None"}}, 8},
		{"a name with a bar shifts the fields and is skipped", "12|a|b|PENDING|0|1|None\n", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, skipped := ParseSqueue([]byte(tt.out))
			if !slices.Equal(jobs, tt.jobs) || skipped != tt.skipped {
				t.Errorf("ParseSqueue = %+v, %d skipped; want %+v, %d", jobs, skipped, tt.jobs, tt.skipped)
			}
		})
	}
}

func TestParseJobErrors(t *testing.T) {
	lines, other := parseJobErrors("Invalid job id specified for job 12\n" +
		"scancel: error: Kill job error on job id 13: Invalid job id specified\n" +
		"Job has already finished for job 14\n" +
		"scontrol: error: something else\n" +
		"Invalid job id specified for job abc\n")
	want := []jobErrorLine{{"12", "Invalid job id specified"}, {"13", "Invalid job id specified"}, {"14", "Job has already finished"}}
	if !slices.Equal(lines, want) {
		t.Errorf("lines %+v", lines)
	}
	if !slices.Equal(other, []string{"scontrol: error: something else", "Invalid job id specified for job abc"}) {
		t.Errorf("other %q", other)
	}
}

// squeueLines makes n lines of realistic squeue output.
func squeueLines(n int) []byte {
	var b strings.Builder
	reasons := []string{"None", "Priority", "Resources", "PartitionDown", "ReqNodeNotAvail, UnavailableNodes:node[001-003]"}
	for i := range n {
		fmt.Fprintf(&b, "%d|zzzzz-dz642-%015d|PENDING|%d|%d|%s\n", 100000+i, i, i%1000, 1000000-i%1000, reasons[i%len(reasons)])
	}
	return []byte(b.String())
}

func TestParseSqueueOf100000LinesIsFast(t *testing.T) {
	out := squeueLines(100_000)
	jobs, skipped := ParseSqueue(out) // warm up
	if len(jobs) != 100_000 || skipped != 0 {
		t.Fatalf("parsed %d, skipped %d", len(jobs), skipped)
	}
	// The target is well under 100 ms; the bound is loose for -race and busy CI machines.
	best := time.Hour
	for range 3 {
		start := time.Now()
		ParseSqueue(out)
		best = min(best, time.Since(start))
	}
	if best > 500*time.Millisecond {
		t.Errorf("parsing 100,000 lines took %v", best)
	}
	t.Logf("100,000 lines in %v", best)
}

func BenchmarkParseSqueue(b *testing.B) {
	out := squeueLines(100_000)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if jobs, _ := ParseSqueue(out); len(jobs) != 100_000 {
			b.Fatal(len(jobs))
		}
	}
}

func FuzzParseSqueue(f *testing.F) {
	f.Add([]byte("12|" + testUUID + "|PENDING|5|999995|PartitionDown\n"))
	f.Add([]byte("1|a|RUNNING|0|1|None\r\n2|b|PENDING|-3|1|Priority"))
	f.Add([]byte("3|c|PENDING|0|1|ReqNodeNotAvail, UnavailableNodes:n[1-3]|x\n\n"))
	f.Add([]byte("JOBID|NAME|STATE|NICE|PRIORITY|REASON\ngarbage\n"))
	f.Add([]byte("5_[1-3]|arr|PENDING|0|99999999999999999999|None\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, out []byte) {
		jobs, skipped := ParseSqueue(out)
		nonBlank := 0
		for line := range strings.SplitSeq(string(out), "\n") {
			if strings.TrimSpace(strings.TrimRight(line, "\r")) != "" {
				nonBlank++
			}
		}
		if len(jobs)+skipped != nonBlank {
			t.Fatalf("%d jobs + %d skipped != %d non-blank lines", len(jobs), skipped, nonBlank)
		}
		for _, j := range jobs {
			if !validListedID(j.ID) || !validState(j.State) || strings.Contains(j.Name+j.Reason, "\n") {
				t.Fatalf("bad job %+v", j)
			}
			// A parsed job prints back to a line that parses to the same job.
			line := fmt.Sprintf("%s|%s|%s|%d|%d|%s", j.ID, j.Name, j.State, j.Nice, j.Priority, j.Reason)
			if again, ok := parseSqueueLine(line); !ok || again != j {
				t.Fatalf("round trip of %+v: %+v, %v", j, again, ok)
			}
		}
	})
}
