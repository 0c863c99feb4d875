package fakearvados

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
)

// maxBody bounds request bodies; real updates are a few kilobytes.
const maxBody = 16 << 20

// params are a request's parameters: the query string, then (for a request with a body) form
// fields or the members of a JSON object body, which win. Each value is kept as text: a string
// as is, any other JSON value as its JSON encoding, so every parameter decodes the same way
// whichever way it came.
type params map[string]string

func readParams(r *http.Request) (params, error) {
	p := params{}
	for k, vs := range r.URL.Query() {
		if len(vs) > 0 {
			p[k] = vs[0]
		}
	}
	if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return p, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if len(body) == 0 {
		return p, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, fmt.Errorf("request body is not a JSON object: %w", err)
		}
		for k, raw := range obj {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				p[k] = s
			} else {
				p[k] = string(raw)
			}
		}
	default:
		// Arvados clients send application/x-www-form-urlencoded; accept a missing type too.
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("parse form body: %w", err)
		}
		for k, vs := range form {
			if len(vs) > 0 {
				p[k] = vs[0]
			}
		}
	}
	return p, nil
}

func (p params) get(k string) (string, bool) {
	v, ok := p[k]
	return v, ok
}

// decodeJSON decodes parameter k into v. It reports whether the parameter was present (and not
// empty).
func (p params) decodeJSON(k string, v any) (bool, error) {
	s, ok := p[k]
	if !ok || s == "" {
		return false, nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return true, err
	}
	return true, nil
}
