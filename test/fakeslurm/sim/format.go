package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// view is what squeue's fields need besides the job.
type view struct {
	c   *Cluster
	now time.Time
}

// field is one squeue column: its header and how to print a job's value.
type field struct {
	header string
	val    func(v *view, j *Job) string
}

func nullIf(s string) string {
	if s == "" {
		return "(null)"
	}
	return s
}

func fixed(s string) func(*view, *Job) string { return func(*view, *Job) string { return s } }

// fieldsByLetter are squeue's -o letters (22.05), as `squeue -o %all` prints them.
var fieldsByLetter = map[byte]field{
	'a': {"ACCOUNT", func(_ *view, j *Job) string { return nullIf(j.Account) }},
	'b': {"TRES_PER_NODE", tresPerNode},
	'c': {"MIN_CPUS", func(_ *view, j *Job) string { return strconv.Itoa(j.NumCPUs()) }},
	'd': {"MIN_TMP_DISK", func(_ *view, j *Job) string { return formatMiB(j.Tmp) }},
	'e': {"END_TIME", func(_ *view, j *Job) string { return formatTimeNA(j.End, j.State != StatePending) }},
	'f': {"FEATURES", func(_ *view, j *Job) string { return nullIf(j.Features) }},
	'g': {"GROUP", func(_ *view, j *Job) string { return j.Group }},
	'h': {"OVER_SUBSCRIBE", fixed("OK")},
	'i': {"JOBID", jobID},
	'j': {"NAME", func(_ *view, j *Job) string { return j.Name }},
	'k': {"COMMENT", func(_ *view, j *Job) string { return nullIf(j.Comment) }},
	'l': {"TIME_LIMIT", func(_ *view, j *Job) string { return squeueLimit(j.TimeLimit) }},
	'm': {"MIN_MEMORY", func(_ *view, j *Job) string { return formatMiB(j.Mem) }},
	'n': {"REQ_NODES", fixed("")},
	'o': {"COMMAND", func(_ *view, j *Job) string { return j.Command }},
	'p': {"PRIORITY", func(v *view, j *Job) string {
		return strconv.FormatFloat(float64(j.Priority(v.c.PriorityBase))/4294967295.0, 'f', 14, 64)
	}},
	'q': {"QOS", fixed("(null)")},
	'r': {"REASON", func(_ *view, j *Job) string { return j.Reason }},
	's': {"", fixed("")},
	't': {"ST", func(_ *view, j *Job) string { return CompactState(j.ShownState()) }},
	'u': {"USER", func(_ *view, j *Job) string { return j.User }},
	'v': {"RESERVATION", fixed("(null)")},
	'w': {"WCKEY", fixed("(null)")},
	'x': {"EXC_NODES", fixed("")},
	'y': {"NICE", func(_ *view, j *Job) string { return strconv.Itoa(j.Nice) }},
	'z': {"S:C:T", fixed("*:*:*")},
	'A': {"JOBID", jobID},
	'B': {"EXEC_HOST", func(_ *view, j *Job) string {
		if j.NodeList == "" {
			return "n/a"
		}
		return j.NodeList
	}},
	'C': {"CPUS", func(_ *view, j *Job) string { return strconv.Itoa(j.NumCPUs()) }},
	'D': {"NODES", fixed("1")},
	'E': {"DEPENDENCY", fixed("(null)")},
	'F': {"ARRAY_JOB_ID", jobID},
	'G': {"GROUP", func(_ *view, j *Job) string { return strconv.Itoa(j.GID) }},
	'H': {"SOCKETS_PER_NODE", fixed("*")},
	'I': {"CORES_PER_SOCKET", fixed("*")},
	'J': {"THREADS_PER_CORE", fixed("*")},
	'K': {"ARRAY_TASK_ID", fixed("N/A")},
	'L': {"TIME_LEFT", timeLeft},
	'M': {"TIME", func(v *view, j *Job) string { return squeueDuration(runSeconds(v, j)) }},
	'N': {"NODELIST", func(_ *view, j *Job) string { return j.NodeList }},
	'O': {"CONTIGUOUS", fixed("0")},
	'P': {"PARTITION", func(_ *view, j *Job) string { return j.Partition }},
	'Q': {"PRIORITY", func(v *view, j *Job) string { return strconv.FormatInt(j.Priority(v.c.PriorityBase), 10) }},
	'R': {"NODELIST(REASON)", reasonList},
	'S': {"START_TIME", func(_ *view, j *Job) string { return formatTimeNA(j.Start, true) }},
	'T': {"STATE", func(_ *view, j *Job) string { return j.ShownState() }},
	'U': {"UID", func(_ *view, j *Job) string { return strconv.Itoa(j.UID) }},
	'V': {"SUBMIT_TIME", func(_ *view, j *Job) string { return formatTimeNA(j.Submit, true) }},
	'W': {"LICENSES", fixed("(null)")},
	'X': {"CORE_SPEC", fixed("N/A")},
	'Y': {"SCHEDNODES", fixed("(null)")},
	'Z': {"WORK_DIR", func(_ *view, j *Job) string { return j.WorkDir }},
}

// fieldsByName are squeue's -O names (matched without regard to case).
var fieldsByName = map[string]field{
	"account": fieldsByLetter['a'], "tres-per-node": fieldsByLetter['b'],
	"mincpus": fieldsByLetter['c'], "mintmpdisk": fieldsByLetter['d'],
	"endtime": fieldsByLetter['e'], "feature": fieldsByLetter['f'],
	"groupname": fieldsByLetter['g'], "oversubscribe": fieldsByLetter['h'],
	"jobid": fieldsByLetter['i'], "name": fieldsByLetter['j'],
	"comment": fieldsByLetter['k'], "timelimit": fieldsByLetter['l'],
	"minmemory": fieldsByLetter['m'], "reqnodes": fieldsByLetter['n'],
	"command": fieldsByLetter['o'], "priority": fieldsByLetter['p'],
	"qos": fieldsByLetter['q'], "reason": fieldsByLetter['r'],
	"statecompact": fieldsByLetter['t'], "username": fieldsByLetter['u'],
	"reservation": fieldsByLetter['v'], "wckey": fieldsByLetter['w'],
	"excnodes": fieldsByLetter['x'], "nice": fieldsByLetter['y'],
	"jobarrayid": fieldsByLetter['A'], "batchhost": fieldsByLetter['B'],
	"numcpus": fieldsByLetter['C'], "numnodes": fieldsByLetter['D'],
	"dependency": fieldsByLetter['E'], "arrayjobid": fieldsByLetter['F'],
	"groupid": fieldsByLetter['G'], "arraytaskid": fieldsByLetter['K'],
	"timeleft": fieldsByLetter['L'], "timeused": fieldsByLetter['M'],
	"nodelist": fieldsByLetter['N'], "contiguous": fieldsByLetter['O'],
	"partition": fieldsByLetter['P'], "prioritylong": fieldsByLetter['Q'],
	"reasonlist": fieldsByLetter['R'], "starttime": fieldsByLetter['S'],
	"state": fieldsByLetter['T'], "userid": fieldsByLetter['U'],
	"submittime": fieldsByLetter['V'], "licenses": fieldsByLetter['W'],
	"corespec": fieldsByLetter['X'], "schednodes": fieldsByLetter['Y'],
	"workdir":   fieldsByLetter['Z'],
	"cluster":   {"CLUSTER", func(v *view, _ *Job) string { return v.c.Name }},
	"stdout":    {"STDOUT", func(_ *view, j *Job) string { return j.StdOut }},
	"stderr":    {"STDERR", func(_ *view, j *Job) string { return j.StdErr }},
	"stdin":     {"STDIN", func(_ *view, j *Job) string { return j.StdIn }},
	"exit_code": {"EXIT_CODE", func(_ *view, j *Job) string { return strconv.Itoa(j.ExitStatus) }},
	"cpus-per-task": {"CPUS_PER_TASK", func(_ *view, j *Job) string {
		return strconv.Itoa(j.CPUsPerTask)
	}},
	"tres-alloc":    {"TRES_ALLOC", func(v *view, j *Job) string { return tres(v.c, j) }},
	"tres":          {"TRES_ALLOC", func(v *view, j *Job) string { return tres(v.c, j) }},
	"requeue":       {"REQUEUE", func(_ *view, j *Job) string { return boolDigit(j.Requeue) }},
	"restartcnt":    {"RESTART_COUNT", fixed("0")},
	"reboot":        {"REBOOT", fixed("0")},
	"eligibletime":  {"ELIGIBLE_TIME", func(_ *view, j *Job) string { return formatTimeNA(j.Eligible, true) }},
	"accruetime":    {"ACCRUE_TIME", func(_ *view, j *Job) string { return formatTimeNA(accrue(j), true) }},
	"lastschedeval": {"LAST_SCHED_EVAL", func(_ *view, j *Job) string { return formatTimeNA(j.LastSchedEval, true) }},
}

func jobID(_ *view, j *Job) string { return strconv.Itoa(j.ID) }

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func tresPerNode(_ *view, j *Job) string {
	if j.GPUs > 0 {
		return "gres:gpu:" + strconv.Itoa(j.GPUs)
	}
	return "N/A"
}

// reasonList is %R: "(reason)" for jobs that are pending, failed or timed out, the node
// list otherwise.
func reasonList(_ *view, j *Job) string {
	if !j.Completing && (j.State == StatePending || j.State == StateTimeout || j.State == StateFailed) {
		return "(" + j.Reason + ")"
	}
	return j.NodeList
}

func runSeconds(v *view, j *Job) int64 {
	switch {
	case j.Start == 0 || j.State == StatePending:
		return 0
	case j.State == StateRunning:
		return v.now.Unix() - j.Start
	}
	if j.End < j.Start {
		return 0
	}
	return j.End - j.Start
}

func timeLeft(v *view, j *Job) string {
	if j.TimeLimit == 0 {
		return "UNLIMITED"
	}
	left := int64(j.TimeLimit)*60 - runSeconds(v, j)
	if left < 0 {
		left = 0
	}
	return squeueDuration(left)
}

// squeueLimit prints a limit in minutes as squeue does.
func squeueLimit(minutes int) string {
	if minutes == 0 {
		return "UNLIMITED"
	}
	return squeueDuration(int64(minutes) * 60)
}

// squeueDuration is Slurm's secs2time_str: M:SS, H:MM:SS or D-HH:MM:SS.
func squeueDuration(secs int64) string {
	d, h, m, s := secs/86400, secs%86400/3600, secs%3600/60, secs%60
	switch {
	case d > 0:
		return fmt.Sprintf("%d-%02d:%02d:%02d", d, h, m, s)
	case h > 0:
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// scontrolDuration is scontrol's form: HH:MM:SS or D-HH:MM:SS.
func scontrolDuration(secs int64) string {
	d, h, m, s := secs/86400, secs%86400/3600, secs%3600/60, secs%60
	if d > 0 {
		return fmt.Sprintf("%d-%02d:%02d:%02d", d, h, m, s)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
}

func formatTime(unix int64) string { return time.Unix(unix, 0).Format("2006-01-02T15:04:05") }

func formatTimeNA(unix int64, known bool) string {
	if unix == 0 || !known {
		return "N/A"
	}
	return formatTime(unix)
}

// formatMiB prints a size in MiB as Slurm's convert_num_unit does with
// CONVERT_NUM_UNIT_EXACT: up a unit while the value is at least 1024 and a multiple of
// 512 ("half values are still considered precise"), with two decimals when not whole:
// "0", "256M", "1G", "1.50G", "2000M".
func formatMiB(mib int64) string {
	if mib == 0 {
		return "0"
	}
	units := "MGTP"
	v, u := float64(mib), 0
	for v >= 1024 && int64(v)%512 == 0 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10) + string(units[u])
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + string(units[u])
}

func tres(c *Cluster, j *Job) string {
	s := fmt.Sprintf("cpu=%d,mem=%s,node=1,billing=%d", j.NumCPUs(), formatMiB(jobMem(c, j)), j.NumCPUs())
	if j.GPUs > 0 {
		s += fmt.Sprintf(",gres/gpu=%d", j.GPUs)
	}
	return s
}

// accrue is when the job started accruing age: Unknown for held and rejected jobs.
func accrue(j *Job) int64 {
	if j.Hold != HoldNone || (j.State == StateFailed && j.Reason == "BadConstraints" && j.NodeList == "") {
		return 0
	}
	return j.Eligible
}

// column is one parsed format element: the field (nil for an invalid one), its width
// (0: print whole), justification and the text that follows it.
type column struct {
	f      *field
	width  int
	right  bool
	suffix string
}

// parseFormat parses a -o format: a prefix, then %[.][width]letter elements, each
// followed by literal text. Invalid letters are reported and printed literally.
func parseFormat(format string, warn func(string)) []column {
	var cols []column
	prefix, rest, found := strings.Cut(format, "%")
	if prefix != "" {
		cols = append(cols, column{suffix: prefix})
	}
	if !found {
		return cols
	}
	for _, tok := range strings.Split(rest, "%") {
		if tok == "" {
			continue // strtok skips empty tokens: "%%" prints nothing
		}
		i, col := 0, column{}
		if tok[0] == '.' {
			col.right = true
			i++
		}
		for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
			col.width = col.width*10 + int(tok[i]-'0')
			i++
		}
		if i >= len(tok) {
			col.suffix = "%" + tok
			warn("squeue: error: Invalid job format specification: ")
			cols = append(cols, col)
			continue
		}
		letter := tok[i]
		if f, ok := fieldsByLetter[letter]; ok {
			f := f
			col.f, col.suffix = &f, tok[i+1:]
		} else {
			col.suffix = "%" + tok
			warn(fmt.Sprintf("squeue: error: Invalid job format specification: %c", letter))
		}
		cols = append(cols, col)
	}
	return cols
}

// parseLongFormat parses a -O format: comma-separated name[:[.][width][suffix]].
func parseLongFormat(format string, warn func(string)) []column {
	var cols []column
	for _, tok := range strings.Split(format, ",") {
		if tok == "" {
			continue
		}
		name, spec, hasSpec := strings.Cut(tok, ":")
		col := column{width: 20}
		if hasSpec {
			if strings.HasPrefix(spec, ".") {
				col.right, spec = true, spec[1:]
			}
			i := 0
			for i < len(spec) && spec[i] >= '0' && spec[i] <= '9' {
				i++
			}
			col.width, _ = strconv.Atoi(spec[:i])
			col.suffix = spec[i:]
		}
		if f, ok := fieldsByName[strings.ToLower(name)]; ok {
			f := f
			col.f = &f
		} else {
			warn("squeue: error: Invalid job format specification: " + name)
		}
		cols = append(cols, col)
	}
	return cols
}

// render prints one line: each column's value (or header) padded or cut to its width.
func render(b *strings.Builder, cols []column, val func(*field) string) {
	for _, col := range cols {
		if col.f != nil {
			s := val(col.f)
			if col.width == 0 {
				b.WriteString(s)
			} else {
				if len(s) > col.width {
					s = s[:col.width]
				}
				pad := col.width - len(s)
				if !col.right {
					b.WriteString(s)
				}
				for ; pad > 0; pad-- {
					b.WriteByte(' ')
				}
				if col.right {
					b.WriteString(s)
				}
			}
		}
		b.WriteString(col.suffix)
	}
	b.WriteByte('\n')
}
