package demo

import (
	"fmt"
	"strings"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// Seed is one container of the demo and how it must end.
type Seed struct {
	// Name is what the demo calls it (the uuid is made fresh for each run).
	Name string
	// VCPUs and RAMMiB are its runtime constraints.
	VCPUs  int
	RAMMiB int64
	// Priority is the container's priority (the order in which the dispatcher takes them).
	Priority int64
	// Command is what the crunch-run stand-in does once Running: ["sleep", "N"] or
	// ["exit", "N"] (die, leaving the container Running).
	Command []string
	// Partitions are its scheduling_parameters.partitions (none: Slurm's default).
	Partitions []string
	// DropPriority: the demo sets the priority to 0 once the container is Running.
	DropPriority bool
	// Expect is the final state it must reach.
	Expect arvados.ContainerState
	// ErrorHas, if set, must be part of runtime_status.error.
	ErrorHas string
	// Shows says what this container demonstrates (printed under the summary).
	Shows string
}

// Seeds are the demo's containers: mostly ordinary ones of mixed sizes and priorities (39
// CPUs of work for a node of 16, so that some wait their turn), and five that end otherwise.
func Seeds() []Seed {
	sleep := func(s string) []string { return []string{"sleep", s} }
	done := func(name string, vcpus int, ram, prio int64, secs string) Seed {
		return Seed{Name: name, VCPUs: vcpus, RAMMiB: ram, Priority: prio, Command: sleep(secs), Expect: arvados.Complete}
	}
	return []Seed{
		done("urgent", 1, 256, 1000, "2"),
		{Name: "too-many-cpus", VCPUs: 64, RAMMiB: 256, Priority: 700, Command: sleep("1"),
			Expect: arvados.Cancelled, ErrorHas: "PartitionConfig",
			Shows: "64 CPUs on a 16-CPU node: sbatch accepts the job but Slurm can never start it " +
				"(pending reason PartitionConfig); the dispatcher cancels the container with Slurm's reason."},
		{Name: "too-much-ram", VCPUs: 2, RAMMiB: 1 << 20, Priority: 650, Command: sleep("1"),
			Expect: arvados.Cancelled, ErrorHas: "Requested node configuration is not available",
			Shows: "1 TiB of RAM: sbatch rejects it at once; after the rejection hold (other containers' " +
				"jobs go through, so the fault is this container's, not our configuration's) the dispatcher " +
				"cancels it with Slurm's message in runtime_status.error."},
		{Name: "abandoned", VCPUs: 1, RAMMiB: 256, Priority: 600, Command: sleep("300"), DropPriority: true,
			Expect: arvados.Cancelled,
			Shows: "its priority drops to 0 while it runs (the demo does it, as a user who no longer wants it): " +
				"the dispatcher scancels the job's batch step with TERM and crunch-run cancels the container."},
		{Name: "crashes", VCPUs: 1, RAMMiB: 256, Priority: 550, Command: []string{"exit", "3"},
			Expect: arvados.Cancelled, ErrorHas: "while the container was Running",
			Shows: "crunch-run dies (exit 3) after marking it Running: the dispatcher sees the job end, " +
				"re-reads the container and cancels it, saying how the job ended."},
		done("tiny-1", 1, 128, 500, "2"),
		done("tiny-2", 1, 128, 490, "3"),
		done("tiny-3", 1, 128, 480, "2"),
		done("tiny-4", 1, 128, 470, "3"),
		done("tiny-5", 1, 128, 460, "2"),
		done("small-1", 2, 512, 400, "3"),
		done("small-2", 2, 512, 390, "4"),
		done("small-3", 2, 512, 380, "3"),
		done("small-4", 2, 512, 370, "4"),
		done("small-5", 2, 512, 360, "3"),
		done("medium-1", 4, 1024, 300, "4"),
		done("medium-2", 4, 1024, 290, "3"),
		done("medium-3", 4, 1024, 280, "4"),
		withPartitions(done("on-debug", 1, 256, 200, "2"), "debug"),
		done("large", 8, 2048, 10, "3"),
	}
}

func withPartitions(s Seed, p ...string) Seed {
	s.Partitions = p
	return s
}

// containerImage is a portable data hash whose manifest is 167 bytes long: the dispatcher
// estimates 128 MiB of image for --tmp.
const containerImage = "fa3c1a9cb6783f85f2ecda037e07b8c3+167"

// Container is the record to seed for s under uuid.
func (s Seed) Container(uuid string) arvados.Container {
	return arvados.Container{
		UUID:           uuid,
		State:          arvados.Queued,
		Priority:       s.Priority,
		ContainerImage: containerImage,
		Command:        s.Command,
		RuntimeConstraints: arvados.RuntimeConstraints{
			RAM: s.RAMMiB << 20, VCPUs: s.VCPUs,
		},
		SchedulingParameters: arvados.SchedulingParameters{Partitions: s.Partitions},
	}
}

// Asks describes the resources it asks for: "2 cpus, 512 MiB".
func (s Seed) Asks() string {
	cpus := fmt.Sprintf("%d cpu", s.VCPUs)
	if s.VCPUs != 1 {
		cpus += "s"
	}
	ram := fmt.Sprintf("%d MiB", s.RAMMiB)
	switch {
	case s.RAMMiB >= 1<<20 && s.RAMMiB%(1<<20) == 0:
		ram = fmt.Sprintf("%d TiB", s.RAMMiB>>20)
	case s.RAMMiB >= 1<<10 && s.RAMMiB%(1<<10) == 0:
		ram = fmt.Sprintf("%d GiB", s.RAMMiB>>10)
	}
	out := cpus + ", " + ram
	if len(s.Partitions) > 0 {
		out += ", partition " + strings.Join(s.Partitions, ",")
	}
	return out
}

// ExpectText says how it must end: "Complete", "Cancelled (PartitionConfig)".
func (s Seed) ExpectText() string {
	if s.ErrorHas != "" {
		return fmt.Sprintf("%s with %q", s.Expect, s.ErrorHas)
	}
	return string(s.Expect)
}

// Judge says whether container c ended as s expects, and if not, why not.
func (s Seed) Judge(c arvados.Container) (bool, string) {
	if c.State != s.Expect {
		return false, fmt.Sprintf("ended %s, want %s", orNone(string(c.State)), s.ExpectText())
	}
	if s.Expect == arvados.Complete && (c.ExitCode == nil || *c.ExitCode != 0) {
		return false, "Complete without exit code 0"
	}
	if s.ErrorHas != "" && !strings.Contains(runtimeString(c, "error"), s.ErrorHas) {
		return false, fmt.Sprintf("runtime_status.error %q lacks %q", runtimeString(c, "error"), s.ErrorHas)
	}
	return true, ""
}

// runtimeString is runtime_status[key] when it is a string.
func runtimeString(c arvados.Container, key string) string {
	s, _ := c.RuntimeStatus[key].(string)
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
