package fakearvados

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// ErrNotFound is returned by the test controls for an unknown container uuid.
var ErrNotFound = errors.New("no such container")

// ErrUnknownState is returned by SetState for a state that is not one of the five.
var ErrUnknownState = errors.New("unknown container state")

const lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomString(n int, alphabet string) string {
	var b strings.Builder
	b.Grow(n)
	for range n {
		b.WriteByte(alphabet[rand.N(len(alphabet))])
	}
	return b.String()
}

// newUUIDLocked returns an unused uuid of the given type ("dz642" containers, "57u5n" logs,
// "gj3su" tokens). Callers hold s.mu for writing.
func (s *Server) newUUIDLocked(infix string) string {
	for {
		u := s.opts.ClusterID + "-" + infix + "-" + randomString(15, lowerAlnum)
		if _, taken := s.recs[u]; !taken {
			return u
		}
	}
}

// putLocked stores n as the new version of its record: it gives the container a runtime token
// while it is Locked or Running (and revokes it otherwise), bumps the version and encodes it.
// Callers hold s.mu for writing.
func (s *Server) putLocked(n *record) {
	uuid := n.c.UUID
	needAuth := n.c.State == arvados.Locked || n.c.State == arvados.Running
	t := s.authByContainer[uuid]
	switch {
	case needAuth && t == nil:
		t = &token{
			uuid:      s.opts.ClusterID + "-gj3su-" + randomString(15, lowerAlnum),
			secret:    randomString(50, lowerAlnum),
			userUUID:  runtimeUserUUID,
			container: uuid,
		}
		s.tokens[t.secret] = t
		s.authByContainer[uuid] = t
	case !needAuth && t != nil:
		delete(s.tokens, t.secret)
		delete(s.authByContainer, uuid)
		t = nil
	}
	n.authUUID = ""
	if t != nil {
		n.authUUID = t.uuid
	}
	if old := s.recs[uuid]; old != nil {
		n.version = old.version + 1
	} else {
		n.version = 1
	}
	n.encode()
	s.recs[uuid] = n
}

// Seed adds containers (or replaces those with the same uuid) and returns their uuids. Defaults:
// a new uuid "<cluster>-dz642-<15 random [a-z0-9]>" if empty, state Queued, created_at and
// modified_at now. A Locked or Running container gets a runtime token.
func (s *Server) Seed(cs ...arvados.Container) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	uuids := make([]string, 0, len(cs))
	for _, c := range cs {
		uuids = append(uuids, s.seedLocked(cloneContainer(c)))
	}
	return uuids
}

// SeedN adds n copies of tmpl with fresh uuids and distinct priorities tmpl.Priority+i.
func (s *Server) SeedN(n int, tmpl arvados.Container) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	uuids := make([]string, 0, n)
	for i := range n {
		c := cloneContainer(tmpl)
		c.UUID = ""
		c.Priority = tmpl.Priority + int64(i)
		uuids = append(uuids, s.seedLocked(c))
	}
	return uuids
}

func (s *Server) seedLocked(c arvados.Container) string {
	now := s.now()
	if c.UUID == "" {
		c.UUID = s.newUUIDLocked("dz642")
	}
	if c.State == "" {
		c.State = arvados.Queued
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if c.ModifiedAt.IsZero() {
		c.ModifiedAt = now
	}
	r := &record{c: c}
	if c.State == arvados.Running || c.State.Final() {
		r.startedAt = &now
	}
	if c.State.Final() {
		r.finishedAt = &now
	}
	s.putLocked(r)
	return c.UUID
}

// update applies f to a copy of the record and stores it. It is the path for test controls,
// which bypass the API's rules.
func (s *Server) update(uuid string, f func(r *record) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.recs[uuid]
	if old == nil {
		return ErrNotFound
	}
	n := old.clone()
	n.c.ModifiedAt = s.now()
	if err := f(n); err != nil {
		return err
	}
	n.c.UUID = uuid
	s.putLocked(n)
	return nil
}

// SetPriority sets a container's priority, as a user changing their request would.
func (s *Server) SetPriority(uuid string, p int64) error {
	err := s.update(uuid, func(r *record) error {
		r.c.Priority = p
		return nil
	})
	if err != nil {
		return fmt.Errorf("set priority of %s: %w", uuid, err)
	}
	return nil
}

// SetState moves a container to st without the API's transition rules (as crunch-run or an
// admin elsewhere would). Leaving Locked/Running clears locked_by_uuid and revokes the runtime
// token; started_at and finished_at are set as the real server sets them.
func (s *Server) SetState(uuid string, st arvados.ContainerState) error {
	err := s.update(uuid, func(r *record) error {
		if !knownState(st) {
			return fmt.Errorf("%w %q", ErrUnknownState, st)
		}
		r.c.State = st
		now := s.now()
		if st != arvados.Locked && st != arvados.Running {
			r.c.LockedByUUID = ""
		}
		if st == arvados.Running && r.startedAt == nil {
			r.startedAt = &now
		}
		if st.Final() && r.finishedAt == nil {
			r.finishedAt = &now
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set state of %s: %w", uuid, err)
	}
	return nil
}

// Mutate applies f to a copy of a container and stores the result, bypassing every rule (the
// uuid cannot change). Use it for what the other controls do not cover, e.g. exit_code.
func (s *Server) Mutate(uuid string, f func(c *arvados.Container)) error {
	err := s.update(uuid, func(r *record) error {
		f(&r.c)
		return nil
	})
	if err != nil {
		return fmt.Errorf("mutate %s: %w", uuid, err)
	}
	return nil
}

func knownState(st arvados.ContainerState) bool {
	switch st {
	case arvados.Queued, arvados.Locked, arvados.Running, arvados.Complete, arvados.Cancelled:
		return true
	}
	return false
}

// Container returns a copy of one container.
func (s *Server) Container(uuid string) (arvados.Container, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.recs[uuid]
	if r == nil {
		return arvados.Container{}, false
	}
	return cloneContainer(r.c), true
}

// Containers returns a copy of every container, sorted by uuid.
func (s *Server) Containers() []arvados.Container {
	s.mu.RLock()
	out := make([]arvados.Container, 0, len(s.recs))
	for _, r := range s.recs {
		out = append(out, cloneContainer(r.c))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b arvados.Container) int { return strings.Compare(a.UUID, b.UUID) })
	return out
}

// Logs returns the log records created through the API, oldest first.
func (s *Server) Logs() []arvados.Log {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]arvados.Log, 0, len(s.logs))
	for _, l := range s.logs {
		c := l.log
		c.Properties = cloneAnyMap(c.Properties)
		out = append(out, c)
	}
	return out
}

// AuthUUID returns the uuid of a container's runtime token ("" when it has none).
func (s *Server) AuthUUID(uuid string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r := s.recs[uuid]; r != nil {
		return r.authUUID
	}
	return ""
}
