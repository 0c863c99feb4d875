// Package fakearvados is a faithful fake of the Arvados API server, as much of it as a
// container dispatcher uses, for tests (in-process) and for the demo and benchmarks (the
// standalone program in cmd/fakearvados).
//
// It owns an in-memory container table and serves, under /arvados/v1/:
//
//	GET  api_client_authorizations/current   the caller's token record
//	GET  users/current                       the caller's user (is_admin)
//	GET  containers                          filters, order, limit, offset, count, select
//	GET  containers/{uuid}                   select
//	GET  containers/current                  the container of a container's own token
//	PUT  containers/{uuid}  (or PATCH)       container={...}: the real state machine and field rules
//	POST containers/{uuid}/lock, /unlock     including MaxDispatchAttempts cancellation
//	GET  containers/{uuid}/auth              the container's runtime token, for the lock holder
//	POST logs                                log={...}
//
// The behaviour follows the real server (services/api in arvados/arvados): parameters in the
// query string, form fields or a JSON body, every non-string value JSON-encoded; tokens as
// "Authorization: Bearer|OAuth2 <token>" or api_token; errors as {"errors":[...],"error_token":...}
// with each message ending in the request id, and the real wording ("Not logged in", "Path not
// found", "#<ArvadosModel::LockFailedError: cannot lock when Locked>", "State cannot change from
// Queued to Complete"); list defaults (limit 100, at most 1000, order modified_at desc then uuid);
// select always adds kind and drops orders on columns not selected; lock and unlock answer only
// uuid, state, priority, auth_uuid and locked_by_uuid; unset uuids and text render as null. A
// second admin token (Dispatcher2Token) may cancel or reprioritize a container locked by the
// first but not unlock it (403) nor change its runtime_status, log or exit_code (422).
//
// Deliberate differences: Complete is final (newer servers allow Complete→Cancelled); the plain
// user token (UserToken) sees no containers, and gets 403 on lock, unlock, update and auth
// (the real server would answer 404 for a container the user cannot read); order entries on
// columns the fake does not model are ignored, and results always end ordered by uuid; the
// deprecated where parameter is refused.
//
// With Options.TLS the server speaks HTTP/1.1 over TLS with a self-signed certificate for
// 127.0.0.1, ::1 and localhost (HTTPClient trusts it; CertPEM returns it). It listens on loopback
// addresses only.
//
// Tests seed and steer the fake with Go methods (Seed, SetPriority, SetState, Mutate), inject
// faults (InjectFault, SetLatency, SetDown) and inspect what the client did (Requests, Stats,
// Logs, Containers). The request log keeps token uuids, never secrets. The same controls are
// served over HTTP under /_fake/ (listed in control.go) for the standalone program.
package fakearvados
