package fakearvados

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
)

// apiError is an error answer: an HTTP status and the messages of its "errors" array.
type apiError struct {
	status int
	msgs   []string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, strings.Join(e.msgs, "; ")) }

// rubyError is how the real server words an exception it rescues: Ruby's inspect of it,
// e.g. "#<ArvadosModel::LockFailedError: cannot lock when Locked>".
func rubyError(status int, class, msg string) *apiError {
	return &apiError{status: status, msgs: []string{"#<" + class + ": " + msg + ">"}}
}

func errNotFound() *apiError {
	return &apiError{status: http.StatusNotFound, msgs: []string{"Path not found"}}
}

func errNotLoggedIn() *apiError {
	return &apiError{status: http.StatusUnauthorized, msgs: []string{"Not logged in"}}
}

func errArgument(format string, args ...any) *apiError {
	return rubyError(http.StatusUnprocessableEntity, "ArgumentError", fmt.Sprintf(format, args...))
}

func errPermission(msg string) *apiError {
	return rubyError(http.StatusForbidden, "ArvadosModel::PermissionDeniedError", msg)
}

// errForbiddenUser answers a non-admin user who tries to change a container.
func errForbiddenUser() *apiError {
	return errPermission("ArvadosModel::PermissionDeniedError")
}

func errInvalid(msgs ...string) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, msgs: msgs}
}

// writeError writes e the way Arvados does: each message followed by the request id, and an
// error_token of the form "<unix time>+<8 hex digits>".
func (s *Server) writeError(w http.ResponseWriter, reqID string, e *apiError) {
	msgs := make([]string, len(e.msgs))
	for i, m := range e.msgs {
		msgs[i] = m + " (" + reqID + ")"
	}
	body, _ := json.Marshal(struct {
		Errors     []string `json:"errors"`
		ErrorToken string   `json:"error_token"`
	}{msgs, fmt.Sprintf("%d+%08x", s.now().Unix(), rand.Uint32())})
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
