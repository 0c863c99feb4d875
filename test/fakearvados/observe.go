package fakearvados

import (
	"encoding/json"
	"mime"
	"net/url"
)

// UpdateAttrs extracts the container field of an update request's body (form fields or a
// JSON object; the field a JSON object or a string holding one), for wrappers that watch what
// a client writes. A body it cannot read gives {"unparsed": true}.
func UpdateAttrs(contentType string, body []byte) map[string]any {
	raw := ""
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "application/json" {
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) == nil {
			raw = string(m["container"])
			var s string
			if json.Unmarshal(m["container"], &s) == nil {
				raw = s
			}
		}
	} else if q, err := url.ParseQuery(string(body)); err == nil {
		raw = q.Get("container")
	}
	var out map[string]any
	if json.Unmarshal([]byte(raw), &out) != nil {
		return map[string]any{"unparsed": true}
	}
	return out
}
