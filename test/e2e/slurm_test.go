package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/fakeslurmtest"
	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

// tier names a backend: "fake" (test/fakeslurm) or "real" (the machine's Slurm).
type tier string

const (
	fakeTier tier = "fake"
	realTier tier = "real"
)

// tiers are the backends every scenario runs against. The real one skips inside the subtest
// when Slurm is not up, except with CI=true where it fails.
var tiers = []tier{fakeTier, realTier}

// slurmCmds are the four commands the dispatcher runs, each through a wrapper.
var slurmCmds = []string{"sbatch", "squeue", "scancel", "scontrol"}

// slurmEnv is one scenario's Slurm: either a fresh fake cluster or the shared real one. The
// dispatcher runs every command through a wrapper script (see wrapperScript) that logs the call
// and obeys the fault set for that command; the test lists jobs and submits foreign ones with
// the commands directly.
type slurmEnv struct {
	t    *testing.T
	tier tier
	// real are the actual commands, by name.
	real map[string]string
	// wrappers are the paths given to the dispatcher, by name.
	wrappers map[string]string
	// ctl holds the wrappers' call log and fault files.
	ctl string
	// env is the environment for the commands (and extra variables for the dispatcher).
	env      []string
	extraEnv []string
	fake     *fakeslurmtest.Env
	// foreign are the ids of jobs the test submitted itself, cancelled at the end (real).
	foreign []string
	// cpus and memMiB are the (one) node's, read from the backend.
	cpus   int
	memMiB int64
}

// newSlurmEnv makes the Slurm side of a scenario. On the real tier it registers a cleanup
// that cancels every job named after cluster and every foreign job the test submitted.
func newSlurmEnv(t *testing.T, tr tier, cluster, dir string) *slurmEnv {
	t.Helper()
	s := &slurmEnv{t: t, tier: tr, real: map[string]string{}, wrappers: map[string]string{},
		ctl: filepath.Join(dir, "ctl")}
	if err := os.MkdirAll(s.ctl, 0o755); err != nil {
		t.Fatal(err)
	}
	switch tr {
	case fakeTier:
		s.fake = fakeslurmtest.Start(t, fakeslurmtest.Options{})
		s.real = map[string]string{"sbatch": s.fake.SbatchPath, "squeue": s.fake.SqueuePath,
			"scancel": s.fake.ScancelPath, "scontrol": s.fake.ScontrolPath}
		s.env = s.fake.Env
		s.extraEnv = []string{"FAKESLURM_STATE=" + s.fake.StateDir}
		c, err := s.fake.Admin.Cluster()
		if err != nil {
			t.Fatal(err)
		}
		s.cpus, s.memMiB = c.Nodes[0].CPUs, c.Nodes[0].RealMemory
	case realTier:
		testenv.RequireRealSlurm(t)
		for _, name := range slurmCmds {
			p, err := exec.LookPath(name)
			if err != nil {
				t.Fatal(err)
			}
			s.real[name] = p
		}
		s.env = os.Environ()
		s.cpus, s.memMiB = s.realNode()
		t.Cleanup(func() { s.cancelLeftovers(cluster) })
	}
	for _, name := range slurmCmds {
		s.wrappers[name] = filepath.Join(s.ctl, name)
		script := fmt.Sprintf(wrapperScript, shellQuote(name), shellQuote(s.real[name]),
			shellQuote(s.ctl), shellQuote(failMessages[name]), shellQuote(ambiguousMessage))
		if err := os.WriteFile(s.wrappers[name], []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// failMessages are what each command prints when slurmctld cannot be reached (Slurm 22.05).
var failMessages = map[string]string{
	"sbatch":   "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)",
	"squeue":   "slurm_load_jobs error: Unable to contact slurm controller (connect failure)",
	"scancel":  "scancel: error: Kill job error: Unable to contact slurm controller (connect failure)",
	"scontrol": "slurm_update error: Unable to contact slurm controller (connect failure)",
}

// ambiguousMessage is what sbatch prints when the controller's answer was lost: the job may
// exist.
const ambiguousMessage = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"

// wrapperScript logs a call ("B" line before, "E" line after, fields separated by 0x1f) to
// ctl/calls, keeps sbatch's standard input (the batch script) in ctl/stdin/<call id>, and
// applies the fault in ctl/<name>.fault, a line "<mode> [count]" (no count: until the file is
// removed):
//
//	fail       print the connect-failure message and exit 1, doing nothing
//	empty      print nothing and exit 0, doing nothing
//	ambiguous  run the command with its output discarded, then print the socket timeout of a
//	           lost answer and exit 1 (sbatch: the job exists although sbatch "failed")
//
// ctl/on-sbatch, a line "<n> <command> <mode>", sets that open-ended fault for the command
// when the n-th sbatch from then on starts, before it creates its job.
//
// Arguments: name, the real command, ctl, the failure message, the ambiguous message (all
// shell-quoted).
const wrapperScript = `#!/bin/bash
# dispatch-slurm e2e wrapper: log the call, apply an injected fault, run the command.
name=%[1]s
real=%[2]s
ctl=%[3]s
failmsg=%[4]s
sep=$'\x1f'
id="$$-$EPOCHREALTIME"
line="B${sep}${id}${sep}${EPOCHREALTIME}${sep}${name}"
for a in "$@"; do line+="${sep}${a//$'\n'/ }"; done
printf '%%s\n' "$line" >>"$ctl/calls"
if [ "$name" = sbatch ]; then
	mkdir -p "$ctl/stdin" && cat >"$ctl/stdin/$id" && exec <"$ctl/stdin/$id"
fi
mode=
if [ -e "$ctl/$name.fault" ]; then
	exec 9>>"$ctl/$name.lock"
	flock 9
	if [ -e "$ctl/$name.fault" ]; then
		read -r mode count <"$ctl/$name.fault" || true
		if [ -n "${count:-}" ]; then
			if [ "$count" -le 1 ]; then rm -f "$ctl/$name.fault"
			else printf '%%s %%s\n' "$mode" $((count - 1)) >"$ctl/$name.fault.tmp" && mv "$ctl/$name.fault.tmp" "$ctl/$name.fault"
			fi
		fi
	fi
	exec 9>&-
fi
if [ "$name" = sbatch ] && [ -e "$ctl/on-sbatch" ]; then
	exec 9>>"$ctl/sbatch.lock"
	flock 9
	if read -r n cmd fmode <"$ctl/on-sbatch"; then
		if [ "$n" -le 1 ]; then
			printf '%%s\n' "$fmode" >"$ctl/$cmd.fault.tmp" && mv "$ctl/$cmd.fault.tmp" "$ctl/$cmd.fault"
			rm -f "$ctl/on-sbatch"
		else
			printf '%%s %%s %%s\n' $((n - 1)) "$cmd" "$fmode" >"$ctl/on-sbatch.tmp" && mv "$ctl/on-sbatch.tmp" "$ctl/on-sbatch"
		fi
	fi
	exec 9>&-
fi
case "$mode" in
fail) printf '%%s\n' "$failmsg" >&2; rc=1 ;;
empty) rc=0 ;;
ambiguous) "$real" "$@" >/dev/null 2>&1; printf '%%s\n' %[5]s >&2; rc=1 ;;
*) "$real" "$@"; rc=$? ;;
esac
printf 'E%%s%%s%%s%%s%%s%%s%%s%%s\n' "$sep" "$id" "$sep" "$EPOCHREALTIME" "$sep" "$rc" "$sep" "$mode" >>"$ctl/calls"
exit $rc
`

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// setFault makes the wrapper of cmd misbehave: mode "fail", "empty" or "ambiguous", for count
// calls (0: until clearFault).
func (s *slurmEnv) setFault(cmd, mode string, count int) {
	s.t.Helper()
	line := mode
	if count > 0 {
		line += " " + strconv.Itoa(count)
	}
	p := filepath.Join(s.ctl, cmd+".fault")
	if err := os.WriteFile(p+".new", []byte(line+"\n"), 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		s.t.Fatal(err)
	}
}

// faultAtSbatch sets the open-ended fault mode for cmd when the n-th sbatch call from now on
// starts, before that call creates its job.
func (s *slurmEnv) faultAtSbatch(n int, cmd, mode string) {
	s.t.Helper()
	p := filepath.Join(s.ctl, "on-sbatch")
	if err := os.WriteFile(p+".new", fmt.Appendf(nil, "%d %s %s\n", n, cmd, mode), 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		s.t.Fatal(err)
	}
}

func (s *slurmEnv) clearFault(cmd string) {
	s.t.Helper()
	if err := os.Remove(filepath.Join(s.ctl, cmd+".fault")); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.t.Fatal(err)
	}
}

// slurmCall is one command the dispatcher ran, from the wrapper log.
type slurmCall struct {
	Command    string
	Args       []string
	Start, End time.Time
	// Done is false for a call that has not ended (or whose wrapper was killed).
	Done  bool
	Exit  int
	Fault string
	// Stdin is what sbatch was given on standard input: the batch script.
	Stdin string
}

func (c slurmCall) String() string {
	return fmt.Sprintf("%s %s (exit %d, fault %q, done %v)", c.Command, strings.Join(c.Args, " "), c.Exit, c.Fault, c.Done)
}

// arg returns the value of --name=value in the call, if present.
func (c slurmCall) arg(name string) (string, bool) {
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// calls returns every command the dispatcher ran so far, in the order they started.
func (s *slurmEnv) calls() []slurmCall {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.ctl, "calls"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	var out []slurmCall
	byID := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, "\x1f")
		switch {
		case len(f) >= 4 && f[0] == "B":
			byID[f[1]] = len(out)
			c := slurmCall{Command: f[3], Args: f[4:], Start: epochTime(f[2])}
			if c.Command == "sbatch" {
				stdin, _ := os.ReadFile(filepath.Join(s.ctl, "stdin", f[1]))
				c.Stdin = string(stdin)
			}
			out = append(out, c)
		case len(f) == 5 && f[0] == "E":
			if i, ok := byID[f[1]]; ok {
				out[i].Done, out[i].End, out[i].Fault = true, epochTime(f[2]), f[4]
				out[i].Exit, _ = strconv.Atoi(f[3])
			}
		}
	}
	return out
}

func epochTime(s string) time.Time {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

// callsOf returns the calls of one command.
func (s *slurmEnv) callsOf(cmd string) []slurmCall {
	var out []slurmCall
	for _, c := range s.calls() {
		if c.Command == cmd {
			out = append(out, c)
		}
	}
	return out
}

// sbatchByName counts the sbatch calls per --job-name.
func (s *slurmEnv) sbatchByName() map[string][]slurmCall {
	out := map[string][]slurmCall{}
	for _, c := range s.callsOf("sbatch") {
		name, _ := c.arg("--job-name")
		out[name] = append(out[name], c)
	}
	return out
}

// isSnapshot tells the watcher's periodic squeue from a targeted lookup (by name or id).
func isSnapshot(c slurmCall) bool {
	if c.Command != "squeue" {
		return false
	}
	for _, a := range c.Args {
		for _, p := range []string{"--name", "-n", "--jobs", "-j"} {
			if a == p || strings.HasPrefix(a, p+"=") {
				return false
			}
		}
	}
	return true
}

// job is one Slurm job as squeue -t all shows it.
type job struct {
	ID, Name, State, Reason, User string
	Priority                      int64
	Nice                          int
}

// live reports whether the job has not finished (completing counts as live).
func (j job) live() bool {
	switch j.State {
	case "PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED", "RESIZING", "STOPPED":
		return true
	}
	return false
}

// jobs lists every job Slurm still knows (finished ones for MinJobAge, 300 s), all users.
func (s *slurmEnv) jobs() []job {
	s.t.Helper()
	out, err := s.run("", s.real["squeue"], "--noheader", "--all", "-t", "all", "--format=%i|%j|%T|%Q|%y|%u|%r")
	if err != nil {
		s.t.Fatalf("list jobs: %v", err)
	}
	var jobs []job
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(strings.TrimSpace(line), "|", 7)
		if len(f) != 7 {
			continue
		}
		j := job{ID: f[0], Name: f[1], State: f[2], User: f[5], Reason: f[6]}
		j.Priority, _ = strconv.ParseInt(f[3], 10, 64)
		j.Nice, _ = strconv.Atoi(f[4])
		jobs = append(jobs, j)
	}
	return jobs
}

// jobsNamed returns the jobs whose names start with prefix (a cluster id, or a uuid), by name.
func (s *slurmEnv) jobsNamed(prefix string) map[string][]job {
	out := map[string][]job{}
	for _, j := range s.jobs() {
		if strings.HasPrefix(j.Name, prefix) {
			out[j.Name] = append(out[j.Name], j)
		}
	}
	return out
}

// jobByID returns the job with that id.
func (s *slurmEnv) jobByID(id string) (job, bool) {
	for _, j := range s.jobs() {
		if j.ID == id {
			return j, true
		}
	}
	return job{}, false
}

// submitForeign submits a job that is not the dispatcher's (sbatch run directly, not through
// the wrapper) and returns its id. extra are more sbatch arguments (e.g. --uid on the real tier).
func (s *slurmEnv) submitForeign(name, partition, command string, extra ...string) string {
	s.t.Helper()
	args := append([]string{"--parsable", "--job-name=" + name, "--partition=" + partition,
		"--output=/dev/null", "--time=10"}, extra...)
	out, err := s.run("#!/bin/sh\nexec "+command+"\n", s.real["sbatch"], args...)
	if err != nil {
		s.t.Fatalf("submit foreign job %s: %v", name, err)
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
	s.foreign = append(s.foreign, id)
	return id
}

// run runs a command with the backend's environment and returns its stdout.
func (s *slurmEnv) run(stdin, path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = s.env
	cmd.Dir = os.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %v: %w: %s", filepath.Base(path), args, err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

var (
	cpuTotRe  = regexp.MustCompile(`\bCPUTot=(\d+)`)
	realMemRe = regexp.MustCompile(`\bRealMemory=(\d+)`)
)

// realNode reads the first node's CPUs and memory from scontrol show node.
func (s *slurmEnv) realNode() (int, int64) {
	s.t.Helper()
	out, err := s.run("", s.real["scontrol"], "show", "node", "--oneliner")
	if err != nil {
		s.t.Fatal(err)
	}
	cpu, mem := cpuTotRe.FindStringSubmatch(out), realMemRe.FindStringSubmatch(out)
	if cpu == nil || mem == nil {
		s.t.Fatalf("no CPUTot/RealMemory in scontrol show node: %s", out)
	}
	c, _ := strconv.Atoi(cpu[1])
	m, _ := strconv.ParseInt(mem[1], 10, 64)
	return c, m
}

// cancelLeftovers cancels (by id) every job named after our cluster and every foreign job the
// test submitted, on the real tier.
func (s *slurmEnv) cancelLeftovers(cluster string) {
	ids := slices.Clone(s.foreign)
	for _, js := range s.jobsNamed(cluster + "-") {
		for _, j := range js {
			if j.live() {
				ids = append(ids, j.ID)
			}
		}
	}
	if len(ids) == 0 {
		return
	}
	if _, err := s.run("", s.real["scancel"], ids...); err != nil {
		s.t.Logf("clean up jobs %v: %v", ids, err)
	}
}
