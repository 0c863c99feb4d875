package bench

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/bench/slurmwrap"
)

// slurmCommands are the commands the dispatcher runs, each through the wrapper.
var slurmCommands = slurmwrap.Commands

// callLogName is the wrapper's log, in the wrapper directory.
const callLogName = slurmwrap.LogName

// Call is one Slurm command the dispatcher ran, as the wrapper logged it when it ended.
type Call struct {
	Name       string
	Start, End time.Time
	Exit       int
	Args       []string
}

// Snapshot reports whether the call is the watcher's periodic squeue (not a lookup by name
// or id).
func (c Call) Snapshot() bool {
	if c.Name != "squeue" {
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

// Mutating reports whether the call changes Slurm: sbatch, scancel or scontrol.
func (c Call) Mutating() bool {
	return c.Name == "sbatch" || c.Name == "scancel" || c.Name == "scontrol"
}

// Renice reports whether the call is a renice (scontrol update … Nice=…).
func (c Call) Renice() bool {
	return c.Name == "scontrol" && slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "Nice=") })
}

// JobName returns sbatch's --job-name value ("" for other calls).
func (c Call) JobName() string {
	if c.Name != "sbatch" {
		return ""
	}
	for i, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--job-name="); ok {
			return v
		}
		if (a == "--job-name" || a == "-J") && i+1 < len(c.Args) {
			return c.Args[i+1]
		}
	}
	return ""
}

// CallLog reads the wrapper's log as it grows.
type CallLog struct {
	path    string
	off     int64
	partial []byte
	calls   []Call
}

// NewCallLog reads the log at path (which need not exist yet).
func NewCallLog(path string) *CallLog { return &CallLog{path: path} }

// Update reads the lines appended since the last call and returns every call so far, in the
// order they ended.
func (l *CallLog) Update() ([]Call, error) {
	f, err := os.Open(l.path)
	if os.IsNotExist(err) {
		return l.calls, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the call log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(l.off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read the call log: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read the call log: %w", err)
	}
	l.off += int64(len(b))
	b = append(l.partial, b...)
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		l.partial = b
		return l.calls, nil
	}
	l.partial = append([]byte(nil), b[end+1:]...)
	for line := range strings.SplitSeq(string(b[:end]), "\n") {
		if c, ok := parseCall(line); ok {
			l.calls = append(l.calls, c)
		}
	}
	return l.calls, nil
}

func parseCall(line string) (Call, bool) {
	f := strings.Split(line, "\t")
	if len(f) < 4 {
		return Call{}, false
	}
	start, err1 := strconv.ParseInt(f[1], 10, 64)
	end, err2 := strconv.ParseInt(f[2], 10, 64)
	code, err3 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return Call{}, false
	}
	return Call{Name: f[0], Start: time.Unix(0, start), End: time.Unix(0, end), Exit: code, Args: f[4:]}, true
}

// installWrappers makes dir a wrapper directory: links exe (the slurmwrap binary) as each
// command, with the real command's path in <name>.real. It returns the wrappers' paths by name.
func installWrappers(dir, exe string, real map[string]string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the wrapper directory: %w", err)
	}
	out := map[string]string{}
	for _, name := range slurmCommands {
		p := filepath.Join(dir, name)
		if err := os.Symlink(exe, p); err != nil {
			return nil, fmt.Errorf("link the %s wrapper: %w", name, err)
		}
		if err := os.WriteFile(p+".real", []byte(real[name]+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("write the %s wrapper's target: %w", name, err)
		}
		out[name] = p
	}
	return out, nil
}
