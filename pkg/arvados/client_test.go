package arvados

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var requestIDRe = regexp.MustCompile(`^req-[a-z0-9]{20}$`)

func TestCallsPutParametersOnTheWireAsArvadosExpects(t *testing.T) {
	ctr := `{"uuid":"` + testUUID + `","state":"Locked","priority":7}`
	tests := []struct {
		name       string
		call       func(context.Context, *Client) error
		wantMethod string
		wantPath   string
		wantQuery  string
		wantBody   string // form body, exactly
	}{
		{
			name: "the current token is a plain GET",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.CurrentToken(ctx)
				return err
			},
			wantMethod: "GET", wantPath: "/arvados/v1/api_client_authorizations/current",
		},
		{
			name: "a list puts every non-string parameter in the query string as JSON, without HTML escaping",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.ListContainers(ctx, ListParams{
					Filters: []Filter{NewFilter("state", "in", []ContainerState{Queued, Locked}),
						NewFilter("priority", ">", 0)},
					Order: []string{"priority desc"}, Limit: 1000, Offset: 20, Count: "none",
					Select: []string{"uuid", "priority"},
				})
				return err
			},
			wantMethod: "GET", wantPath: "/arvados/v1/containers",
			wantQuery: "count=none" +
				"&filters=%5B%5B%22state%22%2C%22in%22%2C%5B%22Queued%22%2C%22Locked%22%5D%5D%2C%5B%22priority%22%2C%22%3E%22%2C0%5D%5D" +
				"&limit=1000&offset=20&order=%5B%22priority+desc%22%5D&select=%5B%22uuid%22%2C%22priority%22%5D",
		},
		{
			name: "a list with zero parameters sends none",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.ListContainers(ctx, ListParams{})
				return err
			},
			wantMethod: "GET", wantPath: "/arvados/v1/containers",
		},
		{
			name: "a get with selected fields sends select as JSON",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.GetContainer(ctx, testUUID, "uuid", "state")
				return err
			},
			wantMethod: "GET", wantPath: "/arvados/v1/containers/" + testUUID,
			wantQuery: "select=%5B%22uuid%22%2C%22state%22%5D",
		},
		{
			name: "lock is a POST without parameters",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Lock(ctx, testUUID)
				return err
			},
			wantMethod: "POST", wantPath: "/arvados/v1/containers/" + testUUID + "/lock",
		},
		{
			name: "unlock is a POST without parameters",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Unlock(ctx, testUUID)
				return err
			},
			wantMethod: "POST", wantPath: "/arvados/v1/containers/" + testUUID + "/unlock",
		},
		{
			name: "an update sends only the fields that are set, as one JSON form field",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.UpdateContainer(ctx, testUUID, ContainerUpdate{State: new(Cancelled),
					RuntimeStatus: map[string]any{"error": "a > b"}})
				return err
			},
			wantMethod: "PUT", wantPath: "/arvados/v1/containers/" + testUUID,
			wantBody: "container=%7B%22state%22%3A%22Cancelled%22%2C%22runtime_status%22%3A%7B%22error%22%3A%22a+%3E+b%22%7D%7D",
		},
		{
			name: "an update of priority to zero sends the zero",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.UpdateContainer(ctx, testUUID, ContainerUpdate{Priority: new(int64(0))})
				return err
			},
			wantMethod: "PUT", wantPath: "/arvados/v1/containers/" + testUUID,
			wantBody: "container=%7B%22priority%22%3A0%7D",
		},
		{
			name: "an update with an empty runtime status clears it",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.UpdateContainer(ctx, testUUID, ContainerUpdate{RuntimeStatus: map[string]any{}})
				return err
			},
			wantMethod: "PUT", wantPath: "/arvados/v1/containers/" + testUUID,
			wantBody: "container=%7B%22runtime_status%22%3A%7B%7D%7D",
		},
		{
			name: "a log record is a dispatch event sent as one JSON form field",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.CreateLog(ctx, Log{ObjectUUID: testUUID, Properties: map[string]any{"text": "submitted"}})
				return err
			},
			wantMethod: "POST", wantPath: "/arvados/v1/logs",
			wantBody: "log=%7B%22object_uuid%22%3A%22zzzzz-dz642-000000000000001%22%2C%22event_type%22%3A%22dispatch%22%2C%22properties%22%3A%7B%22text%22%3A%22submitted%22%7D%7D",
		},
		{
			name: "the container's auth is a GET below the container",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.ContainerAuth(ctx, testUUID)
				return err
			},
			wantMethod: "GET", wantPath: "/arvados/v1/containers/" + testUUID + "/auth",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{answer: func(int, *http.Request) reply { return reply{status: 200, body: ctr} }}
			env := newTestClient(t, serve(t, rec).URL, nil)
			if err := tt.call(t.Context(), env.c); err != nil {
				t.Fatalf("call: %v", err)
			}
			reqs := rec.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.wantMethod || r.Path != tt.wantPath {
				t.Errorf("request %s %s, want %s %s", r.Method, r.Path, tt.wantMethod, tt.wantPath)
			}
			if r.RawQuery != tt.wantQuery {
				t.Errorf("query\n got %s\nwant %s", r.RawQuery, tt.wantQuery)
			}
			if r.Body != tt.wantBody {
				t.Errorf("body\n got %s\nwant %s", r.Body, tt.wantBody)
			}
			wantCT := ""
			if tt.wantBody != "" {
				wantCT = "application/x-www-form-urlencoded"
			}
			if got := r.Header.Get("Content-Type"); got != wantCT {
				t.Errorf("Content-Type %q, want %q", got, wantCT)
			}
			if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
				t.Errorf("Authorization header is not Bearer <token>")
			}
			if rid := r.Header.Get("X-Request-Id"); !requestIDRe.MatchString(rid) {
				t.Errorf("X-Request-Id %q does not match %s", rid, requestIDRe)
			}
		})
	}
}

func TestFiltersDecodeBackFromTheWire(t *testing.T) {
	q, err := ListParams{Filters: []Filter{NewFilter("priority", ">=", int64(1)<<59+3),
		NewFilter("state", "not in", []string{"Complete", "Cancelled"})}}.Values()
	if err != nil {
		t.Fatal(err)
	}
	var got []Filter
	if err := json.Unmarshal([]byte(q.Get("filters")), &got); err != nil {
		t.Fatalf("decode %s: %v", q.Get("filters"), err)
	}
	if got[0].Attr != "priority" || got[0].Op != ">=" || fmt.Sprint(got[0].Operand) != "576460752303423491" {
		t.Errorf("first filter decoded as %#v: a large priority must keep its precision", got[0])
	}
	if got[1].Op != "not in" || fmt.Sprint(got[1].Operand) != "[Complete Cancelled]" {
		t.Errorf("second filter decoded as %#v", got[1])
	}
	for _, bad := range []string{`["a","="]`, `{"a":1}`, `[1,"=",2]`, `["a",2,3]`} {
		var f Filter
		if err := json.Unmarshal([]byte(bad), &f); err == nil {
			t.Errorf("filter %s decoded without error as %#v", bad, f)
		}
	}
}

func TestEachCallHasItsOwnRequestIDAndRetriesKeepIt(t *testing.T) {
	rec := &recorder{answer: func(n int, _ *http.Request) reply {
		if n == 0 {
			return reply{status: 503}
		}
		return reply{status: 200, body: `{"uuid":"` + testUUID + `"}`}
	}}
	env := newTestClient(t, serve(t, rec).URL, nil)
	for range 2 {
		if _, err := env.c.GetContainer(t.Context(), testUUID); err != nil {
			t.Fatal(err)
		}
	}
	reqs := rec.Requests()
	if len(reqs) != 3 {
		t.Fatalf("got %d requests, want 3 (503, retry, second call)", len(reqs))
	}
	id := func(i int) string { return reqs[i].Header.Get("X-Request-Id") }
	if id(0) != id(1) {
		t.Errorf("the retry sent request id %s, the first attempt %s: want the same", id(1), id(0))
	}
	if id(1) == id(2) {
		t.Errorf("two calls sent the same request id %s", id(1))
	}
}

func TestInvalidUUIDsNeverReachTheServer(t *testing.T) {
	rec := &recorder{}
	env := newTestClient(t, serve(t, rec).URL, nil)
	ctx := t.Context()
	for _, uuid := range []string{"", "../../users/current", "zzzzz-dz642-00000000000000", "ZZZZZ-dz642-000000000000001",
		"zzzzz-j7d0g-000000000000001", "zzzzz-dz642-000000000000001/lock", "zzzzz-dz642-000000000000001?x=1"} {
		calls := map[string]func() error{
			"get":    func() error { _, err := env.c.GetContainer(ctx, uuid); return err },
			"lock":   func() error { _, err := env.c.Lock(ctx, uuid); return err },
			"unlock": func() error { _, err := env.c.Unlock(ctx, uuid); return err },
			"update": func() error {
				_, err := env.c.UpdateContainer(ctx, uuid, ContainerUpdate{Priority: new(int64(1))})
				return err
			},
			"auth": func() error { _, err := env.c.ContainerAuth(ctx, uuid); return err },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, ErrInvalidUUID) {
				t.Errorf("%s %q: error %v, want ErrInvalidUUID", name, uuid, err)
			}
		}
	}
	if n := len(rec.Requests()); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
}

func TestAnUpdateThatSetsNothingIsRefusedLocally(t *testing.T) {
	rec := &recorder{}
	env := newTestClient(t, serve(t, rec).URL, nil)
	if _, err := env.c.UpdateContainer(t.Context(), testUUID, ContainerUpdate{}); !errors.Is(err, errNothingToUpdate) {
		t.Errorf("error %v, want errNothingToUpdate", err)
	}
	if _, err := env.c.CreateLog(t.Context(), Log{}); err == nil {
		t.Error("a log without object_uuid was accepted")
	}
	if n := len(rec.Requests()); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
}

func TestCurrentTokenNeverReturnsTheSecret(t *testing.T) {
	rec := &recorder{answer: func(int, *http.Request) reply {
		return reply{status: 200, body: `{"uuid":"zzzzz-gj3su-000000000000000","api_token":"` + testToken + `"}`}
	}}
	env := newTestClient(t, serve(t, rec).URL, nil)
	a, err := env.c.CurrentToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if a.UUID != "zzzzz-gj3su-000000000000000" || a.APIToken != "" {
		t.Errorf("got %+v (api_token %q), want the uuid and no secret", a, a.APIToken)
	}
}

func TestErrorResponsesAreDecodedAndNeverCarryTheToken(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		contentType  string
		body         string
		wantMessages []string
		wantInError  []string
	}{
		{
			name: "Arvados's errors list becomes the messages", status: 422,
			body:         `{"errors":["#<ArvadosModel::InvalidStateTransitionError: cannot lock>"],"error_token":"1234"}`,
			wantMessages: []string{"#<ArvadosModel::InvalidStateTransitionError: cannot lock>"},
			wantInError:  []string{"422 Unprocessable Entity", "cannot lock", "/arvados/v1/containers/" + testUUID + "/lock"},
		},
		{
			name: "a 401 says which host refused and to check ARVADOS_API_TOKEN", status: 401,
			body: `{"errors":["Not logged in"]}`, wantMessages: []string{"Not logged in"},
			wantInError: []string{"401 Unauthorized", "Not logged in", "refused the token", "ARVADOS_API_TOKEN", "127.0.0.1:"},
		},
		{
			name: "a server that echoes the token has it hidden", status: 403,
			body:         `{"errors":["token ` + testToken + ` may not do this"]}`,
			wantMessages: []string{"token [token hidden] may not do this"},
			wantInError:  []string{"403 Forbidden", "[token hidden]"},
		},
		{
			name: "a proxy's HTML error page adds nothing to the status", status: 502, contentType: "text/html",
			body: "<html><body><h1>502 Bad Gateway</h1></body></html>", wantInError: []string{"502 Bad Gateway"},
		},
		{
			name: "a plain-text error body becomes the message", status: 500, contentType: "text/plain",
			body: "upstream exploded\n", wantMessages: []string{"upstream exploded"},
			wantInError: []string{"500 Internal Server Error: upstream exploded"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{answer: func(int, *http.Request) reply {
				return reply{status: tt.status, body: tt.body, header: http.Header{"Content-Type": {tt.contentType}}}
			}}
			env := newTestClient(t, serve(t, rec).URL, func(c *Config) { c.Retry.MaxAttempts = 1 })
			_, err := env.c.Lock(t.Context(), testUUID)
			var he *HTTPError
			if !errors.As(err, &he) {
				t.Fatalf("error %v is not an *HTTPError", err)
			}
			if he.Status != tt.status || !slices.Equal(he.Messages, tt.wantMessages) {
				t.Errorf("got status %d messages %q, want %d %q", he.Status, he.Messages, tt.status, tt.wantMessages)
			}
			if !requestIDRe.MatchString(he.RequestID) || !strings.Contains(err.Error(), he.RequestID) {
				t.Errorf("error %q does not name its request id %q", err, he.RequestID)
			}
			for _, want := range tt.wantInError {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			assertNoToken(t, err)
		})
	}
}

func TestErrorsAreClassified(t *testing.T) {
	status := func(s int) error { return fmt.Errorf("lock x: %w", &HTTPError{Status: s}) }
	transport := func(sent bool, err error) error {
		return fmt.Errorf("get x: %w", &TransportError{Sent: sent, Err: err})
	}
	type class struct{ transient, ambiguous, notFound, invalid, forbidden, unauthenticated bool }
	tests := []struct {
		name string
		err  error
		want class
	}{
		{"a 401 is unauthenticated", status(401), class{unauthenticated: true}},
		{"a 403 is forbidden", status(403), class{forbidden: true}},
		{"a 404 is not found", status(404), class{notFound: true}},
		{"a 422 is invalid", status(422), class{invalid: true}},
		{"a 409 is invalid", status(409), class{invalid: true}},
		{"a 400 is nothing in particular", status(400), class{}},
		{"a 429 is transient and was not acted on", status(429), class{transient: true}},
		{"a 503 is transient and was not acted on", status(503), class{transient: true}},
		{"a 500 is transient and may have been acted on", status(500), class{transient: true, ambiguous: true}},
		{"a 502 is transient and may have been acted on", status(502), class{transient: true, ambiguous: true}},
		{"a 504 is transient and may have been acted on", status(504), class{transient: true, ambiguous: true}},
		{"a 501 is permanent", status(501), class{}},
		{"a refused connection is transient and certainly not acted on", transport(false, errors.New("connection refused")), class{transient: true}},
		{"a timeout after sending is transient and ambiguous", transport(true, context.DeadlineExceeded), class{transient: true, ambiguous: true}},
		{"an untrusted certificate is not transient", transport(false, x509UnknownAuthority()), class{}},
		{"an invalid uuid is nothing the server said", fmt.Errorf("x: %w", ErrInvalidUUID), class{}},
		{"nil is nothing", nil, class{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := class{IsTransient(tt.err), IsAmbiguous(tt.err), IsNotFound(tt.err), IsInvalid(tt.err),
				IsForbidden(tt.err), IsUnauthenticated(tt.err)}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEachAttemptIsLoggedAtDebugWithoutTheToken(t *testing.T) {
	rec := &recorder{answer: func(n int, _ *http.Request) reply {
		if n == 0 {
			return reply{status: 503, body: `{"errors":["busy"]}`}
		}
		return reply{status: 200, body: `{"items":[]}`}
	}}
	env := newTestClient(t, serve(t, rec).URL, nil)
	if _, err := env.c.ListContainers(t.Context(), ListParams{Filters: []Filter{NewFilter("state", "=", "Queued")}}); err != nil {
		t.Fatal(err)
	}
	attempts := env.logs.FilterMessage("arvados request").All()
	if len(attempts) != 2 {
		t.Fatalf("got %d request log lines, want 2", len(attempts))
	}
	rid := rec.Requests()[0].Header.Get("X-Request-Id")
	for i, wantStatus := range []int64{503, 200} {
		m := attempts[i].ContextMap()
		if m["method"] != "GET" || m["path"] != "/arvados/v1/containers" || m["status"] != wantStatus ||
			m["request_id"] != rid || m["took"] == nil {
			t.Errorf("log line %d: %v", i, m)
		}
		if attempts[i].Level.String() != "debug" {
			t.Errorf("log line %d at %s, want debug", i, attempts[i].Level)
		}
	}
	if env.logs.FilterMessage("arvados request will be retried").Len() != 1 {
		t.Error("the retry was not logged")
	}
}

func TestTLSServersAreVerifiedUnlessInsecure(t *testing.T) {
	rec := &recorder{answer: func(int, *http.Request) reply { return reply{status: 200, body: `{"uuid":"x"}`} }}
	srv := httptest.NewUnstartedServer(rec)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")

	env := newTestClient(t, "https://"+host, func(c *Config) { c.Scheme = ""; c.Insecure = true })
	if _, err := env.c.CurrentToken(t.Context()); err != nil {
		t.Errorf("with Insecure: %v", err)
	}

	env = newTestClient(t, "https://"+host, func(c *Config) { c.Scheme = "" })
	_, err := env.c.CurrentToken(t.Context())
	if err == nil || IsTransient(err) || !strings.Contains(err.Error(), EnvInsecure) {
		t.Errorf("without Insecure: error %v, want a permanent certificate error naming %s", err, EnvInsecure)
	}
	if n := len(env.clock.Sleeps()); n != 0 {
		t.Errorf("a certificate error was retried %d times", n)
	}
	assertNoToken(t, err)
}

func x509UnknownAuthority() error { return x509.UnknownAuthorityError{} }

func FuzzFilterJSON(f *testing.F) {
	for _, s := range []string{`["priority",">",0]`, `["state","in",["Queued","Locked"]]`, `["uuid",">","zzzzz-dz642-x"]`,
		`["a","=",null]`, `["a","=",1e400]`, `[]`, `{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var a Filter
		if json.Unmarshal([]byte(s), &a) != nil {
			return
		}
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("re-encode %#v from %q: %v", a, s, err)
		}
		var c Filter
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("decode %s (from %q): %v", b, s, err)
		}
		if fmt.Sprint(a) != fmt.Sprint(c) {
			t.Errorf("round trip of %q: %#v became %#v", s, a, c)
		}
	})
}
