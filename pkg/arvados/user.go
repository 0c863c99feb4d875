package arvados

import (
	"context"
	"fmt"
	"net/http"
)

// User is the part of a user record that says what its tokens may do.
type User struct {
	UUID     string `json:"uuid"`
	Username string `json:"username"`
	IsAdmin  bool   `json:"is_admin"`
	IsActive bool   `json:"is_active"`
}

// CurrentUser returns the record of the user the client's token belongs to (GET
// users/current). The dispatcher's token must be an admin's: only admins may lock containers
// and list everyone's.
func (c *Client) CurrentUser(ctx context.Context) (User, error) {
	var u User
	err := c.do(ctx, request{method: http.MethodGet, path: "users/current", idempotent: true, decode: decodeInto(&u)})
	if err != nil {
		return User{}, fmt.Errorf("get current user: %w", err)
	}
	return u, nil
}
