// Package arvados is the dispatcher's client for the Arvados REST API and the container types it
// speaks: the current token, listing containers (with paging that returns each record once),
// get, lock, unlock, update, and dispatch log records. Errors are classified once, here
// (transient, not found, invalid, forbidden, unauthenticated), and retries are bounded by a
// budget. The API token never appears in logs or errors.
package arvados
