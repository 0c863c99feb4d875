package sim

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

var scancelOpts = []optSpec{
	{"account", 'A', requiredArg, "account"},
	{"batch", 'b', noArg, "batch"},
	{"ctld", 0, noArg, "ctld"},
	{"full", 'f', noArg, "full"},
	{"help", 0, noArg, "help"},
	{"hurry", 'H', noArg, "hurry"},
	{"interactive", 'i', noArg, "interactive"},
	{"cluster", 'M', requiredArg, "clusters"},
	{"clusters", 0, requiredArg, "clusters"},
	{"jobname", 0, requiredArg, "name"},
	{"me", 0, noArg, "me"},
	{"name", 'n', requiredArg, "name"},
	{"nodelist", 'w', requiredArg, "nodelist"},
	{"partition", 'p', requiredArg, "partition"},
	{"qos", 'q', requiredArg, "qos"},
	{"quiet", 'Q', noArg, "quiet"},
	{"reservation", 'R', requiredArg, "reservation"},
	{"sibling", 0, requiredArg, "sibling"},
	{"signal", 's', requiredArg, "signal"},
	{"state", 't', requiredArg, "state"},
	{"usage", 0, noArg, "usage"},
	{"user", 'u', requiredArg, "user"},
	{"verbose", 'v', noArg, "verbose"},
	{"version", 'V', noArg, "version"},
	{"wckey", 0, requiredArg, "wckey"},
}

var signalNumbers = map[string]int{
	"HUP": 1, "INT": 2, "QUIT": 3, "ABRT": 6, "KILL": 9, "USR1": 10, "USR2": 12,
	"PIPE": 13, "ALRM": 14, "TERM": 15, "CONT": 18, "STOP": 19, "TSTP": 20,
	"TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27,
}

// cancelReq is a parsed scancel command line.
type cancelReq struct {
	ids         []int
	batch       bool
	signal      int // 0: a plain cancel
	verbose     bool
	name, part  string
	account     string
	state       string
	uid         int
	userSet     bool
	hasFilters  bool
	explicitSig bool
	full        bool
}

// scancel: see scancelOne for what happens to each job. Observed on 22.05.8: a plain
// scancel of unknown or finished ids is silent and exits 0; with --signal (other than
// KILL) those ids are errors (exit 1), and a pending job is retried for 95 s and then
// fails with "Job can not be altered now, try again later" (exit 228).
func (s *Sim) scancel(args []string) int {
	r, code, done := s.parseScancel(args)
	if done {
		return code
	}
	down := func() int {
		if r.hasFilters || len(r.ids) == 0 {
			fmt.Fprintln(s.Stderr, "slurm_load_jobs error: Unable to contact slurm controller (connect failure)")
			return 1
		}
		for _, id := range r.ids {
			fmt.Fprintf(s.Stderr, "scancel: error: Kill job error on job id %d: Unable to contact slurm controller (connect failure)\n", id)
		}
		return 1
	}
	st, a, code, done := s.contactLoaded("scancel", down)
	if done {
		return code
	}
	c, _ := s.loadCluster()
	s.tick(c, st)
	targets, rc := s.cancelTargets(st, r)
	var retry []int
	for _, id := range targets {
		if res := s.scancelOne(c, st, r, id); res == cancelRetry {
			retry = append(retry, id)
		} else if res > rc {
			rc = res
		}
	}
	s.tick(c, st)
	if !s.finish("scancel", st) {
		return 1
	}
	if len(retry) > 0 {
		// slurmctld refuses to signal a pending job; scancel retries 10 times, sleeping
		// 5, 6, … 14 s, then reports it.
		s.Sleep(c.SignalRetry.D())
		for _, id := range retry {
			fmt.Fprintf(s.Stderr, "scancel: error: Kill job error on job id %d: Job can not be altered now, try again later\n", id)
		}
		rc = 228
	}
	if a.mode != nil && a.mode.Kind == FaultGarbage {
		io.WriteString(s.Stdout, garbage(a.mode))
	}
	return rc
}

func (s *Sim) parseScancel(args []string) (*cancelReq, int, bool) {
	opts, rest, err := getopt("scancel", args, scancelOpts, false)
	if err != nil {
		fmt.Fprintf(s.Stderr, "%s\nTry \"scancel --help\" for more information\n", err)
		return nil, 1, true
	}
	r := &cancelReq{}
	for _, o := range opts {
		switch o.id {
		case "help", "usage":
			fmt.Fprintln(s.Stdout, "Usage: scancel [OPTIONS] [job_id[_array_id][.step_id]]")
			return nil, 0, true
		case "version":
			fmt.Fprintln(s.Stdout, "slurm 22.05.8")
			return nil, 0, true
		case "batch":
			r.batch = true
		case "full":
			r.full = true
		case "verbose":
			r.verbose = true
		case "signal":
			sig, ok := parseSignal(o.val)
			if !ok {
				fmt.Fprintf(s.Stderr, "Unknown job signal: %s\n", o.val)
				return nil, 1, true
			}
			r.signal, r.explicitSig = sig, true
		case "name":
			r.name, r.hasFilters = o.val, true
		case "partition":
			r.part, r.hasFilters = o.val, true
		case "account":
			r.account, r.hasFilters = o.val, true
		case "state":
			switch strings.ToUpper(o.val) {
			case "PENDING", "PD":
				r.state = StatePending
			case "RUNNING", "R":
				r.state = StateRunning
			case "SUSPENDED", "S":
				r.state = "SUSPENDED"
			default:
				fmt.Fprintf(s.Stderr, "Invalid job state specified: %s\nValid job states are PENDING, RUNNING, and SUSPENDED\n", o.val)
				return nil, 1, true
			}
			r.hasFilters = true
		case "me":
			r.uid, r.userSet, r.hasFilters = s.UID, true, true
		case "user":
			uids := s.resolveUsers(o.val)
			r.uid, r.userSet, r.hasFilters = -1, true, true
			if len(uids) > 0 {
				r.uid = uids[0]
			}
		case "qos", "reservation", "wckey", "nodelist":
			r.hasFilters = true
		}
	}
	for _, x := range rest {
		base, _, _ := strings.Cut(x, ".")
		base, _, _ = strings.Cut(base, "_")
		n, err := strconv.Atoi(base)
		if err != nil || n <= 0 {
			fmt.Fprintf(s.Stderr, "scancel: error: Invalid job id %s\n", x)
			return nil, 1, true
		}
		if strings.Contains(x, ".") {
			fmt.Fprintf(s.Stderr, "scancel: error: Kill job error on job step id %s: Invalid job id specified\n", x)
			return nil, 1, true
		}
		r.ids = append(r.ids, n)
	}
	if len(r.ids) == 0 && !r.hasFilters {
		fmt.Fprintln(s.Stderr, "scancel: error: No job identification provided")
		return nil, 1, true
	}
	return r, 0, false
}

func parseSignal(v string) (int, bool) {
	if n, err := strconv.Atoi(v); err == nil && n > 0 && n < 65 {
		return n, true
	}
	name := strings.TrimPrefix(strings.ToUpper(v), "SIG")
	n, ok := signalNumbers[name]
	return n, ok
}

// cancelTargets picks the jobs to act on. Without filters, ids that are unknown or
// finished are silent (reported with -v, or as errors when a signal was given). With
// filters (--name, --state, --me, …) every given id that is unknown or finished is an
// error ("Invalid job id specified", exit 1), and live ones that do not match are skipped.
func (s *Sim) cancelTargets(st *Store, r *cancelReq) ([]int, int) {
	rc := 0
	var live []int
	if r.verbose && r.hasFilters {
		// What 22.05 prints at -v as it loads its plugins (select/cons_tres configured).
		io.WriteString(s.Stderr, "scancel: select/cons_tres: common_init: select/cons_tres loaded\n"+
			"scancel: select/cray_aries: init: Cray/Aries node selection plugin loaded\n"+
			"scancel: select/linear: init: Linear node selection plugin loaded with argument 20\n"+
			"scancel: select/cons_res: common_init: select/cons_res loaded\n")
	}
	for _, id := range r.ids {
		if r.verbose && !r.hasFilters {
			if r.explicitSig {
				fmt.Fprintf(s.Stderr, "scancel: Signal %d to job %d\n", r.signal, id)
			} else {
				fmt.Fprintf(s.Stderr, "scancel: Terminating job %d\n", id)
			}
		}
		j := st.Jobs[id]
		if j != nil && !j.Finished() {
			live = append(live, id)
			continue
		}
		signalled := r.explicitSig && r.signal != int(syscall.SIGKILL)
		switch {
		case r.hasFilters || signalled:
			fmt.Fprintf(s.Stderr, "scancel: error: Kill job error on job id %d: Invalid job id specified\n", id)
			rc = 1
		case r.verbose:
			msg := "Invalid job id specified"
			if j != nil {
				msg = "Job/step already completing or completed"
			}
			fmt.Fprintf(s.Stderr, "scancel: error: Kill job error on job id %d: %s\n", id, msg)
		}
	}
	if !r.hasFilters {
		return live, rc
	}
	var out []int
	for _, j := range st.Sorted() {
		if j.Finished() {
			continue
		}
		if (r.name != "" && !containsStr(splitList(r.name), j.Name)) ||
			(r.part != "" && j.Partition != r.part) ||
			(r.account != "" && j.Account != r.account) ||
			(r.userSet && j.UID != r.uid) ||
			(r.state != "" && j.State != r.state) ||
			(len(r.ids) > 0 && !containsInt(live, j.ID)) {
			continue
		}
		out = append(out, j.ID)
	}
	if len(out) == 0 && r.verbose {
		var filters []string
		if r.name != "" {
			filters = append(filters, "job_name="+r.name)
		}
		if r.state != "" {
			filters = append(filters, "state="+r.state)
		}
		fmt.Fprintf(s.Stderr, "scancel: error: No active jobs match ALL job filters, including: %s \n", strings.Join(filters, " "))
		if len(r.ids) > 0 {
			rc = 1
		}
	}
	// scancel handles pending jobs first.
	sort.SliceStable(out, func(a, b int) bool {
		return st.Jobs[out[a]].State == StatePending && st.Jobs[out[b]].State != StatePending
	})
	return out, rc
}

const cancelRetry = -1

// scancelOne acts on one live job and returns its exit code contribution, or
// cancelRetry when slurmctld refuses to signal it because it is pending.
func (s *Sim) scancelOne(c *Cluster, st *Store, r *cancelReq, id int) int {
	j := st.Jobs[id]
	now := s.Now().Unix()
	kill := !r.explicitSig || r.signal == int(syscall.SIGKILL)
	if r.batch {
		sig := r.signal
		if !r.explicitSig {
			sig = int(syscall.SIGKILL)
		}
		return s.signalBatch(st, j, sig)
	}
	if !kill {
		if j.State == StatePending {
			return cancelRetry
		}
		if j.Completing || !r.full {
			// Without --full a signal other than KILL goes to the job's steps, not its
			// batch script: a batch-only job does not see it (observed on 22.05.8).
			return 0
		}
		if j.ScriptPID > 0 {
			syscall.Kill(-j.ScriptPID, syscall.Signal(r.signal))
		} else {
			j.PendingSignal = r.signal
			st.Put(j)
		}
		return 0
	}
	switch {
	case j.Completing:
		return 0
	case j.State == StatePending:
		j.State, j.Start, j.End = StateCancelled, now, now
		st.Put(j)
	case j.State == StateRunning:
		sig := 15
		if r.explicitSig {
			sig = int(syscall.SIGKILL)
		}
		j.State, j.Reason, j.Completing, j.End, j.CancelSignal = StateCancelled, "None", true, now, sig
		st.Put(j)
		if j.RunnerPID > 0 {
			runnerSig := syscall.SIGTERM
			if sig == int(syscall.SIGKILL) {
				runnerSig = syscall.SIGUSR2
			}
			syscall.Kill(j.RunnerPID, runnerSig)
		}
	}
	return 0
}

// signalBatch sends a signal to the batch script only (scancel --batch).
func (s *Sim) signalBatch(st *Store, j *Job, sig int) int {
	switch {
	case j.State == StatePending:
		if sig == int(syscall.SIGKILL) {
			now := s.Now().Unix()
			j.State, j.Start, j.End = StateCancelled, now, now
			st.Put(j)
			return 0
		}
		return cancelRetry
	case j.Completing:
		return 0
	case j.ScriptPID > 0:
		syscall.Kill(j.ScriptPID, syscall.Signal(sig))
	default:
		j.PendingSignal = sig
		st.Put(j)
	}
	return 0
}
