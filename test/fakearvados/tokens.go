package fakearvados

import (
	"net/http"
	"strings"
)

// Well-known test tokens. They are fixed so that tests and the standalone program can use them
// without plumbing; they are test credentials, not secrets. Their uuids use the cluster id
// "zzzzz" whatever Options.ClusterID says (as tokens issued by a login cluster would).
const (
	// AdminToken is the dispatcher's token: an admin user's.
	AdminToken     = "adminTokenxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	AdminTokenUUID = "zzzzz-gj3su-000000000000000"
	// Dispatcher2Token is a second dispatcher (also admin), for lock-contention tests.
	Dispatcher2Token     = "dispatcher2Tokenxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	Dispatcher2TokenUUID = "zzzzz-gj3su-000000000000002"
	// UserToken belongs to a non-admin user who owns no containers.
	UserToken     = "userTokenxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	UserTokenUUID = "zzzzz-gj3su-000000000000003"

	adminUserUUID = "zzzzz-tpzed-000000000000000"
	plainUserUUID = "zzzzz-tpzed-000000000000003"
	// runtimeUserUUID is the user on whose behalf containers run (their container tokens').
	runtimeUserUUID = "zzzzz-tpzed-000000000000004"
)

// token is what the fake knows about one API token.
type token struct {
	uuid     string
	secret   string
	userUUID string
	admin    bool
	// container is set for a container's own runtime token (containers/{uuid}/auth).
	container string
}

func fixedTokens() []*token {
	return []*token{
		{uuid: AdminTokenUUID, secret: AdminToken, userUUID: adminUserUUID, admin: true},
		{uuid: Dispatcher2TokenUUID, secret: Dispatcher2Token, userUUID: adminUserUUID, admin: true},
		{uuid: UserTokenUUID, secret: UserToken, userUUID: plainUserUUID},
	}
}

// tokenFromRequest returns the secret the request authenticates with: the Authorization header
// ("Bearer x" or "OAuth2 x") or else the api_token parameter. A v2 token ("v2/<uuid>/<secret>")
// is returned whole; lookup checks both parts.
func tokenFromRequest(r *http.Request, p params) string {
	if h := r.Header.Get("Authorization"); h != "" {
		for _, scheme := range []string{"Bearer ", "OAuth2 "} {
			if len(h) > len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) {
				return strings.TrimSpace(h[len(scheme):])
			}
		}
		return ""
	}
	v, _ := p.get("api_token")
	return v
}

// lookupToken finds a token by its secret (bare or v2 form). Callers hold s.mu.
func (s *Server) lookupToken(secret string) *token {
	if secret == "" {
		return nil
	}
	if rest, ok := strings.CutPrefix(secret, "v2/"); ok {
		uuid, sec, ok := strings.Cut(rest, "/")
		if !ok {
			return nil
		}
		t := s.tokens[sec]
		if t == nil || t.uuid != uuid {
			return nil
		}
		return t
	}
	return s.tokens[secret]
}
