package sim

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func testSim(t *testing.T, dir string) *Sim {
	return &Sim{Dir: dir, Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{},
		Now: time.Now, Sleep: func(time.Duration) {}, Cwd: t.TempDir(), User: "u", Group: "g", UID: 1000, GID: 1000}
}

func submitDown(t *testing.T, dir, name string) string {
	t.Helper()
	id, err := trySubmitDown(testSim(t, dir), name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// trySubmitDown submits a job to the down partition (safe to call from any goroutine).
func trySubmitDown(s *Sim, name string) (string, error) {
	s.Stdin = strings.NewReader("#!/bin/sh\ntrue\n")
	if code := s.Run("sbatch", []string{"--parsable", "-J", name, "-p", "down", "-o", "/dev/null"}); code != 0 {
		return "", fmt.Errorf("sbatch exit %d: %s", code, s.Stderr.(*bytes.Buffer))
	}
	return strings.TrimSpace(s.Stdout.(*bytes.Buffer).String()), nil
}

func TestSubmissionsThatCannotStartSkipTheTableAndStillNumberJobsInOrder(t *testing.T) {
	dir := t.TempDir()
	for i, want := range []string{"1", "2", "3"} {
		if got := submitDown(t, dir, "job"); got != want {
			t.Fatalf("submission %d got id %s, want %s", i, got, want)
		}
	}
	st, err := OpenStore(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if len(st.Jobs) != 3 || st.NextID != 4 || st.Count() != 3 {
		t.Errorf("after three submissions: %d jobs, next id %d, count %d", len(st.Jobs), st.NextID, st.Count())
	}
}

func TestTheJournalIsCompactedAndATornLineIsIgnored(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStore(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	j := &Job{ID: st.AllocID(), Name: "x", State: StatePending}
	for i := 0; i < 1100; i++ {
		j.Nice = i
		st.Put(j)
	}
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	b, _ := os.ReadFile(filepath.Join(dir, journalFileName))
	if n := bytes.Count(b, []byte{'\n'}); n != 2 {
		t.Errorf("journal has %d lines after compaction, want 2", n)
	}
	f, _ := os.OpenFile(filepath.Join(dir, journalFileName), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("J1\t1\thalf a rec")
	f.Close()
	st, err = OpenStore(dir, 1)
	if err != nil {
		t.Fatalf("a torn last line broke loading: %v", err)
	}
	defer st.Close()
	if got := st.Jobs[1]; got == nil || got.Nice != 1099 {
		t.Errorf("job after reload: %+v", got)
	}
}

func TestConcurrentSubmissionsGetDistinctIDs(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		s := testSim(t, dir)
		go func() {
			defer wg.Done()
			id, err := trySubmitDown(s, "job")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[id] {
				t.Errorf("id %s given twice", id)
			}
			seen[id] = true
		}()
	}
	wg.Wait()
	if len(seen) != 20 {
		t.Errorf("%d distinct ids, want 20", len(seen))
	}
}
