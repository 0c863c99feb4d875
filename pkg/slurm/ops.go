package slurm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"go.uber.org/zap"
)

// MaxNice is the largest nice value Slurm accepts (NICE_OFFSET − 3). We never use negative
// values: they need privilege.
const MaxNice = 2147483645

// Submit runs sbatch --parsable --job-name=<uuid> --nice=<n> --no-requeue <args…> with the
// script on stdin, in cfg.Dir, with req.Env added to the environment (sbatch passes it on to
// the job). Failures are classified; IsAmbiguous(err) means the job may exist anyway.
func (c *CLI) Submit(ctx context.Context, req SubmitRequest) (string, error) {
	if !arvados.ValidContainerUUID(req.Name) {
		return "", fmt.Errorf("submit %q: not a container uuid", req.Name)
	}
	if req.Nice < 0 || req.Nice > MaxNice {
		return "", fmt.Errorf("submit %s: nice %d out of range 0..%d", req.Name, req.Nice, MaxNice)
	}
	if len(req.Script) == 0 {
		return "", fmt.Errorf("submit %s: empty batch script", req.Name)
	}
	if err := checkSubmitArgs(req.Name, req.Args); err != nil {
		return "", fmt.Errorf("submit %s: %w", req.Name, err)
	}
	args := append([]string{
		"--parsable",
		"--job-name=" + req.Name,
		"--nice=" + strconv.Itoa(req.Nice),
		"--no-requeue",
	}, req.Args...)
	env := c.cfg.Env
	if len(req.Env) > 0 {
		env = append(slices.Clip(c.cfg.Env), req.Env...)
	}
	out, err := c.exec(ctx, c.cfg.SubmitTimeout, invocation{
		Name: "sbatch", Path: c.cfg.SbatchPath, Args: args, Stdin: req.Script, Env: env, Dir: c.cfg.Dir,
	})
	if err != nil {
		return "", fmt.Errorf("submit %s: %w", req.Name, classify(err))
	}
	id, err := parseSbatchID(out)
	if err != nil {
		// sbatch said it succeeded: the job probably exists under a name we can look up.
		return "", fmt.Errorf("submit %s: %w", req.Name, &TransientError{Ambiguous: true, Err: err})
	}
	return id, nil
}

// checkSubmitArgs refuses arguments that would rename the job or override what Submit sets
// (Template.Expand never produces them; this guards other callers).
func checkSubmitArgs(name string, args []string) error {
	for i, a := range args {
		if strings.ContainsAny(a, "\x00\n") {
			return fmt.Errorf("argument %q contains a NUL or newline", a)
		}
		opt, value, hasValue := optionOf(a)
		if opt == "job-name" && !hasValue && i+1 < len(args) {
			value, hasValue = args[i+1], true
		}
		switch {
		case opt == "job-name" && (!hasValue || value != name):
			return fmt.Errorf("argument %q would rename the job", a)
		case forbidden[opt]:
			return fmt.Errorf("argument %q overrides what the dispatcher sets", a)
		}
	}
	return nil
}

// Snapshot runs squeue --noheader --me (or --user=) over jobs that have not finished.
func (c *CLI) Snapshot(ctx context.Context) (*Snapshot, error) {
	started := c.now()
	out, err := c.exec(ctx, c.cfg.QueryTimeout, invocation{
		Name: "squeue", Path: c.cfg.SqueuePath,
		Args: []string{"--noheader", c.userArgs(), "--format=" + squeueFormat},
	})
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", classify(err))
	}
	jobs, skipped := ParseSqueue(out)
	return &Snapshot{Jobs: jobs, Started: started, Finished: c.now(), Skipped: skipped}, nil
}

// Lookup uses squeue -t all, by id (-j) or by name (--name, our user's jobs), rather than
// scontrol show job: the same format and parser as Snapshot, one line per job, and it includes
// jobs that finished less than MinJobAge ago. squeue -j exits 1 with "Invalid job id
// specified" once slurmctld has forgotten the id: that is an empty result, not an error. When
// both ID and Name are given, only a job with that id and that name is returned.
func (c *CLI) Lookup(ctx context.Context, q LookupQuery) ([]Job, error) {
	args := []string{"--noheader", "--states=all", "--format=" + squeueFormat}
	var what string
	switch {
	case q.ID != "":
		if !validJobID(q.ID) {
			return nil, fmt.Errorf("look up job %q: not a job id", q.ID)
		}
		if q.Name != "" && !arvados.ValidContainerUUID(q.Name) {
			return nil, fmt.Errorf("look up job %s: %q is not a container uuid", q.ID, q.Name)
		}
		args = append(args, "--jobs="+q.ID)
		what = "job " + q.ID
	case q.Name != "":
		if !arvados.ValidContainerUUID(q.Name) {
			return nil, fmt.Errorf("look up job %q: not a container uuid", q.Name)
		}
		args = append(args, c.userArgs(), "--name="+q.Name)
		what = q.Name
	default:
		return nil, errors.New("look up job: neither id nor name given")
	}
	out, err := c.exec(ctx, c.cfg.QueryTimeout, invocation{Name: "squeue", Path: c.cfg.SqueuePath, Args: args})
	if err != nil {
		err = classify(err)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("look up %s: %w", what, err)
	}
	jobs, _ := ParseSqueue(out)
	// Filter: squeue's own filters are trusted, but a name given with an id must match too.
	keep := jobs[:0]
	for _, j := range jobs {
		if (q.ID == "" || j.ID == q.ID) && (q.Name == "" || j.Name == q.Name) {
			keep = append(keep, j)
		}
	}
	if len(keep) == 0 {
		return nil, nil
	}
	return keep, nil
}

// Renice runs scontrol update JobId=<id>,<id>… Nice=<n>, at most cfg.MaxIDsPerCommand ids
// per call. scontrol updates the ids that exist and exits 1 naming the others ("Invalid job
// id specified for job <id>", "Job has already finished for job <id>"): those are returned
// in gone. It stops at the first failure that is not about gone ids.
func (c *CLI) Renice(ctx context.Context, nice int, ids []string) (gone []string, err error) {
	if nice < 0 || nice > MaxNice {
		return nil, fmt.Errorf("renice: nice %d out of range 0..%d", nice, MaxNice)
	}
	if err := checkIDs(ids); err != nil {
		return nil, fmt.Errorf("renice: %w", err)
	}
	for batch := range slices.Chunk(ids, c.cfg.MaxIDsPerCommand) {
		g, err := c.reniceBatch(ctx, nice, batch)
		gone = append(gone, g...)
		if err != nil {
			return gone, err
		}
	}
	return gone, nil
}

func (c *CLI) reniceBatch(ctx context.Context, nice int, ids []string) (gone []string, err error) {
	args := []string{"update", "JobId=" + strings.Join(ids, ","), "Nice=" + strconv.Itoa(nice)}
	_, err = c.exec(ctx, c.cfg.UpdateTimeout, invocation{Name: "scontrol", Path: c.cfg.ScontrolPath, Args: args})
	if err == nil {
		return nil, nil
	}
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode <= 0 {
		return nil, fmt.Errorf("renice %d jobs: %w", len(ids), classify(err))
	}
	lines, unexplained := parseJobErrors(ce.Stderr)
	for _, l := range lines {
		if ClassifyText(l.msg) == ClassNotFound && slices.Contains(ids, l.id) {
			gone = append(gone, l.id)
		} else {
			unexplained = append(unexplained, l.msg+" for job "+l.id)
		}
	}
	// Older scontrol says only "Invalid job id specified" for a single id.
	if len(lines) == 0 && len(ids) == 1 && ClassifyText(ce.Stderr) == ClassNotFound {
		return ids, nil
	}
	if len(unexplained) > 0 || len(gone) == 0 {
		return gone, fmt.Errorf("renice %d jobs: %w", len(ids), classifyLines(ce, unexplained))
	}
	c.logger.Debug("renice: some jobs are gone", zap.Strings("job_id", gone))
	return gone, nil
}

// checkIDs validates job ids before they reach a command line.
func checkIDs(ids []string) error {
	for _, id := range ids {
		if !validJobID(id) {
			return fmt.Errorf("%q is not a job id", id)
		}
	}
	return nil
}

// Cancel cancels by ids when given, otherwise every job of ours with the given name.
//
// Plain: scancel <ids…> (or scancel --me --name=<uuid>). scancel exits 0 for ids that are
// unknown or already finished.
//
// Running: scancel --batch --signal=TERM --state=RUNNING <ids…> sends TERM to the batch
// step only, so that crunch-run can stop the container and finalize the record; then
// scancel --state=PENDING <ids…> cancels any that were still pending (the caller's view may
// be stale). The --state filter matters: Slurm refuses to signal a PENDING job with "Job can
// not be altered now, try again later", and scancel retries that for about 95 seconds before
// it exits 228 (Slurm 22.05, observed).
func (c *CLI) Cancel(ctx context.Context, req CancelRequest) error {
	var selector []string
	if len(req.IDs) == 0 {
		if !arvados.ValidContainerUUID(req.Name) {
			return fmt.Errorf("cancel %q: not a container uuid", req.Name)
		}
		selector = []string{c.userArgs(), "--name=" + req.Name}
		return c.cancel(ctx, req.Name, selector, req.Running)
	}
	if err := checkIDs(req.IDs); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	for batch := range slices.Chunk(req.IDs, c.cfg.MaxIDsPerCommand) {
		what := "job " + batch[0]
		if len(batch) > 1 {
			what = strconv.Itoa(len(batch)) + " jobs"
		}
		if err := c.cancel(ctx, what, batch, req.Running); err != nil {
			return err
		}
	}
	return nil
}

// cancel cancels the jobs selector selects (ids, or --me --name=…).
func (c *CLI) cancel(ctx context.Context, what string, selector []string, running bool) error {
	if !running {
		return c.scancel(ctx, what, selector)
	}
	if err := c.scancel(ctx, what, append([]string{"--batch", "--signal=TERM", "--state=RUNNING"}, selector...)); err != nil {
		return err
	}
	return c.scancel(ctx, what, append([]string{"--state=PENDING"}, selector...))
}

// scancel runs scancel with args. Jobs that are gone are not an error: plain scancel exits 0
// for them; with --signal or --state it exits 1 with "Kill job error on job id <id>: Invalid
// job id specified" for each.
func (c *CLI) scancel(ctx context.Context, what string, args []string) error {
	_, err := c.exec(ctx, c.cfg.UpdateTimeout, invocation{Name: "scancel", Path: c.cfg.ScancelPath, Args: args})
	if err == nil {
		return nil
	}
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode <= 0 {
		return fmt.Errorf("cancel %s: %w", what, classify(err))
	}
	lines, unexplained := parseJobErrors(ce.Stderr)
	for _, l := range lines {
		if ClassifyText(l.msg) != ClassNotFound {
			unexplained = append(unexplained, "Kill job error on job id "+l.id+": "+l.msg)
		}
	}
	if len(unexplained) == 0 && len(lines) > 0 {
		return nil // every complaint was about a job that is gone
	}
	err = classifyLines(ce, unexplained)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return fmt.Errorf("cancel %s: %w", what, err)
}

// classifyLines classifies ce by the lines of its stderr that were not explained away as
// gone jobs (all of it when there are none).
func classifyLines(ce *CommandError, unexplained []string) error {
	if len(unexplained) == 0 {
		return classify(ce)
	}
	narrowed := *ce
	narrowed.Stderr = strings.Join(unexplained, "\n")
	return classify(&narrowed)
}
