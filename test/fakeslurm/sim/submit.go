package sim

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// createJob is slurmctld's side of a submission: validate, allocate an id, decide
// whether the job is rejected, pending for a reason, or schedulable. It returns the id or
// the messages sbatch prints for a rejection (exit 1).
func (s *Sim) createJob(c *Cluster, st *Store, r *sbatchReq, script []byte) (int, string) {
	now := s.Now().Unix()
	var parts []string
	for _, p := range strings.Split(r.partitions, ",") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		parts = []string{c.DefaultPartition().Name}
	}
	for _, p := range parts {
		if _, ok := c.Partition(p); !ok {
			return 0, fmt.Sprintf("sbatch: error: invalid partition specified: %s\n"+
				"sbatch: error: Batch job submission failed: Invalid partition name specified\n", p)
		}
	}
	if r.gpus > 0 && !c.HasGPUs() {
		return 0, "sbatch: error: Invalid generic resource (gres) specification\n"
	}
	id := st.AllocID()
	for _, f := range featureNames(r.constraint) {
		if !c.HasFeature(f) {
			return 0, "sbatch: error: Batch job submission failed: Invalid feature specification\n"
		}
	}
	j := s.newJob(c, r, id, parts, now)
	if r.hold {
		j.Hold, j.Reason, j.Eligible = HoldUser, "JobHeldUser", 0
	} else if reason, msg, reject := admit(c, j, parts); reject {
		j.State, j.Reason = StateFailed, "BadConstraints"
		j.Start, j.End, j.ExitSignal = now, now, 1
		st.Put(j)
		if msg != "" {
			msg = "sbatch: error: " + msg + "\n"
		}
		return 0, msg + "sbatch: error: Batch job submission failed: Requested node configuration is not available\n"
	} else {
		j.Reason = reason
		if reason == "None" && c.NoRun {
			j.Reason = "Resources"
		}
	}
	if err := st.saveSpool(id, script, exportEnv(s.Environ, r.export)); err != nil {
		return 0, "sbatch: fakeslurm: " + err.Error() + "\n"
	}
	st.Put(j)
	return id, ""
}

func (s *Sim) newJob(c *Cluster, r *sbatchReq, id int, parts []string, now int64) *Job {
	j := &Job{
		ID: id, Name: r.name, UID: s.UID, User: s.User, GID: s.GID, Group: s.Group,
		ReqPartitions: strings.Join(parts, ","), Partition: strings.Join(parts, ","),
		Nice: r.nice, CPUsPerTask: r.cpusPerTask, NTasks: r.ntasks,
		Mem: r.mem, MemPerCPU: r.memPerCPU, Tmp: r.tmp, GPUs: r.gpus,
		Features: r.constraint, Account: r.account, Comment: r.comment,
		TimeLimit: r.timeLimit, Requeue: r.requeue,
		Submit: now, Eligible: now, LastSchedEval: now,
		State: StatePending, Reason: "None", Scheduler: "Main", AllocSid: s.Sid, Command: "(null)",
	}
	if !r.memSet {
		j.Mem, j.MemPerCPU = c.DefMemPerCPU, true
	}
	if j.Name == "" {
		switch {
		case r.wrapSet:
			j.Name = "wrap"
		case r.scriptPath != "":
			j.Name = filepath.Base(r.scriptPath)
		default:
			j.Name = "sbatch"
		}
	}
	if r.scriptPath != "" {
		j.Command = r.scriptPath
	}
	j.WorkDir = s.Cwd
	if r.chdir != "" {
		j.WorkDir = absIn(s.Cwd, r.chdir)
	}
	out := r.output
	if out == "" {
		out = "slurm-%j.out"
	}
	j.StdOut = absIn(j.WorkDir, expandPattern(out, j))
	j.StdErr = j.StdOut
	if r.errPath != "" {
		j.StdErr = absIn(j.WorkDir, expandPattern(r.errPath, j))
	}
	j.StdIn = "/dev/null"
	if r.input != "" {
		j.StdIn = absIn(j.WorkDir, expandPattern(r.input, j))
	}
	return j
}

// admit decides a new job's fate the way slurmctld's job_allocate does on a single-node
// test at submit time: each partition in order is checked against its limits (DOWN →
// PartitionDown, more CPUs than the partition has → PartitionConfig) and its nodes'
// configuration. A single partition with PartitionConfig waits without a node test; a
// job no node can ever hold is rejected, except that a multi-partition job whose last
// partition is DOWN waits with PartitionDown. (Observed on Slurm 22.05.8.)
func admit(c *Cluster, j *Job, parts []string) (reason, msg string, reject bool) {
	lastLimit := ""
	for _, name := range parts {
		p, _ := c.Partition(name)
		limit := ""
		switch {
		case !p.Up:
			limit = "PartitionDown"
		case j.NumCPUs() > partitionCPUs(c, p):
			limit = "PartitionConfig"
		}
		lastLimit = limit
		if len(parts) == 1 && limit == "PartitionConfig" {
			return limit, "", false
		}
		m, fits := nodeConfig(c, p, j)
		if !fits {
			msg = m
			j.Partition = name
			continue
		}
		j.Partition = j.ReqPartitions
		if limit != "" {
			return limit, "", false
		}
		return "None", "", false
	}
	if len(parts) > 1 && lastLimit == "PartitionDown" {
		j.Partition = j.ReqPartitions
		return "PartitionDown", "", false
	}
	return "", msg, true
}

func absIn(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// expandPattern expands sbatch's filename patterns known at submit time.
func expandPattern(p string, j *Job) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+1 == len(p) {
			b.WriteByte(p[i])
			continue
		}
		i++
		switch p[i] {
		case 'j', 'A':
			b.WriteString(strconv.Itoa(j.ID))
		case 'x':
			b.WriteString(j.Name)
		case 'u':
			b.WriteString(j.User)
		case 'a':
			b.WriteString("4294967294")
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(p[i])
		}
	}
	return b.String()
}

// exportEnv applies --export to sbatch's environment: ALL (default), NONE, or a list of
// names and NAME=value pairs (with ALL meaning everything besides).
func exportEnv(env []string, export string) []string {
	if export == "" || strings.EqualFold(export, "ALL") {
		return env
	}
	if strings.EqualFold(export, "NONE") {
		return nil
	}
	var out []string
	all := false
	set := map[string]string{}
	var names []string
	for _, item := range strings.Split(export, ",") {
		if strings.EqualFold(item, "ALL") {
			all = true
			continue
		}
		if k, v, ok := strings.Cut(item, "="); ok {
			set[k] = v
			names = append(names, k)
			continue
		}
		names = append(names, item)
	}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; ok {
			continue
		}
		keep := all || strings.HasPrefix(k, "SLURM_")
		for _, n := range names {
			keep = keep || n == k
		}
		if keep {
			out = append(out, kv)
		}
	}
	for _, k := range names {
		if v, ok := set[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}
