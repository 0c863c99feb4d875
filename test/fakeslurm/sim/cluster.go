package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ClusterFile is the name of the cluster configuration inside the state directory.
const ClusterFile = "cluster.json"

// Cluster is the fake cluster's configuration: its nodes, partitions and the slurm.conf
// settings the fake honours. It lives in <state>/cluster.json; a missing file means
// DefaultCluster.
type Cluster struct {
	// Name is the ClusterName (shown by squeue %Cluster and in SLURM_CLUSTER_NAME).
	Name string `json:"name"`
	// ControlHost is the slurmctld host name printed by `scontrol ping`.
	ControlHost string      `json:"control_host"`
	Nodes       []Node      `json:"nodes"`
	Partitions  []Partition `json:"partitions"`
	// DefMemPerCPU is the memory (MiB) a job without --mem gets per CPU.
	DefMemPerCPU int64 `json:"def_mem_per_cpu"`
	// MinJobAge is how long a finished job stays visible to `squeue -t all` and
	// `scontrol show job`.
	MinJobAge Duration `json:"min_job_age"`
	// KillWait is the delay between SIGTERM and SIGKILL when a running job is cancelled or
	// reaches its time limit.
	KillWait Duration `json:"kill_wait"`
	// MaxJobCount is the number of job records (live and not yet purged) slurmctld keeps;
	// sbatch beyond it gets EAGAIN ("Slurm temporarily unable to accept job").
	MaxJobCount int `json:"max_job_count"`
	// FirstJobID is the id of the first job.
	FirstJobID int `json:"first_job_id"`
	// PriorityBase is the priority of a job with nice 0 (priority = base − nice, at least 1).
	PriorityBase int64 `json:"priority_base"`
	// NoRun keeps every job PENDING (reason Resources) instead of starting jobs that can
	// run and executing their batch scripts.
	NoRun bool `json:"no_run,omitempty"`
	// Minute is how long one minute of --time lasts (default 1m; tests shorten it).
	Minute Duration `json:"minute"`
	// SignalRetry is how long scancel keeps retrying a signal to a pending job before it
	// gives up with "Job can not be altered now, try again later" (real: 95 s).
	SignalRetry Duration `json:"signal_retry"`
	// SubmitRetryUnit is sbatch's sleep unit between EAGAIN retries (real: 1 s, growing
	// 1, 2, … 15 units, about two minutes in all).
	SubmitRetryUnit Duration `json:"submit_retry_unit"`
	// Users maps user names the fake knows besides the system's (for foreign jobs) to uids.
	Users map[string]int `json:"users,omitempty"`
}

// Node is one compute node.
type Node struct {
	Name       string   `json:"name"`
	CPUs       int      `json:"cpus"`
	RealMemory int64    `json:"real_memory"` // MiB
	TmpDisk    int64    `json:"tmp_disk"`    // MiB
	Features   []string `json:"features,omitempty"`
	GPUs       int      `json:"gpus,omitempty"`
}

// Partition is one partition. A partition without Nodes contains every node.
type Partition struct {
	Name    string   `json:"name"`
	Nodes   []string `json:"nodes,omitempty"`
	Up      bool     `json:"up"`
	Default bool     `json:"default,omitempty"`
}

// Duration is a time.Duration written as a Go duration string in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "300s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string ("5s") or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration %s: %w", b, err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// DefaultCluster mirrors the project's local single-node Slurm (scripts/local-slurm.sh):
// one node with 16 CPUs, 19284 MiB of memory and 100000 MiB of TmpDisk, a default
// partition "debug" that is up and a partition "down" that is DOWN.
func DefaultCluster() *Cluster {
	return &Cluster{
		Name:        "fakecluster",
		ControlHost: "fakectld",
		Nodes: []Node{{
			Name: "node1", CPUs: 16, RealMemory: 19284, TmpDisk: 100000,
		}},
		Partitions: []Partition{
			{Name: "debug", Up: true, Default: true},
			{Name: "down", Up: false},
		},
		DefMemPerCPU:    256,
		MinJobAge:       Duration(300 * time.Second),
		KillWait:        Duration(5 * time.Second),
		MaxJobCount:     20000,
		FirstJobID:      1,
		PriorityBase:    1000000,
		Minute:          Duration(time.Minute),
		SignalRetry:     Duration(95 * time.Second),
		SubmitRetryUnit: Duration(time.Second),
	}
}

// LoadCluster reads <dir>/cluster.json, or returns DefaultCluster when it does not exist.
// Zero settings take their default values.
func LoadCluster(dir string) (*Cluster, error) {
	b, err := os.ReadFile(filepath.Join(dir, ClusterFile))
	if errors.Is(err, os.ErrNotExist) {
		return DefaultCluster(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read cluster config: %w", err)
	}
	c := &Cluster{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, ClusterFile), err)
	}
	c.fillDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) fillDefaults() {
	d := DefaultCluster()
	if c.Name == "" {
		c.Name = d.Name
	}
	if c.ControlHost == "" {
		c.ControlHost = d.ControlHost
	}
	if c.DefMemPerCPU == 0 {
		c.DefMemPerCPU = d.DefMemPerCPU
	}
	if c.MinJobAge == 0 {
		c.MinJobAge = d.MinJobAge
	}
	if c.KillWait == 0 {
		c.KillWait = d.KillWait
	}
	if c.MaxJobCount == 0 {
		c.MaxJobCount = d.MaxJobCount
	}
	if c.FirstJobID == 0 {
		c.FirstJobID = d.FirstJobID
	}
	if c.PriorityBase == 0 {
		c.PriorityBase = d.PriorityBase
	}
	if c.Minute == 0 {
		c.Minute = d.Minute
	}
	if c.SignalRetry == 0 {
		c.SignalRetry = d.SignalRetry
	}
	if c.SubmitRetryUnit == 0 {
		c.SubmitRetryUnit = d.SubmitRetryUnit
	}
}

// Validate reports configuration mistakes.
func (c *Cluster) Validate() error {
	var errs []error
	if len(c.Nodes) == 0 {
		errs = append(errs, errors.New("cluster: no nodes"))
	}
	names := map[string]bool{}
	for _, n := range c.Nodes {
		if n.Name == "" || strings.ContainsAny(n.Name, ", \t\n") {
			errs = append(errs, fmt.Errorf("cluster: bad node name %q", n.Name))
		}
		if n.CPUs <= 0 {
			errs = append(errs, fmt.Errorf("cluster: node %s: cpus must be > 0", n.Name))
		}
		names[n.Name] = true
	}
	defaults := 0
	for _, p := range c.Partitions {
		if p.Name == "" || strings.ContainsAny(p.Name, ", \t\n") {
			errs = append(errs, fmt.Errorf("cluster: bad partition name %q", p.Name))
		}
		for _, n := range p.Nodes {
			if !names[n] {
				errs = append(errs, fmt.Errorf("cluster: partition %s: unknown node %q", p.Name, n))
			}
		}
		if p.Default {
			defaults++
		}
	}
	if len(c.Partitions) == 0 {
		errs = append(errs, errors.New("cluster: no partitions"))
	}
	if defaults > 1 {
		errs = append(errs, errors.New("cluster: more than one default partition"))
	}
	return errors.Join(errs...)
}

// Save writes the configuration to <dir>/cluster.json atomically.
func (c *Cluster) Save(dir string) error {
	if err := c.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode cluster config: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, ClusterFile), append(b, '\n'))
}

// Partition returns the named partition.
func (c *Cluster) Partition(name string) (*Partition, bool) {
	for i := range c.Partitions {
		if c.Partitions[i].Name == name {
			return &c.Partitions[i], true
		}
	}
	return nil, false
}

// DefaultPartition returns the default partition (the first one when none is marked).
func (c *Cluster) DefaultPartition() *Partition {
	for i := range c.Partitions {
		if c.Partitions[i].Default {
			return &c.Partitions[i]
		}
	}
	return &c.Partitions[0]
}

// PartitionNodes returns the nodes of a partition.
func (c *Cluster) PartitionNodes(p *Partition) []*Node {
	var out []*Node
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if len(p.Nodes) == 0 {
			out = append(out, n)
			continue
		}
		for _, name := range p.Nodes {
			if name == n.Name {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// HasFeature reports whether any node offers the feature.
func (c *Cluster) HasFeature(f string) bool {
	for _, n := range c.Nodes {
		for _, nf := range n.Features {
			if nf == f {
				return true
			}
		}
	}
	return false
}

// HasGPUs reports whether any node has GPUs.
func (c *Cluster) HasGPUs() bool {
	for _, n := range c.Nodes {
		if n.GPUs > 0 {
			return true
		}
	}
	return false
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
