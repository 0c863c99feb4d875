package sim

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runner is slurmd and slurmstepd for one job: it runs the batch script in its own
// process group with the submitted environment, enforces the time limit, escalates a
// cancel from SIGTERM to SIGKILL after KillWait, and records how the job ended.
//
// Signals from scancel: SIGTERM asks for a cancel (TERM to the job's processes, KILL
// after KillWait), SIGUSR2 for an immediate SIGKILL. Signals for the batch script alone
// (scancel --batch --signal) go straight to the script's pid.
// logRunner notes a runner's trouble in <state>/runner.log (runners have no stderr).
func (s *Sim) logRunner(id any, format string, a ...any) {
	f, err := os.OpenFile(filepath.Join(s.Dir, "runner.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		fmt.Fprintf(f, "%s job %v: %s\n", s.Now().Format(time.RFC3339Nano), id, fmt.Sprintf(format, a...))
		f.Close()
	}
}

func (s *Sim) runner(args []string) int {
	logf := func(format string, a ...any) { s.logRunner(args, format, a...) }
	if len(args) != 1 {
		logf("usage: %s <job id>", RunnerName)
		return 2
	}
	id, err := strconv.Atoi(args[0])
	if err != nil {
		logf("bad job id: %v", err)
		return 2
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR2)
	c, err := s.loadCluster()
	if err != nil {
		logf("%v", err)
		return 1
	}
	cmd, job, err := s.startScript(c, id)
	if err != nil {
		logf("start: %v", err)
		return 1
	}
	if cmd == nil {
		return 0 // cancelled before it started, or not ours
	}
	status := s.superviseScript(c, cmd, job, sigs)
	if err := s.recordEnd(c, id, status); err != nil {
		logf("record end: %v", err)
		return 1
	}
	return 0
}

// startScript starts the job's batch script under the state lock, so that scancel sees
// either no script pid (and the runner then honours the cancel) or the script running.
func (s *Sim) startScript(c *Cluster, id int) (*exec.Cmd, *Job, error) {
	st, err := OpenStore(s.Dir, c.FirstJobID)
	if err != nil {
		return nil, nil, err
	}
	defer st.Close()
	j := st.Jobs[id]
	if j == nil || j.RunnerPID != os.Getpid() {
		return nil, nil, nil
	}
	if j.State != StateRunning {
		j.Completing = false
		j.ExitSignal = j.CancelSignal
		st.Put(j)
		s.tick(c, st)
		return nil, nil, st.Commit()
	}
	script, env, err := st.readSpool(id)
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(st.scriptPath(id), script, 0o700); err != nil {
		return nil, nil, fmt.Errorf("write batch script of job %d: %w", id, err)
	}
	cmd := exec.Command(st.scriptPath(id))
	cmd.Dir = j.WorkDir
	cmd.Env = append(env, jobEnv(c, j)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, errOut, in := s.jobFiles(j)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = out, errOut, in
	startErr := cmd.Start()
	for _, f := range []*os.File{out, errOut, in} {
		if f != nil {
			f.Close()
		}
	}
	if startErr != nil {
		j.State, j.Reason, j.End = StateFailed, "JobLaunchFailure", s.Now().Unix()
		j.ExitStatus, j.ExitSignal = 0, 1
		st.Put(j)
		s.tick(c, st)
		if err := st.Commit(); err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("start batch script of job %d: %w", id, startErr)
	}
	j.ScriptPID = cmd.Process.Pid
	if j.PendingSignal != 0 {
		syscall.Kill(j.ScriptPID, syscall.Signal(j.PendingSignal))
		j.PendingSignal = 0
	}
	st.Put(j)
	if err := st.Commit(); err != nil {
		return nil, nil, err
	}
	return cmd, j, nil
}

// jobFiles opens the job's stdout, stderr and stdin (nil where it cannot: the script then
// gets /dev/null, as a job whose output directory vanished would lose its output).
func (s *Sim) jobFiles(j *Job) (out, errOut, in *os.File) {
	node := j.NodeList
	open := func(p string) *os.File {
		p = strings.ReplaceAll(p, "%N", node)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return nil
		}
		return f
	}
	out = open(j.StdOut)
	if j.StdErr == j.StdOut {
		if out != nil {
			if dup, err := syscall.Dup(int(out.Fd())); err == nil {
				errOut = os.NewFile(uintptr(dup), j.StdErr)
			}
		}
	} else {
		errOut = open(j.StdErr)
	}
	if f, err := os.Open(j.StdIn); err == nil {
		in = f
	}
	return out, errOut, in
}

// jobEnv is what slurmd adds to the submitted environment.
func jobEnv(c *Cluster, j *Job) []string {
	id := strconv.Itoa(j.ID)
	env := []string{
		"SLURM_JOB_ID=" + id, "SLURM_JOBID=" + id, "SLURM_JOB_NAME=" + j.Name,
		"SLURM_SUBMIT_DIR=" + j.WorkDir, "SLURM_SUBMIT_HOST=localhost",
		"SLURM_JOB_PARTITION=" + j.Partition, "SLURM_JOB_NODELIST=" + j.NodeList,
		"SLURM_NODELIST=" + j.NodeList, "SLURMD_NODENAME=" + j.NodeList,
		"SLURM_JOB_NUM_NODES=1", "SLURM_NNODES=1",
		"SLURM_CPUS_ON_NODE=" + strconv.Itoa(j.NumCPUs()),
		"SLURM_JOB_CPUS_PER_NODE=" + strconv.Itoa(j.NumCPUs()),
		"SLURM_CLUSTER_NAME=" + c.Name, "SLURM_JOB_USER=" + j.User,
		"SLURM_JOB_UID=" + strconv.Itoa(j.UID), "SLURM_JOB_GID=" + strconv.Itoa(j.GID),
		"SLURM_NTASKS=" + strconv.Itoa(j.NTasks), "SLURM_NPROCS=" + strconv.Itoa(j.NTasks),
		"SLURM_PRIO_PROCESS=0", "ENVIRONMENT=BATCH",
	}
	if j.CPUsPerTask > 1 {
		env = append(env, "SLURM_CPUS_PER_TASK="+strconv.Itoa(j.CPUsPerTask))
	}
	if j.Account != "" {
		env = append(env, "SLURM_JOB_ACCOUNT="+j.Account)
	}
	return env
}

// superviseScript waits for the script, acting on cancels and the time limit.
func (s *Sim) superviseScript(c *Cluster, cmd *exec.Cmd, j *Job, sigs chan os.Signal) syscall.WaitStatus {
	done := make(chan syscall.WaitStatus, 1)
	go func() {
		cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		done <- ws
	}()
	pgid := cmd.Process.Pid
	var limit <-chan time.Time
	if j.TimeLimit > 0 && j.TimeLimit < unlimitedMinutes {
		deadline := time.Unix(j.Start, 0).Add(time.Duration(j.TimeLimit) * c.Minute.D())
		limit = time.After(time.Until(deadline))
	}
	var kill <-chan time.Time
	for {
		select {
		case ws := <-done:
			syscall.Kill(-pgid, syscall.SIGKILL) // what the script left behind
			return ws
		case sig := <-sigs:
			if sig == syscall.SIGUSR2 {
				syscall.Kill(-pgid, syscall.SIGKILL)
				continue
			}
			syscall.Kill(-pgid, syscall.SIGTERM)
			kill = time.After(c.KillWait.D())
		case <-limit:
			limit = nil
			s.markTimeout(c, j.ID)
			syscall.Kill(-pgid, syscall.SIGTERM)
			kill = time.After(c.KillWait.D())
		case <-kill:
			kill = nil
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
}

func (s *Sim) markTimeout(c *Cluster, id int) {
	st, err := OpenStore(s.Dir, c.FirstJobID)
	if err != nil {
		return
	}
	defer st.Close()
	j := st.Jobs[id]
	if j == nil || j.State != StateRunning {
		return
	}
	j.State, j.Reason, j.Completing, j.End = StateTimeout, "TimeLimit", true, s.Now().Unix()
	st.Put(j)
	st.Commit()
}

// recordEnd records how the script ended: COMPLETED (exit 0), FAILED with
// NonZeroExitCode (exit n) or JobLaunchFailure (killed by a signal), or completes a job
// already CANCELLED or TIMEOUT. Then it schedules what the freed resources allow.
func (s *Sim) recordEnd(c *Cluster, id int, ws syscall.WaitStatus) error {
	st, err := OpenStore(s.Dir, c.FirstJobID)
	if err != nil {
		return err
	}
	defer st.Close()
	j := st.Jobs[id]
	if j == nil {
		return errors.New("job record vanished")
	}
	status, sig := 0, 0
	if ws.Signaled() {
		sig = int(ws.Signal())
	} else {
		status = ws.ExitStatus()
	}
	j.ExitStatus, j.ExitSignal = status, sig
	if j.State == StateRunning {
		j.End = s.Now().Unix()
		switch {
		case sig != 0:
			j.State, j.Reason = StateFailed, "JobLaunchFailure"
		case status != 0:
			j.State, j.Reason = StateFailed, "NonZeroExitCode"
		default:
			j.State, j.Reason = StateCompleted, "None"
		}
	}
	j.Completing = false
	st.Put(j)
	s.tick(c, st)
	return st.Commit()
}
