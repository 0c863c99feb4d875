package arvados_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

func TestCurrentUserSaysWhetherTheTokenIsAnAdmins(t *testing.T) {
	srv := fakearvados.New(fakearvados.Options{})
	t.Cleanup(srv.Close)
	const badToken = "notAValidTokenxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	for _, tc := range []struct {
		name, token string
		admin       bool
		unauth      bool
	}{
		{"the dispatcher's token is an admin's", fakearvados.AdminToken, true, false},
		{"a plain user's token is not", fakearvados.UserToken, false, false},
		{"an unknown token is refused, and the error does not show it", badToken, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := arvados.NewClient(arvados.Config{Host: srv.URL(), Token: tc.token})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			u, err := c.CurrentUser(context.Background())
			if tc.unauth {
				if !arvados.IsUnauthenticated(err) || strings.Contains(err.Error(), tc.token) {
					t.Errorf("err %v, want a 401 without the token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CurrentUser: %v", err)
			}
			if u.IsAdmin != tc.admin || u.UUID == "" || !u.IsActive {
				t.Errorf("user %+v, want is_admin %v, a uuid, active", u, tc.admin)
			}
		})
	}
}
