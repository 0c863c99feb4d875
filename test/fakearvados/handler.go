package fakearvados

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

const apiPrefix = "/arvados/v1/"

// call is one authenticated API request being served.
type call struct {
	r      *http.Request
	method string // after X-Http-Method-Override
	p      params
	tok    *token
}

func (s *Server) buildHandler() http.Handler {
	controls := s.controlHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_fake/") {
			controls.ServeHTTP(w, r)
			return
		}
		s.serveAPI(w, r)
	})
}

// countingWriter remembers the status and counts the body bytes written.
type countingWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (to abort it).
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveAPI runs one API request: request id, latency, outage and faults, then the endpoint.
// Every request is logged (without secrets) and counted.
func (s *Server) serveAPI(rw http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Done()
	start := time.Now()
	reqID := r.Header.Get("X-Request-Id")
	if reqID == "" {
		reqID = "req-" + randomString(20, lowerAlnum)
	}
	rw.Header().Set("X-Request-Id", reqID)
	w := &countingWriter{ResponseWriter: rw}
	method := r.Method
	if o := r.Header.Get("X-Http-Method-Override"); o != "" && r.Method == http.MethodPost {
		method = strings.ToUpper(o)
	}
	req := Request{Method: method, Path: r.URL.Path, Query: scrubQuery(r.URL.RawQuery), RequestID: reqID}
	var once sync.Once
	finish := func() {
		once.Do(func() {
			req.Status, req.RespBytes = w.status, w.bytes
			s.record(req)
			s.log.Debug("api request", zap.String("method", req.Method), zap.String("path", req.Path),
				zap.Int("status", req.Status), zap.String("token", req.Token), zap.String("request_id", reqID),
				zap.Duration("took", time.Since(start)))
		})
	}
	defer finish()

	if latency, _ := s.conditions(); latency > 0 && !s.wait(r, latency) {
		return
	}
	p, perr := readParams(r)
	tok, tokenLabel := s.identify(r, p)
	req.Token = tokenLabel
	if s.failInjected(w, reqID, method, r.URL.Path, finish) {
		return
	}
	var body []byte
	var err *apiError
	switch {
	case perr != nil:
		err = errArgument("%v", perr)
	case tok == nil:
		err = errNotLoggedIn()
	default:
		body, err = s.route(&call{r: r, method: method, p: p, tok: tok})
	}
	if err != nil {
		s.writeError(w, reqID, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// identify finds the request's token and the label the request log shows for it: its uuid,
// "invalid" for an unknown secret, "" without one.
func (s *Server) identify(r *http.Request, p params) (*token, string) {
	secret := tokenFromRequest(r, p)
	s.mu.RLock()
	tok := s.lookupToken(secret)
	s.mu.RUnlock()
	switch {
	case tok != nil:
		return tok, tok.uuid
	case secret != "":
		return nil, "invalid"
	}
	return nil, ""
}

// failInjected answers the request with an outage or a fault if one applies.
func (s *Server) failInjected(w *countingWriter, reqID, method, path string, finish func()) bool {
	if _, down := s.conditions(); down {
		s.writeError(w, reqID, &apiError{status: http.StatusServiceUnavailable,
			msgs: []string{"fakearvados: service unavailable (injected outage)"}})
		return true
	}
	if f, ok := s.takeFault(method, path); ok {
		s.answerFault(w, reqID, f, finish)
		return true
	}
	return false
}

// wait sleeps for the injected latency; false if the request or the server ended first.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closing:
		return false
	}
}

// answerFault answers with the fault. For status 0 it logs the request (finish) before closing
// the connection, so that the log is in order when the client goes on at once.
func (s *Server) answerFault(w *countingWriter, reqID string, f Fault, finish func()) {
	if f.Status == 0 {
		finish()
		// Close the connection without answering. HTTP/2 cannot hijack: abort the stream.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		_ = conn.Close()
		return
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	s.writeError(w, reqID, &apiError{status: f.Status,
		msgs: []string{"fakearvados: injected fault: " + http.StatusText(f.Status)}})
}

// route finds the endpoint for the request. Unknown paths and methods get 404 "Path not
// found", as the real server's router answers.
func (s *Server) route(c *call) ([]byte, *apiError) {
	rest, ok := strings.CutPrefix(c.r.URL.Path, apiPrefix)
	if !ok {
		return nil, errNotFound()
	}
	seg := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	m := c.method
	switch {
	case len(seg) == 2 && seg[0] == "api_client_authorizations" && seg[1] == "current" && m == http.MethodGet:
		return s.currentToken(c)
	case len(seg) == 2 && seg[0] == "users" && seg[1] == "current" && m == http.MethodGet:
		return s.currentUser(c)
	case len(seg) == 1 && seg[0] == "containers" && m == http.MethodGet:
		return s.listContainers(c)
	case len(seg) == 2 && seg[0] == "containers" && seg[1] == "current" && m == http.MethodGet:
		return s.currentContainer(c)
	case len(seg) == 2 && seg[0] == "containers" && m == http.MethodGet:
		return s.getContainer(c, seg[1])
	case len(seg) == 2 && seg[0] == "containers" && (m == http.MethodPut || m == http.MethodPatch):
		return s.updateContainer(c, seg[1])
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "lock" && m == http.MethodPost:
		return s.lockContainer(c, seg[1], false)
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "unlock" && m == http.MethodPost:
		return s.lockContainer(c, seg[1], true)
	case len(seg) == 3 && seg[0] == "containers" && seg[2] == "auth" && m == http.MethodGet:
		return s.containerAuth(c, seg[1])
	case len(seg) == 1 && seg[0] == "logs" && m == http.MethodPost:
		return s.createLog(c)
	}
	return nil, errNotFound()
}

// objectJSON marshals a small response object.
func objectJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("fakearvados: encode response: " + err.Error())
	}
	return b
}
