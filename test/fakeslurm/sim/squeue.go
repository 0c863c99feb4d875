package sim

import (
	"fmt"
	"io"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

var squeueOpts = []optSpec{
	{"accounts", 'A', requiredArg, "accounts"},
	{"all", 'a', noArg, "all"},
	{"array", 'r', noArg, "array"},
	{"array-unique", 0, noArg, "array-unique"},
	{"Format", 'O', requiredArg, "Format"},
	{"format", 'o', requiredArg, "format"},
	{"federation", 0, noArg, "federation"},
	{"help", 0, noArg, "help"},
	{"hide", 0, noArg, "hide"},
	{"iterate", 'i', requiredArg, "iterate"},
	{"jobs", 'j', optionalArg, "jobs"},
	{"local", 0, noArg, "local"},
	{"long", 'l', noArg, "long"},
	{"licenses", 'L', requiredArg, "licenses"},
	{"cluster", 'M', requiredArg, "clusters"},
	{"clusters", 0, requiredArg, "clusters"},
	{"me", 0, noArg, "me"},
	{"name", 'n', requiredArg, "name"},
	{"noconvert", 0, noArg, "noconvert"},
	{"node", 'w', requiredArg, "nodelist"},
	{"nodes", 0, requiredArg, "nodelist"},
	{"nodelist", 0, requiredArg, "nodelist"},
	{"noheader", 'h', noArg, "noheader"},
	{"partitions", 'p', requiredArg, "partitions"},
	{"priority", 'P', noArg, "priority"},
	{"qos", 'q', requiredArg, "qos"},
	{"reservation", 'R', requiredArg, "reservation"},
	{"sib", 0, noArg, "sibling"},
	{"sibling", 0, noArg, "sibling"},
	{"sort", 'S', requiredArg, "sort"},
	{"start", 0, noArg, "start"},
	{"steps", 's', optionalArg, "steps"},
	{"states", 't', requiredArg, "states"},
	{"usage", 0, noArg, "usage"},
	{"user", 'u', requiredArg, "users"},
	{"users", 0, requiredArg, "users"},
	{"verbose", 'v', noArg, "verbose"},
	{"version", 'V', noArg, "version"},
	{"", 'U', requiredArg, "accounts"},
}

// jobStateNames are the names squeue -t accepts, with their compact forms, in the order
// of its "Valid job states include" message.
var jobStateNames = [][2]string{
	{"PENDING", "PD"}, {"RUNNING", "R"}, {"SUSPENDED", "S"}, {"COMPLETED", "CD"},
	{"CANCELLED", "CA"}, {"FAILED", "F"}, {"TIMEOUT", "TO"}, {"NODE_FAIL", "NF"},
	{"PREEMPTED", "PR"}, {"BOOT_FAIL", "BF"}, {"DEADLINE", "DL"}, {"OUT_OF_MEMORY", "OOM"},
	{"COMPLETING", "CG"}, {"CONFIGURING", "CF"}, {"RESIZING", "RS"}, {"RESV_DEL_HOLD", "RD"},
	{"REQUEUED", "RQ"}, {"REQUEUE_FED", "RF"}, {"REQUEUE_HOLD", "RH"}, {"REVOKED", "RV"},
	{"SIGNALING", "SI"}, {"SPECIAL_EXIT", "SE"}, {"STAGE_OUT", "SO"}, {"STOPPED", "ST"},
}

const squeueUsage = `Usage: squeue [-A account] [--clusters names] [-i seconds] [--job jobid]
              [-n name] [-o format] [-p partitions] [--qos qos]
              [--reservation reservation] [--sort fields] [--start]
              [--step step_id] [-t states] [-u user_name] [--usage]
              [-L licenses] [-w nodes] [--federation] [--local] [--sibling]
	      [-ahjlrsv]
`

// squeueQuery is a parsed squeue command line.
type squeueQuery struct {
	noHeader        bool
	format, long    string
	formatSet, lset bool
	sortKeys        string
	jobs            []int
	states          map[string]bool // nil: the default (active jobs)
	names, parts    []string
	accounts        []string
	uids            []int
	usersSet        bool
	longList        bool
}

func (s *Sim) squeue(args []string) int {
	q, code, done := s.parseSqueue(args)
	if done {
		return code
	}
	down := func() int {
		fmt.Fprintln(s.Stderr, "slurm_load_jobs error: Unable to contact slurm controller (connect failure)")
		return 1
	}
	st, a, code, done := s.contactLoaded("squeue", down)
	if done {
		return code
	}
	c, _ := s.loadCluster()
	s.tick(c, st)
	if !s.finish("squeue", st) {
		return 1
	}
	if len(q.jobs) == 1 && st.Jobs[q.jobs[0]] == nil {
		fmt.Fprintln(s.Stderr, "slurm_load_jobs error: Invalid job id specified")
		return 1
	}
	var jobs []*Job
	for _, j := range st.Jobs {
		if q.matches(j) {
			jobs = append(jobs, j)
		}
	}
	if err := sortJobs(jobs, q.sortKeys, c); err != "" {
		fmt.Fprintln(s.Stderr, err)
		return 1
	}
	var cols []column
	warn := func(m string) { fmt.Fprintln(s.Stderr, m) }
	if q.lset {
		cols = parseLongFormat(q.long, warn)
	} else {
		cols = parseFormat(q.format, warn)
	}
	v := &view{c: c, now: s.Now()}
	var b strings.Builder
	if q.longList {
		b.WriteString(v.now.Format("Mon Jan _2 15:04:05 2006") + "\n")
	}
	if !q.noHeader {
		render(&b, cols, func(f *field) string { return f.header })
	}
	for _, j := range jobs {
		render(&b, cols, func(f *field) string { return f.val(v, j) })
	}
	if a.mode != nil && a.mode.Kind == FaultGarbage {
		b.WriteString(garbage(a.mode))
	}
	io.WriteString(s.Stdout, b.String())
	return 0
}

func (s *Sim) parseSqueue(args []string) (*squeueQuery, int, bool) {
	opts, rest, err := getopt("squeue", args, squeueOpts, false)
	if err != nil {
		fmt.Fprintf(s.Stderr, "%s\nTry \"squeue --help\" for more information\n", err)
		return nil, 1, true
	}
	q := &squeueQuery{format: "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R"}
	env := envMap(s.Environ)
	if v, ok := env["SQUEUE_SORT"]; ok {
		q.sortKeys = v
	}
	jobFlag, long := false, false
	fail := func(msg string) (*squeueQuery, int, bool) {
		fmt.Fprintln(s.Stderr, msg)
		return nil, 1, true
	}
	for _, o := range opts {
		switch o.id {
		case "help", "usage":
			io.WriteString(s.Stdout, squeueUsage)
			return nil, 0, true
		case "version":
			fmt.Fprintln(s.Stdout, "slurm 22.05.8")
			return nil, 0, true
		case "noheader":
			q.noHeader = true
		case "format":
			if q.lset {
				return fail("squeue: error: -o (--format) is incompatible with -O (--Format)")
			}
			q.format, q.formatSet = o.val, true
		case "Format":
			if q.formatSet {
				return fail("squeue: error: -O (--Format) is incompatible with -o (--format)")
			}
			q.long, q.lset = o.val, true
		case "long":
			long, q.longList = true, true
		case "jobs":
			jobFlag = true
			if o.hasVal {
				ids, msg := parseJobList(o.val)
				if msg != "" {
					return fail(msg)
				}
				q.jobs = ids
			}
		case "name":
			q.names = splitList(o.val)
		case "partitions":
			q.parts = splitList(o.val)
		case "accounts":
			q.accounts = splitList(o.val)
		case "states":
			states, msg := parseStates(o.val)
			if msg != "" {
				return fail(msg)
			}
			q.states = states
		case "users":
			q.uids, q.usersSet = s.resolveUsers(o.val), true
		case "me":
			q.uids, q.usersSet = []int{s.UID}, true
		case "sort":
			q.sortKeys = o.val
		}
	}
	if jobFlag && len(rest) > 0 && q.jobs == nil {
		ids, msg := parseJobList(rest[0])
		if msg != "" {
			return fail(msg)
		}
		q.jobs, rest = ids, rest[1:]
	}
	if len(rest) > 0 {
		fmt.Fprintf(s.Stderr, "squeue: error: Unrecognized option: %s\n", rest[0])
		io.WriteString(s.Stdout, squeueUsage)
		return nil, 1, true
	}
	if !q.formatSet && !q.lset {
		switch {
		case long:
			q.format = "%.18i %.9P %.8j %.8u %.8T %.10M %.9l %.6D %R"
		case env["SQUEUE_FORMAT"] != "":
			q.format = env["SQUEUE_FORMAT"]
		case env["SQUEUE_FORMAT2"] != "":
			q.long, q.lset = env["SQUEUE_FORMAT2"], true
		}
	}
	if q.states == nil && env["SQUEUE_STATES"] != "" {
		states, msg := parseStates(env["SQUEUE_STATES"])
		if msg != "" {
			return fail(msg)
		}
		q.states = states
	}
	if q.names == nil && env["SQUEUE_NAMES"] != "" {
		q.names = splitList(env["SQUEUE_NAMES"])
	}
	if !q.usersSet && env["SQUEUE_USERS"] != "" {
		q.uids, q.usersSet = s.resolveUsers(env["SQUEUE_USERS"]), true
	}
	if q.parts == nil && env["SQUEUE_PARTITION"] != "" {
		q.parts = splitList(env["SQUEUE_PARTITION"])
	}
	return q, 0, false
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func splitList(v string) []string {
	var out []string
	for _, x := range strings.Split(v, ",") {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// parseJobList reads -j's comma-separated ids the way strtol does.
func parseJobList(v string) ([]int, string) {
	var ids []int
	for _, x := range splitList(v) {
		n := atoiPrefix(x)
		if n <= 0 || n > 1<<31 {
			return nil, "squeue: error: Invalid job id: " + x
		}
		ids = append(ids, int(n))
	}
	return ids, ""
}

func parseStates(v string) (map[string]bool, string) {
	states := map[string]bool{}
	if strings.EqualFold(v, "all") {
		for _, n := range jobStateNames {
			states[n[0]] = true
		}
		return states, ""
	}
	for _, x := range splitList(v) {
		found := false
		for _, n := range jobStateNames {
			if strings.EqualFold(x, n[0]) || strings.EqualFold(x, n[1]) {
				states[n[0]], found = true, true
			}
		}
		if !found {
			var names []string
			for _, n := range jobStateNames {
				names = append(names, n[0])
			}
			return nil, "squeue: error: Invalid job state specified: " + x +
				"\nsqueue: error: Valid job states include: " + strings.Join(names, ",") + "\n"
		}
	}
	return states, ""
}

// resolveUsers maps user names or uids to uids; unknown names are reported and dropped
// (squeue then lists nothing for them).
func (s *Sim) resolveUsers(v string) []int {
	uids := []int{}
	c, _ := s.loadCluster()
	for _, name := range splitList(v) {
		if n, err := strconv.Atoi(name); err == nil {
			uids = append(uids, n)
			continue
		}
		if c != nil {
			if uid, ok := c.Users[name]; ok {
				uids = append(uids, uid)
				continue
			}
		}
		if u, err := user.Lookup(name); err == nil {
			if n, err := strconv.Atoi(u.Uid); err == nil {
				uids = append(uids, n)
				continue
			}
		}
		fmt.Fprintf(s.Stderr, "squeue: error: Invalid user: %s\n\n", name)
	}
	return uids
}

func (q *squeueQuery) matches(j *Job) bool {
	if q.states == nil {
		if !j.Active() {
			return false
		}
	} else if !q.states[j.State] && !(j.Completing && q.states["COMPLETING"]) {
		return false
	}
	if q.jobs != nil && !containsInt(q.jobs, j.ID) {
		return false
	}
	if q.usersSet && !containsInt(q.uids, j.UID) {
		return false
	}
	if q.names != nil && !containsStr(q.names, j.Name) {
		return false
	}
	if q.accounts != nil && !containsStr(q.accounts, j.Account) {
		return false
	}
	if q.parts != nil {
		ok := false
		for _, p := range strings.Split(j.Partition, ",") {
			ok = ok || containsStr(q.parts, p)
		}
		if !ok {
			return false
		}
	}
	return true
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func containsStr(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// sortJobs orders jobs by squeue's sort keys (default "P,t,-p": partition, compact state,
// priority descending), ties by job id (real squeue leaves ties in slurmctld's list
// order). Each job's keys are computed once.
func sortJobs(jobs []*Job, keys string, c *Cluster) string {
	if keys == "" {
		keys = "P,t,-p"
	}
	type key struct {
		str  func(*Job) string
		num  func(*Job) int64
		desc bool
	}
	var ks []key
	for i := 0; i < len(keys); i++ {
		k := keys[i]
		if k == ',' || k == '+' || k == '-' {
			continue
		}
		kk := key{desc: i > 0 && keys[i-1] == '-'}
		switch k {
		case 'i':
			kk.num = func(j *Job) int64 { return int64(j.ID) }
		case 'j':
			kk.str = func(j *Job) string { return j.Name }
		case 'P':
			kk.str = func(j *Job) string { return j.Partition }
		case 'p', 'Q':
			kk.num = func(j *Job) int64 { return j.Priority(c.PriorityBase) }
		case 't':
			kk.str = func(j *Job) string { return CompactState(j.ShownState()) }
		case 'T':
			kk.str = func(j *Job) string { return j.ShownState() }
		case 'u':
			kk.str = func(j *Job) string { return j.User }
		case 'U':
			kk.num = func(j *Job) int64 { return int64(j.UID) }
		case 'V':
			kk.num = func(j *Job) int64 { return j.Submit }
		case 'S':
			kk.num = func(j *Job) int64 { return j.Start }
		case 'e':
			kk.num = func(j *Job) int64 { return j.End }
		case 'B', 'c', 'C', 'd', 'D', 'f', 'g', 'G', 'h', 'H', 'I', 'J', 'l', 'L', 'm', 'M', 'n', 'N', 'O', 'v', 'z', 'b':
			continue
		default:
			return fmt.Sprintf("squeue: error: Invalid sort specification: %c", k)
		}
		ks = append(ks, kk)
	}
	// One byte string per job orders it by all keys at once: strings end with 0,
	// numbers are big-endian with the sign bit flipped, descending keys are complemented.
	type item struct {
		key string
		j   *Job
	}
	items := make([]item, len(jobs))
	var buf []byte
	for n, j := range jobs {
		buf = buf[:0]
		for _, k := range ks {
			start := len(buf)
			if k.str != nil {
				buf = append(buf, k.str(j)...)
				buf = append(buf, 0)
			} else {
				u := uint64(k.num(j)) ^ (1 << 63)
				buf = append(buf, byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32),
					byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
			}
			if k.desc {
				for i := start; i < len(buf); i++ {
					buf[i] = ^buf[i]
				}
			}
		}
		u := uint64(j.ID)
		buf = append(buf, byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32),
			byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
		items[n] = item{key: string(buf), j: j}
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.key, b.key) })
	for n := range items {
		jobs[n] = items[n].j
	}
	return ""
}

func compare[T int | int64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
