package main

// The list commands read the API and squeue themselves, and ask the running dispatcher's
// management endpoint (GET /dispatch/containers) what it decided for each container it
// tracks, and why. The API and squeue stay the source of the rows and of their states: the
// dispatcher tracks only the containers it has locked, while the lists also show the queued
// containers and the orphan jobs, and a stuck dispatcher's view could be old. What it says
// is added to the rows it tracks (the "dispatcher" fields, the DISPATCHER column), and its
// health is printed when it is not OK.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/config"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/mgmt"
)

const (
	// dispatcherTimeout bounds the question to the dispatcher: it is on this host and
	// answers from memory, so a slow answer means it is in trouble, and the lists go on
	// without it.
	dispatcherTimeout = 2 * time.Second
	// dispatcherStaleAfter: an answer dated further from our clock than this says so.
	dispatcherStaleAfter = 5 * time.Second
)

// source is --source: where the list commands learn what the dispatcher decided.
type source string

const (
	// sourceAuto asks the running dispatcher and goes on without it when it does not answer.
	sourceAuto source = "auto"
	// sourceDispatcher asks the running dispatcher and fails when it does not answer.
	sourceDispatcher source = "dispatcher"
	// sourceDirect does not ask it: the API and squeue only.
	sourceDirect source = "direct"
)

var sources = []source{sourceAuto, sourceDispatcher, sourceDirect}

// parseSource checks a --source value.
func parseSource(v string) (source, error) {
	if s := source(strings.ToLower(v)); slices.Contains(sources, s) {
		return s, nil
	}
	return "", usageError{fmt.Errorf("--source %q: want one of %v", v, sources)}
}

// listFlags are the flags of the list commands that reach the dispatcher.
func listFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "source", Value: string(sourceAuto),
			Usage: "auto: add what the running dispatcher decided, and why, when its management endpoint answers; " +
				"dispatcher: the same, failing when it does not answer; direct: read only the API and squeue"},
		&cli.StringFlag{Name: "management-listen", EnvVars: envVar("management-listen"),
			Usage: "host:port of the running dispatcher's management endpoint (default: management.listen of the " +
				"configuration); its token is management.token (ManagementToken)"},
	}
}

// listKeys are the flags of the list commands that set a configuration key.
var listKeys = append(slices.Clip(adminKeys), flagKey{flag: "management-listen", key: "management.listen"})

// dispatcherEndpoint is how the list commands reach the running dispatcher.
type dispatcherEndpoint struct {
	// url is the endpoint's base URL, "" when management.listen is empty; token is the
	// management token, "" when none is configured.
	url, token string
	// timeout bounds the question; staleAfter is how far from our clock an answer may be
	// dated before we say so.
	timeout, staleAfter time.Duration
}

// dispatcherEndpointFrom maps the configuration.
func dispatcherEndpointFrom(cfg *config.Config) dispatcherEndpoint {
	return dispatcherEndpoint{url: mgmt.BaseURL(cfg.Management.Listen), token: cfg.Management.Token.Value(),
		timeout: dispatcherTimeout, staleAfter: dispatcherStaleAfter}
}

// dispatcherView is the running dispatcher's answer.
type dispatcherView struct {
	url    string
	resp   mgmt.ContainersResponse
	byUUID map[string]mgmt.Container
}

// ask asks the dispatcher for its view. The error says why there is none, without the
// token; it is a usageError when the configuration does not let us ask.
func (d dispatcherEndpoint) ask(ctx context.Context) (*dispatcherView, error) {
	switch {
	case d.url == "":
		return nil, usageError{errors.New("no management endpoint is configured (management.listen is empty)")}
	case d.token == "":
		return nil, usageError{errors.New("no management token is configured (management.token, or ManagementToken in an Arvados config)")}
	case strings.HasSuffix(d.url, ":0"):
		return nil, usageError{fmt.Errorf("management.listen has port 0 (%s): the dispatcher logs the port it picked; "+
			"give it with --management-listen", d.url)}
	}
	askCtx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	// FetchContainers uses the default client; a command asks once, so keep no connection.
	defer http.DefaultClient.CloseIdleConnections()
	resp, err := mgmt.FetchContainers(askCtx, d.url, d.token)
	if err != nil {
		return nil, d.explain(ctx, err)
	}
	v := &dispatcherView{url: d.url, resp: resp, byUUID: make(map[string]mgmt.Container, len(resp.Containers))}
	for _, c := range resp.Containers {
		v.byUUID[c.UUID] = c
	}
	return v, nil
}

// explain says why FetchContainers failed: ctx is the caller's, whose end is not the
// dispatcher's fault.
func (d dispatcherEndpoint) explain(ctx context.Context, err error) error {
	var (
		urlErr    *url.Error
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("ask the dispatcher at %s: %w", d.url, ctx.Err())
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the dispatcher at %s did not answer within %s", d.url, d.timeout)
	case errors.As(err, &urlErr):
		return fmt.Errorf("not reachable at %s: %w", d.url, urlErr.Err)
	case errors.As(err, &syntaxErr), errors.As(err, &typeErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%s is not a dispatch-slurm management endpoint, or an older one: %w", d.url, err)
	}
	// The endpoint answered with an error status (401, 403, 404…).
	return fmt.Errorf("%w; check management.token and management.listen", err)
}

// consultDispatcher asks the dispatcher as src says, and prints on stderr one line saying
// where the list comes from, then the dispatcher's health when it is not OK. It returns the
// dispatcher's view, nil when it was not asked or did not answer; with sourceDispatcher, no
// answer is an error.
func (e *adminEnv) consultDispatcher(ctx context.Context, src source, stderr io.Writer) (*dispatcherView, error) {
	if src == sourceDirect {
		fmt.Fprintln(stderr, "reading the API and squeue (--source=direct: the dispatcher is not asked)")
		return nil, nil
	}
	v, err := e.dispatcher.ask(ctx)
	switch {
	case err != nil && src == sourceDispatcher:
		return nil, fmt.Errorf("--source=dispatcher: %w", err)
	case err != nil && ctx.Err() != nil:
		return nil, err
	case err != nil:
		fmt.Fprintf(stderr, "dispatcher not consulted (%v): reading the API and squeue\n", err)
		return nil, nil
	}
	fmt.Fprintln(stderr, v.sourceLine(e.now(), e.dispatcher.staleAfter))
	if h := v.healthLine(); h != "" {
		fmt.Fprintln(stderr, h)
	}
	return v, nil
}

// sourceLine says where the list comes from, and when the answer is dated further than
// staleAfter from now.
func (v *dispatcherView) sourceLine(now time.Time, staleAfter time.Duration) string {
	n := fmt.Sprintf("%d containers", len(v.resp.Containers))
	if len(v.resp.Containers) == 1 {
		n = "1 container"
	}
	line := fmt.Sprintf("from the dispatcher at %s (version %s, tracking %s) and from the API and squeue", v.url, v.resp.Version, n)
	t := v.resp.Time
	switch age := now.Sub(t); {
	case t.IsZero():
		line += "; the dispatcher's answer is undated"
	case age > staleAfter:
		line += fmt.Sprintf("; the dispatcher's answer is dated %s, %s ago", t.UTC().Format(time.RFC3339), humanAge(age))
	case age < -staleAfter:
		line += fmt.Sprintf("; the dispatcher's answer is dated %s, %s ahead of this host's clock",
			t.UTC().Format(time.RFC3339), humanAge(-age))
	}
	return line
}

// healthLine says what the dispatcher reports failing, "" when it is healthy (or does not say).
func (v *dispatcherView) healthLine() string {
	h := v.resp.Health
	if h.Health == "" || h.OK() {
		return ""
	}
	why := h.Error
	if why == "" {
		var parts []string
		for name, s := range h.Checks {
			if s != "OK" {
				parts = append(parts, name+": "+s)
			}
		}
		slices.Sort(parts)
		why = strings.Join(parts, "; ")
	}
	return "the dispatcher reports it is unhealthy (" + h.Health + "): " + why
}

// dispatcherInfo is what the dispatcher says of one container it tracks; the JSON names
// are stable.
type dispatcherInfo struct {
	// State and JobID are the container's state and Slurm job as the dispatcher last saw
	// them (the row's own come from the API and squeue).
	State string `json:"state"`
	JobID string `json:"job_id,omitempty"`
	// Action is its last decision ("wait", "submit", "unlock", "cancel-container"…), Why its
	// reason, LastError the last failure acting on the container.
	Action     string `json:"action"`
	Why        string `json:"why,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	Adopted    bool   `json:"adopted,omitempty"`
	Supervisor bool   `json:"supervisor,omitempty"`
}

// info is what the dispatcher says of container uuid: nil when v is nil (not asked) or it
// does not track the container.
func (v *dispatcherView) info(uuid string) *dispatcherInfo {
	if v == nil {
		return nil
	}
	c, ok := v.byUUID[uuid]
	if !ok {
		return nil
	}
	return &dispatcherInfo{State: c.State, JobID: c.JobID, Action: c.Action, Why: c.Why, LastError: c.LastError,
		Adopted: c.Adopted, Supervisor: c.Supervisor}
}

// dispatcherCell is the DISPATCHER column of a row whose container is in state; ours: the
// container is Locked or Running by our token, so the dispatcher should track it.
func dispatcherCell(d *dispatcherInfo, state string, ours bool) string {
	if d == nil {
		if ours {
			return "not tracked"
		}
		return ""
	}
	s := d.Action
	if d.Why != "" {
		s += ": " + d.Why
	}
	if d.LastError != "" {
		s += "; last error: " + d.LastError
	}
	if d.State != state {
		s += " (it last saw " + d.State + ")"
	}
	return s
}

// lockedOrRunning reports whether a row's container, not an orphan's, is ours to track.
func lockedOrRunning(state string, orphan bool) bool {
	return !orphan && (state == "Locked" || state == "Running")
}
