package arvados

import (
	"regexp"
	"time"
)

// ContainerState is the state of an Arvados container record.
type ContainerState string

// Container states and the transitions the API server allows:
// Queued→{Locked,Cancelled}; Locked→{Queued,Running,Cancelled}; Running→{Complete,Cancelled}.
const (
	Queued    ContainerState = "Queued"
	Locked    ContainerState = "Locked"
	Running   ContainerState = "Running"
	Complete  ContainerState = "Complete"
	Cancelled ContainerState = "Cancelled"
)

// Final reports whether no further transition is possible.
func (s ContainerState) Final() bool { return s == Complete || s == Cancelled }

// Container is the part of an Arvados container record that the dispatcher uses.
// Fields not asked for with select are left at their zero values.
type Container struct {
	UUID                 string               `json:"uuid"`
	State                ContainerState       `json:"state"`
	Priority             int64                `json:"priority"`
	LockedByUUID         string               `json:"locked_by_uuid"`
	LockCount            int                  `json:"lock_count"`
	CreatedAt            time.Time            `json:"created_at"`
	ModifiedAt           time.Time            `json:"modified_at"`
	ContainerImage       string               `json:"container_image"`
	Mounts               map[string]Mount     `json:"mounts"`
	RuntimeConstraints   RuntimeConstraints   `json:"runtime_constraints"`
	SchedulingParameters SchedulingParameters `json:"scheduling_parameters"`
	RuntimeStatus        map[string]any       `json:"runtime_status"`
	ExitCode             *int                 `json:"exit_code"`
	Command              []string             `json:"command,omitempty"`
}

// Mount is one entry of a container's mounts. Only kind and capacity matter to the dispatcher
// (the capacity of "tmp" mounts is scratch space to ask Slurm for).
type Mount struct {
	Kind     string `json:"kind"`
	Capacity int64  `json:"capacity,omitempty"`
}

// RuntimeConstraints are the resources a container asks for. Sizes are bytes.
type RuntimeConstraints struct {
	RAM           int64 `json:"ram"`
	VCPUs         int   `json:"vcpus"`
	KeepCacheRAM  int64 `json:"keep_cache_ram"`
	KeepCacheDisk int64 `json:"keep_cache_disk"`
	API           bool  `json:"API,omitempty"`
	GPU           GPU   `json:"gpu"`
	// CUDA is the older form of the GPU request (Arvados < 3.1).
	CUDA CUDA `json:"cuda"`
}

// GPU is the GPU request of Arvados ≥ 3.1.
type GPU struct {
	Stack          string   `json:"stack,omitempty"`
	DeviceCount    int      `json:"device_count"`
	DriverVersion  string   `json:"driver_version,omitempty"`
	HardwareTarget []string `json:"hardware_target,omitempty"`
	VRAM           int64    `json:"vram,omitempty"`
}

// CUDA is the GPU request of older Arvados versions.
type CUDA struct {
	DeviceCount        int    `json:"device_count"`
	DriverVersion      string `json:"driver_version,omitempty"`
	HardwareCapability string `json:"hardware_capability,omitempty"`
}

// GPUCount is the number of GPUs asked for, in either the new or the old form.
func (rc RuntimeConstraints) GPUCount() int {
	return max(rc.GPU.DeviceCount, rc.CUDA.DeviceCount)
}

// SchedulingParameters are hints for the dispatcher.
type SchedulingParameters struct {
	Partitions  []string `json:"partitions"`
	Preemptible bool     `json:"preemptible"`
	// MaxRunTime is in seconds; 0 means no limit.
	MaxRunTime int64 `json:"max_run_time"`
	Supervisor bool  `json:"supervisor"`
}

// APIClientAuthorization is the record of the token in use.
type APIClientAuthorization struct {
	UUID string `json:"uuid"`
	// APIToken is the secret. It is never logged; String() hides it.
	APIToken string `json:"api_token,omitempty"`
}

// String hides the token.
func (a APIClientAuthorization) String() string { return "APIClientAuthorization{" + a.UUID + "}" }

// Log is a record in the logs table; the dispatcher writes event_type "dispatch".
type Log struct {
	UUID       string         `json:"uuid,omitempty"`
	ObjectUUID string         `json:"object_uuid"`
	EventType  string         `json:"event_type"`
	Properties map[string]any `json:"properties"`
}

var containerUUIDRe = regexp.MustCompile(`^[a-z0-9]{5}-dz642-[a-z0-9]{15}$`)

// ValidContainerUUID reports whether s has the form of a container uuid. Anything else is not a
// container the dispatcher may submit or touch.
func ValidContainerUUID(s string) bool { return containerUUIDRe.MatchString(s) }

// ClusterID returns the first five characters of a valid uuid ("" otherwise).
func ClusterID(uuid string) string {
	if !ValidContainerUUID(uuid) {
		return ""
	}
	return uuid[:5]
}
