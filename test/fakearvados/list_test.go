package fakearvados_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// uuidsOf returns the uuids of a list answer's items, in order.
func uuidsOf(t *testing.T, r resp) []string {
	t.Helper()
	var out []string
	for _, it := range r.items(t) {
		out = append(out, it["uuid"].(string))
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func TestFilters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	queued0 := h.seedOne(arvados.Container{Priority: 0})
	queued5 := h.seedOne(arvados.Container{Priority: 5})
	big := h.seedOne(arvados.Container{Priority: 1<<60 + 1}) // beyond float64's exact integers
	locked := h.seedOne(arvados.Container{Priority: 3, State: arvados.Locked, LockedByUUID: fakearvados.AdminTokenUUID})
	locked2 := h.seedOne(arvados.Container{Priority: 4, State: arvados.Locked, LockedByUUID: fakearvados.Dispatcher2TokenUUID})
	done := h.seedOne(arvados.Container{Priority: 9, State: arvados.Complete})
	all := []string{queued0, queued5, big, locked, locked2, done}

	tests := []struct {
		name    string
		filters any
		want    []string
	}{
		{"priority > 0 as Go encodes it (\\u003e) with a number", [][]any{{"priority", ">", 0}}, []string{queued5, big, locked, locked2, done}},
		{"priority > \"0\" with a string operand as the incumbent sends it", [][]any{{"priority", ">", "0"}}, []string{queued5, big, locked, locked2, done}},
		{"a priority above 2^53 compares exactly", [][]any{{"priority", "=", 1<<60 + 1}}, []string{big}},
		{"state = Queued and priority > 0 are and'ed", [][]any{{"state", "=", "Queued"}, {"priority", ">", 0}}, []string{queued5, big}},
		{"state in a list", [][]any{{"state", "in", []string{"Locked", "Complete"}}}, []string{locked, locked2, done}},
		{"state not in a list", [][]any{{"state", "not in", []string{"Locked", "Complete"}}}, []string{queued0, queued5, big}},
		{"locked_by_uuid = our token", [][]any{{"locked_by_uuid", "=", fakearvados.AdminTokenUUID}}, []string{locked}},
		{"locked_by_uuid != our token leaves out NULLs as SQL does", [][]any{{"locked_by_uuid", "!=", fakearvados.AdminTokenUUID}}, []string{locked2}},
		{"locked_by_uuid not in a list matches NULLs as Arvados adds OR IS NULL", [][]any{{"locked_by_uuid", "not in", []string{fakearvados.AdminTokenUUID}}}, []string{queued0, queued5, big, locked2, done}},
		{"locked_by_uuid = null is IS NULL", [][]any{{"locked_by_uuid", "=", nil}}, []string{queued0, queued5, big, done}},
		{"locked_by_uuid != null is IS NOT NULL", [][]any{{"locked_by_uuid", "!=", nil}}, []string{locked, locked2}},
		{"priority <= 3", [][]any{{"priority", "<=", 3}}, []string{queued0, locked}},
		{"priority < 3", [][]any{{"priority", "<", 3}}, []string{queued0}},
		{"priority >= 9", [][]any{{"priority", ">=", 9}}, []string{big, done}},
		{"lock_count = 0", [][]any{{"lock_count", "=", 0}}, all},
		{"uuid in a list", [][]any{{"uuid", "in", []string{queued0, done}}}, []string{queued0, done}},
		{"created_at compared as a time", [][]any{{"created_at", ">=", "2026-03-01T12:00:00Z"}}, all},
		{"created_at after every record", [][]any{{"created_at", ">", "2027-01-01T00:00:00Z"}}, nil},
		{"uuid is_a container", [][]any{{"uuid", "is_a", "arvados#container"}}, all},
		{"uuid like a prefix", [][]any{{"uuid", "like", "zzzzz-dz642-%"}}, all},
		{"several attributes are or'ed", [][]any{{[]string{"locked_by_uuid", "uuid"}, "=", queued0}}, []string{queued0}},
		{"no filters lists everything", nil, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := url.Values{"limit": {"1000"}}
			if tt.filters != nil {
				p.Set("filters", jsonParam(t, tt.filters))
			}
			r := h.list(fakearvados.AdminToken, p)
			wantStatus(t, r, 200)
			if got := sorted(uuidsOf(t, r)); !slices.Equal(got, sorted(tt.want)) {
				t.Fatalf("got %v, want %v", got, sorted(tt.want))
			}
		})
	}
}

func TestGoEncodesGreaterThanAsAnEscape(t *testing.T) {
	// The reason filters must be JSON-decoded, not matched as text.
	if s := jsonParam(t, [][]any{{"priority", ">", 0}}); !strings.Contains(s, `\u003e`) {
		t.Fatalf("Go encoded %s without \\u003e; the filter tests would not test the escape", s)
	}
}

func TestBadFiltersAreRejected(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	tests := []struct {
		name    string
		filters string
		want    string
	}{
		{"an unknown operator", `[["priority","~",0]]`, "Invalid operator '~'"},
		{"an unknown attribute", `[["nosuch","=",0]]`, "Invalid attribute 'nosuch' in filter"},
		{"in with a scalar operand", `[["state","in","Queued"]]`, "Invalid operand type 'String' for 'in' operator"},
		{"a number for a string attribute", `[["state","=",5]]`, "Invalid operand type 'Integer'"},
		{"a word for an integer attribute", `[["priority",">","high"]]`, "invalid input syntax for type bigint"},
		{"a non-time for a timestamp", `[["created_at",">","yesterday"]]`, "Invalid operand 'yesterday'"},
		{"a filter that is not an array", `["priority"]`, "Invalid element in filters array"},
		{"filters that are not JSON", `priority>0`, `Could not parse "filters" param as an array`},
		{"a comparison with null", `[["priority",">",null]]`, "Invalid operand type 'NilClass'"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is a 422", func(t *testing.T) {
			wantError(t, h.list(fakearvados.AdminToken, url.Values{"filters": {tt.filters}}), 422, tt.want)
		})
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuid := h.seedOne(arvados.Container{Priority: 7, RuntimeConstraints: arvados.RuntimeConstraints{RAM: 1 << 30, VCPUs: 2}})

	t.Run("a list returns only the selected fields and kind", func(t *testing.T) {
		r := h.list(fakearvados.AdminToken, url.Values{"select": {`["uuid","priority","runtime_constraints"]`}})
		wantStatus(t, r, 200)
		it := r.items(t)[0]
		if got := sorted(keys(it)); !slices.Equal(got, []string{"kind", "priority", "runtime_constraints", "uuid"}) {
			t.Fatalf("keys %v", got)
		}
		if it["priority"].(json.Number) != "7" || it["runtime_constraints"].(map[string]any)["vcpus"].(json.Number) != "2" {
			t.Fatalf("item %v", it)
		}
	})
	t.Run("getting one container honours select", func(t *testing.T) {
		r := h.do("GET", "/arvados/v1/containers/"+uuid, fakearvados.AdminToken, url.Values{"select": {`["state"]`}})
		wantStatus(t, r, 200)
		if got := sorted(keys(r.obj(t))); !slices.Equal(got, []string{"kind", "state"}) {
			t.Fatalf("keys %v", got)
		}
	})
	t.Run("without select the whole record comes back, unset uuids as null", func(t *testing.T) {
		m := h.do("GET", "/arvados/v1/containers/"+uuid, fakearvados.AdminToken, nil).obj(t)
		for _, k := range []string{"uuid", "state", "priority", "lock_count", "created_at", "modified_at", "mounts", "runtime_status", "scheduling_parameters"} {
			if _, ok := m[k]; !ok {
				t.Errorf("field %s missing from %v", k, m)
			}
		}
		if v, ok := m["locked_by_uuid"]; !ok || v != nil {
			t.Errorf("locked_by_uuid = %v (present %v), want null", v, ok)
		}
		if m["created_at"] != "2026-03-01T12:00:00.001000000Z" {
			t.Errorf("created_at = %v, want the fake clock's first reading in Arvados's format", m["created_at"])
		}
	})
	for _, tt := range []struct{ name, sel, want string }{
		{"an unknown field", `["uuid","nosuch"]`, `Invalid attribute(s): ["nosuch"]`},
		{"an empty list", `[]`, "Attribute selection list cannot be empty"},
		{"not a list", `"uuid"`, `Could not parse "select" param as an array`},
	} {
		t.Run("selecting "+tt.name+" is a 422", func(t *testing.T) {
			wantError(t, h.list(fakearvados.AdminToken, url.Values{"select": {tt.sel}}), 422, tt.want)
		})
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestCountAndPaging(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	h.s.SeedN(1100, arvados.Container{Priority: 1})

	tests := []struct {
		name          string
		p             url.Values
		wantItems     int
		wantLimit     string
		wantAvailable string // "" = absent
	}{
		{"the default limit is 100 and items_available counts everything", nil, 100, "100", "1100"},
		{"the limit is capped at 1000", url.Values{"limit": {"5000"}}, 1000, "1000", "1100"},
		{"limit 0 returns no items but the count", url.Values{"limit": {"0"}}, 0, "0", "1100"},
		{"count=none omits items_available", url.Values{"count": {"none"}, "limit": {"10"}}, 10, "10", ""},
		{"count=exact keeps it", url.Values{"count": {"exact"}, "limit": {"10"}}, 10, "10", "1100"},
		{"an offset near the end returns the rest", url.Values{"offset": {"1090"}, "limit": {"50"}}, 10, "50", "1100"},
		{"an offset past the end returns nothing", url.Values{"offset": {"5000"}}, 0, "100", "1100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.list(fakearvados.AdminToken, tt.p)
			wantStatus(t, r, 200)
			m := r.obj(t)
			if n := len(r.items(t)); n != tt.wantItems {
				t.Errorf("%d items, want %d", n, tt.wantItems)
			}
			if m["limit"].(json.Number).String() != tt.wantLimit {
				t.Errorf("limit %v, want %s", m["limit"], tt.wantLimit)
			}
			avail, ok := m["items_available"]
			switch {
			case tt.wantAvailable == "" && ok:
				t.Errorf("items_available present (%v) with count=none", avail)
			case tt.wantAvailable != "" && (!ok || avail.(json.Number).String() != tt.wantAvailable):
				t.Errorf("items_available %v, want %s", avail, tt.wantAvailable)
			}
		})
	}
	for _, tt := range []struct{ name, key, value, want string }{
		{"a negative limit", "limit", "-1", "Invalid value for limit parameter"},
		{"a word for offset", "offset", "ten", "Invalid value for offset parameter"},
		{"an unknown count mode", "count", "estimated", "count parameter must be 'exact' or 'none'"},
	} {
		t.Run(tt.name+" is a 422", func(t *testing.T) {
			wantError(t, h.list(fakearvados.AdminToken, url.Values{tt.key: {tt.value}}), 422, tt.want)
		})
	}
}

func TestPagesByOffsetReturnEachRecordOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	seeded := h.s.SeedN(250, arvados.Container{Priority: 1})
	var got []string
	for offset := 0; ; offset += 100 {
		r := h.list(fakearvados.AdminToken, url.Values{"order": {`["priority desc"]`}, "offset": {jsonParam(t, offset)}, "count": {"none"}})
		page := uuidsOf(t, r)
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
	}
	if !slices.Equal(sorted(got), sorted(seeded)) {
		t.Fatalf("paging returned %d records, want each of the %d once", len(got), len(seeded))
	}
}

func TestOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	// Priorities 5, 5, 5, 7, 1 seeded in this order (so modified_at increases).
	u := h.s.Seed(
		arvados.Container{UUID: "zzzzz-dz642-ccccccccccccccc", Priority: 5},
		arvados.Container{UUID: "zzzzz-dz642-aaaaaaaaaaaaaaa", Priority: 5},
		arvados.Container{UUID: "zzzzz-dz642-bbbbbbbbbbbbbbb", Priority: 5},
		arvados.Container{UUID: "zzzzz-dz642-ddddddddddddddd", Priority: 7},
		arvados.Container{UUID: "zzzzz-dz642-eeeeeeeeeeeeeee", Priority: 1},
	)
	c, a, b, d, e := u[0], u[1], u[2], u[3], u[4]
	tests := []struct {
		name string
		p    url.Values
		want []string
	}{
		{"the default order is modified_at desc", nil, []string{e, d, b, a, c}},
		{"priority desc, then modified_at desc among equals", url.Values{"order": {`["priority desc"]`}}, []string{d, b, a, c, e}},
		{"priority desc then uuid as the tiebreak", url.Values{"order": {`["priority desc","uuid"]`}}, []string{d, a, b, c, e}},
		{"an order given as a plain string", url.Values{"order": {"priority desc, uuid asc"}}, []string{d, a, b, c, e}},
		{"an unknown order column is ignored as the real server ignores it", url.Values{"order": {`["nosuch desc"]`}}, []string{e, d, b, a, c}},
		{"select without the order column drops that order (real server behaviour); uuid remains",
			url.Values{"order": {`["priority desc"]`}, "select": {`["uuid"]`}}, []string{a, b, c, d, e}},
		{"select with the order column keeps it, then uuid",
			url.Values{"order": {`["priority desc"]`}, "select": {`["uuid","priority"]`}}, []string{d, a, b, c, e}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.list(fakearvados.AdminToken, tt.p)
			wantStatus(t, r, 200)
			if got := uuidsOf(t, r); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestANonAdminUserSeesNoContainers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuid := h.seedOne(arvados.Container{Priority: 1})
	r := h.list(fakearvados.UserToken, nil)
	wantStatus(t, r, 200)
	if n := len(r.items(t)); n != 0 || r.obj(t)["items_available"].(json.Number) != "0" {
		t.Fatalf("the user sees %d items: %s", n, r.body)
	}
	wantError(t, h.do("GET", "/arvados/v1/containers/"+uuid, fakearvados.UserToken, nil), 404, "Path not found")
}

func TestPagesMatchAFullSort(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	// Few distinct priorities, so that the uuid tiebreak decides most places.
	for i := range 600 {
		h.seedOne(arvados.Container{Priority: int64(i*7919) % 5})
	}
	all := h.s.Containers() // sorted by uuid
	want := slices.Clone(all)
	slices.SortStableFunc(want, func(a, b arvados.Container) int { return int(b.Priority - a.Priority) })
	for _, pg := range []struct{ offset, limit int }{{0, 1}, {0, 100}, {37, 50}, {550, 100}, {0, 1000}, {599, 1}, {600, 10}, {1 << 62, 10}} {
		r := h.list(fakearvados.AdminToken, url.Values{
			"order": {`["priority desc","uuid asc"]`}, "offset": {jsonParam(t, pg.offset)}, "limit": {jsonParam(t, pg.limit)},
		})
		wantStatus(t, r, 200)
		var exp []string
		for _, c := range want[min(pg.offset, len(want)):min(pg.offset+pg.limit, len(want))] {
			exp = append(exp, c.UUID)
		}
		if got := uuidsOf(t, r); !slices.Equal(got, exp) {
			t.Fatalf("offset %d limit %d: got %d uuids %v…, want %d %v…", pg.offset, pg.limit, len(got), head(got), len(exp), head(exp))
		}
	}
}

func head(s []string) []string { return s[:min(3, len(s))] }
