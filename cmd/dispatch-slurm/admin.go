package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// defaultStuckAfter is how long a container may stay Locked by us with no Slurm job before
// containers list calls it stuck.
const defaultStuckAfter = 10 * time.Minute

// uuidBatch bounds the uuids of one "uuid in [...]" query (the filter goes in the URL).
const uuidBatch = 100

// containerFields are the fields the admin commands read.
var containerFields = []string{"uuid", "state", "priority", "locked_by_uuid", "lock_count", "created_at", "modified_at"}

const containersListExample = `Example:
   dispatch-slurm containers list --config /etc/arvados/config.yml
   dispatch-slurm containers list --stuck
   dispatch-slurm containers list --state Locked --state Running --json | jq .
   dispatch-slurm containers list --source=direct

Lists the containers locked by our token and the Queued ones with priority > 0, each with
its Slurm job (one squeue), and the live Slurm jobs named after one of our cluster's
containers that is final or not ours (orphans). A row is stuck when the container is Locked
by us with no job for longer than --stuck-after (since modified_at), its job is pending on a
reason that never clears or needs attention, it is Running with no job, or the job is an
orphan. The STUCK column (with --json: "why") says which.

When the running dispatcher's management endpoint answers (management.listen, with
management.token; within 2s), the DISPATCHER column (with --json: "dispatcher") says what it
last decided for each container it tracks and why, and its last error; "not tracked" marks a
container locked by us that it does not track. A first line on stderr says where the list
comes from, and the dispatcher's health when it is not OK. --source=direct does not ask it;
--source=dispatcher fails when it does not answer.`

const jobsListExample = `Example:
   dispatch-slurm jobs list --config /etc/arvados/config.yml
   dispatch-slurm jobs list --json | jq '.[] | select(.orphan)'

Lists our Slurm jobs (squeue) named after a container of our cluster, with the container's
state. A job is an orphan when its container is final, not locked by our token, or unknown.
When the running dispatcher answers, the DISPATCHER column says what it last decided for the
job's container, and why (see "dispatch-slurm containers list --help", and --source).`

// adminFlags are the flags of every admin command.
func adminFlags(extra ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		configFlag(),
		clusterFlag(),
		&cli.StringFlag{Name: "squeue-path", EnvVars: envVar("squeue-path"),
			Usage: "squeue command (default: slurm.squeue of the configuration, else squeue in PATH)"},
		&cli.BoolFlag{Name: "json", Usage: "print a JSON array instead of a table"},
	}, extra...)
}

// adminKeys are the admin flags that set a configuration key.
var adminKeys = []flagKey{
	{flag: "cluster-id", key: "dispatch.cluster_id"},
	{flag: "squeue-path", key: "slurm.squeue"},
}

func containersCommand() *cli.Command {
	onUsage := func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
	return &cli.Command{
		Name:  "containers",
		Usage: "inspect, unlock or cancel the containers we dispatch",
		Description: "Example:\n   dispatch-slurm containers list --stuck\n" +
			"   dispatch-slurm containers unlock --stuck --dry-run\n" +
			"   dispatch-slurm containers cancel zzzzz-dz642-0123456789abcde",
		OnUsageError: onUsage,
		Subcommands: []*cli.Command{
			containersListCommand(onUsage),
			containersUnlockCommand(onUsage),
			containersCancelCommand(onUsage),
		},
	}
}

func containersListCommand(onUsage cli.OnUsageErrorFunc) *cli.Command {
	return &cli.Command{
		Name:        "list",
		Usage:       "list our containers and the queued ones with their Slurm jobs, marking the stuck ones",
		Description: containersListExample,
		Flags: adminFlags(append(listFlags(),
			&cli.StringSliceFlag{Name: "state", Usage: "only containers in this state (repeatable): Queued, Locked, Running, Complete, Cancelled"},
			&cli.BoolFlag{Name: "stuck", Usage: "only stuck containers"},
			&cli.DurationFlag{Name: "stuck-after", Value: defaultStuckAfter,
				Usage: "a container Locked by us with no Slurm job for longer than this is stuck"},
		)...),
		OnUsageError: onUsage,
		Action:       containersList,
	}
}

func jobsCommand() *cli.Command {
	onUsage := func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
	return &cli.Command{
		Name:         "jobs",
		Usage:        "inspect our Slurm jobs",
		Description:  "Example:\n   dispatch-slurm jobs list",
		OnUsageError: onUsage,
		Subcommands: []*cli.Command{{
			Name:         "list",
			Usage:        "list our Slurm jobs with their containers' states, marking orphans",
			Description:  jobsListExample,
			Flags:        adminFlags(listFlags()...),
			OnUsageError: onUsage,
			Action:       jobsList,
		}},
	}
}

// adminEnv is what the admin commands talk to.
type adminEnv struct {
	client    *arvados.Client
	slurm     slurm.Client
	tokenUUID string
	cluster   string
	// now and sleep are the clock of the waits; pollEvery their period.
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error
	pollEvery time.Duration
	// dispatcher is how the list commands reach the running dispatcher.
	dispatcher dispatcherEndpoint
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newAdminEnv loads the configuration (keys: the command's flags that set a key), makes the
// clients and learns our token's uuid. The caller closes the client's idle connections.
func newAdminEnv(c *cli.Context, keys []flagKey) (*adminEnv, error) {
	cfg, notices, err := loadConfig(c, keys)
	for _, n := range notices {
		fmt.Fprintln(c.App.ErrWriter, n)
	}
	if err != nil {
		return nil, err
	}
	client, err := arvados.NewClient(cfg.ArvadosConfig())
	if err != nil {
		return nil, usageError{fmt.Errorf("%w (set %s and %s, or give --config)", err, arvados.EnvHost, arvados.EnvToken)}
	}
	tok, err := currentToken(c.Context, client)
	if err != nil {
		client.CloseIdleConnections()
		return nil, err
	}
	cli, err := slurm.NewCLI(cfg.SlurmCLIConfig())
	if err != nil {
		client.CloseIdleConnections()
		return nil, usageError{fmt.Errorf("set up the Slurm commands: %w (check slurm.squeue or --squeue-path)", err)}
	}
	env := &adminEnv{client: client, slurm: cli, tokenUUID: tok.UUID, cluster: cfg.Dispatch.ClusterID,
		now: time.Now, sleep: sleepCtx, pollEvery: jobPollEvery, dispatcher: dispatcherEndpointFrom(cfg)}
	if env.cluster == "" {
		env.cluster = tok.UUID[:5]
	}
	return env, nil
}

// ourJobs takes one squeue snapshot and returns the jobs named after a container of our
// cluster, in job id order.
func (e *adminEnv) ourJobs(ctx context.Context) ([]slurm.Job, error) {
	snap, err := e.slurm.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("list Slurm jobs (check that squeue works from this host, or --squeue-path): %w", err)
	}
	var jobs []slurm.Job
	for _, j := range snap.Jobs {
		if arvados.ClusterID(j.Name) == e.cluster {
			jobs = append(jobs, j)
		}
	}
	slices.SortFunc(jobs, func(a, b slurm.Job) int { return compareJobIDs(a.ID, b.ID) })
	return jobs, nil
}

// compareJobIDs orders numeric job ids by value, others after them by text.
func compareJobIDs(a, b string) int {
	x, errx := strconv.ParseInt(a, 10, 64)
	y, erry := strconv.ParseInt(b, 10, 64)
	if errx == nil && erry == nil {
		return int(min(max(x-y, -1), 1))
	}
	return strings.Compare(a, b)
}

// containers reads the containers that match filters into into.
func (e *adminEnv) containers(ctx context.Context, into map[string]arvados.Container, filters ...arvados.Filter) error {
	return e.client.EachContainer(ctx, arvados.ListParams{Filters: filters, Select: containerFields},
		func(c arvados.Container) error { into[c.UUID] = c; return nil })
}

// containersByUUID reads the containers named in uuids that into does not have yet, in
// batched "uuid in [...]" queries. Unknown uuids stay absent.
func (e *adminEnv) containersByUUID(ctx context.Context, into map[string]arvados.Container, uuids []string) error {
	var missing []string
	for _, u := range uuids {
		if _, ok := into[u]; !ok && !slices.Contains(missing, u) {
			missing = append(missing, u)
		}
	}
	for batch := range slices.Chunk(missing, uuidBatch) {
		if err := e.containers(ctx, into, arvados.NewFilter("uuid", "in", batch)); err != nil {
			return fmt.Errorf("read the containers of %d Slurm jobs: %w", len(batch), err)
		}
	}
	return nil
}

// writeJSON prints rows as an indented JSON array ([] when empty).
func writeJSON[T any](w io.Writer, rows []T) error {
	if rows == nil {
		rows = []T{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// writeTable prints a header and rows aligned in columns.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			if r[i] == "" {
				r[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// humanAge is d in its largest whole unit: 40s, 5m, 2h, 3d.
func humanAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
}

// orphanWhy says why a live job whose container is c (ok: known) is an orphan, or "".
func orphanWhy(c arvados.Container, ok bool, tokenUUID string) string {
	switch {
	case !ok:
		return "orphan: no such container (or not readable by our token)"
	case c.State.Final():
		return "orphan: container is " + string(c.State)
	case c.LockedByUUID == "":
		return "orphan: container is " + string(c.State) + ", not locked by us"
	case c.LockedByUUID != tokenUUID:
		return "orphan: container is locked by another token (" + c.LockedByUUID + ")"
	}
	return ""
}

func jobsList(c *cli.Context) error {
	src, err := parseSource(c.String("source"))
	if err != nil {
		return err
	}
	env, err := newAdminEnv(c, listKeys)
	if err != nil {
		return err
	}
	defer env.client.CloseIdleConnections()
	dv, err := env.consultDispatcher(c.Context, src, c.App.ErrWriter)
	if err != nil {
		return err
	}
	jobs, err := env.ourJobs(c.Context)
	if err != nil {
		return err
	}
	ctrs := map[string]arvados.Container{}
	names := make([]string, 0, len(jobs))
	for _, j := range jobs {
		names = append(names, j.Name)
	}
	if err := env.containersByUUID(c.Context, ctrs, names); err != nil {
		return err
	}
	rows := jobRows(jobs, ctrs, env.tokenUUID)
	for i := range rows {
		rows[i].Dispatcher = dv.info(rows[i].Name)
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, rows)
	}
	header := []string{"JOB ID", "NAME", "SLURM STATE", "REASON", "PRIORITY", "NICE", "CONTAINER", "ORPHAN"}
	if dv != nil {
		header = append(header, "DISPATCHER")
	}
	table := make([][]string, 0, len(rows))
	for _, r := range rows {
		line := []string{r.JobID, r.Name, r.SlurmState, r.Reason, strconv.FormatInt(r.Priority, 10),
			strconv.Itoa(r.Nice), r.ContainerState, r.Why}
		if dv != nil {
			line = append(line, dispatcherCell(r.Dispatcher, r.ContainerState, lockedOrRunning(r.ContainerState, r.Orphan)))
		}
		table = append(table, line)
	}
	return writeTable(c.App.Writer, header, table)
}

// jobRow is one line of jobs list; the JSON names are stable.
type jobRow struct {
	JobID          string `json:"job_id"`
	Name           string `json:"name"`
	SlurmState     string `json:"slurm_state"`
	Reason         string `json:"reason"`
	Priority       int64  `json:"priority"`
	Nice           int    `json:"nice"`
	ContainerState string `json:"container_state"`
	Orphan         bool   `json:"orphan"`
	Why            string `json:"why,omitempty"`
	// Dispatcher is what the running dispatcher says of the container, when asked and it
	// tracks it.
	Dispatcher *dispatcherInfo `json:"dispatcher,omitempty"`
}

func jobRows(jobs []slurm.Job, ctrs map[string]arvados.Container, tokenUUID string) []jobRow {
	rows := make([]jobRow, 0, len(jobs))
	for _, j := range jobs {
		ctr, ok := ctrs[j.Name]
		why := orphanWhy(ctr, ok, tokenUUID)
		state := string(ctr.State)
		if !ok {
			state = "unknown"
		}
		rows = append(rows, jobRow{JobID: j.ID, Name: j.Name, SlurmState: j.State, Reason: j.Reason,
			Priority: j.Priority, Nice: j.Nice, ContainerState: state, Orphan: why != "", Why: why})
	}
	return rows
}

// containerRow is one line of containers list; the JSON names are stable.
type containerRow struct {
	UUID       string    `json:"uuid"`
	State      string    `json:"state"`
	Priority   int64     `json:"priority"`
	CreatedAt  time.Time `json:"created_at"`
	Age        string    `json:"age"`
	LockCount  int       `json:"lock_count"`
	JobID      string    `json:"job_id"`
	SlurmState string    `json:"slurm_state"`
	Reason     string    `json:"reason"`
	Stuck      bool      `json:"stuck"`
	Orphan     bool      `json:"orphan"`
	Why        string    `json:"why,omitempty"`
	// Dispatcher is what the running dispatcher says of the container, when asked and it
	// tracks it.
	Dispatcher *dispatcherInfo `json:"dispatcher,omitempty"`
}

// containerView is what containers list knows: ours maps the uuids of the containers locked
// by our token and of the Queued ones to their records; others has the records of the
// other containers that our jobs are named after.
type containerView struct {
	ours, others map[string]arvados.Container
	jobs         []slurm.Job
	tokenUUID    string
	now          time.Time
	stuckAfter   time.Duration
}

// rows returns one row per container of ours (with its first live job) and one per job
// named after another container (an orphan), sorted by uuid then job id.
func (v containerView) rows() []containerRow {
	byName := map[string][]slurm.Job{}
	for _, j := range v.jobs {
		byName[j.Name] = append(byName[j.Name], j)
	}
	var rows []containerRow
	for uuid, c := range v.ours {
		js := byName[uuid]
		if len(js) == 0 {
			rows = append(rows, v.row(c, true, nil))
			continue
		}
		rows = append(rows, v.row(c, true, &js[0]))
		for i := 1; i < len(js); i++ {
			r := v.row(c, true, &js[i])
			r.Stuck, r.Orphan, r.Why = true, true, "orphan: a second job for this container"
			rows = append(rows, r)
		}
	}
	for _, j := range v.jobs {
		if _, ok := v.ours[j.Name]; ok {
			continue
		}
		c, ok := v.others[j.Name]
		r := v.row(c, ok, &j)
		r.UUID = j.Name
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b containerRow) int {
		if c := strings.Compare(a.UUID, b.UUID); c != 0 {
			return c
		}
		return compareJobIDs(a.JobID, b.JobID)
	})
	return rows
}

// row describes container c (known: a record was read) with its job (nil: none).
func (v containerView) row(c arvados.Container, known bool, job *slurm.Job) containerRow {
	r := containerRow{UUID: c.UUID, State: string(c.State), Priority: c.Priority, LockCount: c.LockCount}
	if known {
		r.CreatedAt, r.Age = c.CreatedAt, humanAge(v.now.Sub(c.CreatedAt))
	} else {
		r.State = "unknown"
	}
	if job != nil {
		r.JobID, r.SlurmState, r.Reason = job.ID, job.State, job.Reason
	}
	r.Why = v.stuckWhy(c, known, job)
	r.Stuck = r.Why != ""
	r.Orphan = strings.HasPrefix(r.Why, "orphan")
	return r
}

// stuckWhy says why a container with that job is stuck, or "".
func (v containerView) stuckWhy(c arvados.Container, known bool, job *slurm.Job) string {
	ours := known && c.LockedByUUID == v.tokenUUID && c.LockedByUUID != ""
	if job == nil {
		switch {
		case ours && c.State == arvados.Locked && v.now.Sub(c.ModifiedAt) > v.stuckAfter:
			return "Locked by us for " + humanAge(v.now.Sub(c.ModifiedAt)) + " with no Slurm job"
		case ours && c.State == arvados.Running:
			return "Running with no Slurm job"
		}
		return ""
	}
	if why := orphanWhy(c, known, v.tokenUUID); why != "" {
		return why
	}
	if slurm.PendingState(job.State) {
		switch class := slurm.ClassifyReason(job.Reason); class {
		case slurm.ReasonNever, slurm.ReasonAttention:
			return "pending: " + job.Reason + " (" + class.String() + ")"
		}
	}
	return ""
}

// stateFilter checks the --state values and returns the set of states asked for (nil: all).
func stateFilter(values []string) (map[string]bool, error) {
	if len(values) == 0 {
		return nil, nil
	}
	known := []arvados.ContainerState{arvados.Queued, arvados.Locked, arvados.Running, arvados.Complete, arvados.Cancelled}
	set := map[string]bool{}
	for _, v := range values {
		i := slices.IndexFunc(known, func(s arvados.ContainerState) bool { return strings.EqualFold(string(s), v) })
		if i < 0 {
			return nil, usageError{fmt.Errorf("--state %q: want one of %v", v, known)}
		}
		set[string(known[i])] = true
	}
	return set, nil
}

func containersList(c *cli.Context) error {
	states, err := stateFilter(c.StringSlice("state"))
	if err != nil {
		return err
	}
	if c.Duration("stuck-after") <= 0 {
		return usageError{fmt.Errorf("--stuck-after %s: must be positive", c.Duration("stuck-after"))}
	}
	src, err := parseSource(c.String("source"))
	if err != nil {
		return err
	}
	env, err := newAdminEnv(c, listKeys)
	if err != nil {
		return err
	}
	defer env.client.CloseIdleConnections()
	dv, err := env.consultDispatcher(c.Context, src, c.App.ErrWriter)
	if err != nil {
		return err
	}
	v, err := env.containerView(c.Context, env.now(), c.Duration("stuck-after"))
	if err != nil {
		return err
	}
	var rows []containerRow
	for _, r := range v.rows() {
		if (states == nil || states[r.State]) && (!c.Bool("stuck") || r.Stuck) {
			r.Dispatcher = dv.info(r.UUID)
			rows = append(rows, r)
		}
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, rows)
	}
	return writeContainersTable(c.App.Writer, rows, dv != nil)
}

// writeContainersTable prints the rows of containers list; withDispatcher adds the
// DISPATCHER column.
func writeContainersTable(w io.Writer, rows []containerRow, withDispatcher bool) error {
	header := []string{"UUID", "STATE", "PRIORITY", "AGE", "LOCKS", "JOB ID", "SLURM STATE", "REASON", "STUCK"}
	if withDispatcher {
		header = append(header, "DISPATCHER")
	}
	table := make([][]string, 0, len(rows))
	for _, r := range rows {
		stuck := ""
		if r.Stuck {
			stuck = "STUCK: " + r.Why
		}
		line := []string{r.UUID, r.State, strconv.FormatInt(r.Priority, 10), r.Age,
			strconv.Itoa(r.LockCount), r.JobID, r.SlurmState, r.Reason, stuck}
		if withDispatcher {
			line = append(line, dispatcherCell(r.Dispatcher, r.State, lockedOrRunning(r.State, r.Orphan)))
		}
		table = append(table, line)
	}
	return writeTable(w, header, table)
}

// containerView reads our containers, the Queued ones, one squeue snapshot and the
// containers of the other jobs.
func (e *adminEnv) containerView(ctx context.Context, now time.Time, stuckAfter time.Duration) (containerView, error) {
	v := containerView{ours: map[string]arvados.Container{}, others: map[string]arvados.Container{},
		tokenUUID: e.tokenUUID, now: now, stuckAfter: stuckAfter}
	if err := e.containers(ctx, v.ours, arvados.NewFilter("locked_by_uuid", "=", e.tokenUUID)); err != nil {
		return v, fmt.Errorf("list the containers locked by our token: %w", err)
	}
	if err := e.containers(ctx, v.ours, arvados.NewFilter("state", "=", arvados.Queued),
		arvados.NewFilter("priority", ">", 0)); err != nil {
		return v, fmt.Errorf("list the queued containers: %w", err)
	}
	jobs, err := e.ourJobs(ctx)
	if err != nil {
		return v, err
	}
	v.jobs = jobs
	var names []string
	for _, j := range jobs {
		if _, ok := v.ours[j.Name]; !ok {
			names = append(names, j.Name)
		}
	}
	return v, e.containersByUUID(ctx, v.others, names)
}
