// Package mgmt is dispatch-slurm's management endpoint: one plain-HTTP listener (loopback by
// default; put a TLS proxy in front to reach it from elsewhere) serving
//
//	GET /_health/ping          {"health":"OK"}, or 503 {"health":"ERROR","error":"…","checks":{…}}
//	GET /metrics               Prometheus metrics                          (token)
//	GET /dispatch/containers   what the dispatcher tracks, and why, JSON   (token)
//
// The health check folds the dispatcher's and the squeue watcher's own verdicts (poll failures
// in a row, the misconfiguration pause, squeue failing or suspect) with freshness: the API poll
// and squeue must have succeeded within their MaxAge, so a dispatcher stuck in a hung call is
// unhealthy too (the incumbent says OK while stuck). Arvados's format: {"health":"OK"} and
// {"health":"ERROR","error":"…"}; we answer 503 with the error so that curl -f, load balancers
// and Arvados's health aggregator (which reads the body and the status) all see it.
//
// Authorization. /metrics and /dispatch/ require the management token, as
// "Authorization: Bearer <token>" (Arvados's "OAuth2 <token>" too; never in the query string,
// which ends up in logs): none given → 401, a wrong one → 403. With no token configured they
// answer 404 "disabled", whatever the listen address, as Arvados's own services do: a head
// node is shared by many users, and loopback is not a boundary between them. /_health/ping
// needs no token (unlike Arvados, which wants the token for ping too): systemd, load balancers
// and a curl on the host can check it, and it says no more than which part fails, in the
// texts the dispatcher logs (never a token). Arvados's health aggregator sends the token,
// which ping ignores.
//
// FetchContainers is the client the admin CLI uses to read /dispatch/containers.
package mgmt
