package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Target is a figure's goal: the value must be at most (or at least) Limit.
type Target struct {
	// Op is "<=", ">=", "<" or "=="; "" means no target (shown for context).
	Op    string  `json:"op,omitempty"`
	Limit float64 `json:"limit,omitempty"`
}

// Met reports whether v meets the target (true without one).
func (t Target) Met(v float64) bool {
	switch t.Op {
	case "<=":
		return v <= t.Limit
	case ">=":
		return v >= t.Limit
	case "<":
		return v < t.Limit
	case "==":
		return v == t.Limit
	}
	return true
}

func atMost(v float64) Target  { return Target{Op: "<=", Limit: v} }
func atLeast(v float64) Target { return Target{Op: ">=", Limit: v} }
func below(v float64) Target   { return Target{Op: "<", Limit: v} }
func exactly(v float64) Target { return Target{Op: "==", Limit: v} }

// Figure is one row of the table: the median of the values of its runs.
type Figure struct {
	// ID groups rows by the numbering ("1", "2", … "8").
	ID   string `json:"id"`
	Name string `json:"name"`
	Tier string `json:"tier"`
	Unit string `json:"unit"`
	// Value is the median of Values; Missing says why there is none.
	Value   float64   `json:"value"`
	Values  []float64 `json:"values"`
	Missing string    `json:"missing,omitempty"`
	Target  Target    `json:"target"`
	Within  *bool     `json:"within_target,omitempty"`
	// Note says how it was measured (N, load, what the value includes).
	Note string `json:"note,omitempty"`
}

// Runs is how many runs the value is the median of.
func (f Figure) Runs() int { return len(f.Values) }

// Report is everything a benchmark run produced.
type Report struct {
	Started  time.Time `json:"started"`
	Took     string    `json:"took"`
	Host     Host      `json:"host"`
	Options  Options   `json:"options"`
	Figures  []Figure  `json:"figures"`
	Problems []string  `json:"problems,omitempty"`
	// Details are per-run observations behind the figures (e.g. requests by endpoint).
	Details []string `json:"details,omitempty"`
}

// Host describes the machine: the figures mean little without it.
type Host struct {
	Hostname string  `json:"hostname"`
	CPUs     int     `json:"cpus"`
	Model    string  `json:"cpu_model"`
	MemTotal string  `json:"mem_total"`
	Kernel   string  `json:"kernel"`
	Load1    float64 `json:"load1_at_start"`
	Slurm    string  `json:"slurm,omitempty"`
	Go       string  `json:"go"`
}

// recorder collects the values of each figure across runs.
type recorder struct {
	figs    []*Figure
	byKey   map[string]*Figure
	details []string
	log     func(format string, args ...any)
}

func newRecorder(log func(format string, args ...any)) *recorder {
	return &recorder{byKey: map[string]*Figure{}, log: log}
}

// detail keeps (and logs) an observation behind a figure.
func (r *recorder) detail(format string, args ...any) {
	d := fmt.Sprintf(format, args...)
	r.details = append(r.details, d)
	r.log("%s", d)
}

// fig returns the figure with that id, name and tier, creating it the first time.
func (r *recorder) fig(id, name string, tier Tier, unit string, t Target, note string) *Figure {
	k := id + "\x00" + name + "\x00" + string(tier)
	if f := r.byKey[k]; f != nil {
		return f
	}
	f := &Figure{ID: id, Name: name, Tier: string(tier), Unit: unit, Target: t, Note: note}
	r.byKey[k] = f
	r.figs = append(r.figs, f)
	return f
}

// add records one run's value.
func (r *recorder) add(id, name string, tier Tier, unit string, t Target, note string, v float64) {
	f := r.fig(id, name, tier, unit, t, note)
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		f.Values = append(f.Values, v)
	}
}

// annotate adds text to a figure's note (once).
func (r *recorder) annotate(id, name string, tier Tier, text string) {
	if f := r.byKey[id+"\x00"+name+"\x00"+string(tier)]; f != nil && !strings.Contains(f.Note, text) {
		f.Note = strings.TrimPrefix(f.Note+"; "+text, "; ")
	}
}

// missing declares a figure that could not be measured, and why (unless it has values).
func (r *recorder) missing(id, name string, tier Tier, unit string, t Target, why string) {
	f := r.fig(id, name, tier, unit, t, "")
	if f.Missing == "" {
		f.Missing = why
	}
}

// figures returns the figures with their medians, in the order of the issue.
func (r *recorder) figures() []Figure {
	out := make([]Figure, 0, len(r.figs))
	for _, f := range r.figs {
		g := *f
		if len(g.Values) > 0 {
			g.Value = median(g.Values)
			g.Missing = ""
			ok := g.Target.Met(g.Value)
			if g.Target.Op != "" {
				g.Within = &ok
			}
		} else if g.Missing == "" {
			g.Missing = "not measured"
		}
		out = append(out, g)
	}
	slices.SortStableFunc(out, func(a, b Figure) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile returns the p-th percentile (0..100) of v, nearest rank.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// PrintTable writes the figures as one table.
func (rep *Report) PrintTable(w io.Writer) error {
	h := rep.Host
	fmt.Fprintf(w, "dispatch-slurm benchmark, %s: %s, %d CPUs (%s), %s, load %.2f at start; %s; took %s\n",
		rep.Started.Format(time.RFC3339), h.Hostname, h.CPUs, h.Model, h.MemTotal, h.Load1, orDash(h.Slurm), rep.Took)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tfigure\ttier\tvalue\ttarget\twithin?\truns\tnote")
	for _, f := range rep.Figures {
		val, within := "—", "—"
		if f.Missing != "" {
			val = "missing: " + f.Missing
		} else {
			val = formatValue(f.Value, f.Unit)
			if f.Within != nil {
				within = map[bool]string{true: "yes", false: "NO"}[*f.Within]
			}
		}
		target := "—"
		if f.Target.Op != "" {
			target = f.Target.Op + " " + formatValue(f.Target.Limit, f.Unit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", f.ID, f.Name, f.Tier, val, target, within, f.Runs(), f.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "no real Slurm"
	}
	return s
}

func formatValue(v float64, unit string) string {
	var s string
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		s = fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		s = fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		s = fmt.Sprintf("%.1f", v)
	default:
		s = fmt.Sprintf("%.3g", v)
	}
	if unit == "" {
		return s
	}
	return s + " " + unit
}

// WriteJSON writes the report to path.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return nil
}
