package mgmt

import (
	"fmt"
	"strings"
	"time"
)

// Check is one part of the health check.
type Check struct {
	// Name names the part in the answer: "api", "squeue", "dispatch".
	Name string
	// Healthy, if set, is the part's own verdict, and why not.
	Healthy func() (bool, string)
	// Last, if set, is when the part last succeeded (zero: not yet). The part is unhealthy
	// when that is longer ago than MaxAge, or when it has not succeeded yet.
	Last   func() time.Time
	MaxAge time.Duration
}

// Health is the answer of the health check, in Arvados's format plus one entry per check
// ("OK" or what fails).
type Health struct {
	Health string            `json:"health"` // "OK" or "ERROR"
	Error  string            `json:"error,omitempty"`
	Checks map[string]string `json:"checks,omitempty"`
}

// OK reports whether h says healthy.
func (h Health) OK() bool { return h.Health == "OK" }

// evaluate runs the checks at now; started is when the dispatcher started.
func evaluate(checks []Check, now, started time.Time) Health {
	h := Health{Health: "OK", Checks: map[string]string{}}
	var problems []string
	for _, c := range checks {
		why := c.problem(now, started)
		if why == "" {
			h.Checks[c.Name] = "OK"
			continue
		}
		h.Checks[c.Name] = why
		problems = append(problems, c.Name+": "+why)
	}
	if len(problems) > 0 {
		h.Health, h.Error = "ERROR", strings.Join(problems, "; ")
	}
	return h
}

// problem says what is wrong with the part, "" when nothing is.
func (c Check) problem(now, started time.Time) string {
	if c.Healthy != nil {
		if ok, why := c.Healthy(); !ok {
			return why
		}
	}
	if c.Last == nil {
		return ""
	}
	last := c.Last()
	switch {
	case last.IsZero():
		return fmt.Sprintf("no success yet since start-up %s ago", roundAge(now.Sub(started)))
	case now.Sub(last) > c.MaxAge:
		return fmt.Sprintf("last success %s ago, more than %s", roundAge(now.Sub(last)), c.MaxAge)
	}
	return ""
}

func roundAge(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
