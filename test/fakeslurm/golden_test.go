package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/fakeslurmtest"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

var capture = flag.Bool("capture", false, "run the golden cases against the real Slurm and rewrite testdata/real")

const (
	goldenDir   = "testdata/real"
	clusterFile = "testdata/real/cluster.json"
	goneID      = "999999"
)

// TestGolden runs each golden case against the fake and compares its normalized output
// with what the real Slurm printed (testdata/real/<case>.golden). With -capture it
// reruns the cases against the real Slurm instead and rewrites the files.
func TestGolden(t *testing.T) {
	if *capture {
		captureReal(t)
		return
	}
	if os.Getuid() != 0 {
		t.Skip("the golden files were captured as root (UserId=root(0), USER columns)")
	}
	b, err := os.ReadFile(clusterFile)
	if err != nil {
		t.Fatalf("read %s (capture it with -capture): %v", clusterFile, err)
	}
	c := &sim.Cluster{}
	if err := json.Unmarshal(b, c); err != nil {
		t.Fatalf("parse %s: %v", clusterFile, err)
	}
	for _, gc := range goldenCases {
		t.Run(gc.name, func(t *testing.T) {
			t.Parallel()
			cc := *c // its FirstJobID is the first id real Slurm gave: ids as wide as real ones
			env := fakeslurmtest.Start(t, fakeslurmtest.Options{Cluster: &cc})
			want, err := os.ReadFile(filepath.Join(goldenDir, gc.name+".golden"))
			if err != nil {
				t.Fatalf("no golden file (capture it with -capture on a machine with Slurm): %v", err)
			}
			be := backend{path: func(n string) string { return filepath.Join(env.Dir, n) }, env: env.Env}
			got := runCase(t, be, gc, vars(c, gc.name))
			if got != string(want) {
				t.Errorf("the fake differs from real Slurm:\n%s", diff(string(want), got))
			}
		})
	}
}

// backend is where the four commands are.
type backend struct {
	path func(name string) string
	env  []string
}

func vars(c *sim.Cluster, caseName string) map[string]string {
	n := c.Nodes[0]
	return map[string]string{
		// Always as long: names are padded and cut to column widths.
		"N":    fmt.Sprintf("fsgold-%s-%07d", strings.ReplaceAll(caseName, "_", "-"), os.Getpid()%10000000),
		"GONE": goneID,
		"MEM1": strconv.FormatInt(n.RealMemory+1, 10),
		"TMP1": strconv.FormatInt(n.TmpDisk+1, 10),
		"CPU1": strconv.Itoa(n.CPUs + 1),
	}
}

var placeholder = regexp.MustCompile(`\{[A-Z0-9]+\}`)

func expand(s string, vars, bound map[string]string) string {
	return placeholder.ReplaceAllStringFunc(s, func(p string) string {
		k := p[1 : len(p)-1]
		if v, ok := bound[k]; ok {
			return v
		}
		if v, ok := vars[k]; ok {
			return v
		}
		return p
	})
}

var submittedRE = regexp.MustCompile(`^Submitted batch job (\d+)\n$`)

// runCase runs a case's steps in a fresh directory and returns the transcript,
// normalized. Jobs it bound are cancelled at the end.
func runCase(t *testing.T, b backend, gc goldenCase, vars map[string]string) string {
	t.Helper()
	s, _ := runCaseIDs(t, b, gc, vars)
	return s
}

// runCaseIDs is runCase that also returns the job ids it bound.
func runCaseIDs(t *testing.T, b backend, gc goldenCase, vars map[string]string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	bound := map[string]string{}
	var out strings.Builder
	defer func() {
		var ids []string
		for _, id := range bound {
			ids = append(ids, id)
		}
		if len(ids) > 0 {
			exec.Command(b.path("scancel"), ids...).Run()
		}
		exec.Command(b.path("scancel"), "--me", "--name="+vars["N"]).Run()
	}()
	for _, st := range gc.steps {
		args := make([]string, len(st.args))
		for i, a := range st.args {
			args[i] = expand(a, vars, bound)
		}
		stdout, stderr, code := runStep(t, b, dir, args, expand(st.stdin, vars, bound))
		switch {
		case st.bind != "" && code == 0:
			bound[st.bind] = strings.TrimSpace(stdout)
		case st.bindSubmitted != "" && code == 0:
			if m := submittedRE.FindStringSubmatch(stdout); m != nil {
				bound[st.bindSubmitted] = m[1]
			}
		}
		fmt.Fprintf(&out, "$ %s\n--- stdout\n%s--- stderr\n%s--- exit %d\n\n",
			strings.Join(st.args, " "), withNewline(stdout), withNewline(stderr), code)
	}
	var ids []string
	for _, id := range bound {
		ids = append(ids, id)
	}
	return normalize(out.String(), vars, bound, dir), ids
}

func withNewline(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n(no newline at end)\n"
}

func runStep(t *testing.T, b backend, dir string, args []string, stdin string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.path(args[0]), args[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, b.env, strings.NewReader(stdin)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

var (
	timeRE   = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`)
	sidRE    = regexp.MustCompile(`AllocNode:Sid=(\S+):\d+`)
	accrueRE = regexp.MustCompile(`AccrueTime=\S+`)
	dateRE   = regexp.MustCompile(`(?m)^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$`)
)

// normalize replaces what differs between runs: job ids, the case's name, times, the
// directory and the session id.
func normalize(s string, vars, bound map[string]string, dir string) string {
	keys := make([]string, 0, len(bound))
	for k := range bound {
		keys = append(keys, k)
	}
	// Longest ids first, so that 12 does not eat into 123.
	sort.Slice(keys, func(a, b int) bool { return len(bound[keys[a]]) > len(bound[keys[b]]) })
	for _, k := range keys {
		s = regexp.MustCompile(`\b`+regexp.QuoteMeta(bound[k])+`\b`).ReplaceAllString(s, "{"+k+"}")
	}
	s = strings.ReplaceAll(s, vars["N"], "{N}")
	s = strings.ReplaceAll(s, dir, "{DIR}")
	s = regexp.MustCompile(`\b`+goneID+`\b`).ReplaceAllString(s, "{GONE}")
	s = timeRE.ReplaceAllString(s, "{TIME}")
	s = dateRE.ReplaceAllString(s, "{DATE}")
	// slurmctld sets a pending job's accrue time in a later scheduling pass.
	s = accrueRE.ReplaceAllString(s, "AccrueTime={ACCRUE}")
	s = sidRE.ReplaceAllString(s, "AllocNode:Sid=$1:{SID}")
	return s
}

// diff shows where two transcripts part.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	from := max(0, i-6)
	var b strings.Builder
	fmt.Fprintf(&b, "first difference at line %d\n--- real (golden)\n", i+1)
	for k := from; k < min(len(w), i+6); k++ {
		fmt.Fprintf(&b, "%4d %s\n", k+1, w[k])
	}
	b.WriteString("--- fake\n")
	for k := from; k < min(len(g), i+6); k++ {
		fmt.Fprintf(&b, "%4d %s\n", k+1, g[k])
	}
	return b.String()
}

// captureReal reruns every case against the real Slurm and rewrites the golden files and
// the fake cluster that mirrors the real one.
func captureReal(t *testing.T) {
	testenv.RequireRealSlurm(t)
	c, err := realCluster()
	if err != nil {
		t.Fatalf("describe the real cluster: %v", err)
	}
	be := backend{path: func(n string) string { return n }, env: os.Environ()}
	first := 0
	for _, gc := range goldenCases {
		t.Run(gc.name, func(t *testing.T) {
			got, ids := runCaseIDs(t, be, gc, vars(c, gc.name))
			for _, id := range ids {
				if n, err := strconv.Atoi(id); err == nil && (first == 0 || n < first) {
					first = n
				}
			}
			if err := os.WriteFile(filepath.Join(goldenDir, gc.name+".golden"), []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The fake numbers its jobs from the first id real Slurm gave, so that ids are as wide
	// as in the transcripts (columns are padded and cut to widths).
	c.FirstJobID = first
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := os.WriteFile(clusterFile, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// realCluster describes the real cluster as a fake one: its node, partitions, names and
// the settings the cases depend on.
func realCluster() (*sim.Cluster, error) {
	kv := func(args ...string) ([]map[string]string, error) {
		out, err := exec.Command("scontrol", append([]string{"-o"}, args...)...).Output()
		if err != nil {
			return nil, fmt.Errorf("scontrol %v: %w", args, err)
		}
		var recs []map[string]string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			m := map[string]string{}
			for _, f := range strings.Fields(line) {
				if k, v, ok := strings.Cut(f, "="); ok {
					m[k] = v
				}
			}
			recs = append(recs, m)
		}
		return recs, nil
	}
	c := sim.DefaultCluster()
	nodes, err := kv("show", "node")
	if err != nil {
		return nil, err
	}
	c.Nodes = nil
	for _, n := range nodes {
		cpus, _ := strconv.Atoi(n["CPUTot"])
		mem, _ := strconv.ParseInt(n["RealMemory"], 10, 64)
		tmp, _ := strconv.ParseInt(n["TmpDisk"], 10, 64)
		c.Nodes = append(c.Nodes, sim.Node{Name: n["NodeName"], CPUs: cpus, RealMemory: mem, TmpDisk: tmp})
	}
	parts, err := kv("show", "partition")
	if err != nil {
		return nil, err
	}
	c.Partitions = nil
	for _, p := range parts {
		c.Partitions = append(c.Partitions, sim.Partition{Name: p["PartitionName"], Up: p["State"] == "UP", Default: p["Default"] == "YES"})
	}
	out, err := exec.Command("scontrol", "show", "config").Output()
	if err != nil {
		return nil, fmt.Errorf("scontrol show config: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "ClusterName":
			c.Name = v
		case "SlurmctldHost[0]":
			c.ControlHost, _, _ = strings.Cut(v, "(")
		case "DefMemPerCPU":
			c.DefMemPerCPU, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return c, nil
}
