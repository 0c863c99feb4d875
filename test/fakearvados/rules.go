package fakearvados

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// The container state machine, as services/api/app/models/container.rb has it (this fake keeps
// Complete final).
var transitions = map[arvados.ContainerState][]arvados.ContainerState{
	arvados.Queued:  {arvados.Locked, arvados.Cancelled},
	arvados.Locked:  {arvados.Queued, arvados.Running, arvados.Cancelled},
	arvados.Running: {arvados.Complete, arvados.Cancelled},
}

// progressAttrs are what only the lock holder (or the container itself) may change.
var progressAttrs = []string{"progress", "runtime_status", "log", "output", "exit_code"}

// ignoredAttrs are dropped from an update, as the real server drops them.
var ignoredAttrs = map[string]bool{
	"kind": true, "etag": true, "href": true, "created_at": true, "modified_at": true,
	"modified_by_user_uuid": true, "modified_by_client_uuid": true,
}

// unstoredAttrs are real attributes whose values the fake does not keep (they are fixed); an
// update may repeat them unchanged.
var unstoredAttrs = map[string]bool{
	"owner_uuid": true, "cwd": true, "environment": true, "output_path": true,
	"runtime_user_uuid": true, "runtime_auth_scopes": true,
}

// lockLocked implements POST containers/{uuid}/lock. Callers hold s.mu for writing.
func (s *Server) lockLocked(tok *token, old *record) (*record, *apiError) {
	if old.c.State != arvados.Queued {
		return nil, rubyError(http.StatusUnprocessableEntity, "ArvadosModel::LockFailedError",
			"cannot lock when "+string(old.c.State))
	}
	return s.changeLocked(tok, old, map[string]json.RawMessage{"state": json.RawMessage(`"Locked"`)})
}

// unlockLocked implements POST containers/{uuid}/unlock. Callers hold s.mu for writing.
func (s *Server) unlockLocked(tok *token, old *record) (*record, *apiError) {
	if old.c.State != arvados.Locked {
		return nil, rubyError(http.StatusUnprocessableEntity, "ArvadosModel::InvalidStateTransitionError",
			"cannot unlock when "+string(old.c.State))
	}
	return s.changeLocked(tok, old, map[string]json.RawMessage{"state": json.RawMessage(`"Queued"`)})
}

// changeLocked applies an update's attributes to old with the real server's rules and stores
// the result. Callers hold s.mu for writing.
func (s *Server) changeLocked(tok *token, old *record, attrs map[string]json.RawMessage) (*record, *apiError) {
	n := old.clone()
	var keys []string
	for k := range attrs {
		if !ignoredAttrs[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := setAttr(n, k, attrs[k]); err != nil {
			return nil, err
		}
	}
	changed := changedAttrs(old, n, attrs, keys)

	if err := s.checkLockAndUnlock(tok, old, n); err != nil {
		return nil, err
	}
	errs, perr := s.validate(tok, old, n, changed)
	if perr != nil {
		return nil, perr
	}
	if len(errs) > 0 {
		return nil, errInvalid(errs...)
	}

	now := s.now()
	if n.c.State != old.c.State {
		if n.c.State == arvados.Running && n.startedAt == nil {
			n.startedAt = &now
		}
		if n.c.State.Final() && n.finishedAt == nil {
			n.finishedAt = &now
		}
		if old.c.State == arvados.Locked && n.c.State == arvados.Queued {
			n.c.RuntimeStatus = nil // clear_runtime_status_when_queued
		}
	}
	n.c.ModifiedAt = now
	s.putLocked(n)
	return n, nil
}

// checkLockAndUnlock are the real server's before_validation hooks: locking needs a priority
// and counts an attempt; unlocking needs the holder's token, and the unlock that reaches
// MaxDispatchAttempts cancels the container instead.
func (s *Server) checkLockAndUnlock(tok *token, old, n *record) *apiError {
	if old.c.State == arvados.Queued && n.c.State == arvados.Locked {
		if n.c.Priority <= 0 {
			return rubyError(http.StatusUnprocessableEntity, "ArvadosModel::LockFailedError",
				"cannot lock when priority<=0")
		}
		n.c.LockCount++
	}
	if old.c.State == arvados.Locked && n.c.State == arvados.Queued {
		if n.c.LockedByUUID != tok.uuid {
			return errPermission("locked by a different token")
		}
		if n.c.LockCount >= s.opts.MaxDispatchAttempts {
			n.c.State = arvados.Cancelled
			n.c.RuntimeStatus = map[string]any{"error": fmt.Sprintf(
				"Failed to start container.  Cancelled after exceeding 'Containers.MaxDispatchAttempts' (lock_count=%d)",
				n.c.LockCount)}
		}
	}
	return nil
}

// validate runs the real server's validations and returns their messages, or a permission error.
func (s *Server) validate(tok *token, old, n *record, changed []string) ([]string, *apiError) {
	var errs []string
	if n.c.Priority < 0 {
		errs = append(errs, "Priority must be greater than or equal to 0")
	}
	for _, k := range []string{"error", "errorDetail", "warning", "warningDetail", "activity"} {
		if v, ok := n.c.RuntimeStatus[k]; ok {
			if _, isString := v.(string); !isString {
				errs = append(errs, fmt.Sprintf("Runtime status '%s' value must be a string", k))
			}
		}
	}
	if n.c.State != old.c.State && !slices.Contains(transitions[old.c.State], n.c.State) {
		errs = append(errs, fmt.Sprintf("State cannot change from %s to %s", old.c.State, n.c.State))
	}

	// validate_change: which attributes may change, and by whom.
	permitted, known := permittedAttrs(old.c.State, n.c.State)
	switch {
	case old.c.State == arvados.Running && tok.container == old.c.UUID:
		// The container's own token may finish it but not change its priority or log.
		permitted = append(permitted, "finished_at")
		permitted = slices.DeleteFunc(permitted, func(a string) bool { return a == "log" || a == "priority" })
	case !tok.admin:
		return nil, errForbiddenUser()
	case n.c.LockedByUUID != "" && n.c.LockedByUUID != tok.uuid:
		// Another admin (a second dispatcher) may not touch progress fields.
		permitted = slices.DeleteFunc(permitted, func(a string) bool { return slices.Contains(progressAttrs, a) })
	}
	if known {
		for _, k := range changed {
			if !slices.Contains(permitted, k) {
				errs = append(errs, fmt.Sprintf("%s cannot be modified in this state (%s, %s)",
					humanize(k), rubyInspect(old.enc[fieldIndex[k]]), rubyInspect(encodedAttr(n, k))))
			}
		}
	}

	// validate_lock: locked_by_uuid follows the lock; a caller may only set what it would be.
	need := ""
	if n.c.State == arvados.Locked || n.c.State == arvados.Running {
		need = old.c.LockedByUUID
		if need == "" {
			need = tok.uuid
		}
	}
	if slices.Contains(changed, "locked_by_uuid") && n.c.LockedByUUID != need {
		errs = append(errs, "Locked by uuid can only change to "+need)
	}
	n.c.LockedByUUID = need
	return errs, nil
}

// permittedAttrs lists what may change when moving from old to the new state; known is false
// for a state the machine does not know (the transition check reports that).
func permittedAttrs(old, state arvados.ContainerState) ([]string, bool) {
	p := []string{"state"}
	switch state {
	case arvados.Locked:
		p = append(p, "priority", "runtime_status", "log", "lock_count")
	case arvados.Queued:
		p = append(p, "priority")
	case arvados.Running:
		p = append(p, "priority")
		p = append(p, progressAttrs...)
		if old != arvados.Running {
			p = append(p, "started_at")
		}
	case arvados.Complete:
		if old == arvados.Running {
			p = append(p, "finished_at")
			p = append(p, progressAttrs...)
		}
	case arvados.Cancelled:
		switch old {
		case arvados.Running:
			p = append(p, "finished_at")
			p = append(p, progressAttrs...)
		case arvados.Queued, arvados.Locked:
			p = append(p, "finished_at", "log", "runtime_status")
		}
	default:
		return p, false
	}
	return p, true
}

// changedAttrs lists the attributes (of keys, sorted) whose value differs from old's, treating
// null, {} and [] as equal as the real server does.
func changedAttrs(old, n *record, attrs map[string]json.RawMessage, keys []string) []string {
	n.encode()
	var changed []string
	for _, k := range keys {
		before := old.enc[fieldIndex[k]]
		after := encodedAttr(n, k)
		if unstoredAttrs[k] {
			after = canonicalJSON(attrs[k])
			before = canonicalJSON(before)
		}
		if !bytes.Equal(emptyToNull(before), emptyToNull(after)) {
			changed = append(changed, k)
		}
	}
	return changed
}

func encodedAttr(n *record, k string) []byte {
	if n.enc == nil {
		n.encode()
	}
	return n.enc[fieldIndex[k]]
}

func canonicalJSON(raw []byte) []byte {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	return mustJSON(v)
}

func emptyToNull(b []byte) []byte {
	switch string(b) {
	case "{}", "[]", `""`:
		return []byte("null")
	}
	return b
}

// humanize is Rails's attribute humanizer: "locked_by_uuid" → "Locked by uuid".
func humanize(attr string) string {
	s := strings.ReplaceAll(attr, "_", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// rubyInspect renders a JSON value roughly as Ruby's inspect would.
func rubyInspect(b []byte) string {
	if string(b) == "null" {
		return "nil"
	}
	return string(b)
}
