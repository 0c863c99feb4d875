package main

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// adminCancelMessage is the runtime_status.error of a container cancelled by containers cancel:
// what its user sees in Workbench.
const adminCancelMessage = "cancelled by an administrator (dispatch-slurm containers cancel)"

const containersCancelExample = `Example:
   dispatch-slurm containers cancel zzzzz-dz642-0123456789abcde
   dispatch-slurm containers cancel --dry-run zzzzz-dz642-0123456789abcde zzzzz-dz642-abcdefghijklmno
   dispatch-slurm containers cancel --yes --json zzzzz-dz642-0123456789abcde zzzzz-dz642-abcdefghijklmno

For each container: refuse it if another token holds its lock; cancel its Slurm jobs (our
user's jobs named after it; a running job gets TERM on its batch step so that crunch-run can
stop the container); wait until Slurm shows none alive (--wait); then set the container
Cancelled with runtime_status.error "` + adminCancelMessage + `".
Queued containers, and containers Locked or Running by our token, can be cancelled. A
container whose job does not end within --wait is still cancelled (it can get no new job),
and the job is reported. A Cancelled or Complete container is left as it is; its leftover
jobs are cancelled.

More than one container needs --yes, or a "y" on a terminal. Refusals and failures do not
stop the others; the exit code is 1 if there were any.`

func containersCancelCommand(onUsage cli.OnUsageErrorFunc) *cli.Command {
	return &cli.Command{
		Name:         "cancel",
		Usage:        "cancel the Slurm jobs of containers, then the containers, saying an administrator cancelled them",
		ArgsUsage:    "UUID…",
		Description:  containersCancelExample,
		Flags:        actionFlags(),
		OnUsageError: onUsage,
		Action:       containersCancel,
	}
}

var cancelAction = action{verb: "cancel", decide: decideCancel, before: announceCancel, finish: finishCancel}

func containersCancel(c *cli.Context) error {
	uuids, err := targetUUIDs(c)
	if err != nil {
		return err
	}
	switch {
	case len(uuids) == 0:
		return usageError{fmt.Errorf("name the containers to cancel (see --help)")}
	case c.Duration("wait") <= 0:
		return usageError{fmt.Errorf("--wait %s: must be positive", c.Duration("wait"))}
	}
	env, err := newAdminEnv(c, actionKeys)
	if err != nil {
		return err
	}
	defer env.client.CloseIdleConnections()
	return runAction(c, cancelAction, env, uuids)
}

// decideCancel: Queued containers and those locked by our token are cancelled; final ones
// keep their state but lose their leftover jobs.
func decideCancel(c arvados.Container, known, hasJobs bool, tokenUUID string) decision {
	lockable := c.State == arvados.Locked || c.State == arvados.Running
	switch {
	case !known:
		return decision{stepRefuse, "no such container (or our token cannot read it)"}
	case c.State == arvados.Queued:
		return decision{step: stepCancel}
	case lockable && c.LockedByUUID == tokenUUID && tokenUUID != "":
		return decision{step: stepCancel}
	case lockable:
		return decision{stepRefuse, lockedByOther(c)}
	case c.State == arvados.Cancelled:
		return decision{stepNothing, "it is Cancelled already"}
	case c.State == arvados.Complete && hasJobs:
		return decision{stepNothing, "it is Complete; only its leftover Slurm jobs are cancelled"}
	default:
		return decision{stepRefuse, "it is " + string(c.State) + ": it has finished, there is nothing to cancel"}
	}
}

// cancelledStatus is runtime_status with our error, and without the activity (the
// container is no longer waiting for anything).
func cancelledStatus(old map[string]any) map[string]any {
	rs := maps.Clone(old)
	if rs == nil {
		rs = map[string]any{}
	}
	delete(rs, "activity")
	rs["error"] = adminCancelMessage
	return rs
}

// announceCancel writes runtime_status.error before a running job is signalled: crunch-run
// may finalize the container itself when it gets TERM, and a Cancelled container's
// runtime_status can no longer change. A failure here is not fatal: finishCancel writes it
// again with the state.
func announceCancel(ctx context.Context, e *adminEnv, p *plan) {
	running := slices.ContainsFunc(p.jobs, func(j slurm.Job) bool { return !slurm.PendingState(j.State) })
	if p.d.step != stepCancel || !running || p.ctr.State == arvados.Queued {
		return
	}
	cur, err := e.client.GetContainer(ctx, p.uuid, "uuid", "state", "runtime_status")
	if err != nil || cur.State.Final() {
		return
	}
	_, _ = e.client.UpdateContainer(ctx, p.uuid, arvados.ContainerUpdate{RuntimeStatus: cancelledStatus(cur.RuntimeStatus)})
}

// finishCancel sets the container Cancelled with our runtime_status.error, after its jobs.
func finishCancel(ctx context.Context, e *adminEnv, p *plan, left []slurm.Job) {
	done := ""
	if len(p.row.JobsCancelled) > 0 {
		done = "cancelled Slurm " + jobList(p.jobs) + "; "
	}
	stillThere := ""
	if len(left) > 0 {
		stillThere = "; but " + jobList(left) + " is still there after waiting: check it with " +
			"\"dispatch-slurm jobs list\", and scancel it if it stays"
	}
	cur, err := e.client.GetContainer(ctx, p.uuid, append(slices.Clip(containerFields), "runtime_status")...)
	if err != nil {
		p.row.Message = done + "not cancelled: read the container again: " + err.Error() + "; run this again"
		return
	}
	p.row.State = string(cur.State)
	d := decideCancel(cur, true, false, e.tokenUUID)
	switch d.step {
	case stepRefuse:
		p.row.Message = done + "not cancelled: " + d.why + stillThere
		return
	case stepNothing:
		p.row.OK = len(left) == 0
		p.row.Message = done + "left as it is: " + d.why + stillThere
		return
	}
	st := arvados.Cancelled
	got, err := e.client.UpdateContainer(ctx, p.uuid, arvados.ContainerUpdate{State: &st, RuntimeStatus: cancelledStatus(cur.RuntimeStatus)})
	if err != nil {
		// crunch-run may have finalized it as its job stopped; the record says.
		if now, gerr := e.client.GetContainer(ctx, p.uuid, containerFields...); gerr == nil && now.State == arvados.Cancelled {
			p.row.State, p.row.OK = string(now.State), len(left) == 0
			p.row.Message = done + "it was Cancelled meanwhile (by crunch-run as its job stopped)" + stillThere
			return
		}
		p.row.Message = done + "not cancelled: " + err.Error() + stillThere
		return
	}
	p.row.State, p.row.OK = string(got.State), len(left) == 0
	p.row.Message = done + "cancelled: now " + string(got.State) + stillThere
}
