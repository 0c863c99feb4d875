package queue

import (
	"context"
	"regexp"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

// API is what the dispatcher needs from Arvados.
type API interface {
	CurrentToken(ctx context.Context) (arvados.APIClientAuthorization, error)
	ListContainers(ctx context.Context, p arvados.ListParams) (arvados.ContainerList, error)
	EachContainer(ctx context.Context, p arvados.ListParams, fn func(arvados.Container) error) error
	GetContainer(ctx context.Context, uuid string, selectFields ...string) (arvados.Container, error)
	Lock(ctx context.Context, uuid string) (arvados.Container, error)
	Unlock(ctx context.Context, uuid string) (arvados.Container, error)
	UpdateContainer(ctx context.Context, uuid string, u arvados.ContainerUpdate) (arvados.Container, error)
	CreateLog(ctx context.Context, l arvados.Log) (arvados.Log, error)
}

var _ API = (*arvados.Client)(nil)

// Submitter is what the dispatcher needs from Slurm directly; everything else goes through
// the watcher.
type Submitter interface {
	Submit(ctx context.Context, req slurm.SubmitRequest) (string, error)
}

var _ Submitter = slurm.Client(nil)

// Watcher is the part of *squeue.Watcher the dispatcher uses. It does not run the watcher.
type Watcher interface {
	Presence(uuid string) squeue.Presence
	AbsentInSnapshotAfter(uuid string, t time.Time) bool
	NoteSubmitted(uuid, jobID string, nice int, priority int64, at time.Time)
	NoteCancelled(uuid string, at time.Time)
	InitialNice(uuid string, priority int64) int
	SetWanted(w squeue.Wanted)
	Unreported() []string
	WaitSnapshotAfter(ctx context.Context, t time.Time) error
	Poke()
	Healthy() (bool, string)
}

var _ Watcher = (*squeue.Watcher)(nil)

var (
	tokenUUIDRe = regexp.MustCompile(`^[a-z0-9]{5}-gj3su-[a-z0-9]{15}$`)
	clusterIDRe = regexp.MustCompile(`^[a-z0-9]{5}$`)
)

// Fields the dispatcher reads. pollFields are enough to follow a container; fullFields are
// what a submit needs (resources, mounts for scratch, image size, partitions).
var (
	pollFields = []string{"uuid", "state", "priority", "locked_by_uuid", "lock_count",
		"runtime_status", "scheduling_parameters"}
	fullFields = []string{"uuid", "state", "priority", "locked_by_uuid", "lock_count", "created_at",
		"container_image", "mounts", "runtime_constraints", "scheduling_parameters", "runtime_status"}
)

// maxBatch is the most uuids one "uuid in [...]" request asks for (the server's page cap).
const maxBatch = 1000
