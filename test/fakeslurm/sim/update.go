package sim

import (
	"fmt"
	"strconv"
	"strings"
)

// jobUpdate is one `scontrol update` of jobs.
type jobUpdate struct {
	ids       []string // as written, for messages
	name      string   // JobName= instead of JobId=
	nice      *int
	comment   *string
	timeLimit *int
}

// scontrolUpdate handles `scontrol update JobId=<id>[,<id>…] Nice=<n> …`. Each id is
// updated on its own: a gone id prints "Invalid job id specified for job <id>", a
// finished one "Job has already finished for job <id>", and the command exits 1 while
// the others are updated (observed on 22.05.8).
func (s *Sim) scontrolUpdate(args []string) int {
	u, code, done := s.parseUpdate(args)
	if done {
		return code
	}
	down := func() int {
		fmt.Fprintln(s.Stderr, "slurm_update error: Unable to contact slurm controller (connect failure)")
		return 1
	}
	st, _, code, done := s.contactLoaded("scontrol", down)
	if done {
		return code
	}
	c, _ := s.loadCluster()
	s.tick(c, st)
	var msgs []string
	apply := func(j *Job) {
		if j.Finished() {
			msgs = append(msgs, fmt.Sprintf("Job has already finished for job %d", j.ID))
			return
		}
		if u.nice != nil {
			j.Nice = *u.nice
		}
		if u.comment != nil {
			j.Comment = *u.comment
		}
		if u.timeLimit != nil {
			j.TimeLimit = *u.timeLimit
		}
		st.Put(j)
	}
	if u.name != "" {
		found := false
		for _, j := range st.Sorted() {
			if j.Name == u.name {
				found = true
				apply(j)
			}
		}
		if !found {
			msgs = append(msgs, fmt.Sprintf("No jobs with name '%s'", u.name))
		}
	}
	for _, idText := range u.ids {
		id, err := strconv.Atoi(idText)
		j := st.Jobs[id]
		if err != nil || j == nil {
			msgs = append(msgs, fmt.Sprintf("Invalid job id specified for job %s", idText))
			continue
		}
		apply(j)
	}
	s.tick(c, st)
	if !s.finish("scontrol", st) {
		return 1
	}
	for _, m := range msgs {
		fmt.Fprintln(s.Stderr, m)
	}
	if len(msgs) > 0 {
		return 1
	}
	return 0
}

func (s *Sim) parseUpdate(args []string) (*jobUpdate, int, bool) {
	u := &jobUpdate{}
	abort := func(msg string) (*jobUpdate, int, bool) {
		fmt.Fprintf(s.Stderr, "%s\nRequest aborted\n", msg)
		return nil, 1, true
	}
	entity := false
	var rest []string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		switch {
		case ok && keyword(k, "jobid", 3):
			entity = true
			for _, id := range strings.Split(v, ",") {
				if id != "" {
					u.ids = append(u.ids, id)
				}
			}
		case ok && keyword(k, "jobname", 4):
			entity, u.name = true, v
		default:
			rest = append(rest, a)
		}
	}
	if !entity {
		fmt.Fprintln(s.Stderr, "No valid entity in update command")
		fmt.Fprintln(s.Stderr, `Input line must include "NodeName", "PartitionName", "Reservation", "JobId", or "SlurmctldDebug"`)
		return nil, 1, true
	}
	for _, a := range rest {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return abort("Invalid input: " + a)
		}
		switch {
		case strings.EqualFold(k, "nice"):
			n := atoiPrefix(v)
			if n > niceLimit || n < -niceLimit {
				fmt.Fprintln(s.Stderr, "scontrol: error: Nice value out of range (+/- 2147483645). Value ignored")
				return nil, 1, true
			}
			nice := int(n)
			u.nice = &nice
		case strings.EqualFold(k, "comment"):
			u.comment = &v
		case strings.EqualFold(k, "timelimit"):
			m, ok := parseTimeLimit(v)
			if !ok {
				return abort("Invalid TimeLimit value: " + v)
			}
			u.timeLimit = &m
		case isJobUpdateKey(k):
			fmt.Fprintf(s.Stderr, "scontrol: fakeslurm: update of %s is not modelled\n", k)
			return nil, 1, true
		default:
			return abort("Update of this parameter is not supported: " + a)
		}
	}
	return u, 0, false
}

// isJobUpdateKey reports keys real scontrol accepts for jobs that the fake does not model.
func isJobUpdateKey(k string) bool {
	for _, known := range []string{"Account", "Partition", "Priority", "QOS", "NumCPUs",
		"MinMemoryNode", "MinMemoryCPU", "MinTmpDiskNode", "Features", "Gres", "Dependency",
		"StartTime", "Requeue", "ReqNodeList", "ExcNodeList", "Name", "WorkDir", "StdOut"} {
		if strings.EqualFold(k, known) {
			return true
		}
	}
	return false
}

// scontrolHold handles hold, uhold and release of job ids.
func (s *Sim) scontrolHold(verb string, args []string) int {
	var ids []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && keyword(k, "jobid", 3) {
			a = v
		}
		ids = append(ids, splitList(a)...)
	}
	if len(ids) == 0 {
		fmt.Fprintf(s.Stderr, "too few arguments for keyword:%s\n", verb)
		return 1
	}
	down := func() int {
		fmt.Fprintln(s.Stderr, "slurm_suspend error: Unable to contact slurm controller (connect failure)")
		return 1
	}
	st, _, code, done := s.contactLoaded("scontrol", down)
	if done {
		return code
	}
	c, _ := s.loadCluster()
	s.tick(c, st)
	var msgs []string
	for _, idText := range ids {
		id, err := strconv.Atoi(idText)
		j := st.Jobs[id]
		switch {
		case err != nil || j == nil:
			msgs = append(msgs, "Invalid job id specified for job "+idText, "slurm_suspend error: Invalid job id specified")
			continue
		case j.Finished():
			msgs = append(msgs, "Job has already finished for job "+idText, "slurm_suspend error: Job has already finished")
			continue
		}
		// A running job takes the hold too (its reason and priority show it): 22.05.
		switch {
		case strings.HasPrefix(verb, "r"):
			if j.Hold == HoldNone {
				continue
			}
			j.Hold, j.Reason = HoldNone, "None"
			if j.Eligible == 0 {
				j.Eligible = s.Now().Unix()
			}
		case strings.HasPrefix(verb, "u") || s.UID != 0:
			j.Hold, j.Reason = HoldUser, "JobHeldUser"
		default:
			j.Hold, j.Reason = HoldAdmin, "JobHeldAdmin"
		}
		st.Put(j)
	}
	s.tick(c, st)
	if !s.finish("scontrol", st) {
		return 1
	}
	for _, m := range msgs {
		fmt.Fprintln(s.Stderr, m)
	}
	if len(msgs) > 0 {
		return 1
	}
	return 0
}
