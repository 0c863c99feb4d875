package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Admin changes a fake cluster from outside: what a test or a demo script does to the
// fake that no Slurm command does (faults, partitions, inspection, shutdown). Exe is the
// fakeslurm binary, needed to start jobs when a change lets pending jobs run.
type Admin struct {
	Dir string
	Exe string
	Now func() time.Time
}

func (a *Admin) sim() *Sim {
	now := a.Now
	if now == nil {
		now = time.Now
	}
	s := &Sim{Dir: a.Dir, Now: now, Sleep: time.Sleep, Exe: a.Exe, UID: os.Getuid(), GID: os.Getgid()}
	s.User, s.Group = userName(s.UID), groupName(s.GID)
	return s
}

// Init writes the cluster configuration (DefaultCluster when c is nil).
func (a *Admin) Init(c *Cluster) error {
	if c == nil {
		c = DefaultCluster()
	}
	if err := os.MkdirAll(a.Dir, 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	return c.Save(a.Dir)
}

// Cluster returns the current configuration.
func (a *Admin) Cluster() (*Cluster, error) { return LoadCluster(a.Dir) }

// UpdateCluster changes the configuration under the state lock, then schedules what the
// change allows (a partition brought up starts its pending jobs).
func (a *Admin) UpdateCluster(fn func(*Cluster)) error {
	s := a.sim()
	st, err := LockStore(a.Dir)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := LoadCluster(a.Dir)
	if err != nil {
		return err
	}
	fn(c)
	if err := c.Save(a.Dir); err != nil {
		return err
	}
	if err := st.Load(c.FirstJobID); err != nil {
		return err
	}
	s.cluster = c
	s.tick(c, st)
	return st.Commit()
}

// SetPartitionUp brings a partition up or down.
func (a *Admin) SetPartitionUp(name string, up bool) error {
	var found bool
	err := a.UpdateCluster(func(c *Cluster) {
		if p, ok := c.Partition(name); ok {
			p.Up, found = up, true
		}
	})
	if err == nil && !found {
		err = fmt.Errorf("no partition %q", name)
	}
	return err
}

// Jobs returns every job slurmctld still knows (after a scheduling pass), by id.
func (a *Admin) Jobs() ([]Job, error) {
	s := a.sim()
	c, err := LoadCluster(a.Dir)
	if err != nil {
		return nil, err
	}
	s.cluster = c
	st, err := OpenStore(a.Dir, c.FirstJobID)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	s.tick(c, st)
	if err := st.Commit(); err != nil {
		return nil, err
	}
	var out []Job
	for _, j := range st.Sorted() {
		out = append(out, *j)
	}
	return out, nil
}

// SubmitAs runs sbatch as another user (a job that is not ours, for tests that must leave
// foreign jobs alone) in dir with the script on stdin. It returns the job id, or an error
// with what sbatch printed. The user's name resolves in squeue --user through
// Cluster.Users when the system does not know it.
func (a *Admin) SubmitAs(user string, uid int, dir, script string, args ...string) (string, error) {
	s := a.sim()
	s.UID, s.GID, s.User, s.Group = uid, uid, user, user
	s.Cwd, s.Environ = dir, os.Environ()
	var out, errOut strings.Builder
	s.Stdin, s.Stdout, s.Stderr = strings.NewReader(script), &out, &errOut
	if code := s.Run("sbatch", append([]string{"--parsable"}, args...)); code != 0 {
		return "", fmt.Errorf("sbatch as %s: exit %d: %s", user, code, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// AddFault injects a fault.
func (a *Admin) AddFault(f Fault) error {
	if err := f.Validate(); err != nil {
		return err
	}
	st, err := LockStore(a.Dir)
	if err != nil {
		return err
	}
	defer st.Close()
	fs, err := readFaults(a.Dir)
	if err != nil {
		return err
	}
	return writeFaults(a.Dir, append(fs, f))
}

// Faults returns the faults still armed.
func (a *Admin) Faults() ([]Fault, error) {
	st, err := LockStore(a.Dir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return readFaults(a.Dir)
}

// ClearFaults removes every fault.
func (a *Admin) ClearFaults() error {
	st, err := LockStore(a.Dir)
	if err != nil {
		return err
	}
	defer st.Close()
	return writeFaults(a.Dir, nil)
}

// Shutdown kills every job runner and batch script of the cluster (SIGKILL) and marks
// their jobs NODE_FAIL, so that a test leaves no process behind.
func (a *Admin) Shutdown() error {
	c, err := LoadCluster(a.Dir)
	if err != nil {
		return err
	}
	st, err := OpenStore(a.Dir, c.FirstJobID)
	if err != nil {
		return err
	}
	defer st.Close()
	now := a.sim().Now().Unix()
	for _, j := range st.Sorted() {
		if j.State != StateRunning && !j.Completing {
			continue
		}
		if j.ScriptPID > 0 {
			syscall.Kill(-j.ScriptPID, syscall.SIGKILL)
		}
		if j.RunnerPID > 0 {
			syscall.Kill(j.RunnerPID, syscall.SIGKILL)
		}
		if j.State == StateRunning {
			j.State, j.Reason, j.End = StateNodeFail, "NodeDown", now
		}
		j.Completing = false
		st.Put(j)
	}
	return st.Commit()
}

// admin is the `fakeslurm` command: init, jobs, fault add|list|clear, partition
// <name> up|down, tick, shutdown, calls.
func (s *Sim) admin(args []string) int {
	a := &Admin{Dir: s.Dir, Exe: s.Exe, Now: s.Now}
	fail := func(err error) int {
		fmt.Fprintf(s.Stderr, "fakeslurm: %v\n", err)
		return 1
	}
	printJSON := func(v any) int {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(s.Stdout, string(b))
		return 0
	}
	if len(args) == 0 {
		fmt.Fprintln(s.Stderr, adminUsage)
		return 2
	}
	switch args[0] {
	case "init":
		var c *Cluster
		if len(args) > 1 {
			b, err := os.ReadFile(args[1])
			if err != nil {
				return fail(err)
			}
			c = &Cluster{}
			if err := json.Unmarshal(b, c); err != nil {
				return fail(fmt.Errorf("parse %s: %w", args[1], err))
			}
			c.fillDefaults()
		}
		if err := a.Init(c); err != nil {
			return fail(err)
		}
		return 0
	case "jobs":
		jobs, err := a.Jobs()
		if err != nil {
			return fail(err)
		}
		return printJSON(jobs)
	case "calls":
		calls, err := Calls(s.Dir)
		if err != nil {
			return fail(err)
		}
		return printJSON(calls)
	case "tick":
		_, err := a.Jobs()
		if err != nil {
			return fail(err)
		}
		return 0
	case "shutdown":
		if err := a.Shutdown(); err != nil {
			return fail(err)
		}
		return 0
	case "partition":
		if len(args) != 3 || (args[2] != "up" && args[2] != "down") {
			fmt.Fprintln(s.Stderr, adminUsage)
			return 2
		}
		if err := a.SetPartitionUp(args[1], args[2] == "up"); err != nil {
			return fail(err)
		}
		return 0
	case "fault":
		return s.adminFault(a, args[1:], fail, printJSON)
	}
	fmt.Fprintln(s.Stderr, adminUsage)
	return 2
}

func (s *Sim) adminFault(a *Admin, args []string, fail func(error) int, printJSON func(any) int) int {
	if len(args) == 0 {
		fmt.Fprintln(s.Stderr, adminUsage)
		return 2
	}
	switch args[0] {
	case "add":
		if len(args) != 2 {
			fmt.Fprintln(s.Stderr, adminUsage)
			return 2
		}
		var f Fault
		dec := json.NewDecoder(strings.NewReader(args[1]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return fail(fmt.Errorf("parse fault: %w", err))
		}
		if err := a.AddFault(f); err != nil {
			return fail(err)
		}
		return 0
	case "list":
		fs, err := a.Faults()
		if err != nil {
			return fail(err)
		}
		if fs == nil {
			fs = []Fault{}
		}
		return printJSON(fs)
	case "clear":
		if err := a.ClearFaults(); err != nil {
			return fail(err)
		}
		return 0
	}
	return fail(errors.New("fault: want add '<json>', list or clear"))
}

const adminUsage = `usage: fakeslurm <command>   (state directory from $` + EnvState + `)
  init [cluster.json]           write the cluster configuration (default: one 16-CPU node,
                                partitions debug (up, default) and down)
  jobs                          print every job as JSON
  calls                         print the Slurm commands run so far as JSON
  partition <name> up|down      bring a partition up or down
  fault add '<json>'            inject a fault, e.g. {"command":"sbatch","kind":"fail","count":2,
                                "stderr":"sbatch: error: ...\n","exit_code":1}
  fault list | fault clear
  tick                          run a scheduling pass
  shutdown                      kill every running job's processes`
