package sim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Job states, as Slurm names them.
const (
	StatePending   = "PENDING"
	StateRunning   = "RUNNING"
	StateCompleted = "COMPLETED"
	StateCancelled = "CANCELLED"
	StateFailed    = "FAILED"
	StateTimeout   = "TIMEOUT"
	StateNodeFail  = "NODE_FAIL"
)

// Hold kinds.
const (
	HoldNone  = 0
	HoldUser  = 1 // sbatch --hold: reason JobHeldUser
	HoldAdmin = 2 // scontrol hold as root: reason JobHeldAdmin
)

// Job is one job record as slurmctld keeps it.
type Job struct {
	ID    int
	Name  string
	UID   int
	User  string
	GID   int
	Group string
	// ReqPartitions is the partition list as requested ("a,b"); Partition is what squeue
	// shows: the list while pending, the partition the job runs in once started.
	ReqPartitions string
	Partition     string
	Nice          int
	Hold          int
	CPUsPerTask   int
	NTasks        int
	// Mem is MiB per node, or per CPU when MemPerCPU is set.
	Mem       int64
	MemPerCPU bool
	Tmp       int64
	GPUs      int
	Features  string
	Account   string
	Comment   string
	// TimeLimit is in minutes; 0 means UNLIMITED.
	TimeLimit int
	Requeue   bool
	WorkDir   string
	StdOut    string
	StdErr    string
	StdIn     string
	// Times are Unix seconds; 0 means Unknown.
	Submit, Eligible, Start, End, LastSchedEval int64
	State                                       string
	// Completing is set while a finished job's processes are still being killed.
	Completing bool
	Reason     string
	ExitStatus int
	ExitSignal int
	NodeList   string
	RunnerPID  int
	ScriptPID  int
	// PendingSignal is a signal for the batch script asked for before the script started.
	PendingSignal int
	// CancelSignal is what a cancel asked the runner to do: 15 (TERM, then KILL after
	// KillWait) or 9 (KILL at once); 0 when no cancel was asked.
	CancelSignal int
	Scheduler    string
	AllocSid     int
	Command      string
}

// NumCPUs is the number of CPUs the job asks for on its node.
func (j *Job) NumCPUs() int {
	n := j.CPUsPerTask * j.NTasks
	if n < 1 {
		return 1
	}
	return n
}

// MemMiB is the job's memory on its node in MiB.
func (j *Job) MemMiB() int64 {
	if j.MemPerCPU {
		return j.Mem * int64(j.NumCPUs())
	}
	return j.Mem
}

// Finished reports whether the job reached a final state.
func (j *Job) Finished() bool {
	switch j.State {
	case StatePending, StateRunning:
		return false
	}
	return true
}

// Active reports whether the job is shown by squeue without -t: not finished, or still
// completing.
func (j *Job) Active() bool { return !j.Finished() || j.Completing }

// HoldsResources reports whether the job occupies its node's resources.
func (j *Job) HoldsResources() bool {
	return j.NodeList != "" && (j.State == StateRunning || j.Completing)
}

// ShownState is the state squeue and scontrol print: COMPLETING while completing.
func (j *Job) ShownState() string {
	if j.Completing {
		return "COMPLETING"
	}
	return j.State
}

// Priority is the job's priority: 0 when held, otherwise base − nice, at least 1.
func (j *Job) Priority(base int64) int64 {
	if j.Hold != HoldNone {
		return 0
	}
	p := base - int64(j.Nice)
	if p < 1 {
		return 1
	}
	if p > 0xFFFFFFFE {
		return 0xFFFFFFFE
	}
	return p
}

// CompactState is squeue's %t.
func CompactState(state string) string {
	switch state {
	case StatePending:
		return "PD"
	case StateRunning:
		return "R"
	case StateCompleted:
		return "CD"
	case StateCancelled:
		return "CA"
	case StateFailed:
		return "F"
	case StateTimeout:
		return "TO"
	case StateNodeFail:
		return "NF"
	case "COMPLETING":
		return "CG"
	case "SUSPENDED":
		return "S"
	case "OUT_OF_MEMORY":
		return "OOM"
	case "PREEMPTED":
		return "PR"
	case "BOOT_FAIL":
		return "BF"
	case "DEADLINE":
		return "DL"
	}
	return state
}

const recordVersion = "J1"

// encode appends the job as one journal line (without the newline).
func (j *Job) encode(b []byte) []byte {
	b = append(b, recordVersion...)
	num := func(v int64) { b = append(b, '\t'); b = strconv.AppendInt(b, v, 10) }
	str := func(s string) { b = append(b, '\t'); b = appendEscaped(b, s) }
	flag := func(v bool) {
		if v {
			num(1)
		} else {
			num(0)
		}
	}
	num(int64(j.ID))
	str(j.Name)
	num(int64(j.UID))
	str(j.User)
	num(int64(j.GID))
	str(j.Group)
	str(j.ReqPartitions)
	str(j.Partition)
	num(int64(j.Nice))
	num(int64(j.Hold))
	num(int64(j.CPUsPerTask))
	num(int64(j.NTasks))
	num(j.Mem)
	flag(j.MemPerCPU)
	num(j.Tmp)
	num(int64(j.GPUs))
	str(j.Features)
	str(j.Account)
	str(j.Comment)
	num(int64(j.TimeLimit))
	flag(j.Requeue)
	str(j.WorkDir)
	str(j.StdOut)
	str(j.StdErr)
	str(j.StdIn)
	num(j.Submit)
	num(j.Eligible)
	num(j.Start)
	num(j.End)
	num(j.LastSchedEval)
	str(j.State)
	flag(j.Completing)
	str(j.Reason)
	num(int64(j.ExitStatus))
	num(int64(j.ExitSignal))
	str(j.NodeList)
	num(int64(j.RunnerPID))
	num(int64(j.ScriptPID))
	num(int64(j.PendingSignal))
	num(int64(j.CancelSignal))
	str(j.Scheduler)
	num(int64(j.AllocSid))
	str(j.Command)
	return b
}

const jobFields = 44

// fieldScanner walks the tab-separated fields of one journal line without copying.
type fieldScanner struct {
	fields [jobFields]string
	n      int
	esc    bool // the line has a backslash: strings need unescaping
	err    error
}

// split cuts the line into its fields in one pass.
func (f *fieldScanner) split(line string) bool {
	k, start := 0, 0
	for i := 0; i < len(line); i++ {
		if line[i] == '\\' {
			f.esc = true
		}
		if line[i] == '\t' {
			if k >= jobFields-1 {
				return false
			}
			f.fields[k] = line[start:i]
			k++
			start = i + 1
		}
	}
	f.fields[k] = line[start:]
	return k == jobFields-1
}

func (f *fieldScanner) next() string {
	v := f.fields[f.n]
	f.n++
	return v
}

func (f *fieldScanner) fail(msg string) {
	if f.err == nil {
		f.err = fmt.Errorf("job record field %d: %s", f.n, msg)
	}
}

func (f *fieldScanner) str() string {
	if !f.esc {
		return f.next()
	}
	return unescape(f.next())
}

func (f *fieldScanner) flag() bool { return f.num() == 1 }

// num parses a decimal integer (the journal only holds what encode wrote).
func (f *fieldScanner) num() int64 {
	v := f.next()
	neg := false
	if len(v) > 0 && v[0] == '-' {
		neg, v = true, v[1:]
	}
	if v == "" {
		f.fail("empty number")
		return 0
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			f.fail("bad number")
			return 0
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		return -n
	}
	return n
}

// decodeJob parses a line written by encode. Strings share the line's memory.
func decodeJob(line string) (*Job, error) {
	j := &Job{}
	if err := decodeJobInto(j, line); err != nil {
		return nil, err
	}
	return j, nil
}

func decodeJobInto(j *Job, line string) error {
	var f fieldScanner
	if !f.split(line) {
		return fmt.Errorf("job record: want %d fields", jobFields)
	}
	if f.next() != recordVersion {
		return errors.New("job record: unknown version")
	}
	j.ID = int(f.num())
	j.Name = f.str()
	j.UID = int(f.num())
	j.User = f.str()
	j.GID = int(f.num())
	j.Group = f.str()
	j.ReqPartitions = f.str()
	j.Partition = f.str()
	j.Nice = int(f.num())
	j.Hold = int(f.num())
	j.CPUsPerTask = int(f.num())
	j.NTasks = int(f.num())
	j.Mem = f.num()
	j.MemPerCPU = f.flag()
	j.Tmp = f.num()
	j.GPUs = int(f.num())
	j.Features = f.str()
	j.Account = f.str()
	j.Comment = f.str()
	j.TimeLimit = int(f.num())
	j.Requeue = f.flag()
	j.WorkDir = f.str()
	j.StdOut = f.str()
	j.StdErr = f.str()
	j.StdIn = f.str()
	j.Submit = f.num()
	j.Eligible = f.num()
	j.Start = f.num()
	j.End = f.num()
	j.LastSchedEval = f.num()
	j.State = f.str()
	j.Completing = f.flag()
	j.Reason = f.str()
	j.ExitStatus = int(f.num())
	j.ExitSignal = int(f.num())
	j.NodeList = f.str()
	j.RunnerPID = int(f.num())
	j.ScriptPID = int(f.num())
	j.PendingSignal = int(f.num())
	j.CancelSignal = int(f.num())
	j.Scheduler = f.str()
	j.AllocSid = int(f.num())
	j.Command = f.str()
	return f.err
}

func appendEscaped(b []byte, s string) []byte {
	if !strings.ContainsAny(s, "\\\t\n") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return b
}

func unescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 't':
				c = '\t'
			case 'n':
				c = '\n'
			default:
				c = s[i]
			}
		}
		sb.WriteByte(c)
	}
	return sb.String()
}
