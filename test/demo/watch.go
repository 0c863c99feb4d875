package demo

import (
	"fmt"
	"strconv"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// Event is one thing the demo saw happen, for the live view.
type Event struct {
	// At is the time since the demo started.
	At time.Duration
	// Name is the seed's name ("" for the demo's own events); UUID its container.
	Name, UUID string
	// Text says what happened: "Locked → Running", "Slurm job 12 PENDING (Resources)".
	Text string
}

func (e Event) String() string {
	name := e.Name
	if name == "" {
		name = "demo"
	}
	return fmt.Sprintf("%6.1fs  %-14s %s", e.At.Seconds(), name, e.Text)
}

// watch is what the demo knows of its containers and their jobs, from polling the fake API
// and squeue. Observing a change produces events.
type watch struct {
	seeds map[string]Seed // by uuid
	order []string        // uuids, in seed order
	ctrs  map[string]arvados.Container
	jobs  map[string]job
	// dropped: the uuids whose priority the demo set to 0.
	dropped map[string]bool
}

func newWatch(uuids []string, seeds []Seed) *watch {
	w := &watch{seeds: map[string]Seed{}, ctrs: map[string]arvados.Container{}, jobs: map[string]job{},
		dropped: map[string]bool{}}
	for i, u := range uuids {
		w.seeds[u] = seeds[i]
		w.order = append(w.order, u)
	}
	return w
}

// observeContainers takes the fake API's containers and returns what changed: states,
// runtime_status errors and warnings, priorities.
func (w *watch) observeContainers(at time.Duration, cs []arvados.Container) []Event {
	byUUID := make(map[string]arvados.Container, len(cs))
	for _, c := range cs {
		byUUID[c.UUID] = c
	}
	var evs []Event
	for _, u := range w.order {
		c, ok := byUUID[u]
		if !ok {
			continue
		}
		s := w.seeds[u]
		ev := func(text string) { evs = append(evs, Event{At: at, Name: s.Name, UUID: c.UUID, Text: text}) }
		old, seen := w.ctrs[c.UUID]
		w.ctrs[c.UUID] = c
		if !seen {
			old = s.Container(c.UUID)
		}
		if c.State != old.State {
			text := string(old.State) + " → " + string(c.State)
			if c.State == arvados.Complete && c.ExitCode != nil {
				text += " (exit code " + strconv.Itoa(*c.ExitCode) + ")"
			}
			ev(text)
		}
		if c.Priority != old.Priority {
			ev(fmt.Sprintf("priority %d → %d", old.Priority, c.Priority))
		}
		for _, key := range []string{"warning", "error"} {
			if v := runtimeString(c, key); v != "" && v != runtimeString(old, key) {
				ev(key + ": " + v)
			}
		}
	}
	return evs
}

// observeJobs takes the demo's jobs (by name) and returns what changed: a job that appears,
// and a job that ends other than COMPLETED.
func (w *watch) observeJobs(at time.Duration, jobs map[string]job) []Event {
	var evs []Event
	for _, u := range w.order {
		j, ok := jobs[u]
		if !ok {
			continue
		}
		old, seen := w.jobs[u]
		w.jobs[u] = j
		ev := func(text string) { evs = append(evs, Event{At: at, Name: w.seeds[u].Name, UUID: u, Text: text}) }
		switch {
		case !seen || old.ID != j.ID:
			ev("Slurm job " + j.ID + " " + j.State + reasonText(j.Reason))
		case old.State != j.State && !j.live() && j.State != "COMPLETED":
			ev("Slurm job " + j.ID + " " + j.State + reasonText(j.Reason))
		}
	}
	return evs
}

// counts returns the number of containers in each state.
func (w *watch) counts() map[arvados.ContainerState]int {
	n := map[arvados.ContainerState]int{}
	for _, u := range w.order {
		st := arvados.Queued
		if c, ok := w.ctrs[u]; ok {
			st = c.State
		}
		n[st]++
	}
	return n
}

// final is the number of containers in a final state.
func (w *watch) final() int {
	n := w.counts()
	return n[arvados.Complete] + n[arvados.Cancelled]
}

// allFinal reports whether every container is final.
func (w *watch) allFinal() bool { return w.final() == len(w.order) }

// jobCounts returns the demo's jobs running and pending, as squeue last said.
func (w *watch) jobCounts() (running, pending int) {
	for _, j := range w.jobs {
		switch j.State {
		case "RUNNING", "COMPLETING":
			running++
		case "PENDING":
			pending++
		}
	}
	return running, pending
}

// toDrop returns the containers whose priority the demo should now set to 0: marked
// DropPriority, Running, not yet dropped.
func (w *watch) toDrop() []string {
	var out []string
	for _, u := range w.order {
		if w.seeds[u].DropPriority && !w.dropped[u] && w.ctrs[u].State == arvados.Running {
			out = append(out, u)
		}
	}
	return out
}

// reasonText is " (<reason>)", or "" when Slurm gives none.
func reasonText(reason string) string {
	if reason == "" || reason == "None" {
		return ""
	}
	return " (" + reason + ")"
}
