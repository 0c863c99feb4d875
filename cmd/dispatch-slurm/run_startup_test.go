package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// At start-up, an API server that answers 503 for a while is asked again with a growing delay
// until it answers; a refused token ends the start at once; being stopped ends the wait.
func TestStartupWaitsForAnUnavailableAPIServer(t *testing.T) {
	srv, err := fakearvados.Start(fakearvados.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client := func(token string) *arvados.Client {
		c, err := arvados.NewClient(arvados.Config{Host: srv.URL(), Token: token,
			Retry: arvados.RetryPolicy{MaxAttempts: 1}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	var slept []time.Duration
	sleep := func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return ctx.Err() }

	// 3 calls of currentToken (3 requests each) fail: 9 requests.
	srv.InjectFault(fakearvados.Fault{Status: 503, Count: 9, PathPrefix: "/arvados/v1/api_client_authorizations"})
	tok, err := startupToken(context.Background(), client(fakearvados.AdminToken), zap.NewNop(), sleep)
	if err != nil || tok.UUID != fakearvados.AdminTokenUUID {
		t.Fatalf("startupToken = %q, %v; want our token once the API answers", tok.UUID, err)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(slept, want) {
		t.Errorf("waited %v, want %v", slept, want)
	}

	slept = nil
	if _, err := startupToken(context.Background(), client("not-a-token"), zap.NewNop(), sleep); err == nil || len(slept) > 0 {
		t.Errorf("a refused token: err %v after waiting %v; want an error at once", err, slept)
	}

	srv.InjectFault(fakearvados.Fault{Status: 503})
	defer srv.ClearFaults()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := startupToken(ctx, client(fakearvados.AdminToken), zap.NewNop(), sleep); err == nil {
		t.Error("stopped while the API is down: no error")
	}
}
