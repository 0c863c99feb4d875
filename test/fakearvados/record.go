package fakearvados

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// record is one container as the fake stores it: the fields the dispatcher's type knows plus the
// server-side fields a real record has. Records are immutable once stored: a change builds a new
// record, so readers can render one after releasing the lock.
type record struct {
	c          arvados.Container
	log        string
	output     string
	progress   float64
	startedAt  *time.Time
	finishedAt *time.Time
	authUUID   string
	version    uint64

	// enc holds each field's JSON encoding, indexed like fields; built by encode.
	enc [][]byte
}

// Field names in the order a record renders them. The first ones are Arvados's common fields.
var fields = []string{
	"kind", "etag", "uuid", "owner_uuid", "created_at", "modified_at", "modified_by_user_uuid",
	"command", "container_image", "cwd", "environment", "exit_code", "finished_at",
	"locked_by_uuid", "log", "mounts", "output", "output_path", "priority", "progress",
	"runtime_constraints", "runtime_status", "started_at", "state", "auth_uuid",
	"scheduling_parameters", "runtime_user_uuid", "runtime_auth_scopes", "lock_count",
}

var fieldIndex = func() map[string]int {
	m := make(map[string]int, len(fields))
	for i, f := range fields {
		m[f] = i
	}
	return m
}()

// lockSelect is what real Arvados returns from lock and unlock: it loads only these columns.
var lockSelect = []string{"uuid", "state", "priority", "auth_uuid", "locked_by_uuid"}

// timeFormat is how Arvados writes timestamps: UTC with nine fractional digits.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func jsonTime(t time.Time) []byte {
	return []byte(`"` + t.UTC().Format(timeFormat) + `"`)
}

func jsonTimePtr(t *time.Time) []byte {
	if t == nil {
		return []byte("null")
	}
	return jsonTime(*t)
}

// jsonNullString encodes "" as null, as Arvados does for unset uuid and text columns.
func jsonNullString(s string) []byte {
	if s == "" {
		return []byte("null")
	}
	return mustJSON(s)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own well-typed values reach here.
		panic("fakearvados: encode: " + err.Error())
	}
	return b
}

// encode fills r.enc from r's fields.
func (r *record) encode() {
	c := &r.c
	enc := make([][]byte, len(fields))
	for i, f := range fields {
		var b []byte
		switch f {
		case "kind":
			b = []byte(`"arvados#container"`)
		case "etag":
			b = []byte(`"` + strconv.FormatUint(r.version, 36) + `"`)
		case "uuid":
			b = mustJSON(c.UUID)
		case "owner_uuid":
			b = []byte(`"` + systemUserUUID(c.UUID) + `"`)
		case "created_at":
			b = jsonTime(c.CreatedAt)
		case "modified_at":
			b = jsonTime(c.ModifiedAt)
		case "modified_by_user_uuid":
			b = []byte(`"` + adminUserUUID + `"`)
		case "command":
			b = mustJSON(orEmpty(c.Command))
		case "container_image":
			b = mustJSON(c.ContainerImage)
		case "cwd":
			b = []byte(`"."`)
		case "environment":
			b = []byte(`{}`)
		case "exit_code":
			b = mustJSON(c.ExitCode)
		case "finished_at":
			b = jsonTimePtr(r.finishedAt)
		case "locked_by_uuid":
			b = jsonNullString(c.LockedByUUID)
		case "log":
			b = jsonNullString(r.log)
		case "mounts":
			b = mustJSON(orEmptyMap(c.Mounts))
		case "output":
			b = jsonNullString(r.output)
		case "output_path":
			b = []byte(`"/out"`)
		case "priority":
			b = strconv.AppendInt(nil, c.Priority, 10)
		case "progress":
			b = mustJSON(r.progress)
		case "runtime_constraints":
			b = mustJSON(c.RuntimeConstraints)
		case "runtime_status":
			b = mustJSON(orEmptyMap(c.RuntimeStatus))
		case "started_at":
			b = jsonTimePtr(r.startedAt)
		case "state":
			b = mustJSON(string(c.State))
		case "auth_uuid":
			b = jsonNullString(r.authUUID)
		case "scheduling_parameters":
			b = mustJSON(c.SchedulingParameters)
		case "runtime_user_uuid":
			b = []byte(`"` + runtimeUserUUID + `"`)
		case "runtime_auth_scopes":
			b = []byte(`["all"]`)
		case "lock_count":
			b = strconv.AppendInt(nil, int64(c.LockCount), 10)
		}
		enc[i] = b
	}
	r.enc = enc
}

// systemUserUUID is the owner of every container: the cluster's system user.
func systemUserUUID(uuid string) string {
	if len(uuid) >= 5 {
		return uuid[:5] + "-tpzed-000000000000000"
	}
	return "zzzzz-tpzed-000000000000000"
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyMap[M ~map[K]V, K comparable, V any](m M) M {
	if m == nil {
		return M{}
	}
	return m
}

// appendJSON writes r as a JSON object with the fields whose indexes are in sel (all if nil).
func (r *record) appendJSON(b []byte, sel []int) []byte {
	b = append(b, '{')
	if sel == nil {
		for i := range fields {
			b = appendField(b, i, r.enc[i], i == 0)
		}
	} else {
		for n, i := range sel {
			b = appendField(b, i, r.enc[i], n == 0)
		}
	}
	return append(b, '}')
}

func appendField(b []byte, i int, v []byte, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, fields[i]...)
	b = append(b, '"', ':')
	return append(b, v...)
}

// cloneContainer deep-copies c so that callers and the store never share maps or slices.
func cloneContainer(c arvados.Container) arvados.Container {
	c.Command = slices.Clone(c.Command)
	c.Mounts = maps.Clone(c.Mounts)
	c.RuntimeStatus = cloneAnyMap(c.RuntimeStatus)
	c.SchedulingParameters.Partitions = slices.Clone(c.SchedulingParameters.Partitions)
	c.RuntimeConstraints.GPU.HardwareTarget = slices.Clone(c.RuntimeConstraints.GPU.HardwareTarget)
	if c.ExitCode != nil {
		x := *c.ExitCode
		c.ExitCode = &x
	}
	return c
}

func cloneAnyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneAny(v)
	}
	return out
}

func cloneAny(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneAnyMap(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = cloneAny(x)
		}
		return out
	default:
		return v
	}
}

// clone returns a copy of r that a change may modify before it is stored.
func (r *record) clone() *record {
	n := *r
	n.c = cloneContainer(r.c)
	n.enc = nil
	return &n
}
