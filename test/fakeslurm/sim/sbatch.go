package sim

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sbatchOpts is sbatch 22.05's option table (getopt_long with "+": options end at the
// script). Options the fake does not model are accepted and ignored.
var sbatchOpts = []optSpec{
	{"array", 'a', requiredArg, "array"},
	{"account", 'A', requiredArg, "account"},
	{"bb", 0, requiredArg, "bb"},
	{"bbf", 0, requiredArg, "bbf"},
	{"begin", 'b', requiredArg, "begin"},
	{"comment", 0, requiredArg, "comment"},
	{"cpu-freq", 0, requiredArg, "cpu-freq"},
	{"cpus-per-task", 'c', requiredArg, "cpus-per-task"},
	{"dependency", 'd', requiredArg, "dependency"},
	{"deadline", 0, requiredArg, "deadline"},
	{"delay-boot", 0, requiredArg, "delay-boot"},
	{"chdir", 'D', requiredArg, "chdir"},
	{"error", 'e', requiredArg, "error"},
	{"export", 0, optionalArg, "export"},
	{"export-file", 0, requiredArg, "export-file"},
	{"get-user-env", 0, optionalArg, "get-user-env"},
	{"gid", 0, requiredArg, "gid"},
	{"gres", 0, requiredArg, "gres"},
	{"gres-flags", 0, requiredArg, "gres-flags"},
	{"hold", 'H', noArg, "hold"},
	{"ignore-pbs", 0, noArg, "ignore-pbs"},
	{"input", 'i', requiredArg, "input"},
	{"job-name", 'J', requiredArg, "job-name"},
	{"no-kill", 'k', optionalArg, "no-kill"},
	{"no-requeue", 0, noArg, "no-requeue"},
	{"nodefile", 'F', requiredArg, "nodefile"},
	{"nodelist", 'w', requiredArg, "nodelist"},
	{"nodes", 'N', requiredArg, "nodes"},
	{"licenses", 'L', requiredArg, "licenses"},
	{"clusters", 'M', requiredArg, "clusters"},
	{"cluster", 0, requiredArg, "clusters"},
	{"container", 0, requiredArg, "container"},
	{"distribution", 'm', requiredArg, "distribution"},
	{"mail-type", 0, requiredArg, "mail-type"},
	{"mail-user", 0, requiredArg, "mail-user"},
	{"mcs-label", 0, requiredArg, "mcs-label"},
	{"ntasks", 'n', requiredArg, "ntasks"},
	{"nice", 0, optionalArg, "nice"},
	{"ntasks-per-node", 0, requiredArg, "ntasks-per-node"},
	{"output", 'o', requiredArg, "output"},
	{"overcommit", 'O', noArg, "overcommit"},
	{"partition", 'p', requiredArg, "partition"},
	{"parsable", 0, noArg, "parsable"},
	{"power", 0, requiredArg, "power"},
	{"priority", 0, requiredArg, "priority"},
	{"profile", 0, requiredArg, "profile"},
	{"propagate", 0, optionalArg, "propagate"},
	{"qos", 'q', requiredArg, "qos"},
	{"quiet", 'Q', noArg, "quiet"},
	{"reboot", 0, noArg, "reboot"},
	{"requeue", 0, noArg, "requeue"},
	{"oversubscribe", 's', noArg, "oversubscribe"},
	{"core-spec", 'S', requiredArg, "core-spec"},
	{"signal", 0, requiredArg, "signal"},
	{"spread-job", 0, noArg, "spread-job"},
	{"switches", 0, requiredArg, "switches"},
	{"thread-spec", 0, requiredArg, "thread-spec"},
	{"time", 't', requiredArg, "time"},
	{"time-min", 0, requiredArg, "time-min"},
	{"uid", 0, requiredArg, "uid"},
	{"use-min-nodes", 0, noArg, "use-min-nodes"},
	{"verbose", 'v', noArg, "verbose"},
	{"wait", 'W', noArg, "wait"},
	{"wckey", 0, requiredArg, "wckey"},
	{"wrap", 0, requiredArg, "wrap"},
	{"cluster-constraint", 0, requiredArg, "cluster-constraint"},
	{"contiguous", 0, noArg, "contiguous"},
	{"constraint", 'C', requiredArg, "constraint"},
	{"mem", 0, requiredArg, "mem"},
	{"mincpus", 0, requiredArg, "mincpus"},
	{"reservation", 0, requiredArg, "reservation"},
	{"tmp", 0, requiredArg, "tmp"},
	{"exclude", 'x', requiredArg, "exclude"},
	{"exclusive", 0, optionalArg, "exclusive"},
	{"mem-per-cpu", 0, requiredArg, "mem-per-cpu"},
	{"sockets-per-node", 0, requiredArg, "sockets-per-node"},
	{"cores-per-socket", 0, requiredArg, "cores-per-socket"},
	{"threads-per-core", 0, requiredArg, "threads-per-core"},
	{"extra-node-info", 'B', requiredArg, "extra-node-info"},
	{"ntasks-per-core", 0, requiredArg, "ntasks-per-core"},
	{"ntasks-per-socket", 0, requiredArg, "ntasks-per-socket"},
	{"cpus-per-gpu", 0, requiredArg, "cpus-per-gpu"},
	{"gpus", 'G', requiredArg, "gpus"},
	{"gpu-bind", 0, requiredArg, "gpu-bind"},
	{"gpu-freq", 0, requiredArg, "gpu-freq"},
	{"gpus-per-node", 0, requiredArg, "gpus-per-node"},
	{"gpus-per-socket", 0, requiredArg, "gpus-per-socket"},
	{"gpus-per-task", 0, requiredArg, "gpus-per-task"},
	{"mem-per-gpu", 0, requiredArg, "mem-per-gpu"},
	{"acctg-freq", 0, requiredArg, "acctg-freq"},
	{"hint", 0, requiredArg, "hint"},
	{"kill-on-invalid-dep", 0, requiredArg, "kill-on-invalid-dep"},
	{"mem-bind", 0, requiredArg, "mem-bind"},
	{"network", 0, requiredArg, "network"},
	{"ntasks-per-gpu", 0, requiredArg, "ntasks-per-gpu"},
	{"open-mode", 0, requiredArg, "open-mode"},
	{"test-only", 0, noArg, "test-only"},
	{"tres-per-task", 0, requiredArg, "tres-per-task"},
	{"wait-all-nodes", 0, requiredArg, "wait-all-nodes"},
	{"help", 'h', noArg, "help"},
	{"usage", 0, noArg, "usage"},
	{"version", 'V', noArg, "version"},
}

// sbatchReq is a parsed submission.
type sbatchReq struct {
	name, partitions, account, comment, constraint string
	output, errPath, input, chdir, export          string
	nice, cpusPerTask, ntasks, gpus, timeLimit     int
	mem, tmp                                       int64
	memSet, memPerCPU, hold, parsable, quiet       bool
	requeue                                        bool
	wrap                                           string
	wrapSet                                        bool
	scriptPath                                     string
}

// sbatchUsageError is a client-side mistake: the message and sbatch's exit code.
type sbatchUsageError struct {
	msg  string
	code int
}

func (s *Sim) sbatch(args []string) int {
	opts, rest, err := getopt("sbatch", args, sbatchOpts, true)
	if err != nil {
		fmt.Fprintf(s.Stderr, "%s\nTry \"sbatch --help\" for more information\n", err)
		return 255
	}
	for _, o := range opts {
		switch o.id {
		case "help", "usage":
			fmt.Fprintln(s.Stdout, "Usage: sbatch [OPTIONS(0)...] [ : [OPTIONS(N)...]] script(0) [args(0)...]")
			return 0
		case "version":
			fmt.Fprintln(s.Stdout, "slurm 22.05.8")
			return 0
		}
	}
	r := &sbatchReq{requeue: true, cpusPerTask: 1, ntasks: 1}
	for _, o := range opts {
		if o.id == "wrap" {
			r.wrap, r.wrapSet = o.val, true
		}
	}
	script, ue := s.readScript(r, rest)
	if ue == nil {
		// #SBATCH lines first: the command line overrides them.
		all := append(scriptDirectives(script), opts...)
		ue = r.apply(all)
	}
	if ue != nil {
		io.WriteString(s.Stderr, ue.msg)
		return ue.code
	}
	return s.submit(r, script)
}

func (s *Sim) readScript(r *sbatchReq, rest []string) ([]byte, *sbatchUsageError) {
	var script []byte
	switch {
	case r.wrapSet:
		script = []byte("#!/bin/sh\n# This script was created by sbatch --wrap.\n\n" + r.wrap + "\n")
	case len(rest) > 0:
		path := rest[0]
		if !filepath.IsAbs(path) {
			path = filepath.Join(s.Cwd, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, &sbatchUsageError{fmt.Sprintf("sbatch: error: Unable to open file %s\n", rest[0]), 1}
		}
		script, r.scriptPath = b, path
	default:
		b, err := io.ReadAll(s.Stdin)
		if err != nil {
			return nil, &sbatchUsageError{"sbatch: error: Batch script is empty!\n", 1}
		}
		script = b
	}
	switch {
	case len(script) == 0:
		return nil, &sbatchUsageError{"sbatch: error: Batch script is empty!\n", 1}
	case !bytes.HasPrefix(script, []byte("#!")):
		return nil, &sbatchUsageError{"sbatch: error: This does not look like a batch script.  The first\n" +
			"sbatch: error: line must start with #! followed by the path to an interpreter.\n" +
			"sbatch: error: For instance: #!/bin/sh\n", 1}
	case bytes.Contains(script, []byte("\r\n")):
		return nil, &sbatchUsageError{"sbatch: error: Batch script contains DOS line breaks (\\r\\n)\n" +
			"sbatch: error: instead of expected UNIX line breaks (\\n).\n", 1}
	}
	return script, nil
}

// scriptDirectives returns the options of the script's leading #SBATCH lines.
func scriptDirectives(script []byte) []opt {
	var words []string
	lines := strings.Split(string(script), "\n")
	for _, line := range lines[1:] {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			break
		}
		if rest, ok := strings.CutPrefix(line, "#SBATCH"); ok {
			if i := strings.Index(rest, " #"); i >= 0 {
				rest = rest[:i]
			}
			words = append(words, strings.Fields(rest)...)
		}
	}
	opts, _, err := getopt("sbatch", words, sbatchOpts, false)
	if err != nil {
		return nil
	}
	return opts
}

func (r *sbatchReq) apply(opts []opt) *sbatchUsageError {
	for _, o := range opts {
		v := o.val
		switch o.id {
		case "job-name":
			r.name = v
		case "partition":
			r.partitions = v
		case "account":
			r.account = v
		case "comment":
			r.comment = v
		case "constraint":
			r.constraint = v
		case "output":
			r.output = v
		case "error":
			r.errPath = v
		case "input":
			r.input = v
		case "chdir":
			r.chdir = v
		case "export":
			r.export = v
		case "hold":
			r.hold = true
		case "parsable":
			r.parsable = true
		case "quiet":
			r.quiet = true
		case "no-requeue":
			r.requeue = false
		case "requeue":
			r.requeue = true
		case "nice":
			r.nice = 100
			if o.hasVal {
				n := atoiPrefix(v)
				if n > niceLimit || n < -niceLimit {
					return &sbatchUsageError{"sbatch: error: Invalid --nice value, out of range (+/- 2147483645)\n", 255}
				}
				r.nice = int(n)
			}
		case "cpus-per-task", "ntasks":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return &sbatchUsageError{fmt.Sprintf("sbatch: error: Invalid numeric value \"%s\" for --%s.\n", v, o.id), 1}
			}
			if o.id == "ntasks" {
				r.ntasks = n
			} else {
				r.cpusPerTask = n
			}
		case "mem", "mem-per-cpu":
			m, ok := parseMiB(v)
			if !ok {
				return &sbatchUsageError{fmt.Sprintf("sbatch: error: Invalid --%s specification\n", o.id), 255}
			}
			r.mem, r.memSet, r.memPerCPU = m, true, o.id == "mem-per-cpu"
		case "tmp":
			m, ok := parseMiB(v)
			if !ok {
				return &sbatchUsageError{"sbatch: error: Invalid --tmp specification\n", 255}
			}
			r.tmp = m
		case "gpus", "gres":
			n, ok := parseGPUs(o.id, v)
			if !ok {
				return &sbatchUsageError{"sbatch: error: Invalid generic resource (gres) specification\n", 1}
			}
			r.gpus = n
		case "time":
			m, ok := parseTimeLimit(v)
			if !ok {
				return &sbatchUsageError{"sbatch: error: Invalid --time specification\n", 255}
			}
			r.timeLimit = m
		}
	}
	return nil
}

// niceLimit is NICE_OFFSET − 3: the largest |nice| sbatch and scontrol accept.
const niceLimit = 2147483645

// atoiPrefix reads a leading integer the way strtol does ("abc" is 0, "12x" is 12).
func atoiPrefix(s string) int64 {
	s = strings.TrimLeft(s, " \t")
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(s[:end], 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			if strings.HasPrefix(s, "-") {
				return -1 << 62
			}
			return 1 << 62
		}
		return 0
	}
	return n
}

// parseMiB reads a size in MiB with an optional K, M, G or T suffix.
func parseMiB(v string) (int64, bool) {
	if v == "" {
		return 0, false
	}
	mult := float64(1)
	switch v[len(v)-1] {
	case 'K', 'k':
		mult, v = 1.0/1024, v[:len(v)-1]
	case 'M', 'm':
		v = v[:len(v)-1]
	case 'G', 'g':
		mult, v = 1024, v[:len(v)-1]
	case 'T', 't':
		mult, v = 1024*1024, v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	mib := float64(n) * mult
	if mult < 1 && mib > 0 && mib < 1 {
		mib = 1
	}
	return int64(mib), true
}

// parseGPUs reads --gpus=[type:]N or --gres=gpu[:type]:N.
func parseGPUs(id, v string) (int, bool) {
	parts := strings.Split(v, ":")
	if id == "gres" {
		if parts[0] != "gpu" {
			return 0, false
		}
		if len(parts) == 1 {
			return 1, true
		}
		parts = parts[1:]
	}
	n, err := strconv.Atoi(parts[len(parts)-1])
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// parseTimeLimit reads Slurm's time formats ("minutes", "minutes:seconds",
// "hours:minutes:seconds", "days-hours[:minutes[:seconds]]", "UNLIMITED") into minutes,
// rounding seconds up; 0 means no limit.
func parseTimeLimit(v string) (int, bool) {
	switch strings.ToUpper(v) {
	case "UNLIMITED", "INFINITE", "-1":
		return 0, true
	}
	days := 0
	if d, rest, ok := strings.Cut(v, "-"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || d == "" {
			return 0, false
		}
		days, v = n, rest
		parts := strings.Split(v, ":")
		nums, ok := atois(parts)
		if !ok || len(nums) > 3 {
			return 0, false
		}
		for len(nums) < 3 {
			nums = append(nums, 0)
		}
		return days*1440 + nums[0]*60 + nums[1] + ceilDiv(nums[2], 60), true
	}
	nums, ok := atois(strings.Split(v, ":"))
	if !ok {
		return 0, false
	}
	switch len(nums) {
	case 1:
		return nums[0], true
	case 2:
		return nums[0] + ceilDiv(nums[1], 60), true
	case 3:
		return nums[0]*60 + nums[1] + ceilDiv(nums[2], 60), true
	}
	return 0, false
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func atois(parts []string) ([]int, bool) {
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// submit sends the request to the fake slurmctld, retrying as sbatch does while it
// answers EAGAIN (MaxJobCount reached, or a FaultBusy).
func (s *Sim) submit(r *sbatchReq, script []byte) int {
	down := func() int {
		fmt.Fprintln(s.Stderr, "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)")
		return 1
	}
	st, a, code, done := s.contact("sbatch", down, FaultBusy)
	if done {
		return code
	}
	c := s.cluster
	for retries := 0; ; retries++ {
		if err := s.loadForSubmit(c, st, r); err != nil {
			st.Close()
			fmt.Fprintf(s.Stderr, "sbatch: fakeslurm: %v\n", err)
			return 1
		}
		busy, err := takeBusy(s.Dir)
		if err == nil && !busy && st.Count() >= c.MaxJobCount {
			// Full, going by the counters: purge what MinJobAge allows, then look again.
			if !st.Loaded() {
				if err = st.Load(c.FirstJobID); err == nil {
					s.tick(c, st)
				}
			}
			busy = st.Count() >= c.MaxJobCount
		}
		if err != nil || !busy {
			return s.submitLocked(c, st, r, script, a)
		}
		st.Close()
		if retries >= 15 {
			fmt.Fprintln(s.Stderr, "sbatch: error: Batch job submission failed: Resource temporarily unavailable")
			return 1
		}
		if retries == 0 {
			fmt.Fprintln(s.Stderr, "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying")
		}
		s.Sleep(time.Duration(retries+1) * c.SubmitRetryUnit.D())
		if st, err = LockStore(s.Dir); err != nil {
			fmt.Fprintf(s.Stderr, "sbatch: fakeslurm: %v\n", err)
			return 1
		}
	}
}

// loadForSubmit reads only the counters when the new job cannot start now (held, its
// partitions down or too small, the cluster not running jobs): then nothing else needs
// scheduling for it, and the table need not be read. Otherwise it loads the table so
// that the job can be started at once.
func (s *Sim) loadForSubmit(c *Cluster, st *Store, r *sbatchReq) error {
	if err := st.LoadMeta(c.FirstJobID); err != nil {
		return err
	}
	if st.Loaded() || (!st.needsCompaction() && !s.mightStart(c, r)) {
		return nil
	}
	return st.Load(c.FirstJobID)
}

// mightStart reports whether a job for r could start right after its submission.
func (s *Sim) mightStart(c *Cluster, r *sbatchReq) bool {
	if r.hold || c.NoRun {
		return false
	}
	var parts []string
	for _, p := range splitList(r.partitions) {
		if _, ok := c.Partition(p); !ok {
			return false // rejected
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		parts = []string{c.DefaultPartition().Name}
	}
	j := s.newJob(c, r, 0, parts, 0)
	reason, _, reject := admit(c, j, parts)
	return !reject && reason == "None"
}

func (s *Sim) submitLocked(c *Cluster, st *Store, r *sbatchReq, script []byte, a applied) int {
	id, msg := s.createJob(c, st, r, script)
	if st.Loaded() {
		s.tick(c, st)
	}
	if !s.finish("sbatch", st) {
		return 1
	}
	if msg != "" {
		io.WriteString(s.Stderr, msg)
		return 1
	}
	if a.mode != nil {
		switch a.mode.Kind {
		case FaultSubmitThenFail:
			m := a.mode.Stderr
			if m == "" {
				m = DefaultAmbiguousStderr
			}
			io.WriteString(s.Stderr, m)
			if a.mode.ExitCode != 0 {
				return a.mode.ExitCode
			}
			return 1
		case FaultSubmitThenHang:
			hang()
		}
	}
	if r.parsable {
		fmt.Fprintf(s.Stdout, "%d\n", id)
	} else if !r.quiet {
		fmt.Fprintf(s.Stdout, "Submitted batch job %d\n", id)
	}
	if a.mode != nil && a.mode.Kind == FaultGarbage {
		io.WriteString(s.Stdout, garbage(a.mode))
	}
	return 0
}

func garbage(f *Fault) string {
	if f.Stdout != "" {
		return f.Stdout
	}
	return DefaultGarbage
}
