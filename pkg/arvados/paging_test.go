package arvados

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// keysetServer answers containers lists from a set of uuids, applying "uuid >" filters, the
// limit (capped at maxLimit) and echoing the applied limit, as Arvados does.
type keysetServer struct {
	uuids    []string // sorted
	maxLimit int
	// ignoreKeyset makes it serve the first page again and again.
	ignoreKeyset bool
	// omitLimit leaves "limit" out of the response.
	omitLimit bool
}

func (ks *keysetServer) answer(t *testing.T) func(int, *http.Request) reply {
	return func(_ int, r *http.Request) reply {
		q := r.URL.Query()
		var filters []Filter
		if f := q.Get("filters"); f != "" {
			if err := json.Unmarshal([]byte(f), &filters); err != nil {
				t.Errorf("filters %s: %v", f, err)
			}
		}
		after := ""
		for _, f := range filters {
			if f.Attr == "uuid" && f.Op == ">" && !ks.ignoreKeyset {
				after, _ = f.Operand.(string)
			}
		}
		limit, _ := strconv.Atoi(q.Get("limit"))
		limit = min(limit, ks.maxLimit)
		var items []string
		for _, u := range ks.uuids {
			if u > after && len(items) < limit {
				items = append(items, fmt.Sprintf(`{"uuid":%q,"priority":1}`, u))
			}
		}
		body := `{"items":[` + strings.Join(items, ",") + `]`
		if !ks.omitLimit {
			body += fmt.Sprintf(`,"limit":%d`, limit)
		}
		return reply{status: 200, body: body + `,"offset":0}`}
	}
}

func uuidsN(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("zzzzz-dz642-%015d", i)
	}
	return out
}

type pagingCase struct {
	name         string
	n, maxLimit  int
	pageSize     int // Config.MaxItemsPerResponse
	omitLimit    bool
	wantRequests int
}

func TestEachContainerReturnsEveryRecordOnceWithKeysetPaging(t *testing.T) {
	tests := []pagingCase{
		{name: "a short first page is the only request", n: 37, maxLimit: 1000, wantRequests: 1},
		{name: "an empty queue is one request", n: 0, maxLimit: 1000, wantRequests: 1},
		{name: "a short last page ends the walk", n: 2345, maxLimit: 1000, wantRequests: 3},
		{name: "full pages need one more request to see the end", n: 2000, maxLimit: 1000, wantRequests: 3},
		{name: "a server cap below our page size is followed", n: 1200, maxLimit: 500, wantRequests: 3},
		{name: "a smaller configured page size is used", n: 250, maxLimit: 1000, pageSize: 100, wantRequests: 3},
		{name: "without a limit in the response an empty page ends the walk", n: 150, maxLimit: 100,
			omitLimit: true, wantRequests: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := &keysetServer{uuids: uuidsN(tt.n), maxLimit: tt.maxLimit, omitLimit: tt.omitLimit}
			rec := &recorder{answer: ks.answer(t)}
			env := newTestClient(t, serve(t, rec).URL, func(c *Config) { c.MaxItemsPerResponse = tt.pageSize })
			seen := map[string]int{}
			var order []string
			err := env.c.EachContainer(t.Context(), ListParams{Filters: []Filter{NewFilter("priority", ">", 0)}},
				func(c Container) error {
					seen[c.UUID]++
					order = append(order, c.UUID)
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != tt.n || len(order) != tt.n {
				t.Errorf("saw %d distinct of %d calls, want %d", len(seen), len(order), tt.n)
			}
			for i, u := range order {
				if i > 0 && u <= order[i-1] {
					t.Fatalf("out of uuid order at %d: %s after %s", i, u, order[i-1])
				}
			}
			reqs := rec.Requests()
			if len(reqs) != tt.wantRequests {
				t.Errorf("%d requests, want %d", len(reqs), tt.wantRequests)
			}
			for i, r := range reqs {
				q, _ := url.ParseQuery(r.RawQuery)
				if q.Get("count") != "none" || q.Get("order") != `["uuid asc"]` || q.Get("offset") != "" {
					t.Errorf("request %d: count %q order %q offset %q", i, q.Get("count"), q.Get("order"), q.Get("offset"))
				}
				wantFilters := `[["priority",">",0]]`
				if i > 0 {
					wantFilters = fmt.Sprintf(`[["priority",">",0],["uuid",">",%q]]`, ks.uuids[lastOfPage(i, tt)])
				}
				if q.Get("filters") != wantFilters {
					t.Errorf("request %d: filters %s, want %s", i, q.Get("filters"), wantFilters)
				}
			}
		})
	}
}

// lastOfPage is the index of the last uuid on the page before request i.
func lastOfPage(i int, tt pagingCase) int {
	page := min(tt.maxLimit, 1000)
	if tt.pageSize > 0 {
		page = min(page, tt.pageSize)
	}
	return min(i*page, tt.n) - 1
}

func TestEachContainerFailsOnAServerThatIgnoresTheKeyset(t *testing.T) {
	ks := &keysetServer{uuids: uuidsN(30), maxLimit: 10, ignoreKeyset: true}
	rec := &recorder{answer: ks.answer(t)}
	env := newTestClient(t, serve(t, rec).URL, nil)
	calls := 0
	err := env.c.EachContainer(t.Context(), ListParams{}, func(Container) error { calls++; return nil })
	if !errors.Is(err, ErrKeysetIgnored) {
		t.Fatalf("error %v, want ErrKeysetIgnored", err)
	}
	if n := len(rec.Requests()); n != 2 || calls != 10 {
		t.Errorf("%d requests and %d records before failing, want 2 and 10", n, calls)
	}
}

func TestEachContainerFailsOnAServerThatDoesNotSortByUUID(t *testing.T) {
	rec := &recorder{answer: script(reply{status: 200,
		body: `{"items":[{"uuid":"zzzzz-dz642-000000000000002"},{"uuid":"zzzzz-dz642-000000000000001"}],"limit":1000}`})}
	env := newTestClient(t, serve(t, rec).URL, nil)
	calls := 0
	err := env.c.EachContainer(t.Context(), ListParams{}, func(Container) error { calls++; return nil })
	if !errors.Is(err, ErrKeysetIgnored) || calls != 0 {
		t.Errorf("error %v after %d records, want ErrKeysetIgnored before any", err, calls)
	}
}

func TestEachContainerRetriesAPageWithoutRepeatingRecords(t *testing.T) {
	ks := &keysetServer{uuids: uuidsN(25), maxLimit: 10}
	ok := ks.answer(t)
	rec := &recorder{answer: func(n int, r *http.Request) reply {
		switch n {
		case 1:
			return reply{status: 503}
		case 2: // the retry of page 2 is cut off in the middle of the body
			rep := ok(n, r)
			rep.body = rep.body[:len(rep.body)/2]
			return rep
		}
		return ok(n, r)
	}}
	env := newTestClient(t, serve(t, rec).URL, nil)
	seen := map[string]int{}
	err := env.c.EachContainer(t.Context(), ListParams{}, func(c Container) error { seen[c.UUID]++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ks.uuids {
		if seen[u] != 1 {
			t.Errorf("%s seen %d times", u, seen[u])
		}
	}
}

func TestEachContainerStopsAtTheCallbacksError(t *testing.T) {
	ks := &keysetServer{uuids: uuidsN(25), maxLimit: 10}
	rec := &recorder{answer: ks.answer(t)}
	env := newTestClient(t, serve(t, rec).URL, nil)
	stop := errors.New("enough")
	calls := 0
	err := env.c.EachContainer(t.Context(), ListParams{}, func(Container) error {
		calls++
		if calls == 12 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 12 || len(rec.Requests()) != 2 {
		t.Errorf("error %v after %d calls and %d requests", err, calls, len(rec.Requests()))
	}
}

func TestEachContainerParameters(t *testing.T) {
	tests := []struct {
		name       string
		p          ListParams
		wantErr    string
		wantSelect string
		wantLimit  string
	}{
		{name: "another order is refused: sort afterwards", p: ListParams{Order: []string{"priority desc"}},
			wantErr: "sort the results afterwards"},
		{name: "an offset is refused", p: ListParams{Offset: 10}, wantErr: "offset"},
		{name: "uuid order is accepted", p: ListParams{Order: []string{"uuid"}}, wantLimit: "1000"},
		{name: "a select without uuid gets it added", p: ListParams{Select: []string{"priority", "state"}},
			wantSelect: `["priority","state","uuid"]`, wantLimit: "1000"},
		{name: "a select with uuid is sent as it is", p: ListParams{Select: []string{"uuid", "state"}},
			wantSelect: `["uuid","state"]`, wantLimit: "1000"},
		{name: "a smaller limit is the page size", p: ListParams{Limit: 50}, wantLimit: "50"},
		{name: "a larger limit is capped at MaxItemsPerResponse", p: ListParams{Limit: 5000}, wantLimit: "1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{answer: script(reply{status: 200, body: `{"items":[],"limit":1000}`})}
			env := newTestClient(t, serve(t, rec).URL, nil)
			sel := append([]string(nil), tt.p.Select...)
			err := env.c.EachContainer(t.Context(), tt.p, func(Container) error { return nil })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || len(rec.Requests()) != 0 {
					t.Errorf("error %v with %d requests, want %q and none", err, len(rec.Requests()), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			q, _ := url.ParseQuery(rec.Requests()[0].RawQuery)
			if q.Get("select") != tt.wantSelect || q.Get("limit") != tt.wantLimit {
				t.Errorf("select %q limit %q, want %q %q", q.Get("select"), q.Get("limit"), tt.wantSelect, tt.wantLimit)
			}
			if strings.Join(sel, ",") != strings.Join(tt.p.Select, ",") {
				t.Errorf("the caller's Select was modified: %q", tt.p.Select)
			}
		})
	}
}

func TestAllContainersCollectsEveryPage(t *testing.T) {
	ks := &keysetServer{uuids: uuidsN(25), maxLimit: 10}
	rec := &recorder{answer: ks.answer(t)}
	env := newTestClient(t, serve(t, rec).URL, nil)
	all, err := env.c.AllContainers(t.Context(), ListParams{})
	if err != nil || len(all) != 25 || all[24].UUID != ks.uuids[24] || all[0].Priority != 1 {
		t.Errorf("got %d containers, err %v", len(all), err)
	}
}

func TestAPageReusedForDecodingLeavesEarlierRecordsIntact(t *testing.T) {
	pages := []string{
		`{"items":[{"uuid":"zzzzz-dz642-000000000000001","runtime_status":{"error":"first"},"command":["a"]}],"limit":1}`,
		`{"items":[{"uuid":"zzzzz-dz642-000000000000002"}],"limit":1}`,
		`{"items":[],"limit":1}`,
	}
	rec := &recorder{answer: func(n int, _ *http.Request) reply { return reply{status: 200, body: pages[min(n, 2)]} }}
	env := newTestClient(t, serve(t, rec).URL, nil)
	all, err := env.c.AllContainers(t.Context(), ListParams{Limit: 1})
	if err != nil || len(all) != 2 {
		t.Fatalf("got %d, err %v", len(all), err)
	}
	if all[0].RuntimeStatus["error"] != "first" || len(all[0].Command) != 1 {
		t.Errorf("first record changed: %+v", all[0])
	}
	if all[1].RuntimeStatus != nil || all[1].Command != nil {
		t.Errorf("second record inherited fields of the first: %+v", all[1])
	}
}
