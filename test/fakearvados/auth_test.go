package fakearvados_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

var (
	errorToken  = regexp.MustCompile(`^\d+\+[0-9a-f]{8}$`)
	generatedID = regexp.MustCompile(`^req-[0-9a-z]{20}$`)
)

func TestAuthentication(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	path := "/arvados/v1/api_client_authorizations/current"
	tests := []struct {
		name     string
		prepare  func(r *http.Request)
		wantCode int
		wantUUID string
	}{
		{"a request without a token is not logged in", func(*http.Request) {}, 401, ""},
		{"an unknown bearer token is not logged in", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer nosuchtoken")
		}, 401, ""},
		{"a bearer token is accepted", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+fakearvados.AdminToken)
		}, 200, fakearvados.AdminTokenUUID},
		{"an OAuth2 token is accepted", func(r *http.Request) {
			r.Header.Set("Authorization", "OAuth2 "+fakearvados.Dispatcher2Token)
		}, 200, fakearvados.Dispatcher2TokenUUID},
		{"a v2 token with its uuid is accepted", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer v2/"+fakearvados.UserTokenUUID+"/"+fakearvados.UserToken)
		}, 200, fakearvados.UserTokenUUID},
		{"a v2 token with the wrong uuid is not logged in", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer v2/"+fakearvados.UserTokenUUID+"/"+fakearvados.AdminToken)
		}, 401, ""},
		{"an api_token query parameter is accepted", func(r *http.Request) {
			r.URL.RawQuery = url.Values{"api_token": {fakearvados.AdminToken}}.Encode()
		}, 200, fakearvados.AdminTokenUUID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, h.s.URL()+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.prepare(req)
			r := h.send(req)
			if tt.wantCode == 401 {
				wantError(t, r, 401, "Not logged in")
				return
			}
			wantStatus(t, r, tt.wantCode)
			m := r.obj(t)
			if m["uuid"] != tt.wantUUID || m["kind"] != "arvados#apiClientAuthorization" {
				t.Fatalf("current = %v, want uuid %s and kind arvados#apiClientAuthorization", m, tt.wantUUID)
			}
		})
	}
}

func TestAnAPITokenInAFormBodyIsAccepted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	uuid := h.seedOne(arvados.Container{Priority: 1})
	r := h.do(http.MethodPost, "/arvados/v1/containers/"+uuid+"/lock", "", url.Values{"api_token": {fakearvados.AdminToken}})
	wantStatus(t, r, 200)
	if got := h.container(uuid).LockedByUUID; got != fakearvados.AdminTokenUUID {
		t.Fatalf("locked_by_uuid = %q, want the admin token's uuid", got)
	}
}

func TestUsersCurrentTellsAdminsFromUsers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	for token, admin := range map[string]bool{fakearvados.AdminToken: true, fakearvados.UserToken: false} {
		m := h.do(http.MethodGet, "/arvados/v1/users/current", token, nil).obj(t)
		if m["is_admin"] != admin || m["kind"] != "arvados#user" {
			t.Errorf("users/current = %v, want is_admin %v", m, admin)
		}
	}
}

func TestRequestIDs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})

	t.Run("a given X-Request-Id is echoed and ends every error message", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, h.s.URL()+"/arvados/v1/containers", nil)
		req.Header.Set("X-Request-Id", "req-mine0000000000000000")
		r := h.send(req)
		if got := r.header.Get("X-Request-Id"); got != "req-mine0000000000000000" {
			t.Fatalf("X-Request-Id = %q", got)
		}
		if e := r.errs(t)[0]; e != "Not logged in (req-mine0000000000000000)" {
			t.Fatalf("error = %q", e)
		}
	})
	t.Run("without one the server makes a new one per request", func(t *testing.T) {
		a := h.list(fakearvados.AdminToken, nil).header.Get("X-Request-Id")
		b := h.list(fakearvados.AdminToken, nil).header.Get("X-Request-Id")
		if !generatedID.MatchString(a) || !generatedID.MatchString(b) || a == b {
			t.Fatalf("generated ids %q and %q: want two different req-<20 [0-9a-z]>", a, b)
		}
	})
}

func TestUnknownThingsAreNotFound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	missing := "zzzzz-dz642-000000000000404"
	tests := []struct {
		name string
		r    func() resp
	}{
		{"getting an unknown container", func() resp {
			return h.do(http.MethodGet, "/arvados/v1/containers/"+missing, fakearvados.AdminToken, nil)
		}},
		{"updating an unknown container", func() resp {
			return h.update(fakearvados.AdminToken, missing, map[string]any{"priority": 1})
		}},
		{"locking an unknown container", func() resp { return h.lock(fakearvados.AdminToken, missing) }},
		{"unlocking an unknown container", func() resp { return h.unlock(fakearvados.AdminToken, missing) }},
		{"asking for an unknown container's token", func() resp {
			return h.do(http.MethodGet, "/arvados/v1/containers/"+missing+"/auth", fakearvados.AdminToken, nil)
		}},
		{"an unknown path", func() resp { return h.do(http.MethodGet, "/arvados/v1/nosuchthing", fakearvados.AdminToken, nil) }},
		{"a known path with the wrong method", func() resp {
			return h.do(http.MethodDelete, "/arvados/v1/containers/"+missing, fakearvados.AdminToken, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" answers 404", func(t *testing.T) {
			wantError(t, tt.r(), 404, "Path not found")
		})
	}
}

func TestAPostWithAMethodOverrideIsAGet(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakearvados.Options{})
	h.s.SeedN(3, arvados.Container{Priority: 1})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, h.s.URL()+"/arvados/v1/containers",
		strings.NewReader(url.Values{"limit": {"2"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Http-Method-Override", "GET")
	req.Header.Set("Authorization", "Bearer "+fakearvados.AdminToken)
	r := h.send(req)
	wantStatus(t, r, 200)
	if n := len(r.items(t)); n != 2 {
		t.Fatalf("%d items, want 2 (the form's limit)", n)
	}
}
