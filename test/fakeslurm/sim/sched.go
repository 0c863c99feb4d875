package sim

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// unlimitedMinutes is the time limit slurmctld gives a job without one when it starts
// (scontrol shows TimeLimit=365-00:00:00).
const unlimitedMinutes = 365 * 24 * 60

// tick is what slurmctld does between calls: purge jobs finished more than MinJobAge
// ago, notice job runners that died, and start pending jobs that fit. Every command that
// loads the state ticks, so no daemon is needed.
func (s *Sim) tick(c *Cluster, st *Store) {
	now := s.Now()
	for _, j := range st.Jobs {
		switch {
		case j.Finished() && !j.Completing && j.End > 0 && now.Unix()-j.End > minJobAgeSecs(c):
			// End is in whole seconds: "more than MinJobAge, rounded up" is never early.
			st.Delete(j.ID)
		case (j.State == StateRunning || j.Completing) && j.RunnerPID > 0 && !alive(j.RunnerPID):
			if j.State == StateRunning {
				j.State, j.Reason, j.End = StateNodeFail, "NodeDown", now.Unix()
			}
			j.Completing = false
			st.Put(j)
		}
	}
	s.schedule(c, st, now.Unix())
}

func minJobAgeSecs(c *Cluster) int64 {
	return int64((c.MinJobAge.D() + time.Second - 1) / time.Second)
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

type freeRes struct {
	cpus      int
	mem, tmp  int64
	gpus      int
	allocated bool
}

func freeResources(c *Cluster, st *Store) map[string]*freeRes {
	free := map[string]*freeRes{}
	for _, n := range c.Nodes {
		free[n.Name] = &freeRes{cpus: n.CPUs, mem: n.RealMemory, tmp: n.TmpDisk, gpus: n.GPUs}
	}
	for _, j := range st.Jobs {
		if !j.HoldsResources() {
			continue
		}
		if f, ok := free[j.NodeList]; ok {
			f.take(c, j)
		}
	}
	return free
}

func (f *freeRes) take(c *Cluster, j *Job) {
	f.cpus -= j.NumCPUs()
	f.mem -= jobMem(c, j)
	f.tmp -= j.Tmp
	f.gpus -= j.GPUs
	f.allocated = true
}

// jobMem is the memory a job takes on a node; --mem=0 asks for all of it.
func jobMem(c *Cluster, j *Job) int64 {
	if !j.MemPerCPU && j.Mem == 0 {
		var max int64
		for _, n := range c.Nodes {
			if n.RealMemory > max {
				max = n.RealMemory
			}
		}
		return max
	}
	return j.MemMiB()
}

func (f *freeRes) fits(c *Cluster, j *Job) bool {
	return f.cpus >= j.NumCPUs() && f.mem >= jobMem(c, j) && f.tmp >= j.Tmp && f.gpus >= j.GPUs
}

func partitionList(c *Cluster, j *Job) []string {
	if j.ReqPartitions == "" {
		return []string{c.DefaultPartition().Name}
	}
	return strings.Split(j.ReqPartitions, ",")
}

// schedule starts pending jobs in priority order wherever they fit (a backfill that never
// delays anything, since jobs have no usable end times). A job that does not fit waits
// with reason Resources, or Priority when a higher-priority job waits in its partition.
func (s *Sim) schedule(c *Cluster, st *Store, now int64) {
	var pending []*Job
	static := map[string]string{} // partition list → reason every job there waits for
	for _, j := range st.Jobs {
		if j.State != StatePending || j.Hold != HoldNone {
			continue
		}
		reason, ok := static[j.ReqPartitions]
		if !ok {
			reason = staticReason(c, j)
			static[j.ReqPartitions] = reason
		}
		if reason == "" || reason == "PartitionConfig" {
			// PartitionConfig depends on the job's size: let place decide.
			pending = append(pending, j)
			continue
		}
		if reason != j.Reason {
			j.Reason, j.LastSchedEval = reason, now
			st.Put(j)
		}
	}
	if len(pending) == 0 {
		return
	}
	slices.SortFunc(pending, func(a, b *Job) int {
		if r := compare(b.Priority(c.PriorityBase), a.Priority(c.PriorityBase)); r != 0 {
			return r
		}
		return compare(a.ID, b.ID)
	})
	free := freeResources(c, st)
	waiting := map[string]bool{}
	for _, j := range pending {
		reason := s.place(c, st, j, free, waiting, now)
		if reason != "" && reason != j.Reason {
			j.Reason, j.LastSchedEval = reason, now
			st.Put(j)
		}
	}
}

// staticReason is the reason every job of the job's partition list waits for when none
// of the partitions can run anything (all DOWN, or the cluster runs nothing), or "".
func staticReason(c *Cluster, j *Job) string {
	reason := ""
	for _, name := range partitionList(c, j) {
		p, ok := c.Partition(name)
		switch {
		case !ok:
			reason = "PartitionConfig"
		case !p.Up:
			reason = "PartitionDown"
		default:
			return ""
		}
	}
	return reason
}

// place starts j in the first of its partitions where it fits now and returns "", or
// returns the reason it waits.
func (s *Sim) place(c *Cluster, st *Store, j *Job, free map[string]*freeRes, waiting map[string]bool, now int64) string {
	reason := "None"
	for _, name := range partitionList(c, j) {
		p, ok := c.Partition(name)
		switch {
		case !ok:
			reason = "PartitionConfig"
			continue
		case !p.Up:
			reason = "PartitionDown"
			continue
		case j.NumCPUs() > partitionCPUs(c, p):
			reason = "PartitionConfig"
			continue
		}
		if _, fits := nodeConfig(c, p, j); !fits {
			reason = "BadConstraints"
			continue
		}
		if c.NoRun {
			reason = "Resources"
			continue
		}
		var node *Node
		for _, n := range c.PartitionNodes(p) {
			if free[n.Name].fits(c, j) {
				node = n
				break
			}
		}
		if node == nil {
			if waiting[p.Name] {
				reason = "Priority"
			} else {
				reason = "Resources"
			}
			waiting[p.Name] = true
			continue
		}
		free[node.Name].take(c, j)
		s.start(st, j, p, node, now)
		return ""
	}
	return reason
}

func partitionCPUs(c *Cluster, p *Partition) int {
	n := 0
	for _, node := range c.PartitionNodes(p) {
		n += node.CPUs
	}
	return n
}

// nodeConfig reports whether some node of the partition could ever hold the job, and if
// not, the message slurmctld gives (nodes are filtered by CPUs, then memory, then disk).
func nodeConfig(c *Cluster, p *Partition, j *Job) (string, bool) {
	nodes := c.PartitionNodes(p)
	filter := func(keep func(*Node) bool) {
		var out []*Node
		for _, n := range nodes {
			if keep(n) {
				out = append(out, n)
			}
		}
		nodes = out
	}
	filter(func(n *Node) bool { return n.CPUs >= j.NumCPUs() })
	if len(nodes) == 0 {
		return "CPU count per node can not be satisfied", false
	}
	filter(func(n *Node) bool { return n.RealMemory >= jobMem(c, j) || (!j.MemPerCPU && j.Mem == 0) })
	if len(nodes) == 0 {
		return "Memory specification can not be satisfied", false
	}
	filter(func(n *Node) bool { return n.TmpDisk >= j.Tmp })
	if len(nodes) == 0 {
		return "Temporary disk specification can not be satisfied", false
	}
	filter(func(n *Node) bool { return n.GPUs >= j.GPUs && hasFeatures(n, j.Features) })
	if len(nodes) == 0 {
		return "", false
	}
	return "", true
}

// featureNames splits a constraint expression ("a&b", "a|b", "a,b", "[a|b]") into names.
func featureNames(expr string) []string {
	return strings.FieldsFunc(expr, func(r rune) bool {
		return strings.ContainsRune("&|,[]()", r)
	})
}

func hasFeatures(n *Node, expr string) bool {
	if expr == "" {
		return true
	}
	if strings.Contains(expr, "|") {
		for _, f := range featureNames(expr) {
			if nodeHas(n, f) {
				return true
			}
		}
		return false
	}
	for _, f := range featureNames(expr) {
		if !nodeHas(n, f) {
			return false
		}
	}
	return true
}

func nodeHas(n *Node, f string) bool {
	for _, nf := range n.Features {
		if nf == f {
			return true
		}
	}
	return false
}

// start marks j running on node and starts its runner.
func (s *Sim) start(st *Store, j *Job, p *Partition, node *Node, now int64) {
	j.State, j.Reason = StateRunning, "None"
	j.Partition, j.NodeList = p.Name, node.Name
	j.Start, j.LastSchedEval, j.Scheduler = now, now, "Main"
	if j.TimeLimit == 0 {
		j.TimeLimit = unlimitedMinutes
	}
	j.End = now + int64(j.TimeLimit)*60
	pid, err := s.spawnRunner(j.ID)
	if err != nil {
		j.State, j.Reason, j.End = StateFailed, "JobLaunchFailure", now
		j.ExitStatus, j.ExitSignal = 0, 1
		s.logRunner(j.ID, "start runner: %v", err)
	}
	j.RunnerPID = pid
	st.Put(j)
}

// spawnRunner starts the binary as RunnerName in a new session: the command that
// started the job exits at once, and the runner reports the job's end itself.
func (s *Sim) spawnRunner(id int) (int, error) {
	if s.Exe == "" {
		return 0, errors.New("no fakeslurm executable to run batch scripts")
	}
	cmd := &exec.Cmd{
		Path:        s.Exe,
		Args:        []string{RunnerName, strconv.Itoa(id)},
		Env:         []string{EnvState + "=" + s.Dir, "PATH=" + os.Getenv("PATH")},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	return pid, nil
}
