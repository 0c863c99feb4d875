package arvados

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const ctrBody = `{"uuid":"` + testUUID + `","state":"Locked"}`

// script answers the n-th request with replies[n], and the last reply after that.
func script(replies ...reply) func(int, *http.Request) reply {
	return func(n int, _ *http.Request) reply { return replies[min(n, len(replies)-1)] }
}

var (
	ok200       = reply{status: 200, body: ctrBody}
	unavailable = reply{status: 503, body: `{"errors":["busy"]}`}
	hangup      = reply{hangup: true}
)

func TestRetries(t *testing.T) {
	get := func(ctx context.Context, c *Client) error { _, err := c.GetContainer(ctx, testUUID); return err }
	lock := func(ctx context.Context, c *Client) error { _, err := c.Lock(ctx, testUUID); return err }
	unlock := func(ctx context.Context, c *Client) error { _, err := c.Unlock(ctx, testUUID); return err }
	update := func(ctx context.Context, c *Client) error {
		_, err := c.UpdateContainer(ctx, testUUID, ContainerUpdate{Priority: new(int64(3))})
		return err
	}
	createLog := func(ctx context.Context, c *Client) error {
		_, err := c.CreateLog(ctx, Log{ObjectUUID: testUUID})
		return err
	}
	s := time.Second
	tests := []struct {
		name         string
		replies      []reply
		retry        RetryPolicy
		call         func(context.Context, *Client) error
		wantRequests int
		wantSleeps   []time.Duration
		wantErr      bool
		wantAmbig    bool
		wantInErr    string
	}{
		{name: "a 503 then success is retried after the base delay",
			replies: []reply{unavailable, ok200}, call: get,
			wantRequests: 2, wantSleeps: []time.Duration{250 * time.Millisecond}},
		{name: "a 429 honours Retry-After in seconds",
			replies: []reply{{status: 429, header: http.Header{"Retry-After": {"3"}}}, ok200}, call: get,
			wantRequests: 2, wantSleeps: []time.Duration{3 * s}},
		{name: "a 503 honours Retry-After as an HTTP date",
			replies: []reply{{status: 503, header: http.Header{"Retry-After": {
				newFakeClock().Now().Add(7 * s).Format(http.TimeFormat)}}}, ok200}, call: get,
			wantRequests: 2, wantSleeps: []time.Duration{7 * s}},
		{name: "a Retry-After shorter than the backoff waits the backoff",
			replies: []reply{{status: 503, header: http.Header{"Retry-After": {"0"}}}, ok200}, call: get,
			wantRequests: 2, wantSleeps: []time.Duration{250 * time.Millisecond}},
		{name: "a Retry-After beyond the budget fails at once",
			replies: []reply{{status: 429, header: http.Header{"Retry-After": {"60"}}}, ok200}, call: get,
			wantRequests: 1, wantErr: true, wantInErr: "retry budget of 30s"},
		{name: "a server that stays down fails after the attempts allowed, backing off exponentially",
			replies: []reply{unavailable}, call: get,
			wantRequests: 5, wantErr: true, wantInErr: "gave up after 5 attempts",
			wantSleeps: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, s, 2 * s}},
		{name: "a server that stays down fails within the time budget",
			retry:   RetryPolicy{MaxAttempts: 100, BaseDelay: s, MaxDelay: 5 * s, MaxElapsed: 10 * s},
			replies: []reply{unavailable}, call: get, wantRequests: 4, wantErr: true,
			wantInErr: "exceed the retry budget", wantSleeps: []time.Duration{s, 2 * s, 4 * s}},
		{name: "backoff stops growing at the maximum delay",
			retry:   RetryPolicy{MaxAttempts: 6, BaseDelay: s, MaxDelay: 3 * s, MaxElapsed: time.Minute},
			replies: []reply{unavailable}, call: get, wantRequests: 6, wantErr: true,
			wantSleeps: []time.Duration{s, 2 * s, 3 * s, 3 * s, 3 * s}},
		{name: "MaxAttempts 1 disables retries",
			retry:   RetryPolicy{MaxAttempts: 1},
			replies: []reply{unavailable}, call: get, wantRequests: 1, wantErr: true},
		{name: "a 501 is not retried",
			replies: []reply{{status: 501}, ok200}, call: get, wantRequests: 1, wantErr: true},
		{name: "a 404 is not retried",
			replies: []reply{{status: 404}, ok200}, call: get, wantRequests: 1, wantErr: true},
		{name: "a 500 on a GET is retried",
			replies: []reply{{status: 500}, ok200}, call: get,
			wantRequests: 2, wantSleeps: []time.Duration{250 * time.Millisecond}},
		{name: "a GET whose answer is cut off is retried",
			replies: []reply{{status: 200, body: `{"uuid":"zzz`}, ok200}, call: get,
			wantRequests: 2, wantSleeps: []time.Duration{250 * time.Millisecond}},
		{name: "a GET that gets no answer is retried",
			replies: []reply{hangup, ok200}, call: get,
			wantRequests: 2, wantSleeps: []time.Duration{250 * time.Millisecond}},
		{name: "an update that gets no answer is retried: it sets absolute values",
			replies: []reply{hangup, ok200}, call: update,
			wantRequests: 2, wantSleeps: []time.Duration{250 * time.Millisecond}},
		{name: "a lock that gets no answer is not retried and is ambiguous",
			replies: []reply{hangup, ok200}, call: lock,
			wantRequests: 1, wantErr: true, wantAmbig: true, wantInErr: "no response"},
		{name: "an unlock that gets no answer is not retried and is ambiguous",
			replies: []reply{hangup, ok200}, call: unlock, wantRequests: 1, wantErr: true, wantAmbig: true},
		{name: "a log record that gets no answer is not retried: it would be written twice",
			replies: []reply{hangup, ok200}, call: createLog, wantRequests: 1, wantErr: true, wantAmbig: true},
		{name: "a lock answered by a 502 is not retried and is ambiguous",
			replies: []reply{{status: 502}, ok200}, call: lock, wantRequests: 1, wantErr: true, wantAmbig: true},
		{name: "a lock whose successful answer is cut off is not retried and is ambiguous",
			replies: []reply{{status: 200, body: `{"uuid":`}, ok200}, call: lock,
			wantRequests: 1, wantErr: true, wantAmbig: true},
		{name: "a lock answered by a 503 is retried: the server did not act on it",
			replies: []reply{unavailable, ok200}, call: lock,
			wantRequests: 2, wantSleeps: []time.Duration{250 * time.Millisecond}},
		{name: "a lock answered by a 429 is retried: the server did not act on it",
			replies: []reply{{status: 429}, ok200}, call: lock,
			wantRequests: 2, wantSleeps: []time.Duration{250 * time.Millisecond}},
		{name: "a lock answered by a 422 is not retried",
			replies: []reply{{status: 422}, ok200}, call: lock, wantRequests: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{answer: script(tt.replies...)}
			env := newTestClient(t, serve(t, rec).URL, func(c *Config) { c.Retry = tt.retry })
			err := tt.call(t.Context(), env.c)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error: %v", err, tt.wantErr)
			}
			assertNoToken(t, err)
			if got := len(rec.Requests()); got != tt.wantRequests {
				t.Errorf("%d requests, want %d", got, tt.wantRequests)
			}
			if got := env.clock.Sleeps(); !slices.Equal(got, tt.wantSleeps) {
				t.Errorf("slept %v, want %v", got, tt.wantSleeps)
			}
			if err != nil && IsAmbiguous(err) != tt.wantAmbig {
				t.Errorf("IsAmbiguous(%v) = %v, want %v", err, !tt.wantAmbig, tt.wantAmbig)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not say %q", err, tt.wantInErr)
			}
			if elapsed := env.clock.Now().Sub(newFakeClock().Now()); tt.retry.MaxElapsed > 0 && elapsed > tt.retry.MaxElapsed {
				t.Errorf("retried for %s, beyond the budget of %s", elapsed, tt.retry.MaxElapsed)
			}
		})
	}
}

func TestBackoffIsJitteredWithinHalfToFullDelay(t *testing.T) {
	env := newTestClient(t, "http://127.0.0.1:1", nil)
	for _, tt := range []struct {
		jitter float64
		want   []time.Duration
	}{
		{0, []time.Duration{125_000, 250_000, 500_000, 1_000_000, 2_000_000, 2_500_000, 2_500_000}},
		{0.5, []time.Duration{187_500, 375_000, 750_000, 1_500_000, 3_000_000, 3_750_000, 3_750_000}},
	} {
		env.c.jitter = func() float64 { return tt.jitter }
		for i, want := range tt.want {
			if got := env.c.backoff(i + 1); got != want*time.Microsecond {
				t.Errorf("jitter %v, retry %d: waited %s, want %s", tt.jitter, i+1, got, want*time.Microsecond)
			}
		}
	}
}

func TestALockTimedOutAfterSendingIsAmbiguousAndNotRetried(t *testing.T) {
	rec := &recorder{answer: script(reply{block: true}, ok200)}
	env := newTestClient(t, serve(t, rec).URL, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	_, err := env.c.Lock(t.Context(), testUUID)
	if !IsAmbiguous(err) || !IsTransient(err) || !strings.Contains(err.Error(), "timed out after 50ms") {
		t.Errorf("error %v: want an ambiguous, transient timeout", err)
	}
	if n := len(rec.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	assertNoToken(t, err)
}

func TestALockIsRetriedWhenTheConnectionWasRefusedBeforeSending(t *testing.T) {
	rec := &recorder{answer: script(ok200)}
	srv := serve(t, rec)
	var dials atomic.Int32
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	env := newTestClient(t, srv.URL, func(c *Config) { c.HTTPClient = &http.Client{Transport: tr} })
	if _, err := env.c.Lock(t.Context(), testUUID); err != nil {
		t.Fatalf("lock: %v", err)
	}
	if n := len(rec.Requests()); n != 1 {
		t.Errorf("%d lock requests reached the server, want 1", n)
	}
	if got := env.clock.Sleeps(); len(got) != 1 {
		t.Errorf("slept %v, want one backoff", got)
	}
}

func TestAServerThatRefusesConnectionsFailsTransientButNotAmbiguous(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	env := newTestClient(t, "http://"+addr, nil)
	_, err = env.c.Lock(t.Context(), testUUID)
	if err == nil || !IsTransient(err) || IsAmbiguous(err) {
		t.Fatalf("error %v: want transient, not ambiguous", err)
	}
	if got := len(env.clock.Sleeps()); got != DefaultMaxAttempts-1 {
		t.Errorf("slept %d times, want %d", got, DefaultMaxAttempts-1)
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q does not say which host refused", err)
	}
	assertNoToken(t, err)
}

func TestCancellingTheCallerStopsTheBackoff(t *testing.T) {
	rec := &recorder{answer: script(unavailable)}
	ctx, cancel := context.WithCancel(t.Context())
	env := newTestClient(t, serve(t, rec).URL, func(c *Config) {
		c.Sleep = func(ctx context.Context, _ time.Duration) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}
	})
	_, err := env.c.GetContainer(ctx, testUUID)
	if !errors.Is(err, context.Canceled) || httpStatus(err) != 503 {
		t.Errorf("error %v: want the 503 and context.Canceled", err)
	}
	if n := len(rec.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestTheDefaultSleeperReturnsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepCtx on a cancelled context: %v", err)
	}
	if err := sleepCtx(t.Context(), time.Microsecond); err != nil {
		t.Errorf("sleepCtx: %v", err)
	}
}

func TestRetryAfterIsParsed(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, header string
		want         time.Duration
	}{
		{"seconds are read", "120", 2 * time.Minute},
		{"white space is ignored", " 5 ", 5 * time.Second},
		{"an absent header is zero", "", 0},
		{"a negative number is zero", "-3", 0},
		{"garbage is zero", "soon", 0},
		{"an HTTP date in the future is the time until then", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"an HTTP date in the past is zero", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"a huge number is capped at a day", "99999999999999999", 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.header, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.header, got, tt.want)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"1", "-1", "", "Sun, 02 Mar 2025 12:00:00 GMT", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d := parseRetryAfter(s, now); d < 0 || d > maxRetryAfter {
			t.Errorf("parseRetryAfter(%q) = %s, out of [0, %s]", s, d, maxRetryAfter)
		}
	})
}
