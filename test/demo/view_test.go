package demo

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// twoSeeds is a watch of two containers, a and b.
func twoSeeds() *watch {
	return newWatch([]string{"zzzzz-dz642-aaaaaaaaaaaaaaa", "zzzzz-dz642-bbbbbbbbbbbbbbb"}, []Seed{
		{Name: "a", Priority: 5, Expect: arvados.Complete},
		{Name: "b", Priority: 7, DropPriority: true, Expect: arvados.Cancelled},
	})
}

func texts(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Name+": "+e.Text)
	}
	return out
}

func TestWatchEvents(t *testing.T) {
	w := twoSeeds()
	a, b := w.order[0], w.order[1]
	steps := []struct {
		name string
		ctrs []arvados.Container
		jobs map[string]job
		want []string
	}{
		{name: "containers as seeded are no news",
			ctrs: []arvados.Container{{UUID: a, State: arvados.Queued, Priority: 5}, {UUID: b, State: arvados.Queued, Priority: 7}}},
		{name: "a state change is shown, in seed order",
			ctrs: []arvados.Container{{UUID: b, State: arvados.Running, Priority: 7}, {UUID: a, State: arvados.Locked, Priority: 5}},
			want: []string{"a: Queued → Locked", "b: Queued → Running"}},
		{name: "a job that appears is shown with its pending reason",
			jobs: map[string]job{a: {ID: "12", Name: a, State: "PENDING", Reason: "Resources"}},
			want: []string{"a: Slurm job 12 PENDING (Resources)"}},
		{name: "a job that ends otherwise than COMPLETED is shown",
			jobs: map[string]job{a: {ID: "12", Name: a, State: "FAILED", Reason: "NonZeroExitCode"}},
			want: []string{"a: Slurm job 12 FAILED (NonZeroExitCode)"}},
		{name: "a priority change, an error and the end are shown",
			ctrs: []arvados.Container{{UUID: a, State: arvados.Locked, Priority: 5},
				{UUID: b, State: arvados.Cancelled, Priority: 0, RuntimeStatus: map[string]any{"error": "received SIGTERM"}}},
			want: []string{"b: Running → Cancelled", "b: priority 7 → 0", "b: error: received SIGTERM"}},
	}
	for i, st := range steps {
		at := time.Duration(i) * time.Second
		var got []string
		if st.ctrs != nil {
			got = append(got, texts(w.observeContainers(at, st.ctrs))...)
		}
		if st.jobs != nil {
			got = append(got, texts(w.observeJobs(at, st.jobs))...)
		}
		if strings.Join(got, "\n") != strings.Join(st.want, "\n") {
			t.Errorf("%s: events\n%s\nwant\n%s", st.name, strings.Join(got, "\n"), strings.Join(st.want, "\n"))
		}
	}
	if n := w.counts(); n[arvados.Locked] != 1 || n[arvados.Cancelled] != 1 || w.final() != 1 || w.allFinal() {
		t.Errorf("counts %v, final %d, all final %v: want 1 Locked, 1 Cancelled", n, w.final(), w.allFinal())
	}
}

func TestWatchDropsThePriorityOfAMarkedContainerOnceItRuns(t *testing.T) {
	w := twoSeeds()
	a, b := w.order[0], w.order[1]
	w.observeContainers(0, []arvados.Container{{UUID: a, State: arvados.Running}, {UUID: b, State: arvados.Locked}})
	if got := w.toDrop(); len(got) != 0 {
		t.Errorf("toDrop before it runs = %v, want none", got)
	}
	w.observeContainers(time.Second, []arvados.Container{{UUID: a, State: arvados.Running}, {UUID: b, State: arvados.Running}})
	if got := w.toDrop(); len(got) != 1 || got[0] != b {
		t.Errorf("toDrop once it runs = %v, want [%s]", got, b)
	}
	w.dropped[b] = true
	if got := w.toDrop(); len(got) != 0 {
		t.Errorf("toDrop after the drop = %v, want none", got)
	}
}

func TestLiveViewRedrawsInPlace(t *testing.T) {
	var out bytes.Buffer
	v := newView(&out, true, 60, "demo")
	w := twoSeeds()
	v.update(0, w, nil)
	first := out.String()
	if strings.Contains(first, "F") && strings.HasPrefix(first, "\x1b[") {
		t.Errorf("the first frame moves the cursor up: %q", first)
	}
	evs := w.observeContainers(time.Second, []arvados.Container{{UUID: w.order[0], State: arvados.Locked, Priority: 5}})
	v.update(time.Second, w, evs)
	second := strings.TrimPrefix(out.String(), first)
	up := "\x1b[" + strconv.Itoa(len(frame("demo", 0, w, nil))) + "F"
	if !strings.HasPrefix(second, up) {
		t.Errorf("the second frame does not begin with %q: %q", up, second[:min(20, len(second))])
	}
	for _, l := range strings.Split(strings.TrimPrefix(second, up), "\n") {
		if l = strings.TrimSuffix(l, "\x1b[K"); len([]rune(l)) > 60 {
			t.Errorf("line of %d runes on a 60-column terminal: %q", len([]rune(l)), l)
		}
	}
	if !strings.Contains(second, "Queued → Locked") || !strings.Contains(second, "Locked  1") {
		t.Errorf("the second frame lacks the event or the count:\n%s", second)
	}
}

func TestPlainViewPrintsEventsAndPeriodicStatusLines(t *testing.T) {
	var out bytes.Buffer
	v := newView(&out, false, 0, "demo")
	w := twoSeeds()
	v.update(0, w, nil)
	evs := w.observeContainers(500*time.Millisecond, []arvados.Container{{UUID: w.order[0], State: arvados.Locked, Priority: 5}})
	v.update(500*time.Millisecond, w, evs)
	v.update(plainEvery, w, nil)
	got := out.String()
	if strings.Contains(got, "\x1b") {
		t.Errorf("plain output has escape sequences: %q", got)
	}
	if n := strings.Count(got, "ended | Slurm"); n != 2 {
		t.Errorf("%d status lines, want 2 (at 0 and after %v):\n%s", n, plainEvery, got)
	}
	if !strings.Contains(got, "a              Queued → Locked") {
		t.Errorf("the event is not printed:\n%s", got)
	}
}

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		done, total int
		want        string
	}{
		{0, 20, "[░░░░░░░░░░]"},
		{10, 20, "[█████░░░░░]"},
		{20, 20, "[██████████]"},
		{0, 0, "[░░░░░░░░░░]"},
	} {
		if got := bar(tc.done, tc.total, 10); got != tc.want {
			t.Errorf("bar(%d, %d) = %s, want %s", tc.done, tc.total, got, tc.want)
		}
	}
}
