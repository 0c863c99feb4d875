package fakearvados_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// pollQuery is the dispatcher's poll: what could run, best first, only the fields it needs.
var pollQuery = url.Values{
	"filters": {`[["state","=","Queued"],["priority","\u003e",0]]`},
	"order":   {`["priority desc"]`},
	"select":  {`["uuid","state","priority","locked_by_uuid","lock_count","created_at","runtime_constraints","scheduling_parameters","mounts","runtime_status"]`},
	"limit":   {"1000"},
	"count":   {"none"},
}

func tenThousand(s *fakearvados.Server) {
	s.SeedN(10000, arvados.Container{
		Priority:             1,
		Mounts:               map[string]arvados.Mount{"/tmp": {Kind: "tmp", Capacity: 1 << 30}},
		RuntimeConstraints:   arvados.RuntimeConstraints{RAM: 1 << 30, VCPUs: 1},
		SchedulingParameters: arvados.SchedulingParameters{Partitions: []string{"debug"}},
	})
}

// BenchmarkListAPageOf1000From10000 measures the server side of one poll (no network).
func BenchmarkListAPageOf1000From10000(b *testing.B) {
	s := fakearvados.NewHandler(fakearvados.Options{})
	tenThousand(s)
	h := s.Handler()
	target := "/arvados/v1/containers?" + pollQuery.Encode()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Authorization", "Bearer "+fakearvados.AdminToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkListAPageOf1000From10000OverHTTP adds the loopback round trip and JSON transfer.
func BenchmarkListAPageOf1000From10000OverHTTP(b *testing.B) {
	s := fakearvados.New(fakearvados.Options{})
	defer s.Close()
	tenThousand(s)
	hc := s.HTTPClient()
	target := s.URL() + "/arvados/v1/containers?" + pollQuery.Encode()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Authorization", "Bearer "+fakearvados.AdminToken)
		res, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}
