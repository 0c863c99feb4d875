package slurm

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

const (
	mib = int64(1) << 20
	pib = int64(1) << 50

	// DefaultReserveRAM is added to every job's memory for crunch-run, arv-mount and the
	// container runtime (the incumbent's ReserveExtraRAM default).
	DefaultReserveRAM = 550 * mib

	// Sanity limits: a container record outside them is refused, never passed to sbatch.
	maxBytes      = pib                         // any size, and any sum of sizes
	maxVCPUs      = 100_000                     // cores per job
	maxGPUs       = 1024                        // GPUs per job
	maxRunSeconds = int64(10 * 365 * 24 * 3600) // ten years
)

// Resources are what a container asks Slurm for, in the units the template uses.
type Resources struct {
	VCPUs int
	// MemMiB is ram + keep_cache_ram + the reserve, in MiB rounded up (%M).
	MemMiB int64
	// ScratchMiB is the scratch space, in MiB rounded up (%T); see ScratchBytes.
	ScratchMiB int64
	// Partitions are the container's scheduling partitions (%P), validated.
	Partitions []string
	// GPUs is the number of GPUs asked for (%G); 0 for none.
	GPUs int
	// MaxRunMinutes is max_run_time in minutes rounded up (%W); 0 for no limit.
	MaxRunMinutes int64
}

// partitionRe is what a partition name may look like; anything else (a ";", a space, a
// comma that would split the list differently, a leading "-") is refused.
var partitionRe = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*$`)

// ValidPartition reports whether p is an acceptable partition name.
func ValidPartition(p string) bool { return len(p) <= 128 && partitionRe.MatchString(p) }

// ComputeResources computes a container's resources the way the incumbent dispatcher does,
// and refuses values outside sane ranges. reserveRAM is in bytes (DefaultReserveRAM).
func ComputeResources(c arvados.Container, reserveRAM int64) (Resources, error) {
	rc := c.RuntimeConstraints
	var res Resources
	switch {
	case reserveRAM < 0 || reserveRAM > maxBytes:
		return res, fmt.Errorf("reserve RAM %d out of range", reserveRAM)
	case rc.VCPUs < 1 || rc.VCPUs > maxVCPUs:
		return res, fmt.Errorf("vcpus %d out of range 1..%d", rc.VCPUs, maxVCPUs)
	case rc.RAM < 1 || rc.RAM > maxBytes:
		return res, fmt.Errorf("ram %d out of range 1..%d", rc.RAM, maxBytes)
	case rc.KeepCacheRAM < 0 || rc.KeepCacheRAM > maxBytes:
		return res, fmt.Errorf("keep_cache_ram %d out of range 0..%d", rc.KeepCacheRAM, maxBytes)
	case rc.KeepCacheDisk < 0 || rc.KeepCacheDisk > maxBytes:
		return res, fmt.Errorf("keep_cache_disk %d out of range 0..%d", rc.KeepCacheDisk, maxBytes)
	case rc.GPU.DeviceCount < 0 || rc.CUDA.DeviceCount < 0 || rc.GPUCount() > maxGPUs:
		return res, fmt.Errorf("gpu device_count %d out of range 0..%d", rc.GPUCount(), maxGPUs)
	case c.SchedulingParameters.MaxRunTime < 0 || c.SchedulingParameters.MaxRunTime > maxRunSeconds:
		return res, fmt.Errorf("max_run_time %d out of range 0..%d", c.SchedulingParameters.MaxRunTime, maxRunSeconds)
	}
	mem := rc.RAM + rc.KeepCacheRAM + reserveRAM // each ≤ 1 PiB: no overflow
	if mem > maxBytes {
		return res, fmt.Errorf("memory %d bytes (ram+keep_cache_ram+reserve) exceeds %d", mem, maxBytes)
	}
	scratch, err := ScratchBytes(c)
	if err != nil {
		return res, err
	}
	for _, p := range c.SchedulingParameters.Partitions {
		if !ValidPartition(p) {
			return res, fmt.Errorf("invalid partition name %q", p)
		}
	}
	res = Resources{
		VCPUs:         rc.VCPUs,
		MemMiB:        ceilDiv(mem, mib),
		ScratchMiB:    ceilDiv(scratch, mib),
		Partitions:    c.SchedulingParameters.Partitions,
		GPUs:          rc.GPUCount(),
		MaxRunMinutes: ceilDiv(c.SchedulingParameters.MaxRunTime, 60),
	}
	return res, nil
}

// ScratchBytes is the scratch space a container needs, as the incumbent estimates it
// (lib/dispatchcloud EstimateScratchSpace): the sum of its tmp mounts' capacities, raised to
// at least the image size (the image is loaded through it), plus the image size again (the
// unpacked image), plus keep_cache_disk.
func ScratchBytes(c arvados.Container) (int64, error) {
	var tmp int64
	for path, m := range c.Mounts {
		if m.Kind != "tmp" {
			continue
		}
		if m.Capacity < 0 || m.Capacity > maxBytes {
			return 0, fmt.Errorf("mount %s: capacity %d out of range 0..%d", path, m.Capacity, maxBytes)
		}
		if tmp += m.Capacity; tmp > maxBytes {
			return 0, fmt.Errorf("tmp mounts' capacities add up to more than %d", maxBytes)
		}
	}
	kcd := c.RuntimeConstraints.KeepCacheDisk
	if kcd < 0 || kcd > maxBytes {
		return 0, fmt.Errorf("keep_cache_disk %d out of range 0..%d", kcd, maxBytes)
	}
	image := ImageSizeEstimate(c.ContainerImage)
	scratch := max(tmp, image) + image + kcd // each ≤ 1 PiB + 1: no overflow
	if scratch > maxBytes {
		return 0, fmt.Errorf("scratch space %d bytes out of range 0..%d", scratch, maxBytes)
	}
	return scratch, nil
}

var pdhRe = regexp.MustCompile(`^[0-9a-f]{32}\+([0-9]{1,15})$`)

// ImageSizeEstimate estimates the disk space a container image takes, in bytes, from its
// portable data hash alone, as the incumbent does (estimateDockerImageSize): an image
// collection made by arv-keepdocker has one file, so its manifest is about 80 characters plus
// 42 per ≤64 MiB block. Anything that is not a bare portable data hash counts as 0.
func ImageSizeEstimate(containerImage string) int64 {
	m := pdhRe.FindStringSubmatch(containerImage)
	if m == nil {
		return 0
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n < 122 {
		return 0
	}
	blocks := (n - 80) / 42
	if blocks > maxBytes/(64*mib) {
		return maxBytes + 1 // absurd; ScratchBytes refuses it
	}
	return blocks * 64 * mib
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
