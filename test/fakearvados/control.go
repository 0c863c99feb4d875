package fakearvados

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// controlHandler serves the test controls over HTTP under /_fake/, for the standalone program.
// Each is a thin wrapper of the Go method of the same name. They need no token but answer
// loopback clients only, and faults, latency and the request log do not apply to them.
//
//	POST /_fake/seed            JSON array of containers      → {"uuids":[...]}
//	POST /_fake/seedn           {"n":N,"template":{...}}      → {"uuids":[...]}
//	POST /_fake/priority        {"uuid":..,"priority":N}
//	POST /_fake/state           {"uuid":..,"state":".."}
//	POST /_fake/fault           Fault as JSON
//	POST /_fake/clear-faults
//	POST /_fake/latency         {"latency":"100ms"}
//	POST /_fake/down            {"down":true}
//	POST /_fake/reset-requests
//	GET  /_fake/containers      every container, by uuid
//	GET  /_fake/requests        the request log
//	GET  /_fake/stats           requests per endpoint
//	GET  /_fake/logs            log records created
func (s *Server) controlHandler() http.Handler {
	mux := http.NewServeMux()
	post := func(path string, f func(body []byte) (any, error)) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
			if err != nil {
				controlReply(w, nil, err)
				return
			}
			v, err := f(body)
			controlReply(w, v, err)
		})
	}
	get := func(path string, f func() any) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) { controlReply(w, f(), nil) })
	}
	post("/_fake/seed", func(b []byte) (any, error) {
		var cs []arvados.Container
		if err := decodeControl(b, &cs); err != nil {
			return nil, err
		}
		return map[string][]string{"uuids": s.Seed(cs...)}, nil
	})
	post("/_fake/seedn", func(b []byte) (any, error) {
		var req struct {
			N        int               `json:"n"`
			Template arvados.Container `json:"template"`
		}
		if err := decodeControl(b, &req); err != nil {
			return nil, err
		}
		return map[string][]string{"uuids": s.SeedN(req.N, req.Template)}, nil
	})
	post("/_fake/priority", func(b []byte) (any, error) {
		var req struct {
			UUID     string `json:"uuid"`
			Priority int64  `json:"priority"`
		}
		if err := decodeControl(b, &req); err != nil {
			return nil, err
		}
		return struct{}{}, s.SetPriority(req.UUID, req.Priority)
	})
	post("/_fake/state", func(b []byte) (any, error) {
		var req struct {
			UUID  string                 `json:"uuid"`
			State arvados.ContainerState `json:"state"`
		}
		if err := decodeControl(b, &req); err != nil {
			return nil, err
		}
		return struct{}{}, s.SetState(req.UUID, req.State)
	})
	post("/_fake/fault", func(b []byte) (any, error) {
		var f Fault
		if err := decodeControl(b, &f); err != nil {
			return nil, err
		}
		s.InjectFault(f)
		return struct{}{}, nil
	})
	post("/_fake/clear-faults", func([]byte) (any, error) { s.ClearFaults(); return struct{}{}, nil })
	post("/_fake/latency", func(b []byte) (any, error) {
		var req struct {
			Latency string `json:"latency"`
		}
		if err := decodeControl(b, &req); err != nil {
			return nil, err
		}
		d, err := time.ParseDuration(req.Latency)
		if err != nil {
			return nil, badRequest{err}
		}
		s.SetLatency(d)
		return struct{}{}, nil
	})
	post("/_fake/down", func(b []byte) (any, error) {
		var req struct {
			Down bool `json:"down"`
		}
		if err := decodeControl(b, &req); err != nil {
			return nil, err
		}
		s.SetDown(req.Down)
		return struct{}{}, nil
	})
	post("/_fake/reset-requests", func([]byte) (any, error) { s.ResetRequests(); return struct{}{}, nil })
	get("/_fake/containers", func() any { return s.Containers() })
	get("/_fake/requests", func() any { return s.Requests() })
	get("/_fake/stats", func() any { return s.Stats() })
	get("/_fake/logs", func() any { return s.Logs() })

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fromLoopback(r) {
			controlReply(w, nil, errNotLoopback)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

var errNotLoopback = errors.New("test controls answer loopback clients only")

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// badRequest marks a control request the fake could not understand.
type badRequest struct{ err error }

func (b badRequest) Error() string { return b.err.Error() }

func decodeControl(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return badRequest{fmt.Errorf("decode control request: %w", err)}
	}
	return nil
}

func controlReply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		status := http.StatusInternalServerError
		var br badRequest
		switch {
		case errors.As(err, &br), errors.Is(err, ErrUnknownState):
			status = http.StatusBadRequest
		case errors.Is(err, ErrNotFound):
			status = http.StatusNotFound
		case errors.Is(err, errNotLoopback):
			status = http.StatusForbidden
		}
		writeJSON(w, status, objectJSON(map[string]string{"error": err.Error()}))
		return
	}
	writeJSON(w, http.StatusOK, objectJSON(v))
}
