package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"
)

// EnvState names the environment variable that gives the state directory.
const EnvState = "FAKESLURM_STATE"

// RunnerName is the argv[0] under which the binary runs one job's batch script.
const RunnerName = "fakeslurm-jobrunner"

const callsFileName = "calls.log"

// Sim runs fake Slurm commands against one state directory.
type Sim struct {
	Dir            string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Environ is the caller's environment; sbatch passes it on to the job.
	Environ []string
	Cwd     string
	Now     func() time.Time
	Sleep   func(time.Duration)
	UID     int
	GID     int
	User    string
	Group   string
	// Exe is the fakeslurm binary, re-executed as RunnerName to run batch scripts.
	Exe string
	// Sid is the caller's session id (scontrol's AllocNode:Sid).
	Sid int

	cluster *Cluster
}

// Main runs the command named by argv[0]'s base name (sbatch, squeue, scancel, scontrol,
// fakeslurm or fakeslurm-jobrunner) with the process's stdio and environment.
func Main(argv []string) int {
	name := filepath.Base(argv[0])
	dir := os.Getenv(EnvState)
	if dir == "" {
		fmt.Fprintf(os.Stderr, "%s: fakeslurm: %s is not set: it must name the fake cluster's state directory\n", name, EnvState)
		return 1
	}
	if name != RunnerName {
		// A command lives milliseconds: collecting garbage only slows it down.
		debug.SetGCPercent(-1)
	}
	s, err := NewSim(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: fakeslurm: %v\n", name, err)
		return 1
	}
	return s.Run(name, argv[1:])
}

// NewSim returns a Sim with the process's stdio, environment, clock and identity.
func NewSim(dir string) (*Sim, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("working directory: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	sid, _, _ := syscall.RawSyscall(syscall.SYS_GETSID, 0, 0, 0)
	s := &Sim{
		Dir: abs, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Environ: os.Environ(), Cwd: cwd, Now: time.Now, Sleep: time.Sleep,
		UID: os.Getuid(), GID: os.Getgid(), Exe: exe, Sid: int(sid),
	}
	s.User, s.Group = userName(s.UID), groupName(s.GID)
	return s, nil
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

// Run runs one command and records the call in <state>/calls.log.
func (s *Sim) Run(name string, args []string) int {
	start := s.Now()
	var code int
	switch name {
	case "sbatch":
		code = s.sbatch(args)
	case "squeue":
		code = s.squeue(args)
	case "scancel":
		code = s.scancel(args)
	case "scontrol":
		code = s.scontrol(args)
	case RunnerName:
		return s.runner(args)
	case "fakeslurm":
		return s.admin(args)
	default:
		fmt.Fprintf(s.Stderr, "fakeslurm: unknown command %q (link the binary as sbatch, squeue, scancel or scontrol)\n", name)
		return 1
	}
	s.logCall(name, args, code, start)
	return code
}

// Call is one recorded command invocation.
type Call struct {
	Command string `json:"command"`
	// UID is the caller's (Admin.SubmitAs submits as another user).
	UID      int           `json:"uid"`
	Args     []string      `json:"args"`
	ExitCode int           `json:"exit_code"`
	Start    time.Time     `json:"start"`
	Took     time.Duration `json:"took"`
}

func (s *Sim) logCall(name string, args []string, code int, start time.Time) {
	b, err := json.Marshal(Call{Command: name, UID: s.UID, Args: args, ExitCode: code, Start: start, Took: s.Now().Sub(start)})
	if err != nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, callsFileName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	f.Write(append(b, '\n'))
	f.Close()
}

// Calls returns the commands run against a state directory, oldest first. Calls still
// running (or killed while hanging) are not there.
func Calls(dir string) ([]Call, error) {
	b, err := os.ReadFile(filepath.Join(dir, callsFileName))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read calls: %w", err)
	}
	var out []Call
	for _, line := range splitLines(string(b)) {
		var c Call
		if err := json.Unmarshal([]byte(line), &c); err == nil {
			out = append(out, c)
		}
	}
	return out, nil
}

func (s *Sim) loadCluster() (*Cluster, error) {
	if s.cluster != nil {
		return s.cluster, nil
	}
	c, err := LoadCluster(s.Dir)
	if err != nil {
		return nil, err
	}
	s.cluster = c
	return c, nil
}

// contact is a command reaching slurmctld: it consumes the faults that match the call and
// applies the ones that decide the outcome. It returns done with the exit code when a
// fault decided; otherwise the returned store is locked (not loaded), and the caller must
// Close it. down prints what the command prints when slurmctld is unreachable.
func (s *Sim) contact(cmd string, down func() int, skip ...FaultKind) (st *Store, a applied, code int, done bool) {
	if _, err := s.loadCluster(); err != nil {
		fmt.Fprintf(s.Stderr, "%s: fakeslurm: %v\n", cmd, err)
		return nil, a, 1, true
	}
	st, err := LockStore(s.Dir)
	if err != nil {
		fmt.Fprintf(s.Stderr, "%s: fakeslurm: %v\n", cmd, err)
		return nil, a, 1, true
	}
	a, err = takeFaults(s.Dir, cmd, skip...)
	if err != nil {
		st.Close()
		fmt.Fprintf(s.Stderr, "%s: fakeslurm: %v\n", cmd, err)
		return nil, a, 1, true
	}
	if a.delay > 0 || (a.mode != nil && a.mode.Kind != FaultGarbage) {
		st.Close()
		st = nil
		s.Sleep(a.delay)
	}
	if a.mode != nil {
		switch a.mode.Kind {
		case FaultFail:
			io.WriteString(s.Stderr, a.mode.Stderr)
			code = a.mode.ExitCode
			if code == 0 {
				code = 1
			}
			return nil, a, code, true
		case FaultEmpty:
			return nil, a, 0, true
		case FaultHang:
			hang()
		case FaultControllerDown:
			return nil, a, down(), true
		}
	}
	if st == nil {
		if st, err = LockStore(s.Dir); err != nil {
			fmt.Fprintf(s.Stderr, "%s: fakeslurm: %v\n", cmd, err)
			return nil, a, 1, true
		}
	}
	return st, a, 0, false
}

// contactLoaded is contact followed by loading the job table.
func (s *Sim) contactLoaded(cmd string, down func() int) (*Store, applied, int, bool) {
	st, a, code, done := s.contact(cmd, down)
	if done {
		return nil, a, code, true
	}
	if err := st.Load(s.cluster.FirstJobID); err != nil {
		st.Close()
		fmt.Fprintf(s.Stderr, "%s: fakeslurm: %v\n", cmd, err)
		return nil, a, 1, true
	}
	return st, a, 0, false
}

// hang blocks until the process is killed.
func hang() {
	for {
		time.Sleep(time.Hour)
	}
}

// finish commits the store and releases it; a failure to write the state is reported.
func (s *Sim) finish(cmd string, st *Store) bool {
	defer st.Close()
	if err := st.Commit(); err != nil {
		fmt.Fprintf(s.Stderr, "%s: fakeslurm: %v\n", cmd, err)
		return false
	}
	return true
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		if i > 0 {
			out = append(out, s[:i])
		}
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return out
}
