package arvados

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// EachContainer calls fn once for every container that matches p.Filters, in uuid order, and
// returns the first error from the API or from fn (which stops the walk).
//
// Paging is by keyset on uuid, not by offset: each page asks for
// filters+["uuid",">",<last uuid seen>], order "uuid asc", count=none. Offset paging over an
// order that changes while we page (priorities do, between any two requests) skips some
// records and repeats others; the uuid of a record never changes, so every record that exists
// throughout the walk is returned exactly once. Records created during the walk with a uuid
// below the last one seen are picked up by the next poll. Callers that want priority order
// sort the results afterwards.
//
// Therefore p.Order must be empty (or just "uuid"/"uuid asc") and p.Offset zero; p.Count is
// ignored (always "none", which saves the server a count query). p.Limit is the page size, by
// default and at most Config.MaxItemsPerResponse. If p.Select is set, "uuid" is added to it.
//
// A page is decoded in full before fn sees any of it, so a retried page never hands fn a
// record twice. A server that ignores the keyset filter (returns a record at or below the
// last uuid seen) would make this loop forever; EachContainer fails with ErrKeysetIgnored
// instead.
func (c *Client) EachContainer(ctx context.Context, p ListParams, fn func(Container) error) error {
	if len(p.Order) > 1 || (len(p.Order) == 1 && p.Order[0] != "uuid" && p.Order[0] != "uuid asc") {
		return fmt.Errorf("list all containers: order %q: paging is by uuid; sort the results afterwards", p.Order)
	}
	if p.Offset != 0 {
		return errors.New("list all containers: paging is by uuid keyset; offset must be 0")
	}
	page := c.cfg.MaxItemsPerResponse
	if p.Limit > 0 && p.Limit < page {
		page = p.Limit
	}
	sel := p.Select
	if len(sel) > 0 && !slices.Contains(sel, "uuid") {
		sel = append(slices.Clip(sel), "uuid")
	}
	base := slices.Clip(p.Filters)
	var (
		last string
		list ContainerList
	)
	for {
		q := ListParams{Filters: base, Order: []string{"uuid asc"}, Limit: page, Count: "none", Select: sel}
		if last != "" {
			q.Filters = append(base, NewFilter("uuid", ">", last))
		}
		if err := c.list(ctx, q, &list); err != nil {
			return err
		}
		// Same-shaped uuids ([a-z0-9]{5}-xxxxx-[a-z0-9]{15}) compare the same bytewise as in
		// the server's collation, so this check agrees with the server's "uuid >" filter.
		prev := last
		for i := range list.Items {
			u := list.Items[i].UUID
			if u <= prev {
				return fmt.Errorf("list all containers: %q came after %q: %w", u, prev, ErrKeysetIgnored)
			}
			prev = u
		}
		for _, ctr := range list.Items {
			if err := fn(ctr); err != nil {
				return err
			}
		}
		n := len(list.Items)
		// A page shorter than the limit the server applied is the last one. Without a limit
		// in the response, only an empty page proves the end.
		if n == 0 || (list.Limit > 0 && n < list.Limit) {
			return nil
		}
		last = list.Items[n-1].UUID
	}
}

// AllContainers returns every container EachContainer would visit, in uuid order.
func (c *Client) AllContainers(ctx context.Context, p ListParams) ([]Container, error) {
	var all []Container
	err := c.EachContainer(ctx, p, func(ctr Container) error {
		all = append(all, ctr)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return all, nil
}
