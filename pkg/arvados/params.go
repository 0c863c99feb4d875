package arvados

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
)

// Filter is one list filter. It is sent as the JSON array ["attr","op",operand], e.g.
// ["priority",">",0] or ["state","in",["Queued","Locked"]]. Operators the dispatcher uses: =,
// !=, <, <=, >, >=, in, not in.
type Filter struct {
	Attr    string
	Op      string
	Operand any
}

// NewFilter returns the filter [attr, op, operand].
func NewFilter(attr, op string, operand any) Filter {
	return Filter{Attr: attr, Op: op, Operand: operand}
}

// MarshalJSON writes ["attr","op",operand].
func (f Filter) MarshalJSON() ([]byte, error) {
	return marshalJSON([]any{f.Attr, f.Op, f.Operand})
}

// UnmarshalJSON reads ["attr","op",operand]. Numbers in the operand become json.Number, so
// that large priorities (around 2^59) keep their precision.
func (f *Filter) UnmarshalJSON(b []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil {
		return fmt.Errorf("filter %s: %w", b, err)
	}
	if len(parts) != 3 {
		return fmt.Errorf("filter %s: want [attr, op, operand], got %d elements", b, len(parts))
	}
	var g Filter
	if err := json.Unmarshal(parts[0], &g.Attr); err != nil {
		return fmt.Errorf("filter %s: attribute: %w", b, err)
	}
	if err := json.Unmarshal(parts[1], &g.Op); err != nil {
		return fmt.Errorf("filter %s: operator: %w", b, err)
	}
	d := json.NewDecoder(bytes.NewReader(parts[2]))
	d.UseNumber()
	if err := d.Decode(&g.Operand); err != nil {
		return fmt.Errorf("filter %s: operand: %w", b, err)
	}
	*f = g
	return nil
}

// ListParams are the parameters of a list call. Zero values are not sent (the server's
// defaults apply: limit 100, offset 0, count exact, every field).
type ListParams struct {
	Filters []Filter
	// Order is e.g. ["priority desc", "uuid"].
	Order []string
	// Limit is the page size; the server caps it (API.MaxItemsPerResponse, 1000 by default).
	Limit  int
	Offset int
	// Count is "exact" (the server's default: items_available is computed, which costs a
	// query) or "none".
	Count string
	// Select names the fields to return.
	Select []string
}

// Values encodes p as Arvados expects: every non-string value as JSON, e.g.
// filters=[["priority",">",0]]&limit=1000.
func (p ListParams) Values() (url.Values, error) {
	v := url.Values{}
	if len(p.Filters) > 0 {
		if err := setJSON(v, "filters", p.Filters); err != nil {
			return nil, err
		}
	}
	if len(p.Order) > 0 {
		if err := setJSON(v, "order", p.Order); err != nil {
			return nil, err
		}
	}
	if p.Limit > 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Offset > 0 {
		v.Set("offset", strconv.Itoa(p.Offset))
	}
	if p.Count != "" {
		v.Set("count", p.Count)
	}
	if len(p.Select) > 0 {
		if err := setJSON(v, "select", p.Select); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// ContainerList is one page of a containers list.
type ContainerList struct {
	Items []Container `json:"items"`
	// ItemsAvailable is the total number of matches; nil with count=none.
	ItemsAvailable *int `json:"items_available,omitempty"`
	Offset         int  `json:"offset"`
	// Limit is the page size the server applied (after its own cap).
	Limit int `json:"limit"`
}

// ContainerUpdate is a change to a container record. Only the fields that are set are sent,
// so an update never overwrites what it does not mean to change. Each sets an absolute value,
// so repeating an update is harmless (it is retried like a GET).
//
//	c.UpdateContainer(ctx, uuid, arvados.ContainerUpdate{State: new(arvados.Cancelled),
//		RuntimeStatus: map[string]any{"error": "…"}})
type ContainerUpdate struct {
	State    *ContainerState `json:"state,omitempty"`
	Priority *int64          `json:"priority,omitempty"`
	// RuntimeStatus replaces the whole runtime_status when non-nil (an empty map clears it).
	RuntimeStatus map[string]any `json:"runtime_status,omitempty"`
	// ExitCode is required by the server with State Complete.
	ExitCode *int `json:"exit_code,omitempty"`
}

// IsZero reports whether the update changes nothing.
func (u ContainerUpdate) IsZero() bool {
	return u.State == nil && u.Priority == nil && u.RuntimeStatus == nil && u.ExitCode == nil
}

// MarshalJSON writes the fields that are set; an empty non-nil RuntimeStatus is sent as {}.
func (u ContainerUpdate) MarshalJSON() ([]byte, error) {
	type wire struct {
		State         *ContainerState `json:"state,omitempty"`
		Priority      *int64          `json:"priority,omitempty"`
		RuntimeStatus *map[string]any `json:"runtime_status,omitempty"`
		ExitCode      *int            `json:"exit_code,omitempty"`
	}
	w := wire{State: u.State, Priority: u.Priority, ExitCode: u.ExitCode}
	if u.RuntimeStatus != nil {
		w.RuntimeStatus = &u.RuntimeStatus
	}
	return marshalJSON(w)
}

// marshalJSON encodes v without Go's HTML escaping, so that filters go on the wire as
// [["priority",">",0]] rather than [["priority","\u003e",0]] (servers accept both).
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func setJSON(v url.Values, key string, value any) error {
	b, err := marshalJSON(value)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	v.Set(key, string(b))
	return nil
}

// errNothingToUpdate is returned for an update that sets no field.
var errNothingToUpdate = errors.New("the update sets no field")
