package fakearvados

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// visible reports whether tok can read r: admins read everything, a container's own token reads
// that container, and the plain user (who has no container requests here) reads nothing.
func visible(tok *token, r *record) bool {
	return tok.admin || (tok.container != "" && tok.container == r.c.UUID)
}

// plainUser is a non-admin user token that is not a container's runtime token.
func plainUser(tok *token) bool { return !tok.admin && tok.container == "" }

func (s *Server) currentToken(c *call) ([]byte, *apiError) {
	return objectJSON(tokenJSON(c.tok)), nil
}

// tokenJSON renders a token record. api_token is the token's own secret: the real server returns
// it to its owner (current) and to the lock holder (containers/{uuid}/auth).
func tokenJSON(t *token) map[string]any {
	return map[string]any{
		"kind":       "arvados#apiClientAuthorization",
		"etag":       "",
		"uuid":       t.uuid,
		"owner_uuid": t.userUUID,
		"api_token":  t.secret,
		"scopes":     []string{"all"},
		"expires_at": nil,
	}
}

func (s *Server) currentUser(c *call) ([]byte, *apiError) {
	return objectJSON(map[string]any{
		"kind":       "arvados#user",
		"etag":       "",
		"uuid":       c.tok.userUUID,
		"is_admin":   c.tok.admin,
		"is_active":  true,
		"email":      c.tok.userUUID + "@example.com",
		"username":   "user" + c.tok.userUUID[len(c.tok.userUUID)-1:],
		"first_name": "Test",
		"last_name":  "User",
		"full_name":  "Test User",
	}), nil
}

func (s *Server) listContainers(c *call) ([]byte, *apiError) {
	q, err := parseListQuery(c.p)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	cands := make([]*record, 0, len(s.recs))
	for _, r := range s.recs {
		if visible(c.tok, r) && q.match(r) {
			cands = append(cands, r)
		}
	}
	s.mu.RUnlock()
	return q.run(cands), nil
}

// selectParam reads "select" for a single-record response.
func selectParam(p params) ([]int, *apiError) {
	names, err := parseSelect(p)
	if err != nil {
		return nil, err
	}
	return selectIndexes(names), nil
}

func (s *Server) getContainer(c *call, uuid string) ([]byte, *apiError) {
	sel, err := selectParam(c.p)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	r := s.recs[uuid]
	s.mu.RUnlock()
	if r == nil || !visible(c.tok, r) {
		return nil, errNotFound()
	}
	return r.appendJSON(nil, sel), nil
}

func (s *Server) currentContainer(c *call) ([]byte, *apiError) {
	sel, err := selectParam(c.p)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	r := s.recs[c.tok.container]
	s.mu.RUnlock()
	if c.tok.container == "" || r == nil {
		return nil, &apiError{status: http.StatusNotFound, msgs: []string{"Token is not associated with a container."}}
	}
	return r.appendJSON(nil, sel), nil
}

// writable finds the record an update, lock or unlock acts on. Callers hold s.mu for writing.
func (s *Server) writable(tok *token, uuid string) (*record, *apiError) {
	r := s.recs[uuid]
	switch {
	case r == nil:
		return nil, errNotFound()
	case plainUser(tok):
		return nil, errForbiddenUser()
	case !visible(tok, r):
		return nil, errNotFound()
	}
	return r, nil
}

func (s *Server) updateContainer(c *call, uuid string) ([]byte, *apiError) {
	sel, err := selectParam(c.p)
	if err != nil {
		return nil, err
	}
	var attrs map[string]json.RawMessage
	if ok, jerr := c.p.decodeJSON("container", &attrs); !ok || jerr != nil || attrs == nil {
		return nil, errArgument("No container hash provided with request")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.writable(c.tok, uuid)
	if err != nil {
		return nil, err
	}
	n, err := s.changeLocked(c.tok, old, attrs)
	if err != nil {
		return nil, err
	}
	return n.appendJSON(nil, sel), nil
}

// lockContainer serves lock and unlock. Their responses hold only the fields the real server
// loads for them (uuid, state, priority, auth_uuid, locked_by_uuid) and kind.
func (s *Server) lockContainer(c *call, uuid string, unlock bool) ([]byte, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.writable(c.tok, uuid)
	if err != nil {
		return nil, err
	}
	var n *record
	if unlock {
		n, err = s.unlockLocked(c.tok, old)
	} else {
		n, err = s.lockLocked(c.tok, old)
	}
	if err != nil {
		return nil, err
	}
	return n.appendJSON(nil, selectIndexes(lockSelect)), nil
}

func (s *Server) containerAuth(c *call, uuid string) ([]byte, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.recs[uuid]
	if r == nil || (!visible(c.tok, r) && !plainUser(c.tok)) {
		return nil, errNotFound()
	}
	if r.c.LockedByUUID == "" || r.c.LockedByUUID != c.tok.uuid {
		return nil, errPermission("Not locked by your token")
	}
	t := s.authByContainer[uuid]
	if t == nil {
		return nil, errNotFound()
	}
	return objectJSON(tokenJSON(t)), nil
}

func (s *Server) createLog(c *call) ([]byte, *apiError) {
	var attrs map[string]json.RawMessage
	if ok, jerr := c.p.decodeJSON("log", &attrs); !ok || jerr != nil || attrs == nil {
		return nil, errArgument("No log hash provided with request")
	}
	var l arvados.Log
	var summary string
	for k, raw := range attrs {
		var err error
		switch k {
		case "object_uuid":
			err = json.Unmarshal(raw, &l.ObjectUUID)
		case "event_type":
			err = json.Unmarshal(raw, &l.EventType)
		case "properties":
			err = json.Unmarshal(raw, &l.Properties)
		case "summary":
			err = json.Unmarshal(raw, &summary)
		case "event_at", "owner_uuid", "kind", "etag", "created_at", "modified_at":
		default:
			return nil, rubyError(http.StatusUnprocessableEntity, "ActiveModel::UnknownAttributeError",
				"unknown attribute '"+k+"' for Log.")
		}
		if err != nil {
			return nil, errInvalid(humanize(k) + " is invalid: " + err.Error())
		}
	}
	s.mu.Lock()
	l.UUID = s.newUUIDLocked("57u5n")
	now := s.now()
	s.logs = append(s.logs, logRecord{log: l, createdAt: now, owner: c.tok.userUUID})
	s.mu.Unlock()
	ts := now.UTC().Format(timeFormat)
	return objectJSON(map[string]any{
		"kind":        "arvados#log",
		"etag":        strconv.FormatInt(now.UnixNano(), 36),
		"uuid":        l.UUID,
		"owner_uuid":  c.tok.userUUID,
		"object_uuid": l.ObjectUUID,
		"event_type":  l.EventType,
		"event_at":    ts,
		"summary":     summary,
		"properties":  orEmptyMap(l.Properties),
		"created_at":  ts,
		"modified_at": ts,
	}), nil
}
