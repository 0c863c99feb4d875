package arvados

import (
	"strings"
	"time"
)

// Observer hears of every API call once it has ended (after its retries): the HTTP method, the
// endpoint class (the path below /arvados/v1/ with uuids replaced by "{uuid}", e.g.
// "containers/{uuid}/lock"), how long the call took in all, and its error (nil on success;
// classify it with IsTransient, IsAmbiguous, IsNotFound…). It never sees the token, the query
// or a record. It must be quick and must not block: metrics count with it.
type Observer func(method, endpoint string, took time.Duration, err error)

// EndpointClass is path (below /arvados/v1/) with every segment that is an Arvados uuid
// replaced by "{uuid}", so that an endpoint's metrics do not split per record.
func EndpointClass(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		if looksLikeUUID(s) {
			segs[i] = "{uuid}"
		}
	}
	return strings.Join(segs, "/")
}

// looksLikeUUID reports whether s has the shape of an Arvados uuid: 5, 5 and 15 characters of
// [a-z0-9] joined by dashes.
func looksLikeUUID(s string) bool {
	if len(s) != 27 || s[5] != '-' || s[11] != '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 5 || i == 11 {
			continue
		}
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// observe reports one call to the configured Observer, if any.
func (c *Client) observe(r request, start time.Time, err error) {
	if c.cfg.Observe == nil {
		return
	}
	c.cfg.Observe(r.method, EndpointClass(r.path), c.cfg.Now().Sub(start), err)
}
