package sim

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

var scontrolOpts = []optSpec{
	{"all", 'a', noArg, "all"},
	{"details", 'd', noArg, "details"},
	{"federation", 0, noArg, "federation"},
	{"future", 'F', noArg, "future"},
	{"help", 'h', noArg, "help"},
	{"hide", 0, noArg, "hide"},
	{"local", 0, noArg, "local"},
	{"cluster", 'M', requiredArg, "clusters"},
	{"clusters", 0, requiredArg, "clusters"},
	{"oneliner", 'o', noArg, "oneliner"},
	{"quiet", 'Q', noArg, "quiet"},
	{"sibling", 0, noArg, "sibling"},
	{"usage", 'u', noArg, "usage"},
	{"verbose", 'v', noArg, "verbose"},
	{"version", 'V', noArg, "version"},
}

// keyword reports whether tag names word, abbreviated to at least min letters.
func keyword(tag, word string, min int) bool {
	return len(tag) >= min && len(tag) <= len(word) && strings.EqualFold(tag, word[:len(tag)])
}

func (s *Sim) scontrol(args []string) int {
	opts, rest, err := getopt("scontrol", args, scontrolOpts, true)
	if err != nil {
		fmt.Fprintf(s.Stderr, "%s\nTry \"scontrol --help\" for more information\n", err)
		return 1
	}
	oneLiner := false
	for _, o := range opts {
		switch o.id {
		case "oneliner":
			oneLiner = true
		case "help", "usage":
			fmt.Fprintln(s.Stdout, "scontrol [<OPTION>] [<COMMAND>]")
			return 0
		case "version":
			fmt.Fprintln(s.Stdout, "slurm 22.05.8")
			return 0
		}
	}
	if len(rest) == 0 {
		fmt.Fprintln(s.Stderr, "scontrol: fakeslurm: interactive mode is not modelled")
		return 1
	}
	tag, rest := rest[0], rest[1:]
	switch {
	case keyword(tag, "ping", 2):
		if len(rest) > 0 {
			fmt.Fprintf(s.Stderr, "too many arguments for keyword:%s\n", tag)
			return 1
		}
		return s.scontrolPing()
	case keyword(tag, "show", 3):
		return s.scontrolShow(tag, rest, oneLiner)
	case keyword(tag, "update", 1):
		return s.scontrolUpdate(rest)
	case keyword(tag, "hold", 2), keyword(tag, "release", 3), keyword(tag, "uhold", 2):
		return s.scontrolHold(strings.ToLower(tag), rest)
	}
	fmt.Fprintf(s.Stderr, "invalid keyword: %s\n", tag)
	return 1
}

func (s *Sim) scontrolPing() int {
	c, err := s.loadCluster()
	if err != nil {
		fmt.Fprintf(s.Stderr, "scontrol: fakeslurm: %v\n", err)
		return 1
	}
	down := func() int {
		fmt.Fprintf(s.Stdout, "Slurmctld(primary) at %s is DOWN\n", c.ControlHost)
		return 1
	}
	st, _, code, done := s.contact("scontrol", down)
	if done {
		return code
	}
	st.Close()
	fmt.Fprintf(s.Stdout, "Slurmctld(primary) at %s is UP\n", c.ControlHost)
	return 0
}

func (s *Sim) scontrolShow(tag string, rest []string, oneLiner bool) int {
	if len(rest) == 0 {
		fmt.Fprintf(s.Stderr, "too few arguments for keyword:%s\n", tag)
		return 1
	}
	entity, id := rest[0], ""
	if e, v, ok := strings.Cut(entity, "="); ok {
		entity, id = e, v
		rest = rest[1:]
	} else {
		rest = rest[1:]
		if len(rest) > 0 {
			id, rest = rest[0], rest[1:]
		}
	}
	if len(rest) > 0 {
		fmt.Fprintf(s.Stderr, "too many arguments for keyword:%s\n", tag)
		return 1
	}
	down := func() int {
		fmt.Fprintln(s.Stderr, "slurm_load_jobs error: Unable to contact slurm controller (connect failure)")
		return 1
	}
	switch {
	case keyword(entity, "jobs", 3):
	case keyword(entity, "nodes", 4), keyword(entity, "partitions", 4):
	default:
		fmt.Fprintf(s.Stderr, "invalid entity:%s for keyword:%s \n", entity, tag)
		return 1
	}
	st, a, code, done := s.contactLoaded("scontrol", down)
	if done {
		return code
	}
	c, _ := s.loadCluster()
	s.tick(c, st)
	if !s.finish("scontrol", st) {
		return 1
	}
	var out string
	switch {
	case keyword(entity, "jobs", 3):
		out, code = s.showJobs(c, st, id, oneLiner)
	case keyword(entity, "nodes", 4):
		out, code = showNodes(c, st, id, oneLiner, s.Stderr)
	default:
		out, code = showPartitions(c, id, oneLiner, s.Stderr)
	}
	if a.mode != nil && a.mode.Kind == FaultGarbage {
		out += garbage(a.mode)
	}
	io.WriteString(s.Stdout, out)
	return code
}

func (s *Sim) showJobs(c *Cluster, st *Store, id string, oneLiner bool) (string, int) {
	v := &view{c: c, now: s.Now()}
	var b strings.Builder
	if id == "" {
		jobs := st.Sorted()
		if len(jobs) == 0 {
			return "No jobs in the system\n", 0
		}
		for _, j := range jobs {
			b.WriteString(jobText(v, j, oneLiner))
		}
		return b.String(), 0
	}
	n, err := strconv.Atoi(id)
	if err != nil || n <= 0 {
		fmt.Fprintln(s.Stderr, "scontrol_print_job error: Invalid job id specified")
		return "", 1
	}
	j := st.Jobs[n]
	if j == nil {
		fmt.Fprintln(s.Stderr, "slurm_load_jobs error: Invalid job id specified")
		return "", 1
	}
	return jobText(v, j, oneLiner), 0
}

// jobText is `scontrol show job` for one job, as 22.05 prints it.
func jobText(v *view, j *Job, oneLiner bool) string {
	prio := j.Priority(v.c.PriorityBase)
	unknown := func(t int64, known bool) string {
		if t == 0 || !known {
			return "Unknown"
		}
		return formatTime(t)
	}
	started := j.State != StatePending
	limit := "UNLIMITED"
	if j.TimeLimit > 0 {
		limit = scontrolDuration(int64(j.TimeLimit) * 60)
	}
	account := nullIf(j.Account)
	numTasks := strconv.Itoa(j.NTasks)
	if j.Finished() && j.NodeList == "" {
		numTasks = "N/A"
	}
	mem := "MinMemoryNode=" + formatMiB(j.Mem)
	if j.MemPerCPU {
		mem = "MinMemoryCPU=" + formatMiB(j.Mem)
	}
	lines := []string{
		fmt.Sprintf("JobId=%d JobName=%s", j.ID, j.Name),
		fmt.Sprintf("UserId=%s(%d) GroupId=%s(%d) MCS_label=N/A", j.User, j.UID, j.Group, j.GID),
		fmt.Sprintf("Priority=%d Nice=%d Account=%s QOS=(null)", prio, j.Nice, account),
		fmt.Sprintf("JobState=%s Reason=%s Dependency=(null)", j.ShownState(), j.Reason),
		fmt.Sprintf("Requeue=%s Restarts=0 BatchFlag=1 Reboot=0 ExitCode=%d:%d", boolDigit(j.Requeue), j.ExitStatus, j.ExitSignal),
		fmt.Sprintf("RunTime=%s TimeLimit=%s TimeMin=N/A", scontrolDuration(runSeconds(v, j)), limit),
		fmt.Sprintf("SubmitTime=%s EligibleTime=%s", formatTime(j.Submit), unknown(j.Eligible, j.Hold == HoldNone)),
		fmt.Sprintf("AccrueTime=%s", unknown(accrue(j), true)),
		fmt.Sprintf("StartTime=%s EndTime=%s Deadline=N/A", unknown(j.Start, started), unknown(j.End, started)),
		fmt.Sprintf("SuspendTime=None SecsPreSuspend=0 LastSchedEval=%s Scheduler=%s", formatTime(j.LastSchedEval), j.Scheduler),
		fmt.Sprintf("Partition=%s AllocNode:Sid=localhost:%d", j.Partition, j.AllocSid),
		"ReqNodeList=(null) ExcNodeList=(null)",
		"NodeList=" + j.NodeList,
	}
	if j.NodeList != "" {
		lines = append(lines, "BatchHost="+j.NodeList)
	}
	features := nullIf(j.Features)
	lines = append(lines,
		fmt.Sprintf("NumNodes=1 NumCPUs=%d NumTasks=%s CPUs/Task=%d ReqB:S:C:T=0:0:*:*", j.NumCPUs(), numTasks, j.CPUsPerTask),
		"TRES="+tres(v.c, j),
		"Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=*",
		fmt.Sprintf("MinCPUsNode=%d %s MinTmpDiskNode=%s", j.NumCPUs(), mem, formatMiB(j.Tmp)),
		fmt.Sprintf("Features=%s DelayBoot=00:00:00", features),
		"OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)",
		"Command="+j.Command,
		"WorkDir="+j.WorkDir,
	)
	if j.Comment != "" {
		lines = append(lines, "Comment="+j.Comment)
	}
	lines = append(lines, "StdErr="+j.StdErr, "StdIn="+j.StdIn, "StdOut="+j.StdOut, "Power=")
	if j.GPUs > 0 {
		lines = append(lines, fmt.Sprintf("TresPerJob=gres:gpu:%d", j.GPUs))
	}
	return assemble(lines, oneLiner)
}

// assemble joins the lines of one record: the first line, then each line indented by
// three spaces, an empty indented line and a blank line; or all of it on one line.
func assemble(lines []string, oneLiner bool) string {
	if oneLiner {
		return strings.Join(lines, " ") + " \n"
	}
	return strings.Join(lines, "\n   ") + "\n   \n\n"
}

func showNodes(c *Cluster, st *Store, name string, oneLiner bool, stderr io.Writer) (string, int) {
	free := freeResources(c, st)
	var b strings.Builder
	found := false
	for _, n := range c.Nodes {
		if name != "" && n.Name != name {
			continue
		}
		found = true
		f := free[n.Name]
		alloc := n.CPUs - f.cpus
		state := "IDLE"
		switch {
		case alloc >= n.CPUs:
			state = "ALLOCATED"
		case f.allocated:
			state = "MIXED"
		}
		var parts []string
		for _, p := range c.Partitions {
			for _, pn := range c.PartitionNodes(&p) {
				if pn.Name == n.Name {
					parts = append(parts, p.Name)
				}
			}
		}
		feat := nullIf(strings.Join(n.Features, ","))
		gres := "(null)"
		if n.GPUs > 0 {
			gres = fmt.Sprintf("gpu:%d", n.GPUs)
		}
		allocTRES := ""
		if alloc > 0 {
			allocTRES = fmt.Sprintf("cpu=%d,mem=%s", alloc, formatMiB(n.RealMemory-f.mem))
		}
		lines := []string{
			fmt.Sprintf("NodeName=%s Arch=x86_64 CoresPerSocket=1 ", n.Name),
			fmt.Sprintf("CPUAlloc=%d CPUEfctv=%d CPUTot=%d CPULoad=0.00", alloc, n.CPUs, n.CPUs),
			"AvailableFeatures=" + feat,
			"ActiveFeatures=" + feat,
			"Gres=" + gres,
			fmt.Sprintf("NodeAddr=%s NodeHostName=%s Version=22.05.8", n.Name, n.Name),
			"OS=Linux fakeslurm ",
			fmt.Sprintf("RealMemory=%d AllocMem=%d FreeMem=%d Sockets=%d Boards=1", n.RealMemory, n.RealMemory-f.mem, f.mem, n.CPUs),
			fmt.Sprintf("State=%s ThreadsPerCore=1 TmpDisk=%d Weight=1 Owner=N/A MCS_label=N/A", state, n.TmpDisk),
			"Partitions=" + strings.Join(parts, ",") + " ",
			"BootTime=None SlurmdStartTime=None",
			"LastBusyTime=None",
			fmt.Sprintf("CfgTRES=cpu=%d,mem=%s,billing=%d", n.CPUs, formatMiB(n.RealMemory), n.CPUs),
			"AllocTRES=" + allocTRES,
			"CapWatts=n/a",
			"CurrentWatts=0 AveWatts=0",
			"ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s",
		}
		if oneLiner {
			b.WriteString(strings.Join(lines, " ") + "\n")
		} else {
			b.WriteString(strings.Join(lines, "\n   ") + "\n\n")
		}
	}
	if !found {
		fmt.Fprintf(stderr, "Node %s not found\n", name)
		return "", 1
	}
	return b.String(), 0
}

func showPartitions(c *Cluster, name string, oneLiner bool, stderr io.Writer) (string, int) {
	var b strings.Builder
	found := false
	for i := range c.Partitions {
		p := &c.Partitions[i]
		if name != "" && p.Name != name {
			continue
		}
		found = true
		var names []string
		var mem int64
		for _, n := range c.PartitionNodes(p) {
			names = append(names, n.Name)
			mem += n.RealMemory
		}
		state, def := "DOWN", "NO"
		if p.Up {
			state = "UP"
		}
		if p.Default {
			def = "YES"
		}
		cpus := partitionCPUs(c, p)
		lines := []string{
			"PartitionName=" + p.Name,
			"AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL",
			"AllocNodes=ALL Default=" + def + " QoS=N/A",
			"DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO",
			"MaxNodes=UNLIMITED MaxTime=UNLIMITED MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED",
			"Nodes=" + strings.Join(names, ","),
			"PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO",
			"OverTimeLimit=NONE PreemptMode=OFF",
			fmt.Sprintf("State=%s TotalCPUs=%d TotalNodes=%d SelectTypeParameters=NONE", state, cpus, len(names)),
			"JobDefaults=(null)",
			"DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED",
			fmt.Sprintf("TRES=cpu=%d,mem=%s,node=%d,billing=%d", cpus, formatMiB(mem), len(names), cpus),
		}
		if oneLiner {
			b.WriteString(strings.Join(lines, " ") + "\n")
		} else {
			b.WriteString(strings.Join(lines, "\n   ") + "\n\n")
		}
	}
	if !found {
		fmt.Fprintf(stderr, "Partition %s not found\n", name)
		return "", 1
	}
	return b.String(), 0
}
