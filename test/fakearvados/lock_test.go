package fakearvados_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

func TestLock(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})

	t.Run("locking a queued container with priority takes the lock for the caller's token", func(t *testing.T) {
		uuid := h.seedOne(arvados.Container{Priority: 1})
		r := h.lock(fakearvados.AdminToken, uuid)
		wantStatus(t, r, 200)
		m := r.obj(t)
		if m["state"] != "Locked" || m["locked_by_uuid"] != fakearvados.AdminTokenUUID || m["uuid"] != uuid {
			t.Fatalf("lock answered %v", m)
		}
		// The real server loads only these columns for lock and unlock.
		if got := sorted(keys(m)); !slices.Equal(got, []string{"auth_uuid", "kind", "locked_by_uuid", "priority", "state", "uuid"}) {
			t.Fatalf("lock answered fields %v", got)
		}
		c := h.container(uuid)
		if c.State != arvados.Locked || c.LockCount != 1 || c.LockedByUUID != fakearvados.AdminTokenUUID {
			t.Fatalf("after lock: %+v", c)
		}
		if m["auth_uuid"] == nil || m["auth_uuid"] != h.s.AuthUUID(uuid) {
			t.Fatalf("a locked container has a runtime token: auth_uuid %v, want %s", m["auth_uuid"], h.s.AuthUUID(uuid))
		}
	})
	tests := []struct {
		name   string
		seed   arvados.Container
		token  string
		status int
		msg    string
	}{
		{"locking a locked container is a 422", arvados.Container{Priority: 1, State: arvados.Locked, LockedByUUID: fakearvados.AdminTokenUUID},
			fakearvados.AdminToken, 422, "#<ArvadosModel::LockFailedError: cannot lock when Locked>"},
		{"locking a container with priority 0 is a 422", arvados.Container{Priority: 0},
			fakearvados.AdminToken, 422, "#<ArvadosModel::LockFailedError: cannot lock when priority<=0>"},
		{"locking a running container is a 422", arvados.Container{Priority: 1, State: arvados.Running, LockedByUUID: fakearvados.AdminTokenUUID},
			fakearvados.AdminToken, 422, "cannot lock when Running"},
		{"locking a cancelled container is a 422", arvados.Container{Priority: 1, State: arvados.Cancelled},
			fakearvados.AdminToken, 422, "cannot lock when Cancelled"},
		{"a non-admin user may not lock", arvados.Container{Priority: 1},
			fakearvados.UserToken, 403, "PermissionDeniedError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uuid := h.seedOne(tt.seed)
			before := h.container(uuid)
			wantError(t, h.lock(tt.token, uuid), tt.status, tt.msg)
			if after := h.container(uuid); after.State != before.State || after.LockCount != before.LockCount {
				t.Fatalf("a refused lock changed the container: %+v → %+v", before, after)
			}
		})
	}
}

func TestLockingTwiceIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuid := h.seedOne(arvados.Container{Priority: 1})
	wantStatus(t, h.lock(fakearvados.AdminToken, uuid), 200)
	wantError(t, h.lock(fakearvados.AdminToken, uuid), 422, "cannot lock when Locked")
	wantError(t, h.lock(fakearvados.Dispatcher2Token, uuid), 422, "cannot lock when Locked")
	if c := h.container(uuid); c.LockCount != 1 || c.LockedByUUID != fakearvados.AdminTokenUUID {
		t.Fatalf("after a refused second lock: %+v", c)
	}
}

func TestOnlyOneOfTwoRacingDispatchersGetsTheLock(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuids := h.s.SeedN(20, arvados.Container{Priority: 1})
	var wg sync.WaitGroup
	results := make([][2]int, len(uuids))
	for i, uuid := range uuids {
		for j, tok := range []string{fakearvados.AdminToken, fakearvados.Dispatcher2Token} {
			wg.Go(func() { results[i][j] = h.lock(tok, uuid).status })
		}
	}
	wg.Wait()
	for i, r := range results {
		if !(r == [2]int{200, 422} || r == [2]int{422, 200}) {
			t.Errorf("container %d: lock statuses %v, want one 200 and one 422", i, r)
		}
		if c := h.container(uuids[i]); c.LockCount != 1 {
			t.Errorf("container %d: lock_count %d after one successful lock", i, c.LockCount)
		}
	}
}

func TestUnlock(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})

	t.Run("the holder's unlock requeues, clears the lock, the runtime token and runtime_status", func(t *testing.T) {
		uuid := h.seedOne(arvados.Container{Priority: 1})
		wantStatus(t, h.lock(fakearvados.AdminToken, uuid), 200)
		wantStatus(t, h.update(fakearvados.AdminToken, uuid, map[string]any{"runtime_status": map[string]any{"warning": "slurm is slow"}}), 200)
		r := h.unlock(fakearvados.AdminToken, uuid)
		wantStatus(t, r, 200)
		m := r.obj(t)
		if m["state"] != "Queued" || m["locked_by_uuid"] != nil || m["auth_uuid"] != nil {
			t.Fatalf("unlock answered %v", m)
		}
		c := h.container(uuid)
		if c.State != arvados.Queued || c.LockedByUUID != "" || len(c.RuntimeStatus) != 0 || c.LockCount != 1 {
			t.Fatalf("after unlock: %+v", c)
		}
	})
	t.Run("unlocking a container locked by another token is a 403", func(t *testing.T) {
		uuid := h.seedOne(arvados.Container{Priority: 1})
		wantStatus(t, h.lock(fakearvados.Dispatcher2Token, uuid), 200)
		wantError(t, h.unlock(fakearvados.AdminToken, uuid), 403, "#<ArvadosModel::PermissionDeniedError: locked by a different token>")
		if c := h.container(uuid); c.State != arvados.Locked || c.LockedByUUID != fakearvados.Dispatcher2TokenUUID {
			t.Fatalf("a refused unlock changed the container: %+v", c)
		}
	})
	for _, st := range []arvados.ContainerState{arvados.Queued, arvados.Running, arvados.Complete, arvados.Cancelled} {
		t.Run("unlocking a "+string(st)+" container is a 422", func(t *testing.T) {
			c := arvados.Container{Priority: 1, State: st}
			if st == arvados.Running {
				c.LockedByUUID = fakearvados.AdminTokenUUID
			}
			uuid := h.seedOne(c)
			wantError(t, h.unlock(fakearvados.AdminToken, uuid), 422,
				"#<ArvadosModel::InvalidStateTransitionError: cannot unlock when "+string(st)+">")
		})
	}
	t.Run("a non-admin user may not unlock", func(t *testing.T) {
		uuid := h.seedOne(arvados.Container{Priority: 1, State: arvados.Locked, LockedByUUID: fakearvados.AdminTokenUUID})
		wantError(t, h.unlock(fakearvados.UserToken, uuid), 403, "PermissionDeniedError")
	})
}

func TestTheUnlockThatReachesMaxDispatchAttemptsCancels(t *testing.T) {
	t.Parallel()
	for _, max := range []int{10, 3} {
		t.Run("with MaxDispatchAttempts "+jsonParam(t, max), func(t *testing.T) {
			opts := fakearvados.Options{}
			if max != 10 {
				opts.MaxDispatchAttempts = max // 10 is the default
			}
			h := newHarness(t, opts)
			uuid := h.seedOne(arvados.Container{Priority: 1})
			for attempt := 1; attempt <= max; attempt++ {
				wantStatus(t, h.lock(fakearvados.AdminToken, uuid), 200)
				r := h.unlock(fakearvados.AdminToken, uuid)
				wantStatus(t, r, 200)
				state := r.obj(t)["state"]
				if attempt < max && state != "Queued" {
					t.Fatalf("unlock %d answered state %v, want Queued", attempt, state)
				}
				if attempt == max && state != "Cancelled" {
					t.Fatalf("unlock %d answered state %v, want Cancelled", attempt, state)
				}
			}
			c := h.container(uuid)
			msg, _ := c.RuntimeStatus["error"].(string)
			want := "Failed to start container.  Cancelled after exceeding 'Containers.MaxDispatchAttempts' (lock_count=" + jsonParam(t, max) + ")"
			if c.State != arvados.Cancelled || msg != want || c.LockCount != max || c.LockedByUUID != "" {
				t.Fatalf("after the last unlock: state %s, lock_count %d, locked_by %q, runtime_status.error %q; want Cancelled, %d, none, %q",
					c.State, c.LockCount, c.LockedByUUID, msg, max, want)
			}
			wantError(t, h.lock(fakearvados.AdminToken, uuid), 422, "cannot lock when Cancelled")
		})
	}
}

func TestContainerAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuid := h.seedOne(arvados.Container{Priority: 1})
	path := "/arvados/v1/containers/" + uuid + "/auth"

	wantError(t, h.do("GET", path, fakearvados.AdminToken, nil), 403, "Not locked by your token")
	wantStatus(t, h.lock(fakearvados.AdminToken, uuid), 200)
	wantError(t, h.do("GET", path, fakearvados.Dispatcher2Token, nil), 403, "Not locked by your token")
	wantError(t, h.do("GET", path, fakearvados.UserToken, nil), 403, "Not locked by your token")

	r := h.do("GET", path, fakearvados.AdminToken, nil)
	wantStatus(t, r, 200)
	m := r.obj(t)
	secret, _ := m["api_token"].(string)
	if m["kind"] != "arvados#apiClientAuthorization" || m["uuid"] != h.s.AuthUUID(uuid) || secret == "" {
		t.Fatalf("auth answered %v", m)
	}

	// The runtime token works: it reads its own container, and containers/current names it.
	cur := h.do("GET", "/arvados/v1/containers/current", secret, nil)
	wantStatus(t, cur, 200)
	if cur.obj(t)["uuid"] != uuid {
		t.Fatalf("containers/current = %s", cur.body)
	}
	wantError(t, h.do("GET", "/arvados/v1/containers/current", fakearvados.AdminToken, nil), 404, "Token is not associated with a container.")

	// Once the container is requeued its token is revoked.
	wantStatus(t, h.unlock(fakearvados.AdminToken, uuid), 200)
	wantError(t, h.do("GET", "/arvados/v1/containers/"+uuid, secret, nil), 401, "Not logged in")
	if strings.Contains(string(h.do("GET", "/arvados/v1/containers/"+uuid, fakearvados.AdminToken, nil).body), secret) {
		t.Fatal("a container record shows its runtime token's secret")
	}
}
