package soak

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

// Transient Slurm messages, as Slurm 22.05 prints them.
const (
	squeueSocketTimeout = "slurm_load_jobs error: Socket timed out on send/recv operation\n"
	sbatchUnreachable   = "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n"
)

// injector draws fault kinds from a shuffled deck of every kind, so that each kind comes once
// per round whatever the seed; a kind that finds nothing to act on goes back in the deck.
type injector struct {
	deck         []string
	latencyUntil time.Time
}

func (w *world) draw(in *injector) string {
	if len(in.deck) == 0 {
		in.deck = append(in.deck, Kinds...)
		w.rng.Shuffle(len(in.deck), func(i, j int) { in.deck[i], in.deck[j] = in.deck[j], in.deck[i] })
	}
	k := in.deck[0]
	in.deck = in.deck[1:]
	return k
}

// injectNext injects the next fault of the deck, counting it; a kind with nothing to act on
// now is put back for later.
func (w *world) injectNext(in *injector, now time.Time) error {
	k := w.draw(in)
	err := w.inject(in, k, now)
	if errors.Is(err, errNoCandidate) {
		in.deck = append(in.deck, k)
		return nil
	}
	if err != nil {
		return fmt.Errorf("inject %s: %w", k, err)
	}
	w.faults[k]++
	return nil
}

func (w *world) inject(in *injector, kind string, now time.Time) error {
	rng := w.rng
	addFault := func(f sim.Fault) error {
		w.logf(kind, "%s %s count=%d", f.Command, f.Kind, f.Count)
		return w.slurm.admin.AddFault(f)
	}
	switch kind {
	case FaultAPI5xx:
		n, status := 3+rng.IntN(13), []int{500, 502, 503, 503}[rng.IntN(4)]
		w.api.inject5xx(n, status)
		w.logf(kind, "next %d requests answered %d", n, status)
	case FaultAPILatency:
		d := time.Duration(100+rng.IntN(1400)) * time.Millisecond
		w.api.setLatency(d)
		in.latencyUntil = now.Add(time.Duration(1000+rng.IntN(3000)) * time.Millisecond)
		w.logf(kind, "%v per request until %s", d, in.latencyUntil.Format("15:04:05.000"))
	case FaultSqueueFail:
		f := sim.Fault{Command: "squeue", Kind: sim.FaultControllerDown, Count: 2 + rng.IntN(7)}
		if rng.IntN(2) == 0 {
			f.Kind, f.Stderr = sim.FaultFail, squeueSocketTimeout
		}
		return addFault(f)
	case FaultSqueueEmpty:
		return addFault(sim.Fault{Command: "squeue", Kind: sim.FaultEmpty, Count: 2 + rng.IntN(7)})
	case FaultSqueueGarbage:
		return addFault(sim.Fault{Command: "squeue", Kind: sim.FaultGarbage, Count: 1 + rng.IntN(4)})
	case FaultSbatchFail:
		f := sim.Fault{Command: "sbatch", Kind: sim.FaultControllerDown, Count: 1 + rng.IntN(3)}
		if rng.IntN(2) == 0 {
			f.Kind, f.Stderr = sim.FaultFail, sbatchUnreachable
		}
		return addFault(f)
	case FaultSbatchAmbiguous:
		return addFault(sim.Fault{Command: "sbatch", Kind: sim.FaultSubmitThenFail, Count: 1})
	case FaultSbatchTimeout:
		return addFault(sim.Fault{Command: "sbatch", Kind: sim.FaultSubmitThenHang, Count: 1})
	case FaultKillStandin:
		return w.killStandin()
	case FaultKillDispatcher:
		d := w.current()
		if d == nil || !d.alive() || !w.restartAt.IsZero() {
			return errNoCandidate
		}
		if err := d.kill(); err != nil {
			return err
		}
		w.restartAt = now.Add(time.Duration(200+rng.IntN(1800)) * time.Millisecond)
		w.logf(kind, "run %d killed; restart at %s", d.n, w.restartAt.Format("15:04:05.000"))
	case FaultPriority:
		c, err := w.pick(func(c arvados.Container) bool { return !c.State.Final() })
		if err != nil {
			return err
		}
		w.ours[c.UUID].actions = append(w.ours[c.UUID].actions, actPriority)
		p := 1 + rng.Int64N(1000)
		w.logf(kind, "%s (%s) priority %d → %d", c.UUID, c.State, c.Priority, p)
		return w.api.SetPriority(c.UUID, p)
	case FaultPriorityZero:
		c, err := w.pick(func(c arvados.Container) bool { return !c.State.Final() && c.Priority > 0 })
		if err != nil {
			return err
		}
		w.ours[c.UUID].actions = append(w.ours[c.UUID].actions, actZero)
		w.logf(kind, "%s (%s) priority %d → 0", c.UUID, c.State, c.Priority)
		return w.api.SetPriority(c.UUID, 0)
	case FaultUserCancel:
		c, err := w.pick(func(c arvados.Container) bool { return !c.State.Final() })
		if err != nil {
			return err
		}
		return w.cancel(c.UUID)
	default:
		return fmt.Errorf("unknown fault kind %q", kind)
	}
	return nil
}

// cancel sets a container Cancelled as a user cancelling their request would.
func (w *world) cancel(uuid string) error {
	w.ours[uuid].actions = append(w.ours[uuid].actions, actCancel)
	w.logf(FaultUserCancel, "%s", uuid)
	return w.api.SetState(uuid, arvados.Cancelled)
}

// pick returns one of our containers for which ok holds, at random (errNoCandidate when none).
func (w *world) pick(ok func(arvados.Container) bool) (arvados.Container, error) {
	var cands []arvados.Container
	for _, c := range w.api.Containers() {
		if w.ours[c.UUID] != nil && ok(c) {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return arvados.Container{}, errNoCandidate
	}
	return cands[w.rng.IntN(len(cands))], nil
}

// killStandin kills the crunch-run stand-in of one of our running jobs whose container is not
// final.
func (w *world) killStandin() error {
	jobs, err := w.slurm.jobs()
	if err != nil {
		return err
	}
	var cands []sim.Job
	for _, j := range jobs {
		if w.ours[j.Name] == nil || j.State != sim.StateRunning || j.Completing || j.ScriptPID <= 0 {
			continue
		}
		if c, ok := w.api.Container(j.Name); ok && !c.State.Final() {
			cands = append(cands, j)
		}
	}
	if len(cands) == 0 {
		return errNoCandidate
	}
	j := cands[w.rng.IntN(len(cands))]
	w.ours[j.Name].actions = append(w.ours[j.Name].actions, actKill)
	if err := killScript(j); err != nil {
		info := w.ours[j.Name]
		info.actions = info.actions[:len(info.actions)-1]
		return err
	}
	w.logf(FaultKillStandin, "%s job %d pid %d", j.Name, j.ID, j.ScriptPID)
	return nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, _ := readFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
