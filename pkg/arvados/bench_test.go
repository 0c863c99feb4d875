package arvados

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkEachContainer10000 walks 10,000 realistic container records (10 pages of 1,000), the
// dispatcher's poll at scale. Run: go test -run='^$' -bench=EachContainer -benchmem ./pkg/arvados
func BenchmarkEachContainer10000(b *testing.B) {
	const n = 10000
	uuids := make([]string, n)
	recs := make([]string, n)
	for i := range n {
		uuids[i] = fmt.Sprintf("zzzzz-dz642-%015d", i)
		recs[i] = fmt.Sprintf(`{"uuid":%q,"state":"Queued","priority":%d,"locked_by_uuid":null,"lock_count":0,`+
			`"created_at":"2025-03-01T12:00:00.123456789Z","container_image":"d41d8cd98f00b204e9800998ecf8427e+1234",`+
			`"mounts":{"/tmp":{"kind":"tmp","capacity":1073741824},"/out":{"kind":"tmp","capacity":2147483648}},`+
			`"runtime_constraints":{"ram":2147483648,"vcpus":2,"keep_cache_ram":268435456,"keep_cache_disk":0,`+
			`"gpu":{"device_count":0,"driver_version":"","hardware_target":[],"stack":"","vram":0}},`+
			`"scheduling_parameters":{"partitions":["debug"],"max_run_time":0,"preemptible":false,"supervisor":false},`+
			`"runtime_status":{}}`, uuids[i], 562949953421312000+int64(i))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var filters []Filter
		_ = json.Unmarshal([]byte(q.Get("filters")), &filters)
		start := 0
		for _, f := range filters {
			if f.Attr == "uuid" && f.Op == ">" {
				after, _ := f.Operand.(string)
				start = sort.SearchStrings(uuids, after+"\x00")
			}
		}
		limit, _ := strconv.Atoi(q.Get("limit"))
		end := min(start+limit, n)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items":[` + strings.Join(recs[start:end], ",") + `],"offset":0,"limit":` + strconv.Itoa(limit) + `}`))
	}))
	defer srv.Close()
	c, err := NewClient(Config{Host: srv.URL, Token: testToken})
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseIdleConnections()
	for b.Loop() {
		count := 0
		err := c.EachContainer(b.Context(), ListParams{Select: []string{"uuid", "state", "priority"}},
			func(Container) error { count++; return nil })
		if err != nil || count != n {
			b.Fatalf("saw %d, err %v", count, err)
		}
	}
}
