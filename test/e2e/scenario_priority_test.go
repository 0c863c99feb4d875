package e2e

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// Scenario 9: ten containers wait in a DOWN partition with distinct priorities. Slurm's
// priority order of their jobs matches the containers' within 2 squeue cycles: right after
// they are submitted, and after users reorder them.
func TestPendingJobsFollowContainerPriorityWithinTwoSqueueCycles(t *testing.T) {
	// A long squeue period, so that the test's own polling of Slurm (every 50 ms) cannot
	// see the order one cycle late.
	const period = 400 * time.Millisecond
	forEachTierWith(t, options{squeue: period}, func(t *testing.T, h *harness) {
		// Modern priorities: user priority × 2^50 − creation time in ms.
		base := int64(1_750_000_000_000)
		prio := []int64{3<<50 - base, 1<<50 - base - 7, 2<<50 - base, 5, 500<<50 - base, 7<<50 - base - 1, 7<<50 - base, 900, 1<<50 - base, 4<<50 - base}
		var cs []arvados.Container
		for _, p := range prio {
			cs = append(cs, ctr(p, 1, 64, "1", "down"))
		}
		uuids := h.seed(cs...)
		h.start()
		h.waitStates(uuids, 60*time.Second, arvados.Locked)
		h.waitPendingJobs(uuids, 60*time.Second)
		var lastSubmit time.Time
		for _, c := range h.slurm.callsOf("sbatch") {
			lastSubmit = later(lastSubmit, c.End)
		}
		h.expectOrderWithinTwoCycles("after submission", uuids, lastSubmit)

		// Users reorder: reverse the ranking.
		sorted := append([]int64(nil), prio...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		rank := map[int64]int{}
		for i, p := range sorted {
			rank[p] = i
		}
		changed := time.Now()
		for i, u := range uuids {
			if err := h.api.SetPriority(u, sorted[len(sorted)-1-rank[prio[i]]]); err != nil {
				t.Fatal(err)
			}
		}
		var seen time.Time
		h.waitFor(10*time.Second, "a poll that sees the new priorities", func() (bool, string) {
			for _, c := range h.api.Calls() {
				if c.Method == http.MethodGet && c.Path == "/arvados/v1/containers" && c.Who == "dispatcher" && c.Start.After(changed) {
					seen = c.End
					return true, ""
				}
			}
			return false, "no list request since the change"
		})
		h.expectOrderWithinTwoCycles("after the priorities changed", uuids, seen)
	})
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// expectOrderWithinTwoCycles waits until Slurm's priorities of the containers' jobs are in the
// containers' priority order, then checks that the dispatcher started at most two squeue
// snapshots between since and the moment the order was right.
func (h *harness) expectOrderWithinTwoCycles(when string, uuids []string, since time.Time) {
	h.t.Helper()
	var matched time.Time
	var status string
	deadline := time.Now().Add(20 * time.Second)
	for matched.IsZero() {
		var ok bool
		ok, status = h.orderMatches(uuids)
		if ok {
			matched = time.Now()
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: Slurm's order never matched: %s", when, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cycles := 0
	for _, c := range h.slurm.callsOf("squeue") {
		if isSnapshot(c) && c.Start.After(since) && c.Start.Before(matched) {
			cycles++
		}
	}
	h.t.Logf("%s: order right %v later, after %d squeue cycles", when, matched.Sub(since).Round(time.Millisecond), cycles)
	if cycles > 2 {
		h.t.Errorf("%s: Slurm's priority order matched only after %d squeue cycles, want ≤ 2", when, cycles)
	}
}

// orderMatches reports whether, for every two containers with different priorities, the job
// of the higher one has the strictly higher Slurm priority.
func (h *harness) orderMatches(uuids []string) (bool, string) {
	jobs := h.slurm.jobsNamed(h.cluster + "-")
	type pair struct {
		ctr, slurm int64
		uuid       string
	}
	var ps []pair
	for _, u := range uuids {
		js := jobs[u]
		if len(js) != 1 {
			return false, fmt.Sprintf("%s has %d jobs", u, len(js))
		}
		ps = append(ps, pair{h.api.get(h.t, u).Priority, js[0].Priority, u})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].ctr > ps[j].ctr })
	var b strings.Builder
	ok := true
	for i, p := range ps {
		fmt.Fprintf(&b, "%d→%d ", p.ctr, p.slurm)
		if i > 0 && ps[i-1].ctr > p.ctr && ps[i-1].slurm <= p.slurm {
			ok = false
		}
	}
	return ok, "container priority→Slurm priority, highest first: " + b.String()
}
