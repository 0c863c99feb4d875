package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// The containers unlock and containers cancel commands share one shape, in four phases:
//
//  1. plan: read the containers named (one batched list) and our jobs (one squeue), and decide
//     for each container, with a pure function, what to do: refuse it (saying why), or
//     cancel its live Slurm jobs and then unlock or cancel it. --dry-run prints the plan.
//  2. confirm: more than one container to act on needs --yes, or a "y" on a terminal.
//  3. cancel the jobs (scancel --name=<uuid> of our user; TERM to the batch step of running
//     ones so that crunch-run can stop cleanly) and wait, polling, until squeue and a
//     targeted lookup both show no live job of that name, or --wait has passed.
//  4. finish: re-read each container, decide again on what it is now, and unlock or cancel it.
//
// Refusals and failures do not stop the others; the command exits 1 at the end if any.

// defaultJobWait is how long the action commands wait for cancelled jobs to end.
const defaultJobWait = 2 * time.Minute

// jobPollEvery is the period of the wait for cancelled jobs.
const jobPollEvery = 500 * time.Millisecond

// step is what an action does to a container once its live jobs are gone.
type step int

const (
	stepRefuse  step = iota // nothing at all, not even its jobs
	stepNothing             // cancel its live jobs only: the container is already where the action would take it
	stepUnlock
	stepCancel
)

// decision is a step and why (for a refusal, what to do instead).
type decision struct {
	step step
	why  string
}

// action is one of the commands.
type action struct {
	verb string // "unlock" or "cancel"
	// decide chooses the step for container c (known: its record was read) whose live jobs
	// are hasJobs. tokenUUID is ours.
	decide func(c arvados.Container, known bool, hasJobs bool, tokenUUID string) decision
	// before runs after the confirmation, before the jobs are cancelled (nil: nothing).
	before func(ctx context.Context, e *adminEnv, p *plan)
	// finish performs the step on the container after its jobs are gone (jobsLeft: some
	// were still alive at the deadline) and fills in the row's outcome.
	finish func(ctx context.Context, e *adminEnv, p *plan, jobsLeft []slurm.Job)
}

// plan is one container of an action: what was seen, what was decided, what happened.
type plan struct {
	uuid  string
	ctr   arvados.Container
	known bool
	jobs  []slurm.Job // live jobs named after the container when planned
	d     decision
	row   actionRow
}

// actionRow is one line of the result of containers unlock or cancel; the JSON names are stable.
type actionRow struct {
	UUID          string   `json:"uuid"`
	Action        string   `json:"action"`
	StateBefore   string   `json:"state_before"`
	State         string   `json:"state"`
	JobsCancelled []string `json:"jobs_cancelled"`
	DryRun        bool     `json:"dry_run,omitempty"`
	OK            bool     `json:"ok"`
	Message       string   `json:"message"`
}

// actionFlags are the flags of containers unlock and cancel.
func actionFlags(extra ...cli.Flag) []cli.Flag {
	return adminFlags(append([]cli.Flag{
		&cli.StringFlag{Name: "scancel-path", EnvVars: envVar("scancel-path"),
			Usage: "scancel command (default: slurm.scancel of the configuration, else scancel in PATH)"},
		&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print what would be done and change nothing"},
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask before acting on more than one container"},
		&cli.DurationFlag{Name: "wait", Value: defaultJobWait,
			Usage: "how long to wait for cancelled Slurm jobs to end before giving up on their containers"},
	}, extra...)...)
}

// actionKeys are the flags of the action commands that set a configuration key.
var actionKeys = append(slices.Clip(adminKeys), flagKey{flag: "scancel-path", key: "slurm.scancel"})

// runAction runs a for the containers named by uuids (already checked for form).
func runAction(c *cli.Context, a action, env *adminEnv, uuids []string) error {
	plans, err := env.plan(c.Context, a, uuids)
	if err != nil {
		return err
	}
	actionable := 0
	for _, p := range plans {
		if p.d.step != stepRefuse {
			actionable++
		}
	}
	if c.Bool("dry-run") || actionable == 0 {
		for _, p := range plans {
			p.row.DryRun = c.Bool("dry-run")
		}
		return report(c, a, plans)
	}
	if actionable > 1 && !c.Bool("yes") {
		if err := confirm(c, a, plans, actionable); err != nil {
			return err
		}
	}
	left, err := cancelAndWait(c, a, env, plans)
	if err != nil {
		// Interrupted: the jobs were cancelled, the containers are as they were.
		for _, p := range plans {
			if p.d.step != stepRefuse {
				p.d = decision{stepRefuse, err.Error()}
				p.row.Message = "interrupted before it was " + pastTense(a.verb) + " (Slurm jobs cancelled: " +
					strings.Join(p.row.JobsCancelled, ", ") + ")"
			}
		}
		_ = report(c, a, plans)
		return err
	}
	for _, p := range plans {
		if p.d.step != stepRefuse {
			a.finish(c.Context, env, p, left[p.uuid])
		}
	}
	return report(c, a, plans)
}

// cancelAndWait cancels the live jobs of the plans that are not refused and waits until they
// are gone, returning those still alive at the deadline by name. A plan whose jobs could not
// be cancelled becomes a refusal.
func cancelAndWait(c *cli.Context, a action, env *adminEnv, plans []*plan) (map[string][]slurm.Job, error) {
	var toWait []*plan
	for _, p := range plans {
		if p.d.step == stepRefuse {
			continue
		}
		if a.before != nil {
			a.before(c.Context, env, p)
		}
		if len(p.jobs) == 0 {
			continue
		}
		if err := env.cancelJobs(c.Context, p); err != nil {
			p.d = decision{step: stepRefuse, why: err.Error()}
			p.row.Message = err.Error()
			continue
		}
		toWait = append(toWait, p)
	}
	if len(toWait) == 0 {
		return nil, nil
	}
	fmt.Fprintf(c.App.ErrWriter, "waiting up to %s for the Slurm jobs of %d container(s) to end…\n", c.Duration("wait"), len(toWait))
	return env.waitGone(c.Context, toWait, c.Duration("wait"))
}

// plan reads the containers and our jobs and decides for each uuid.
func (e *adminEnv) plan(ctx context.Context, a action, uuids []string) ([]*plan, error) {
	ctrs := map[string]arvados.Container{}
	var readable []string
	for _, u := range uuids {
		if arvados.ClusterID(u) == e.cluster {
			readable = append(readable, u)
		}
	}
	if err := e.containersByUUID(ctx, ctrs, readable); err != nil {
		return nil, err
	}
	jobs, err := e.ourJobs(ctx)
	if err != nil {
		return nil, err
	}
	live := map[string][]slurm.Job{}
	for _, j := range jobs {
		if !slurm.FinishedState(j.State) {
			live[j.Name] = append(live[j.Name], j)
		}
	}
	plans := make([]*plan, 0, len(uuids))
	for _, u := range uuids {
		c, known := ctrs[u]
		p := &plan{uuid: u, ctr: c, known: known, jobs: live[u]}
		p.d = e.decide(a, u, c, known, len(p.jobs) > 0)
		p.row = actionRow{UUID: u, Action: a.verb, StateBefore: stateName(c, known), State: stateName(c, known),
			JobsCancelled: []string{}, Message: planText(a, p)}
		plans = append(plans, p)
	}
	return plans, nil
}

// decide checks that uuid is a container of our cluster, then asks a.
func (e *adminEnv) decide(a action, uuid string, c arvados.Container, known, hasJobs bool) decision {
	if arvados.ClusterID(uuid) != e.cluster {
		return decision{stepRefuse, "not a container of our cluster " + e.cluster +
			" (uuids look like " + e.cluster + "-dz642-…; set --cluster-id if this is the wrong cluster)"}
	}
	return a.decide(c, known, hasJobs, e.tokenUUID)
}

func stateName(c arvados.Container, known bool) string {
	if !known {
		return "unknown"
	}
	return string(c.State)
}

// planText says what will be done to p (or why not).
func planText(a action, p *plan) string {
	if p.d.step == stepRefuse {
		return "refused: " + p.d.why
	}
	var parts []string
	if len(p.jobs) > 0 {
		parts = append(parts, "cancel Slurm "+jobList(p.jobs)+", wait until it is gone")
	}
	switch p.d.step {
	case stepUnlock:
		parts = append(parts, fmt.Sprintf("unlock it (lock_count %d: this uses one of its dispatch attempts)", p.ctr.LockCount))
	case stepCancel:
		parts = append(parts, "set it Cancelled with runtime_status.error "+fmt.Sprintf("%q", adminCancelMessage))
	case stepNothing:
		parts = append(parts, "leave it: "+p.d.why)
	}
	return strings.Join(parts, ", then ")
}

// jobList names jobs for people: "job 12 (PENDING)", "jobs 12 (PENDING), 13 (RUNNING)".
func jobList(jobs []slurm.Job) string {
	var s []string
	for _, j := range jobs {
		s = append(s, j.ID+" ("+j.State+")")
	}
	if len(s) == 1 {
		return "job " + s[0]
	}
	return "jobs " + strings.Join(s, ", ")
}

// confirm shows the plan and asks on a terminal whether to act on n containers (on stderr:
// stdout may be --json); elsewhere it refuses.
func confirm(c *cli.Context, a action, plans []*plan, n int) error {
	if !isTerminal(c.App.Reader) {
		return usageError{fmt.Errorf("refusing to %s %d containers without confirmation: standard input is not a terminal; "+
			"pass --yes to go ahead (or --dry-run to see what would be done)", a.verb, n)}
	}
	for _, p := range plans {
		fmt.Fprintf(c.App.ErrWriter, "%s: %s\n", p.uuid, p.row.Message)
	}
	fmt.Fprintf(c.App.ErrWriter, "%s these %d containers? [y/N] ", capitalize(a.verb), n)
	line, err := bufio.NewReader(c.App.Reader).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed: nothing was changed")
}

// isTerminal reports whether r is a terminal. Tests give a reader with an IsTerminal method.
func isTerminal(r io.Reader) bool {
	switch r := r.(type) {
	case interface{ IsTerminal() bool }:
		return r.IsTerminal()
	case *os.File:
		return term.IsTerminal(int(r.Fd()))
	}
	return false
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// cancelJobs cancels the live jobs named after p's container: TERM to the batch step of the
// running ones, so that crunch-run can stop the container, and a plain cancel of the pending.
func (e *adminEnv) cancelJobs(ctx context.Context, p *plan) error {
	running := slices.ContainsFunc(p.jobs, func(j slurm.Job) bool { return !slurm.PendingState(j.State) })
	if err := e.slurm.Cancel(ctx, slurm.CancelRequest{Name: p.uuid, Running: running}); err != nil {
		return fmt.Errorf("scancel of Slurm %s failed: %w (nothing else was done; check scancel, then try again)", jobList(p.jobs), err)
	}
	for _, j := range p.jobs {
		p.row.JobsCancelled = append(p.row.JobsCancelled, j.ID)
	}
	return nil
}

// waitGone polls until none of the plans' containers has a live job, or wait has passed, and
// returns the live jobs of those that still have some. Absence in one squeue is not enough:
// a name missing from the snapshot is confirmed with a targeted lookup (squeue -t all
// --name=…) that must show no job of that name still alive. Failed Slurm commands are retried
// until the deadline; only the context's end is an error.
func (e *adminEnv) waitGone(ctx context.Context, plans []*plan, wait time.Duration) (map[string][]slurm.Job, error) {
	deadline := e.now().Add(wait)
	left := map[string][]slurm.Job{}
	for _, p := range plans {
		left[p.uuid] = p.jobs
	}
	for {
		e.pollGone(ctx, left)
		if len(left) == 0 || !e.now().Before(deadline) {
			return left, nil
		}
		if err := e.sleep(ctx, min(e.pollEvery, deadline.Sub(e.now()))); err != nil {
			return left, fmt.Errorf("stopped waiting for the Slurm jobs to end: %w", err)
		}
	}
}

// pollGone takes one snapshot and removes from left the names that it and a lookup show gone.
func (e *adminEnv) pollGone(ctx context.Context, left map[string][]slurm.Job) {
	snap, err := e.slurm.Snapshot(ctx)
	if err != nil {
		return // not evidence either way
	}
	inSnap := map[string][]slurm.Job{}
	for _, j := range snap.Jobs {
		if _, ok := left[j.Name]; ok && !slurm.FinishedState(j.State) {
			inSnap[j.Name] = append(inSnap[j.Name], j)
		}
	}
	for name := range left {
		if js := inSnap[name]; len(js) > 0 {
			left[name] = js
			continue
		}
		found, err := e.slurm.Lookup(ctx, slurm.LookupQuery{Name: name})
		if err != nil {
			continue
		}
		alive := slices.DeleteFunc(found, func(j slurm.Job) bool { return slurm.FinishedState(j.State) })
		if len(alive) == 0 {
			delete(left, name)
		} else {
			left[name] = alive
		}
	}
}

// report prints the rows: successes (and, with --dry-run, plans) on stdout, refusals and
// failures on stderr (with --json, every row on stdout), and returns an error if any
// container was refused or failed.
func report(c *cli.Context, a action, plans []*plan) error {
	failed := 0
	rows := make([]actionRow, 0, len(plans))
	for _, p := range plans {
		if p.row.DryRun || p.d.step == stepRefuse {
			p.row.OK = p.d.step != stepRefuse
		}
		if !p.row.OK {
			failed++
		}
		rows = append(rows, p.row)
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, rows); err != nil {
			return err
		}
	} else {
		for _, r := range rows {
			switch {
			case !r.OK:
				fmt.Fprintf(c.App.ErrWriter, "%s: %s\n", r.UUID, r.Message)
			case r.DryRun:
				fmt.Fprintf(c.App.Writer, "%s: would %s\n", r.UUID, r.Message)
			default:
				fmt.Fprintf(c.App.Writer, "%s: %s\n", r.UUID, r.Message)
			}
		}
	}
	switch {
	case failed > 0 && c.Bool("dry-run"):
		return fmt.Errorf("%d of %d containers would not be %s (see above)", failed, len(plans), pastTense(a.verb))
	case failed > 0:
		return fmt.Errorf("%d of %d containers were not %s (see above)", failed, len(plans), pastTense(a.verb))
	}
	return nil
}

func pastTense(verb string) string {
	if verb == "cancel" {
		return "cancelled"
	}
	return verb + "ed"
}

// targetUUIDs returns the distinct uuids given as arguments, in order, refusing anything that
// is not a container uuid.
func targetUUIDs(c *cli.Context) ([]string, error) {
	var uuids, bad []string
	for _, u := range c.Args().Slice() {
		u = strings.TrimSpace(u)
		switch {
		case strings.HasPrefix(u, "-"):
			return nil, usageError{fmt.Errorf("%s: flags go before the uuids", u)}
		case !arvados.ValidContainerUUID(u):
			bad = append(bad, fmt.Sprintf("%q", u))
		case !slices.Contains(uuids, u):
			uuids = append(uuids, u)
		}
	}
	if len(bad) > 0 {
		return nil, usageError{fmt.Errorf("not container uuids (want xxxxx-dz642-xxxxxxxxxxxxxxx): %s", strings.Join(bad, ", "))}
	}
	return uuids, nil
}
