package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

const containersUnlockExample = `Example:
   dispatch-slurm containers unlock zzzzz-dz642-0123456789abcde
   dispatch-slurm containers unlock --stuck --older-than 2h --dry-run
   dispatch-slurm containers unlock --stuck --yes --json | jq .

For each container: refuse it if it is not Locked by our token (a Running container cannot
be unlocked: use "dispatch-slurm containers cancel"); cancel its Slurm jobs (our user's jobs
named after it); wait until Slurm shows none alive (--wait; if one stays, the container is
left locked, since unlocking it could let a second job start); then unlock it, which puts it
back in the queue (Queued) and uses one of its dispatch attempts: at
Containers.MaxDispatchAttempts the API server cancels it instead.

--stuck takes the containers that "containers list --stuck" marks and that unlocking can help:
Locked by us with no Slurm job for longer than --stuck-after, or with a job pending on a
reason that never clears or needs attention. --older-than keeps those created longer ago
than that (the AGE column of containers list).

More than one container needs --yes, or a "y" on a terminal. Refusals and failures do not
stop the others; the exit code is 1 if there were any.`

func containersUnlockCommand(onUsage cli.OnUsageErrorFunc) *cli.Command {
	return &cli.Command{
		Name:        "unlock",
		Usage:       "cancel the Slurm jobs of containers locked by us, wait until they are gone, then unlock the containers",
		ArgsUsage:   "UUID… | --stuck [--older-than D]",
		Description: containersUnlockExample,
		Flags: actionFlags(
			&cli.BoolFlag{Name: "stuck", Usage: "unlock the stuck containers that unlocking can help (see below)"},
			&cli.DurationFlag{Name: "stuck-after", Value: defaultStuckAfter,
				Usage: "with --stuck: a container Locked by us with no Slurm job for longer than this is stuck"},
			&cli.DurationFlag{Name: "older-than", Usage: "with --stuck: only containers created longer ago than this"},
		),
		OnUsageError: onUsage,
		Action:       containersUnlock,
	}
}

var unlockAction = action{verb: "unlock", decide: decideUnlock, finish: finishUnlock}

func containersUnlock(c *cli.Context) error {
	uuids, err := targetUUIDs(c)
	if err != nil {
		return err
	}
	stuck := c.Bool("stuck")
	switch {
	case stuck && len(uuids) > 0:
		return usageError{fmt.Errorf("give container uuids or --stuck, not both")}
	case !stuck && len(uuids) == 0:
		return usageError{fmt.Errorf("name the containers to unlock, or pass --stuck (see --help)")}
	case !stuck && (c.IsSet("older-than") || c.IsSet("stuck-after")):
		return usageError{fmt.Errorf("--older-than and --stuck-after go with --stuck")}
	case c.Duration("wait") <= 0 || c.Duration("stuck-after") <= 0 || c.Duration("older-than") < 0:
		return usageError{fmt.Errorf("--wait and --stuck-after must be positive, --older-than not negative")}
	}
	env, err := newAdminEnv(c, actionKeys)
	if err != nil {
		return err
	}
	defer env.client.CloseIdleConnections()
	if stuck {
		if uuids, err = env.stuckToUnlock(c.Context, c.Duration("stuck-after"), c.Duration("older-than")); err != nil {
			return err
		}
		if len(uuids) == 0 {
			if c.Bool("json") {
				return writeJSON(c.App.Writer, []actionRow{})
			}
			_, err := fmt.Fprintln(c.App.Writer, "no stuck container that unlocking can help")
			return err
		}
	}
	return runAction(c, unlockAction, env, uuids)
}

// stuckToUnlock returns the containers that containers list --stuck marks, that are Locked by
// us, and that were created more than olderThan ago.
func (e *adminEnv) stuckToUnlock(ctx context.Context, stuckAfter, olderThan time.Duration) ([]string, error) {
	now := e.now()
	v, err := e.containerView(ctx, now, stuckAfter)
	if err != nil {
		return nil, err
	}
	var uuids []string
	for _, r := range v.rows() {
		c, ours := v.ours[r.UUID]
		if !r.Stuck || !ours || c.State != arvados.Locked || c.LockedByUUID != e.tokenUUID ||
			now.Sub(c.CreatedAt) < olderThan || slices.Contains(uuids, r.UUID) {
			continue
		}
		uuids = append(uuids, r.UUID)
	}
	return uuids, nil
}

// decideUnlock: only a container Locked by our token can be unlocked.
func decideUnlock(c arvados.Container, known, _ bool, tokenUUID string) decision {
	switch {
	case !known:
		return decision{stepRefuse, "no such container (or our token cannot read it)"}
	case c.State == arvados.Locked && c.LockedByUUID == tokenUUID && tokenUUID != "":
		return decision{step: stepUnlock}
	case c.State == arvados.Locked:
		return decision{stepRefuse, lockedByOther(c)}
	case c.State == arvados.Queued:
		return decision{stepRefuse, "it is Queued: not locked, nothing to unlock"}
	case c.State == arvados.Running:
		return decision{stepRefuse, "it is Running: the API cannot unlock a Running container; to stop it, run: dispatch-slurm containers cancel " + c.UUID}
	default:
		return decision{stepRefuse, "it is " + string(c.State) + ": final, nothing to unlock"}
	}
}

// lockedByOther says that another token holds c's lock.
func lockedByOther(c arvados.Container) string {
	return fmt.Sprintf("it is %s by another token (%s), not ours: only that dispatcher may act on it; "+
		"run this with its token (--config), or stop it first", c.State, c.LockedByUUID)
}

// finishUnlock unlocks the container if its jobs are gone and it is still Locked by us.
func finishUnlock(ctx context.Context, e *adminEnv, p *plan, left []slurm.Job) {
	done := ""
	if len(p.row.JobsCancelled) > 0 {
		done = "cancelled Slurm " + jobList(p.jobs) + "; "
	}
	if len(left) > 0 {
		p.row.Message = done + "but " + jobList(left) + " is still there after waiting: not unlocked, since a " +
			"second job could start. Wait for it to end (or scancel it), then run this again, or use a longer --wait"
		return
	}
	cur, err := e.client.GetContainer(ctx, p.uuid, containerFields...)
	if err != nil {
		p.row.Message = done + "not unlocked: read the container again: " + err.Error() + "; run this again"
		return
	}
	p.row.State = string(cur.State)
	if cur.State == arvados.Queued {
		p.row.OK = true
		p.row.Message = done + "it is Queued already (the dispatcher unlocked it when its job ended)"
		return
	}
	if d := decideUnlock(cur, true, false, e.tokenUUID); d.step != stepUnlock {
		p.row.Message = done + "not unlocked: it changed meanwhile: " + d.why
		return
	}
	got, err := e.client.Unlock(ctx, p.uuid)
	if err != nil {
		// An ambiguous failure may have unlocked it; the record says.
		if now, gerr := e.client.GetContainer(ctx, p.uuid, containerFields...); gerr == nil {
			p.row.State = string(now.State)
			if now.State == arvados.Queued {
				p.row.OK = true
				p.row.Message = done + "unlocked: now Queued"
				return
			}
		}
		p.row.Message = done + "not unlocked: " + err.Error()
		return
	}
	p.row.State, p.row.OK = string(got.State), true
	if got.State == arvados.Cancelled {
		p.row.Message = done + "the API server cancelled it instead of unlocking it: its lock_count reached " +
			"Containers.MaxDispatchAttempts"
		return
	}
	p.row.Message = done + "unlocked: now " + string(got.State)
}
