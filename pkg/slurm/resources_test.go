package slurm

import (
	"slices"
	"strings"
	"testing"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// ctr returns a valid container asking for 1 GiB of RAM and 1 vcpu, changed by mods.
func ctr(mods ...func(*arvados.Container)) arvados.Container {
	c := arvados.Container{
		UUID:               testUUID,
		RuntimeConstraints: arvados.RuntimeConstraints{RAM: 1 << 30, VCPUs: 1},
	}
	for _, m := range mods {
		m(&c)
	}
	return c
}

// pdh returns a portable data hash whose manifest is n characters long.
func pdh(n string) string { return "d41d8cd98f00b204e9800998ecf8427e+" + n }

func TestComputeResourcesMatchesTheIncumbent(t *testing.T) {
	tests := []struct {
		name    string
		c       arvados.Container
		reserve int64
		want    Resources
	}{
		{"ram plus the default reserve, in MiB",
			ctr(), DefaultReserveRAM,
			Resources{VCPUs: 1, MemMiB: 1024 + 550}},
		{"keep_cache_ram counts as memory",
			ctr(func(c *arvados.Container) { c.RuntimeConstraints.KeepCacheRAM = 256 << 20 }), 0,
			Resources{VCPUs: 1, MemMiB: 1024 + 256}},
		{"memory rounds up to the next MiB",
			ctr(func(c *arvados.Container) { c.RuntimeConstraints.RAM = 1<<20 + 1 }), 0,
			Resources{VCPUs: 1, MemMiB: 2}},
		{"tmp mounts add up; other mounts do not count",
			ctr(func(c *arvados.Container) {
				c.Mounts = map[string]arvados.Mount{
					"/tmp":    {Kind: "tmp", Capacity: 1 << 30},
					"/work":   {Kind: "tmp", Capacity: 512 << 20},
					"/keep":   {Kind: "collection", Capacity: 1 << 40},
					"/stdout": {Kind: "file"},
				}
			}), 0,
			Resources{VCPUs: 1, MemMiB: 1024, ScratchMiB: 1536}},
		{"scratch rounds up to the next MiB",
			ctr(func(c *arvados.Container) { c.Mounts = map[string]arvados.Mount{"/tmp": {Kind: "tmp", Capacity: 1}} }), 0,
			Resources{VCPUs: 1, MemMiB: 1024, ScratchMiB: 1}},
		{"a small image manifest estimates no image",
			ctr(func(c *arvados.Container) { c.ContainerImage = pdh("121") }), 0,
			Resources{VCPUs: 1, MemMiB: 1024}},
		{"the image raises scratch to its size, then adds itself again",
			ctr(func(c *arvados.Container) {
				c.ContainerImage = pdh("122") // (122-80)/42 = 1 block of 64 MiB
				c.Mounts = map[string]arvados.Mount{"/tmp": {Kind: "tmp", Capacity: 10 << 20}}
			}), 0,
			Resources{VCPUs: 1, MemMiB: 1024, ScratchMiB: 64 + 64}},
		{"tmp larger than the image keeps its size, plus the image",
			ctr(func(c *arvados.Container) {
				c.ContainerImage = pdh("500") // (500-80)/42 = 10 blocks
				c.Mounts = map[string]arvados.Mount{"/tmp": {Kind: "tmp", Capacity: 1 << 30}}
			}), 0,
			Resources{VCPUs: 1, MemMiB: 1024, ScratchMiB: 1024 + 640}},
		{"keep_cache_disk adds to scratch",
			ctr(func(c *arvados.Container) { c.RuntimeConstraints.KeepCacheDisk = 2 << 30 }), 0,
			Resources{VCPUs: 1, MemMiB: 1024, ScratchMiB: 2048}},
		{"an image that is not a bare portable data hash counts as nothing",
			ctr(func(c *arvados.Container) { c.ContainerImage = "arvados/jobs:latest" }), 0,
			Resources{VCPUs: 1, MemMiB: 1024}},
		{"GPUs in the new form",
			ctr(func(c *arvados.Container) { c.RuntimeConstraints.GPU.DeviceCount = 2 }), 0,
			Resources{VCPUs: 1, MemMiB: 1024, GPUs: 2}},
		{"GPUs in the old CUDA form",
			ctr(func(c *arvados.Container) { c.RuntimeConstraints.CUDA.DeviceCount = 1 }), 0,
			Resources{VCPUs: 1, MemMiB: 1024, GPUs: 1}},
		{"max_run_time in minutes, rounded up",
			ctr(func(c *arvados.Container) { c.SchedulingParameters.MaxRunTime = 3601 }), 0,
			Resources{VCPUs: 1, MemMiB: 1024, MaxRunMinutes: 61}},
		{"partitions pass through",
			ctr(func(c *arvados.Container) { c.SchedulingParameters.Partitions = []string{"a", "b_2.x-y"} }), 0,
			Resources{VCPUs: 1, MemMiB: 1024, Partitions: []string{"a", "b_2.x-y"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ComputeResources(tt.c, tt.reserve)
			if err != nil {
				t.Fatal(err)
			}
			if got.VCPUs != tt.want.VCPUs || got.MemMiB != tt.want.MemMiB || got.ScratchMiB != tt.want.ScratchMiB ||
				got.GPUs != tt.want.GPUs || got.MaxRunMinutes != tt.want.MaxRunMinutes || !slices.Equal(got.Partitions, tt.want.Partitions) {
				t.Errorf("ComputeResources = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestComputeResourcesRefusesInsaneValues(t *testing.T) {
	tests := []struct {
		name string
		c    arvados.Container
		want string
	}{
		{"no vcpus", ctr(func(c *arvados.Container) { c.RuntimeConstraints.VCPUs = 0 }), "vcpus"},
		{"absurd vcpus", ctr(func(c *arvados.Container) { c.RuntimeConstraints.VCPUs = 1 << 30 }), "vcpus"},
		{"no ram", ctr(func(c *arvados.Container) { c.RuntimeConstraints.RAM = 0 }), "ram"},
		{"more than a PiB of ram", ctr(func(c *arvados.Container) { c.RuntimeConstraints.RAM = 1<<50 + 1 }), "ram"},
		{"ram plus cache over a PiB", ctr(func(c *arvados.Container) {
			c.RuntimeConstraints.RAM = 1 << 50
			c.RuntimeConstraints.KeepCacheRAM = 1 << 50
		}), "memory"},
		{"negative keep_cache_ram", ctr(func(c *arvados.Container) { c.RuntimeConstraints.KeepCacheRAM = -1 }), "keep_cache_ram"},
		{"negative keep_cache_disk", ctr(func(c *arvados.Container) { c.RuntimeConstraints.KeepCacheDisk = -1 }), "keep_cache_disk"},
		{"a negative tmp capacity", ctr(func(c *arvados.Container) {
			c.Mounts = map[string]arvados.Mount{"/tmp": {Kind: "tmp", Capacity: -1}}
		}), "capacity"},
		{"tmp mounts adding up past a PiB", ctr(func(c *arvados.Container) {
			c.Mounts = map[string]arvados.Mount{"/a": {Kind: "tmp", Capacity: 1 << 50}, "/b": {Kind: "tmp", Capacity: 1 << 50}}
		}), "add up"},
		{"an absurd image manifest", ctr(func(c *arvados.Container) { c.ContainerImage = pdh("999999999999999") }), "scratch"},
		{"negative GPUs", ctr(func(c *arvados.Container) { c.RuntimeConstraints.GPU.DeviceCount = -1 }), "gpu"},
		{"absurd GPUs", ctr(func(c *arvados.Container) { c.RuntimeConstraints.CUDA.DeviceCount = 100000 }), "gpu"},
		{"a negative max_run_time", ctr(func(c *arvados.Container) { c.SchedulingParameters.MaxRunTime = -1 }), "max_run_time"},
		{"a hostile partition", ctr(func(c *arvados.Container) {
			c.SchedulingParameters.Partitions = []string{"debug;touch /tmp/x"}
		}), "partition"},
		{"a partition that looks like an option", ctr(func(c *arvados.Container) {
			c.SchedulingParameters.Partitions = []string{"-x"}
		}), "partition"},
		{"an empty partition", ctr(func(c *arvados.Container) { c.SchedulingParameters.Partitions = []string{""} }), "partition"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ComputeResources(tt.c, DefaultReserveRAM)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ComputeResources = %+v, %v; want an error about %s", res, err, tt.want)
			}
		})
	}
	if _, err := ComputeResources(ctr(), -1); err == nil {
		t.Error("a negative reserve was accepted")
	}
}

func TestImageSizeEstimate(t *testing.T) {
	tests := []struct {
		image string
		want  int64
	}{
		{pdh("0"), 0},
		{pdh("121"), 0},
		{pdh("122"), 64 << 20},
		{pdh("163"), 64 << 20},
		{pdh("164"), 128 << 20},
		{pdh("122") + "+K@zzzzz", 0},
		{"D41D8CD98F00B204E9800998ECF8427E+500", 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got := ImageSizeEstimate(tt.image); got != tt.want {
			t.Errorf("ImageSizeEstimate(%q) = %d, want %d", tt.image, got, tt.want)
		}
	}
}

func TestDefaultTemplateWithComputedResources(t *testing.T) {
	c := ctr(func(c *arvados.Container) {
		c.RuntimeConstraints = arvados.RuntimeConstraints{RAM: 4 << 30, VCPUs: 4, KeepCacheRAM: 256 << 20, GPU: arvados.GPU{DeviceCount: 1}}
		c.Mounts = map[string]arvados.Mount{"/tmp": {Kind: "tmp", Capacity: 10 << 30}}
		c.SchedulingParameters.Partitions = []string{"gpu"}
	})
	res, err := ComputeResources(c, DefaultReserveRAM)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := ParseTemplate(DefaultTemplateArgs())
	if err != nil {
		t.Fatal(err)
	}
	args, err := tmpl.Expand(c.UUID, res)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--mem=4902", "--cpus-per-task=4", "--tmp=10240", "--partition=gpu", "--gpus=1"}
	if !slices.Equal(args, want) {
		t.Errorf("args %q, want %q", args, want)
	}
}
