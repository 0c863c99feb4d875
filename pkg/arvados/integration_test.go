package arvados_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// These tests run the client against test/fakearvados, over http and over TLS.

// fakeEnv is a fake server and a client for it with an observed logger; every error a test
// produces goes through check, which fails the test if it carries the token.
type fakeEnv struct {
	srv    *fakearvados.Server
	logger *zap.Logger
	// errs collects every error seen, checked for tokens at cleanup.
	mu   sync.Mutex
	errs []error
}

func newFake(t *testing.T, tls bool) *fakeEnv {
	t.Helper()
	srv := fakearvados.New(fakearvados.Options{TLS: tls})
	t.Cleanup(srv.Close)
	core, logs := observer.New(zap.DebugLevel)
	e := &fakeEnv{srv: srv, logger: zap.New(core)}
	t.Cleanup(func() {
		for _, l := range logs.All() {
			line := l.Message + " " + fmt.Sprint(l.ContextMap())
			for _, tok := range []string{fakearvados.AdminToken, fakearvados.Dispatcher2Token, badToken} {
				if strings.Contains(line, tok) {
					t.Errorf("log line contains a token: %s", line)
				}
			}
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, err := range e.errs {
			for _, tok := range []string{fakearvados.AdminToken, fakearvados.Dispatcher2Token, badToken} {
				if strings.Contains(err.Error(), tok) {
					t.Errorf("error contains a token: %v", err)
				}
			}
		}
	})
	return e
}

const badToken = "v2/zzzzz-gj3su-999999999999999/thisIsNotAValidSecretAtAllxxxxxxxxxxxxxxxxxxxx"

// client returns a client of the fake with token, whose retries do not wait.
func (e *fakeEnv) client(t *testing.T, token string, mutate func(*arvados.Config)) *arvados.Client {
	t.Helper()
	cfg := arvados.Config{Host: e.srv.URL(), Token: token, HTTPClient: e.srv.HTTPClient(), Logger: e.logger,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := arvados.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// check records err for the token check and returns it.
func (e *fakeEnv) check(err error) error {
	if err != nil {
		e.mu.Lock()
		e.errs = append(e.errs, err)
		e.mu.Unlock()
	}
	return err
}

func forEachScheme(t *testing.T, test func(t *testing.T, e *fakeEnv)) {
	for _, tls := range []bool{false, true} {
		name := "over http"
		if tls {
			name = "over TLS"
		}
		t.Run(name, func(t *testing.T) { test(t, newFake(t, tls)) })
	}
}

func TestFakeTheCurrentTokenIsTheDispatchers(t *testing.T) {
	forEachScheme(t, func(t *testing.T, e *fakeEnv) {
		a, err := e.client(t, fakearvados.AdminToken, nil).CurrentToken(t.Context())
		if e.check(err) != nil || a.UUID != fakearvados.AdminTokenUUID || a.APIToken != "" {
			t.Errorf("got %v (err %v), want %s without the secret", a, err, fakearvados.AdminTokenUUID)
		}
	})
}

func TestFakeLockUnlockUpdateRoundTrip(t *testing.T) {
	forEachScheme(t, func(t *testing.T, e *fakeEnv) {
		ctx := t.Context()
		c := e.client(t, fakearvados.AdminToken, nil)
		other := e.client(t, fakearvados.Dispatcher2Token, nil)
		uuid := e.srv.Seed(arvados.Container{Priority: 5, Command: []string{"sleep", "1"}})[0]

		ctr, err := c.Lock(ctx, uuid)
		if e.check(err) != nil || ctr.UUID != uuid || ctr.State != arvados.Locked || ctr.LockedByUUID != fakearvados.AdminTokenUUID {
			t.Fatalf("lock: %+v, %v", ctr, err)
		}
		if ctr, err = c.GetContainer(ctx, uuid); e.check(err) != nil || ctr.LockCount != 1 || ctr.Command[0] != "sleep" {
			t.Fatalf("get after lock: %+v, %v", ctr, err)
		}
		auth, err := c.ContainerAuth(ctx, uuid)
		if e.check(err) != nil || auth.UUID == "" || auth.APIToken == "" || auth.APIToken == fakearvados.AdminToken {
			t.Errorf("container auth: %v, %v; want the container's own token", auth, err)
		}
		_, err = c.Lock(ctx, uuid)
		if e.check(err); !arvados.IsInvalid(err) || arvados.IsTransient(err) {
			t.Errorf("second lock: %v, want a 422 classified as invalid", err)
		}
		_, err = other.Unlock(ctx, uuid)
		if e.check(err); !arvados.IsForbidden(err) {
			t.Errorf("unlock by another dispatcher: %v, want forbidden", err)
		}
		ctr, err = c.UpdateContainer(ctx, uuid, arvados.ContainerUpdate{Priority: new(int64(9)),
			RuntimeStatus: map[string]any{"warning": "Slurm job pending: Resources"}})
		if e.check(err) != nil || ctr.Priority != 9 || ctr.RuntimeStatus["warning"] != "Slurm job pending: Resources" {
			t.Errorf("update: %+v, %v", ctr, err)
		}
		ctr, err = c.Unlock(ctx, uuid)
		if e.check(err) != nil || ctr.State != arvados.Queued || ctr.LockedByUUID != "" {
			t.Errorf("unlock: %+v, %v", ctr, err)
		}
		if _, err = c.Lock(ctx, uuid); e.check(err) != nil {
			t.Fatal(err)
		}
		ctr, err = c.UpdateContainer(ctx, uuid, arvados.ContainerUpdate{State: new(arvados.Cancelled),
			RuntimeStatus: map[string]any{"error": "no such partition"}})
		if e.check(err) != nil || ctr.State != arvados.Cancelled || ctr.LockCount != 2 {
			t.Errorf("cancel: %+v, %v", ctr, err)
		}
		got, err := c.GetContainer(ctx, uuid, "uuid", "state", "runtime_status")
		if e.check(err) != nil || got.State != arvados.Cancelled || got.RuntimeStatus["error"] != "no such partition" || got.Priority != 0 {
			t.Errorf("get with select: %+v, %v", got, err)
		}
		_, err = c.UpdateContainer(ctx, uuid, arvados.ContainerUpdate{State: new(arvados.Running)})
		if e.check(err); !arvados.IsInvalid(err) {
			t.Errorf("Cancelled→Running: %v, want invalid", err)
		}
		l, err := c.CreateLog(ctx, arvados.Log{ObjectUUID: uuid, Properties: map[string]any{"text": "cancelled"}})
		if e.check(err) != nil || l.UUID == "" {
			t.Errorf("create log: %+v, %v", l, err)
		}
		if logs := e.srv.Logs(); len(logs) != 1 || logs[0].EventType != "dispatch" || logs[0].ObjectUUID != uuid {
			t.Errorf("the fake holds logs %+v", logs)
		}
	})
}

func TestFakeErrorsAreClassified(t *testing.T) {
	forEachScheme(t, func(t *testing.T, e *fakeEnv) {
		ctx := t.Context()
		_, err := e.client(t, badToken, nil).CurrentToken(ctx)
		if e.check(err); !arvados.IsUnauthenticated(err) || !strings.Contains(err.Error(), e.srv.Host()) ||
			!strings.Contains(err.Error(), "ARVADOS_API_TOKEN") {
			t.Errorf("bad token: %v, want a 401 naming the host and ARVADOS_API_TOKEN", err)
		}
		_, err = e.client(t, fakearvados.AdminToken, nil).GetContainer(ctx, "zzzzz-dz642-nosuchcontainer")
		if e.check(err); !arvados.IsNotFound(err) {
			t.Errorf("unknown uuid: %v, want not found", err)
		}
	})
}

func TestFakeRequestsCarryARequestIDAndTheToken(t *testing.T) {
	e := newFake(t, false)
	c := e.client(t, fakearvados.AdminToken, nil)
	if _, err := c.ListContainers(t.Context(), arvados.ListParams{Count: "none", Limit: 10}); e.check(err) != nil {
		t.Fatal(err)
	}
	reqs := e.srv.Requests()
	if len(reqs) != 1 || !regexp.MustCompile(`^req-[a-z0-9]{20}$`).MatchString(reqs[0].RequestID) ||
		reqs[0].Token != fakearvados.AdminTokenUUID || reqs[0].Status != 200 {
		t.Errorf("the fake saw %+v", reqs)
	}
}

func TestFakeFaultsAreRetriedOrReportedAsAmbiguous(t *testing.T) {
	e := newFake(t, false)
	ctx := t.Context()
	c := e.client(t, fakearvados.AdminToken, nil)
	uuid := e.srv.Seed(arvados.Container{Priority: 1})[0]

	e.srv.InjectFault(fakearvados.Fault{Status: 503, RetryAfter: "1", Count: 2, PathPrefix: "/arvados/v1/containers"})
	if _, err := c.GetContainer(ctx, uuid); e.check(err) != nil {
		t.Errorf("get through two 503s: %v", err)
	}

	e.srv.ResetRequests()
	e.srv.InjectFault(fakearvados.Fault{Status: 0, Count: 1, Method: "POST"})
	_, err := c.Lock(ctx, uuid)
	if e.check(err); !arvados.IsAmbiguous(err) {
		t.Errorf("lock on a dropped connection: %v, want ambiguous", err)
	}
	if n := len(e.srv.Requests()); n != 1 {
		t.Errorf("the lock was sent %d times, want once", n)
	}

	e.srv.SetDown(true)
	start := time.Now()
	_, err = c.GetContainer(ctx, uuid)
	if e.check(err); !arvados.IsTransient(err) || !strings.Contains(err.Error(), "gave up after 5 attempts") {
		t.Errorf("get during an outage: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("an outage took %s to report", took)
	}
	e.srv.SetDown(false)
}

// TestFakePagingReturnsEachContainerOnceWhilePrioritiesChange pages through 2,500 containers,
// 100 per page, while another goroutine keeps changing their priorities: offset paging by
// priority would skip and repeat records; keyset paging by uuid must return each exactly once.
func TestFakePagingReturnsEachContainerOnceWhilePrioritiesChange(t *testing.T) {
	forEachScheme(t, func(t *testing.T, e *fakeEnv) {
		uuids := e.srv.SeedN(2500, arvados.Container{Priority: 1})
		c := e.client(t, fakearvados.AdminToken, func(cfg *arvados.Config) { cfg.MaxItemsPerResponse = 100 })

		ctx, cancel := context.WithCancel(t.Context())
		var churn sync.WaitGroup
		churn.Go(func() {
			for ctx.Err() == nil {
				reprioritize(t, e.srv, uuids, 1)
			}
		})
		seen := make(map[string]int, len(uuids))
		err := c.EachContainer(t.Context(), arvados.ListParams{
			Filters: []arvados.Filter{arvados.NewFilter("state", "=", arvados.Queued), arvados.NewFilter("priority", ">", 0)},
			Select:  []string{"uuid", "priority", "state"},
		}, func(ctr arvados.Container) error {
			seen[ctr.UUID]++
			if len(seen)%100 == 0 {
				// Between pages for certain: move containers seen and unseen around.
				reprioritize(t, e.srv, uuids, 200)
			}
			return nil
		})
		cancel()
		churn.Wait()
		if e.check(err) != nil {
			t.Fatal(err)
		}
		for _, u := range uuids {
			if seen[u] != 1 {
				t.Errorf("%s seen %d times", u, seen[u])
			}
		}
		if len(seen) != len(uuids) {
			t.Errorf("saw %d distinct containers, want %d", len(seen), len(uuids))
		}
		if st := e.srv.Stats()["GET /arvados/v1/containers"]; st.Count != 26 {
			t.Errorf("%d list requests, want 26 (25 full pages and an empty one)", st.Count)
		}
	})
}

func TestFakeUnlockAtTheLastAttemptCancels(t *testing.T) {
	srv := fakearvados.New(fakearvados.Options{MaxDispatchAttempts: 1})
	t.Cleanup(srv.Close)
	c, err := arvados.NewClient(arvados.Config{Host: srv.URL(), Token: fakearvados.AdminToken, HTTPClient: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	uuid := srv.Seed(arvados.Container{Priority: 1})[0]
	if _, err := c.Lock(t.Context(), uuid); err != nil {
		t.Fatal(err)
	}
	ctr, err := c.Unlock(t.Context(), uuid)
	if err != nil || ctr.State != arvados.Cancelled {
		t.Errorf("unlock at the last attempt: %+v, %v; want Cancelled", ctr, err)
	}
}

// reprioritize gives n random containers random priorities (> 0).
func reprioritize(t *testing.T, srv *fakearvados.Server, uuids []string, n int) {
	for range n {
		if err := srv.SetPriority(uuids[rand.IntN(len(uuids))], 1+rand.Int64N(1<<50)); err != nil {
			t.Error(err)
			return
		}
	}
}

// TestFakeTheSameChurnBreaksOffsetPaging shows that the churn above is strong enough to catch
// offset paging: ordered by priority, it misses and repeats containers.
func TestFakeTheSameChurnBreaksOffsetPaging(t *testing.T) {
	e := newFake(t, false)
	uuids := e.srv.SeedN(2500, arvados.Container{Priority: 1})
	c := e.client(t, fakearvados.AdminToken, nil)
	seen := map[string]int{}
	for offset := 0; ; offset += 100 {
		page, err := c.ListContainers(t.Context(), arvados.ListParams{Order: []string{"priority desc"},
			Limit: 100, Offset: offset, Count: "none", Select: []string{"uuid", "priority"}})
		if e.check(err) != nil {
			t.Fatal(err)
		}
		for _, ctr := range page.Items {
			seen[ctr.UUID]++
		}
		if len(page.Items) < 100 {
			break
		}
		reprioritize(t, e.srv, uuids, 200)
	}
	repeated := 0
	for _, n := range seen {
		if n > 1 {
			repeated++
		}
	}
	if len(seen) == len(uuids) && repeated == 0 {
		t.Error("offset paging returned every container once: the churn does not test paging")
	}
}
