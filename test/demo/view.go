package demo

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// shownEvents is how many events the live view shows.
const shownEvents = 8

// plainEvery is how often the plain (not a terminal) view prints a status line.
const plainEvery = 2 * time.Second

// view shows the demo's progress: on a terminal (live) a block of lines redrawn in place;
// otherwise each event as a line and a status line every plainEvery.
type view struct {
	out   io.Writer
	live  bool
	width int
	title string
	// drawn is the number of lines of the block on screen (live).
	drawn int
	// recent are the last events (live); lastStatus when the last status line was printed
	// (plain).
	recent     []Event
	lastStatus time.Duration
}

func newView(out io.Writer, live bool, width int, title string) *view {
	if width <= 0 {
		width = 100
	}
	return &view{out: out, live: live, width: width, title: title, lastStatus: -plainEvery}
}

// update shows the new events and the current state.
func (v *view) update(at time.Duration, w *watch, evs []Event) {
	if !v.live {
		for _, e := range evs {
			fmt.Fprintln(v.out, "  "+e.String())
		}
		if at-v.lastStatus >= plainEvery {
			fmt.Fprintln(v.out, statusLine(at, w))
			v.lastStatus = at
		}
		return
	}
	v.recent = append(v.recent, evs...)
	if len(v.recent) > shownEvents {
		v.recent = v.recent[len(v.recent)-shownEvents:]
	}
	v.draw(frame(v.title, at, w, v.recent))
}

// finish ends the view: a last status line (plain), or the final frame left on screen.
func (v *view) finish(at time.Duration, w *watch) {
	if v.live {
		v.draw(frame(v.title, at, w, v.recent))
		return
	}
	fmt.Fprintln(v.out, statusLine(at, w))
}

// draw replaces the block on screen with lines, each cut to the terminal's width (a line
// that wrapped would break the count of lines to go back up).
func (v *view) draw(lines []string) {
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dF", v.drawn) // to the start of the block's first line
	}
	for _, l := range lines {
		b.WriteString(cut(l, v.width-1))
		b.WriteString("\x1b[K\n")
	}
	b.WriteString("\x1b[J")
	v.drawn = len(lines)
	_, _ = io.WriteString(v.out, b.String())
}

// cut shortens s to at most n runes, marking the cut with "…".
func cut(s string, n int) string {
	if n < 1 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// states in the order of their counts.
var states = []arvados.ContainerState{arvados.Queued, arvados.Locked, arvados.Running, arvados.Complete, arvados.Cancelled}

// frame is the live view's block: title, counts per state, progress bar, jobs, last events.
func frame(title string, at time.Duration, w *watch, recent []Event) []string {
	n := w.counts()
	var counts []string
	for _, s := range states {
		counts = append(counts, fmt.Sprintf("%s %2d", s, n[s]))
	}
	running, pending := w.jobCounts()
	lines := []string{
		fmt.Sprintf("%s · %.1fs", title, at.Seconds()),
		"  " + strings.Join(counts, "   "),
		fmt.Sprintf("  %s  %d/%d ended", bar(w.final(), len(w.order), 40), w.final(), len(w.order)),
		fmt.Sprintf("  Slurm: %d jobs running, %d pending", running, pending),
		"  Last events:",
	}
	for i := range shownEvents {
		if i < len(recent) {
			lines = append(lines, "    "+recent[i].String())
		} else {
			lines = append(lines, "")
		}
	}
	return lines
}

// bar is a progress bar of width cells for done out of total.
func bar(done, total, width int) string {
	full := 0
	if total > 0 {
		full = min(width, done*width/total)
	}
	return "[" + strings.Repeat("█", full) + strings.Repeat("░", width-full) + "]"
}

// statusLine is the plain view's periodic line.
func statusLine(at time.Duration, w *watch) string {
	n := w.counts()
	var counts []string
	for _, s := range states {
		counts = append(counts, fmt.Sprintf("%s %d", s, n[s]))
	}
	running, pending := w.jobCounts()
	return fmt.Sprintf("[%5.1fs] %s | %d/%d ended | Slurm: %d running, %d pending",
		at.Seconds(), strings.Join(counts, " · "), w.final(), len(w.order), running, pending)
}
