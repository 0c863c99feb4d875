package arvados

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// CurrentToken returns the record of the client's own token; its UUID is what locked_by_uuid
// holds for the containers this client locks. The secret is not returned (APIToken is empty):
// the caller already has it, and a record without it cannot leak it.
func (c *Client) CurrentToken(ctx context.Context) (APIClientAuthorization, error) {
	var a APIClientAuthorization
	err := c.do(ctx, request{method: http.MethodGet, path: "api_client_authorizations/current",
		idempotent: true, decode: decodeInto(&a)})
	if err != nil {
		return APIClientAuthorization{}, fmt.Errorf("get current token: %w", err)
	}
	a.APIToken = ""
	return a, nil
}

// ListContainers returns one page of containers. For everything that matches, use
// EachContainer.
func (c *Client) ListContainers(ctx context.Context, p ListParams) (ContainerList, error) {
	var list ContainerList
	if err := c.list(ctx, p, &list); err != nil {
		return ContainerList{}, err
	}
	return list, nil
}

// list fetches one page into *list, reusing the capacity of list.Items. The body is decoded as
// it streams in; the whole response is never held as bytes.
func (c *Client) list(ctx context.Context, p ListParams, list *ContainerList) error {
	q, err := p.Values()
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	items := list.Items[:0]
	err = c.do(ctx, request{method: http.MethodGet, path: "containers", query: q, idempotent: true,
		decode: func(r io.Reader) error {
			// encoding/json decodes array elements into what is already in the slice's
			// capacity, merging with stale records (a half-read earlier attempt, or the
			// previous page). Zero it first; the decoder then allocates fresh maps and
			// slices, so containers handed out earlier are never modified.
			clear(items[:cap(items)])
			*list = ContainerList{Items: items}
			return json.NewDecoder(r).Decode(list)
		}})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	return nil
}

// GetContainer returns one container; with selectFields, only those fields are filled.
func (c *Client) GetContainer(ctx context.Context, uuid string, selectFields ...string) (Container, error) {
	if !ValidContainerUUID(uuid) {
		return Container{}, fmt.Errorf("get container %q: %w", uuid, ErrInvalidUUID)
	}
	var q url.Values
	if len(selectFields) > 0 {
		q = url.Values{}
		if err := setJSON(q, "select", selectFields); err != nil {
			return Container{}, fmt.Errorf("get container %s: %w", uuid, err)
		}
	}
	var ctr Container
	err := c.do(ctx, request{method: http.MethodGet, path: "containers/" + uuid, query: q,
		idempotent: true, decode: decodeInto(&ctr)})
	if err != nil {
		return Container{}, fmt.Errorf("get container %s: %w", uuid, err)
	}
	return ctr, nil
}

// Lock moves a Queued container with priority > 0 to Locked, owned by this client's token.
// It fails with IsInvalid for any other state. Like Arvados's, the record returned by Lock and
// Unlock holds only uuid, state, priority and locked_by_uuid: GET the container for more. It is not repeated after an ambiguous failure
// (IsAmbiguous): GET the container to see whether the lock was taken.
func (c *Client) Lock(ctx context.Context, uuid string) (Container, error) {
	return c.lockOrUnlock(ctx, uuid, "lock")
}

// Unlock moves a Locked container back to Queued (or, once lock_count has reached the cluster's
// MaxDispatchAttempts, the server cancels it). It fails with IsInvalid unless the container is
// Locked, IsForbidden if another token holds the lock. Every unlock costs the user one of
// their dispatch attempts. Like Lock, it is not repeated after an ambiguous failure.
func (c *Client) Unlock(ctx context.Context, uuid string) (Container, error) {
	return c.lockOrUnlock(ctx, uuid, "unlock")
}

func (c *Client) lockOrUnlock(ctx context.Context, uuid, action string) (Container, error) {
	if !ValidContainerUUID(uuid) {
		return Container{}, fmt.Errorf("%s container %q: %w", action, uuid, ErrInvalidUUID)
	}
	var ctr Container
	err := c.do(ctx, request{method: http.MethodPost, path: "containers/" + uuid + "/" + action,
		idempotent: false, decode: decodeInto(&ctr)})
	if err != nil {
		return Container{}, fmt.Errorf("%s container %s: %w", action, uuid, err)
	}
	return ctr, nil
}

// UpdateContainer changes the fields set in u and returns the updated record.
func (c *Client) UpdateContainer(ctx context.Context, uuid string, u ContainerUpdate) (Container, error) {
	if !ValidContainerUUID(uuid) {
		return Container{}, fmt.Errorf("update container %q: %w", uuid, ErrInvalidUUID)
	}
	if u.IsZero() {
		return Container{}, fmt.Errorf("update container %s: %w", uuid, errNothingToUpdate)
	}
	form := url.Values{}
	if err := setJSON(form, "container", u); err != nil {
		return Container{}, fmt.Errorf("update container %s: %w", uuid, err)
	}
	var ctr Container
	err := c.do(ctx, request{method: http.MethodPut, path: "containers/" + uuid, form: form,
		idempotent: true, decode: decodeInto(&ctr)})
	if err != nil {
		return Container{}, fmt.Errorf("update container %s: %w", uuid, err)
	}
	return ctr, nil
}

// CreateLog writes a log record (event_type "dispatch" unless set) and returns it. It is not
// repeated after an ambiguous failure, which would write the record twice.
func (c *Client) CreateLog(ctx context.Context, l Log) (Log, error) {
	if l.EventType == "" {
		l.EventType = "dispatch"
	}
	if l.ObjectUUID == "" {
		return Log{}, fmt.Errorf("create %s log: no object_uuid", l.EventType)
	}
	l.UUID = ""
	form := url.Values{}
	if err := setJSON(form, "log", l); err != nil {
		return Log{}, fmt.Errorf("create %s log for %s: %w", l.EventType, l.ObjectUUID, err)
	}
	var out Log
	err := c.do(ctx, request{method: http.MethodPost, path: "logs", form: form, decode: decodeInto(&out)})
	if err != nil {
		return Log{}, fmt.Errorf("create %s log for %s: %w", l.EventType, l.ObjectUUID, err)
	}
	return out, nil
}

// ContainerAuth returns the token the container's own processes use (GET
// containers/{uuid}/auth, admin only). The result holds a secret: never log it.
func (c *Client) ContainerAuth(ctx context.Context, uuid string) (APIClientAuthorization, error) {
	if !ValidContainerUUID(uuid) {
		return APIClientAuthorization{}, fmt.Errorf("get auth of container %q: %w", uuid, ErrInvalidUUID)
	}
	var a APIClientAuthorization
	err := c.do(ctx, request{method: http.MethodGet, path: "containers/" + uuid + "/auth",
		idempotent: true, decode: decodeInto(&a)})
	if err != nil {
		return APIClientAuthorization{}, fmt.Errorf("get auth of container %s: %w", uuid, err)
	}
	return a, nil
}
