package fakearvados

import (
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Fault makes matching API requests fail. Faults apply in the order they were injected; the
// first match with requests left answers.
type Fault struct {
	// Status is the HTTP status to answer (e.g. 503); 0 closes the connection without answering.
	Status int `json:"status"`
	// RetryAfter is the Retry-After header value, if any.
	RetryAfter string `json:"retry_after,omitempty"`
	// Count is how many matching requests fail; 0 means until ClearFaults.
	Count int `json:"count,omitempty"`
	// PathPrefix limits the fault to paths starting with it ("" = all), e.g.
	// "/arvados/v1/containers".
	PathPrefix string `json:"path_prefix,omitempty"`
	// Method limits the fault to one HTTP method ("" = any).
	Method string `json:"method,omitempty"`
}

type faultState struct {
	f    Fault
	used int
}

// Request is one API request as the fake saw it. It never holds a token secret.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	// Query is the raw query string without any api_token parameter.
	Query string `json:"query,omitempty"`
	// Status is the status answered (0 when a fault closed the connection).
	Status    int   `json:"status"`
	RespBytes int64 `json:"resp_bytes"`
	// Token is the uuid of the token used: "" without one, "invalid" for an unknown one.
	Token     string `json:"token,omitempty"`
	RequestID string `json:"request_id"`
}

// EndpointStats counts the requests to one endpoint and the response bytes sent.
type EndpointStats struct {
	Count int   `json:"count"`
	Bytes int64 `json:"bytes"`
}

// InjectFault adds a fault.
func (s *Server) InjectFault(f Fault) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.faults = append(s.faults, &faultState{f: f})
}

// ClearFaults removes every fault (not latency or an outage).
func (s *Server) ClearFaults() {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.faults = nil
}

// SetLatency adds d to every API request.
func (s *Server) SetLatency(d time.Duration) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.latency = d
}

// SetDown starts (true) or ends (false) an outage: meanwhile every API request gets 503.
func (s *Server) SetDown(down bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.down = down
}

// Requests returns the API requests seen so far (not the /_fake/ controls), oldest first.
func (s *Server) Requests() []Request {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// ResetRequests forgets the request log and the stats.
func (s *Server) ResetRequests() {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.reqs = nil
	s.stats = map[string]EndpointStats{}
}

// Stats counts requests per endpoint, keyed "METHOD /path" with uuids replaced by {uuid}, e.g.
// "POST /arvados/v1/containers/{uuid}/lock".
func (s *Server) Stats() map[string]EndpointStats {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	out := make(map[string]EndpointStats, len(s.stats))
	for k, v := range s.stats {
		out[k] = v
	}
	return out
}

// conditions returns the latency and whether the server is down.
func (s *Server) conditions() (time.Duration, bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.latency, s.down
}

// takeFault returns the fault that answers this request, if any, and counts it.
func (s *Server) takeFault(method, path string) (Fault, bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	for i, fs := range s.faults {
		if fs.f.Method != "" && !strings.EqualFold(fs.f.Method, method) {
			continue
		}
		if !strings.HasPrefix(path, fs.f.PathPrefix) {
			continue
		}
		fs.used++
		if fs.f.Count > 0 && fs.used >= fs.f.Count {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		return fs.f, true
	}
	return Fault{}, false
}

var uuidSegment = regexp.MustCompile(`^[a-z0-9]{5}-[a-z0-9]{5}-[a-z0-9]{15}$`)

// endpointKey is the Stats key of a request: uuids in the path become {uuid}.
func endpointKey(method, path string) string {
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if uuidSegment.MatchString(seg) {
			segs[i] = "{uuid}"
		}
	}
	return method + " " + strings.Join(segs, "/")
}

// scrubQuery drops api_token from a raw query string.
func scrubQuery(raw string) string {
	if !strings.Contains(raw, "api_token") {
		return raw
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "(unparseable query omitted)"
	}
	q.Del("api_token")
	return q.Encode()
}

func (s *Server) record(req Request) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.reqs = append(s.reqs, req)
	k := endpointKey(req.Method, req.Path)
	st := s.stats[k]
	st.Count++
	st.Bytes += req.RespBytes
	s.stats[k] = st
}
