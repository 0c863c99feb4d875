package demo

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// Outcome is how one container ended.
type Outcome struct {
	Name, UUID string
	Seed       Seed
	// JobID is its Slurm job's id ("" when it never had one: sbatch rejected it).
	JobID string
	// JobState is how Slurm last showed the job ("" when none).
	JobState string
	State    arvados.ContainerState
	// Why says why it ended so: exit code, runtime_status.error, what the demo did.
	Why string
	// OK: it ended as its Seed expects; Problem says how not.
	OK      bool
	Problem string
}

// outcomes judges every container from what the watch saw last.
func outcomes(w *watch) []Outcome {
	out := make([]Outcome, 0, len(w.order))
	for _, u := range w.order {
		s := w.seeds[u]
		c, seen := w.ctrs[u]
		if !seen {
			c = s.Container(u)
		}
		o := Outcome{Name: s.Name, UUID: u, Seed: s, State: c.State}
		if j, ok := w.jobs[u]; ok {
			o.JobID, o.JobState = j.ID, j.State
		}
		o.Why = why(c, w.dropped[u], w.jobs[u])
		ok, problem := s.Judge(c)
		o.OK, o.Problem = ok, problem
		out = append(out, o)
	}
	return out
}

// why says why container c ended the way it did (or where it is stuck).
func why(c arvados.Container, dropped bool, j job) string {
	var parts []string
	if dropped {
		parts = append(parts, "the demo set its priority to 0 while it ran")
	}
	switch {
	case c.State == arvados.Complete && c.ExitCode != nil:
		parts = append(parts, "crunch-run finished it, exit code "+strconv.Itoa(*c.ExitCode))
	case c.State.Final():
		if e := runtimeString(c, "error"); e != "" {
			parts = append(parts, e)
		} else {
			parts = append(parts, "cancelled without runtime_status.error")
		}
	default:
		parts = append(parts, "still "+string(c.State))
		if j.ID != "" {
			parts = append(parts, fmt.Sprintf("job %s %s %s", j.ID, j.State, j.Reason))
		}
		for _, k := range []string{"error", "warning", "activity"} {
			if v := runtimeString(c, k); v != "" {
				parts = append(parts, k+": "+v)
			}
		}
	}
	return strings.Join(parts, "; ")
}

// writeSummary prints the table of outcomes, then what the special containers show.
func writeSummary(out io.Writer, outs []Outcome) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCONTAINER\tASKS\tPRIORITY\tSLURM JOB\tENDED\tOK\tWHY")
	for _, o := range outs {
		jobID := o.JobID + " " + o.JobState
		if o.JobID == "" {
			jobID = "none"
		}
		ok := "yes"
		if !o.OK {
			ok = "NO: " + o.Problem
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", o.Name, o.UUID, o.Seed.Asks(), o.Seed.Priority,
			jobID, o.State, ok, o.Why)
	}
	_ = tw.Flush()
	fmt.Fprintln(out)
	for _, o := range outs {
		if o.Seed.Shows != "" {
			fmt.Fprintln(out, wrap("• "+o.Name+": "+o.Seed.Shows, 100, "  "))
		}
	}
}

// wrap breaks s into lines of at most width runes at spaces, indenting the continuations.
func wrap(s string, width int, indent string) string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case len([]rune(line))+1+len([]rune(word)) > width:
			lines = append(lines, line)
			line = indent + word
		default:
			line += " " + word
		}
	}
	return strings.Join(append(lines, line), "\n")
}
