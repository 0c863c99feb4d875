package fakearvados_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

var allStates = []arvados.ContainerState{arvados.Queued, arvados.Locked, arvados.Running, arvados.Complete, arvados.Cancelled}

// seedIn seeds a container with priority 1 in state st, held by the admin token when the state
// has a holder.
func (h *harness) seedIn(st arvados.ContainerState) string {
	c := arvados.Container{Priority: 1, State: st}
	if st == arvados.Locked || st == arvados.Running {
		c.LockedByUUID = fakearvados.AdminTokenUUID
	}
	return h.seedOne(c)
}

func TestStateTransitionsByTheLockHolder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	legal := map[[2]arvados.ContainerState]bool{
		{arvados.Queued, arvados.Locked}:     true,
		{arvados.Queued, arvados.Cancelled}:  true,
		{arvados.Locked, arvados.Queued}:     true,
		{arvados.Locked, arvados.Running}:    true,
		{arvados.Locked, arvados.Cancelled}:  true,
		{arvados.Running, arvados.Complete}:  true,
		{arvados.Running, arvados.Cancelled}: true,
	}
	for _, from := range allStates {
		for _, to := range allStates {
			if from == to {
				continue
			}
			ok := legal[[2]arvados.ContainerState{from, to}]
			name := string(from) + " to " + string(to)
			if ok {
				name += " is allowed"
			} else {
				name += " is a 422"
			}
			t.Run(name, func(t *testing.T) {
				uuid := h.seedIn(from)
				r := h.update(fakearvados.AdminToken, uuid, map[string]any{"state": to})
				if !ok {
					wantError(t, r, 422, "State cannot change from "+string(from)+" to "+string(to))
					if got := h.container(uuid).State; got != from {
						t.Fatalf("a refused transition moved the container to %s", got)
					}
					return
				}
				wantStatus(t, r, 200)
				c := h.container(uuid)
				if c.State != to {
					t.Fatalf("state %s, want %s", c.State, to)
				}
				wantHolder := ""
				if to == arvados.Locked || to == arvados.Running {
					wantHolder = fakearvados.AdminTokenUUID
				}
				if c.LockedByUUID != wantHolder {
					t.Fatalf("locked_by_uuid %q, want %q", c.LockedByUUID, wantHolder)
				}
			})
		}
	}
}

func TestWhichFieldsAnUpdateMayChange(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	tests := []struct {
		name   string
		state  arvados.ContainerState
		attrs  map[string]any
		status int
		msg    string
	}{
		{"a locked container's priority may change", arvados.Locked, map[string]any{"priority": 5}, 200, ""},
		{"a locked container's priority may drop to 0", arvados.Locked, map[string]any{"priority": 0}, 200, ""},
		{"a locked container's runtime_status may change", arvados.Locked, map[string]any{"runtime_status": map[string]any{"warning": "w", "activity": "pending"}}, 200, ""},
		{"a locked container's log may change", arvados.Locked, map[string]any{"log": "d41d8cd98f00b204e9800998ecf8427e+0"}, 200, ""},
		{"a locked container's exit_code may not change", arvados.Locked, map[string]any{"exit_code": 0}, 422, "Exit code cannot be modified in this state"},
		{"a locked container's progress may not change", arvados.Locked, map[string]any{"progress": 0.5}, 422, "Progress cannot be modified in this state"},
		{"a locked container's command may not change", arvados.Locked, map[string]any{"command": []string{"rm", "-rf"}}, 422, "Command cannot be modified in this state"},
		{"a locked container may be cancelled with a reason", arvados.Locked, map[string]any{"state": "Cancelled", "runtime_status": map[string]any{"error": "sbatch: Invalid partition name specified"}}, 200, ""},
		{"a queued container's priority may change", arvados.Queued, map[string]any{"priority": 9}, 200, ""},
		{"a queued container's runtime_status may not change", arvados.Queued, map[string]any{"runtime_status": map[string]any{"error": "x"}}, 422, "Runtime status cannot be modified in this state"},
		{"a negative priority is invalid", arvados.Queued, map[string]any{"priority": -1}, 422, "Priority must be greater than or equal to 0"},
		{"a running container's exit_code and progress may change", arvados.Running, map[string]any{"exit_code": 1, "progress": 0.5}, 200, ""},
		{"a running container may complete with an exit code", arvados.Running, map[string]any{"state": "Complete", "exit_code": 0}, 200, ""},
		{"a running container may be cancelled with a reason", arvados.Running, map[string]any{"state": "Cancelled", "runtime_status": map[string]any{"error": "node failed"}}, 200, ""},
		{"a running container's started_at may not change", arvados.Running, map[string]any{"started_at": "2020-01-01T00:00:00Z"}, 422, "Started at cannot be modified in this state"},
		{"a complete container's priority may not change", arvados.Complete, map[string]any{"priority": 3}, 422, "Priority cannot be modified in this state"},
		{"a runtime_status error must be a string", arvados.Locked, map[string]any{"runtime_status": map[string]any{"error": 5}}, 422, "Runtime status 'error' value must be a string"},
		{"locked_by_uuid may not be given to another token", arvados.Locked, map[string]any{"locked_by_uuid": fakearvados.Dispatcher2TokenUUID}, 422, "Locked by uuid cannot be modified in this state"},
		{"an unknown attribute is refused", arvados.Locked, map[string]any{"nosuch": 1}, 422, "#<ActiveModel::UnknownAttributeError: unknown attribute 'nosuch' for Container.>"},
		{"the uuid may not change", arvados.Locked, map[string]any{"uuid": "zzzzz-dz642-000000000000000"}, 422, "Uuid cannot be modified in this state"},
		{"kind, etag and timestamps sent back are ignored", arvados.Locked, map[string]any{"kind": "arvados#container", "etag": "x", "created_at": "2001-01-01T00:00:00Z", "modified_at": "2001-01-01T00:00:00Z"}, 200, ""},
		{"unchanged fixed fields sent back are fine", arvados.Locked, map[string]any{"cwd": ".", "output_path": "/out", "environment": map[string]any{}}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uuid := h.seedIn(tt.state)
			before := h.container(uuid)
			r := h.update(fakearvados.AdminToken, uuid, tt.attrs)
			if tt.status != 200 {
				wantError(t, r, tt.status, tt.msg)
				if after := h.container(uuid); after.ModifiedAt != before.ModifiedAt {
					t.Fatal("a refused update changed the record")
				}
				return
			}
			wantStatus(t, r, 200)
			if p, ok := tt.attrs["priority"]; ok && h.container(uuid).Priority != int64(p.(int)) {
				t.Fatalf("priority %d, want %v", h.container(uuid).Priority, p)
			}
		})
	}
}

func TestAnUpdateAnswersTheRecordAndRecordsIt(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuid := h.seedIn(arvados.Locked)
	before := h.container(uuid)
	status := map[string]any{"error": "sbatch: Invalid partition name specified", "errorDetail": "partition nosuch"}
	r := h.update(fakearvados.AdminToken, uuid, map[string]any{"state": "Cancelled", "runtime_status": status})
	wantStatus(t, r, 200)
	m := r.obj(t)
	if m["state"] != "Cancelled" || m["locked_by_uuid"] != nil || m["finished_at"] == nil {
		t.Fatalf("update answered %v", m)
	}
	c := h.container(uuid)
	if c.RuntimeStatus["error"] != status["error"] || c.RuntimeStatus["errorDetail"] != status["errorDetail"] {
		t.Fatalf("runtime_status %v, want %v", c.RuntimeStatus, status)
	}
	if !c.ModifiedAt.After(before.ModifiedAt) {
		t.Fatalf("modified_at %v did not move past %v", c.ModifiedAt, before.ModifiedAt)
	}
}

func TestRuntimeStatusIsReplacedNotMerged(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuid := h.seedIn(arvados.Locked)
	wantStatus(t, h.update(fakearvados.AdminToken, uuid, map[string]any{"runtime_status": map[string]any{"warning": "a"}}), 200)
	wantStatus(t, h.update(fakearvados.AdminToken, uuid, map[string]any{"runtime_status": map[string]any{"activity": "b"}}), 200)
	if rs := h.container(uuid).RuntimeStatus; len(rs) != 1 || rs["activity"] != "b" {
		t.Fatalf("runtime_status %v, want only the second update's", rs)
	}
}

func TestUpdatesByOthersThanTheLockHolder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	other := fakearvados.Dispatcher2Token
	tests := []struct {
		name   string
		attrs  map[string]any
		status int
		msg    string
	}{
		{"another dispatcher may not requeue it", map[string]any{"state": "Queued"}, 403, "locked by a different token"},
		{"another dispatcher may not set its runtime_status", map[string]any{"runtime_status": map[string]any{"error": "x"}}, 422, "Runtime status cannot be modified in this state"},
		{"another dispatcher may not set its log", map[string]any{"log": "x"}, 422, "Log cannot be modified in this state"},
		{"another admin may change its priority, as the real server allows", map[string]any{"priority": 3}, 200, ""},
		{"another admin may cancel it, as the real server allows", map[string]any{"state": "Cancelled"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uuid := h.seedIn(arvados.Locked)
			r := h.update(other, uuid, tt.attrs)
			if tt.status != 200 {
				wantError(t, r, tt.status, tt.msg)
				return
			}
			wantStatus(t, r, 200)
		})
	}
	t.Run("a non-admin user may not update at all", func(t *testing.T) {
		for _, st := range allStates {
			wantError(t, h.update(fakearvados.UserToken, h.seedIn(st), map[string]any{"priority": 2}), 403, "PermissionDeniedError")
		}
	})
}

func TestAContainersOwnTokenMayFinishItButNotReprioritizeIt(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuid := h.seedOne(arvados.Container{Priority: 1})
	wantStatus(t, h.lock(fakearvados.AdminToken, uuid), 200)
	secret := h.do("GET", "/arvados/v1/containers/"+uuid+"/auth", fakearvados.AdminToken, nil).obj(t)["api_token"].(string)

	wantError(t, h.update(secret, uuid, map[string]any{"state": "Running"}), 403, "PermissionDeniedError")
	wantStatus(t, h.update(fakearvados.AdminToken, uuid, map[string]any{"state": "Running"}), 200)
	wantStatus(t, h.update(secret, uuid, map[string]any{"progress": 0.5}), 200)
	wantError(t, h.update(secret, uuid, map[string]any{"priority": 7}), 422, "Priority cannot be modified in this state")
	wantStatus(t, h.update(secret, uuid, map[string]any{"state": "Complete", "exit_code": 0}), 200)
	if c := h.container(uuid); c.State != arvados.Complete || c.ExitCode == nil || *c.ExitCode != 0 {
		t.Fatalf("after completion: %+v", c)
	}
}

func TestUpdateParameterEncodings(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	tests := []struct {
		name string
		send func(uuid string) resp
	}{
		{"a form field holding JSON", func(uuid string) resp {
			return h.update(fakearvados.AdminToken, uuid, map[string]any{"priority": 42})
		}},
		{"a JSON body with an object", func(uuid string) resp {
			return h.doJSON(http.MethodPut, "/arvados/v1/containers/"+uuid, fakearvados.AdminToken,
				map[string]any{"container": map[string]any{"priority": 42}})
		}},
		{"a JSON body with the object as a string", func(uuid string) resp {
			return h.doJSON(http.MethodPut, "/arvados/v1/containers/"+uuid, fakearvados.AdminToken,
				map[string]any{"container": `{"priority":42}`})
		}},
		{"PATCH with a form field", func(uuid string) resp {
			return h.do(http.MethodPatch, "/arvados/v1/containers/"+uuid, fakearvados.AdminToken, url.Values{"container": {`{"priority":"42"}`}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" works", func(t *testing.T) {
			uuid := h.seedIn(arvados.Locked)
			wantStatus(t, tt.send(uuid), 200)
			if p := h.container(uuid).Priority; p != 42 {
				t.Fatalf("priority %d, want 42", p)
			}
		})
	}
	t.Run("an update without a container hash is a 422", func(t *testing.T) {
		uuid := h.seedIn(arvados.Locked)
		wantError(t, h.do(http.MethodPut, "/arvados/v1/containers/"+uuid, fakearvados.AdminToken, url.Values{"priority": {"3"}}),
			422, "No container hash provided with request")
	})
	t.Run("an update honours select", func(t *testing.T) {
		uuid := h.seedIn(arvados.Locked)
		r := h.do(http.MethodPut, "/arvados/v1/containers/"+uuid, fakearvados.AdminToken,
			url.Values{"container": {`{"priority":3}`}, "select": {`["priority"]`}})
		wantStatus(t, r, 200)
		if got := sorted(keys(r.obj(t))); !slices.Equal(got, []string{"kind", "priority"}) {
			t.Fatalf("keys %v", got)
		}
	})
}

func TestCreatingALogRecord(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuid := h.seedIn(arvados.Locked)
	props := map[string]any{"text": "submitted job 42", "job_id": "42"}
	log := jsonParam(t, map[string]any{"object_uuid": uuid, "event_type": "dispatch", "properties": props})
	r := h.do(http.MethodPost, "/arvados/v1/logs", fakearvados.AdminToken, url.Values{"log": {log}})
	wantStatus(t, r, 200)
	m := r.obj(t)
	if m["kind"] != "arvados#log" || m["object_uuid"] != uuid || m["event_type"] != "dispatch" || m["uuid"] == "" {
		t.Fatalf("log answered %v", m)
	}
	logs := h.s.Logs()
	if len(logs) != 1 || logs[0].ObjectUUID != uuid || logs[0].EventType != "dispatch" || logs[0].Properties["job_id"] != "42" || logs[0].UUID != m["uuid"] {
		t.Fatalf("Logs() = %+v", logs)
	}
	wantError(t, h.do(http.MethodPost, "/arvados/v1/logs", fakearvados.AdminToken, url.Values{"log": {`{"nosuch":1}`}}), 422, "unknown attribute 'nosuch' for Log.")
	wantError(t, h.do(http.MethodPost, "/arvados/v1/logs", fakearvados.AdminToken, url.Values{}), 422, "No log hash provided with request")
}
