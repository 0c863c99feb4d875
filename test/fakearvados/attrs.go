package fakearvados

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// setAttr decodes one update attribute into n.
func setAttr(n *record, k string, raw json.RawMessage) *apiError {
	var err error
	switch k {
	case "state":
		var v *string
		if err = json.Unmarshal(raw, &v); err == nil {
			n.c.State = arvados.ContainerState(deref(v))
		}
	case "priority":
		var v int64
		if v, err = decodeInt(raw); err == nil {
			n.c.Priority = v
		}
	case "lock_count":
		var v int64
		if v, err = decodeInt(raw); err == nil {
			n.c.LockCount = int(v)
		}
	case "exit_code":
		if string(raw) == "null" {
			n.c.ExitCode = nil
		} else {
			var v int64
			if v, err = decodeInt(raw); err == nil {
				x := int(v)
				n.c.ExitCode = &x
			}
		}
	case "locked_by_uuid", "auth_uuid", "log", "output", "uuid", "container_image":
		var v *string
		if err = json.Unmarshal(raw, &v); err == nil {
			*stringAttr(n, k) = deref(v)
		}
	case "progress":
		var v *float64
		if err = json.Unmarshal(raw, &v); err == nil {
			n.progress = 0
			if v != nil {
				n.progress = *v
			}
		}
	case "runtime_status":
		var v map[string]any
		if err = json.Unmarshal(raw, &v); err == nil {
			n.c.RuntimeStatus = v
		}
	case "started_at", "finished_at":
		var t *time.Time
		if t, err = decodeTime(raw); err == nil {
			if k == "started_at" {
				n.startedAt = t
			} else {
				n.finishedAt = t
			}
		}
	case "command":
		var v []string
		if err = json.Unmarshal(raw, &v); err == nil {
			n.c.Command = v
		}
	case "mounts":
		var v map[string]arvados.Mount
		if err = json.Unmarshal(raw, &v); err == nil {
			n.c.Mounts = v
		}
	case "runtime_constraints":
		var v arvados.RuntimeConstraints
		if err = json.Unmarshal(raw, &v); err == nil {
			n.c.RuntimeConstraints = v
		}
	case "scheduling_parameters":
		var v arvados.SchedulingParameters
		if err = json.Unmarshal(raw, &v); err == nil {
			n.c.SchedulingParameters = v
		}
	default:
		if !unstoredAttrs[k] {
			return rubyError(http.StatusUnprocessableEntity, "ActiveModel::UnknownAttributeError",
				fmt.Sprintf("unknown attribute '%s' for Container.", k))
		}
	}
	if err != nil {
		return errInvalid(fmt.Sprintf("%s is invalid: %v", humanize(k), err))
	}
	return nil
}

func stringAttr(n *record, k string) *string {
	switch k {
	case "locked_by_uuid":
		return &n.c.LockedByUUID
	case "auth_uuid":
		return &n.authUUID
	case "log":
		return &n.log
	case "output":
		return &n.output
	case "uuid":
		return &n.c.UUID
	default:
		return &n.c.ContainerImage
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// decodeInt accepts a JSON integer or a string holding one (Rails casts both).
func decodeInt(raw json.RawMessage) (int64, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(strings.TrimSpace(s))
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("not an integer: %s", raw)
	}
	return n, nil
}

func decodeTime(raw json.RawMessage) (*time.Time, error) {
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, nil
	}
	t, err := parseTime(*s)
	if err != nil {
		return nil, err
	}
	return &t, nil
}
