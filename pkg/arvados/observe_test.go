package arvados

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEndpointClassHidesUUIDs(t *testing.T) {
	for _, tc := range []struct{ name, path, want string }{
		{"a list keeps its path", "containers", "containers"},
		{"a record's uuid becomes {uuid}", "containers/zzzzz-dz642-0123456789abcde", "containers/{uuid}"},
		{"a lock keeps its action", "containers/zzzzz-dz642-0123456789abcde/lock", "containers/{uuid}/lock"},
		{"the current token is not a uuid", "api_client_authorizations/current", "api_client_authorizations/current"},
		{"something uuid-sized but with capitals is kept", "containers/ZZZZZ-dz642-0123456789abcde", "containers/ZZZZZ-dz642-0123456789abcde"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EndpointClass(tc.path); got != tc.want {
				t.Errorf("EndpointClass(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
}

type observed struct {
	method, endpoint string
	took             time.Duration
	err              error
}

func TestTheObserverHearsOfEveryCallOnceAfterItsRetries(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch {
		case strings.HasSuffix(r.URL.Path, "/lock") && n == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case strings.HasSuffix(r.URL.Path, "/lock"):
			_, _ = w.Write([]byte(`{"uuid":"` + testUUID + `","state":"Locked"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errors":["not found"]}`))
		}
	}))
	defer srv.Close()
	var (
		mu  sync.Mutex
		got []observed
	)
	env := newTestClient(t, srv.URL, func(c *Config) {
		c.Observe = func(method, endpoint string, took time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, observed{method, endpoint, took, err})
		}
	})
	if _, err := env.c.Lock(context.Background(), testUUID); err != nil {
		t.Fatalf("lock: %v", err)
	}
	if _, err := env.c.GetContainer(context.Background(), testUUID); !IsNotFound(err) {
		t.Fatalf("get: %v, want a 404", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("observed %d calls, want 2 (one per call, not per attempt): %+v", len(got), got)
	}
	if o := got[0]; o.method != "POST" || o.endpoint != "containers/{uuid}/lock" || o.err != nil || o.took <= 0 {
		t.Errorf("lock observed as %+v, want POST containers/{uuid}/lock, no error, the retry's wait in took", o)
	}
	if o := got[1]; o.method != "GET" || o.endpoint != "containers/{uuid}" || !IsNotFound(o.err) {
		t.Errorf("get observed as %+v, want GET containers/{uuid} with a 404", o)
	}
}
