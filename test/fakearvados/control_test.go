package fakearvados_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

var containerUUID = regexp.MustCompile(`^abcde-dz642-[a-z0-9]{15}$`)

func TestSeedFillsDefaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{ClusterID: "abcde"})
	uuids := h.s.Seed(arvados.Container{Priority: 3}, arvados.Container{UUID: "abcde-dz642-given0000000000", State: arvados.Running, LockedByUUID: fakearvados.AdminTokenUUID})
	c := h.container(uuids[0])
	if !containerUUID.MatchString(c.UUID) || c.State != arvados.Queued || c.CreatedAt.IsZero() || !c.CreatedAt.Equal(c.ModifiedAt) {
		t.Fatalf("seeded %+v", c)
	}
	if !c.CreatedAt.After(t0) || c.CreatedAt.After(t0.Add(time.Second)) {
		t.Fatalf("created_at %v does not come from the injected clock", c.CreatedAt)
	}
	if uuids[1] != "abcde-dz642-given0000000000" || h.s.AuthUUID(uuids[1]) == "" {
		t.Fatalf("a seeded running container keeps its uuid and gets a runtime token: %v, auth %q", uuids[1], h.s.AuthUUID(uuids[1]))
	}
	if !arvados.ValidContainerUUID(uuids[0]) {
		t.Fatalf("%s is not a valid container uuid for the client", uuids[0])
	}
}

func TestSeedNMakesDistinctPriorities(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuids := h.s.SeedN(5, arvados.Container{Priority: 10, SchedulingParameters: arvados.SchedulingParameters{Partitions: []string{"debug"}}})
	seen := map[string]bool{}
	for i, u := range uuids {
		c := h.container(u)
		if c.Priority != int64(10+i) || seen[u] || c.SchedulingParameters.Partitions[0] != "debug" {
			t.Fatalf("copy %d: %+v", i, c)
		}
		seen[u] = true
	}
	if got := h.s.Containers(); len(got) != 5 || got[0].UUID > got[4].UUID {
		t.Fatalf("Containers() = %d records, want 5 sorted by uuid", len(got))
	}
}

func TestTestControlsBypassTheRules(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuid := h.seedOne(arvados.Container{Priority: 1})
	wantStatus(t, h.lock(fakearvados.AdminToken, uuid), 200)

	if err := h.s.SetPriority(uuid, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.s.SetState(uuid, arvados.Running); err != nil {
		t.Fatal(err)
	}
	if c := h.container(uuid); c.State != arvados.Running || c.LockedByUUID != fakearvados.AdminTokenUUID || c.Priority != 0 {
		t.Fatalf("after SetState(Running): %+v", c)
	}
	if err := h.s.SetState(uuid, arvados.Queued); err != nil { // Running→Queued: illegal in the API
		t.Fatal(err)
	}
	if c := h.container(uuid); c.State != arvados.Queued || c.LockedByUUID != "" || h.s.AuthUUID(uuid) != "" {
		t.Fatalf("leaving Running keeps a holder or token: %+v", c)
	}
	if err := h.s.Mutate(uuid, func(c *arvados.Container) { code := 3; c.ExitCode = &code; c.UUID = "changed" }); err != nil {
		t.Fatal(err)
	}
	if c := h.container(uuid); c.ExitCode == nil || *c.ExitCode != 3 {
		t.Fatalf("Mutate did not set exit_code: %+v", c)
	}

	missing := "zzzzz-dz642-000000000000404"
	for _, err := range []error{h.s.SetPriority(missing, 1), h.s.SetState(missing, arvados.Queued), h.s.Mutate(missing, func(*arvados.Container) {})} {
		if !errors.Is(err, fakearvados.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	}
	if err := h.s.SetState(uuid, "Bogus"); !errors.Is(err, fakearvados.ErrUnknownState) {
		t.Errorf("SetState(Bogus) = %v, want ErrUnknownState", err)
	}
}

func TestContainersAreCopies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuid := h.seedOne(arvados.Container{Priority: 1, RuntimeStatus: map[string]any{"warning": "w"}})
	c := h.container(uuid)
	c.RuntimeStatus["warning"] = "changed by the caller"
	if got := h.container(uuid).RuntimeStatus["warning"]; got != "w" {
		t.Fatalf("changing a returned copy changed the store: %v", got)
	}
}

// control calls a /_fake/ endpoint and decodes its JSON answer into out (if not nil).
func (h *harness) control(method, path, body string, out any) int {
	h.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, h.s.URL()+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	res, err := h.hc.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: %q: %v", method, path, b, err)
		}
	}
	return res.StatusCode
}

func TestTheHTTPControls(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	var seeded struct{ UUIDs []string }
	if st := h.control("POST", "/_fake/seed", `[{"priority":5},{"priority":6,"state":"Locked","locked_by_uuid":"`+fakearvados.AdminTokenUUID+`"}]`, &seeded); st != 200 || len(seeded.UUIDs) != 2 {
		t.Fatalf("seed: %d %v", st, seeded)
	}
	a, b := seeded.UUIDs[0], seeded.UUIDs[1]
	if st := h.control("POST", "/_fake/seedn", `{"n":3,"template":{"priority":1}}`, &seeded); st != 200 || len(seeded.UUIDs) != 3 {
		t.Fatalf("seedn: %d %v", st, seeded)
	}
	if st := h.control("POST", "/_fake/priority", `{"uuid":"`+a+`","priority":0}`, nil); st != 200 || h.container(a).Priority != 0 {
		t.Fatalf("priority: %d", st)
	}
	if st := h.control("POST", "/_fake/state", `{"uuid":"`+b+`","state":"Cancelled"}`, nil); st != 200 || h.container(b).State != arvados.Cancelled {
		t.Fatalf("state: %d", st)
	}
	for _, tt := range []struct{ path, body string }{
		{"/_fake/priority", `{"uuid":"zzzzz-dz642-000000000000404","priority":1}`},
		{"/_fake/state", `{"uuid":"zzzzz-dz642-000000000000404","state":"Queued"}`},
	} {
		if st := h.control("POST", tt.path, tt.body, nil); st != 404 {
			t.Errorf("%s for an unknown uuid: %d, want 404", tt.path, st)
		}
	}
	for _, tt := range []struct{ path, body string }{
		{"/_fake/state", `{"uuid":"` + a + `","state":"Bogus"}`},
		{"/_fake/seed", `{"not":"an array"}`},
		{"/_fake/latency", `{"latency":"soon"}`},
	} {
		if st := h.control("POST", tt.path, tt.body, nil); st != 400 {
			t.Errorf("%s with %s: %d, want 400", tt.path, tt.body, st)
		}
	}

	h.control("POST", "/_fake/fault", `{"status":502,"count":1,"path_prefix":"/arvados/v1/containers"}`, nil)
	wantStatus(t, h.list(fakearvados.AdminToken, nil), 502)
	h.control("POST", "/_fake/fault", `{"status":500}`, nil)
	wantStatus(t, h.list(fakearvados.AdminToken, nil), 500)
	h.control("POST", "/_fake/clear-faults", "", nil)
	wantStatus(t, h.list(fakearvados.AdminToken, nil), 200)

	h.control("POST", "/_fake/down", `{"down":true}`, nil)
	wantStatus(t, h.list(fakearvados.AdminToken, nil), 503)
	h.control("POST", "/_fake/down", `{"down":false}`, nil)

	h.control("POST", "/_fake/latency", `{"latency":"100ms"}`, nil)
	start := time.Now()
	wantStatus(t, h.list(fakearvados.AdminToken, nil), 200)
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("request took %v with 100ms latency", took)
	}
	h.control("POST", "/_fake/latency", `{"latency":"0s"}`, nil)

	var cs []arvados.Container
	if st := h.control("GET", "/_fake/containers", "", &cs); st != 200 || len(cs) != 5 {
		t.Fatalf("containers: %d, %d records", st, len(cs))
	}
	var reqs []fakearvados.Request
	if st := h.control("GET", "/_fake/requests", "", &reqs); st != 200 || len(reqs) != 5 {
		t.Fatalf("requests: %d, %d logged (controls must not be logged): %+v", st, len(reqs), reqs)
	}
	var stats map[string]fakearvados.EndpointStats
	if st := h.control("GET", "/_fake/stats", "", &stats); st != 200 || stats["GET /arvados/v1/containers"].Count != 5 {
		t.Fatalf("stats: %d %v", st, stats)
	}
	h.control("POST", "/_fake/reset-requests", "", nil)
	if len(h.s.Requests()) != 0 {
		t.Fatal("reset-requests left requests")
	}
	var logs []arvados.Log
	if st := h.control("GET", "/_fake/logs", "", &logs); st != 200 || len(logs) != 0 {
		t.Fatalf("logs: %d %v", st, logs)
	}
	if st := h.control("GET", "/_fake/nosuch", "", nil); st != 404 {
		t.Fatalf("unknown control: %d", st)
	}
}

func TestStartRefusesNonLoopbackAddresses(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "example.com:0"} {
		if s, err := fakearvados.Start(fakearvados.Options{Addr: addr}); err == nil {
			s.Close()
			t.Errorf("Start(%q) listened", addr)
		}
	}
}
