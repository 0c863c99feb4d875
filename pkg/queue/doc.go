// Package queue will own the queue poller, the per-container trackers, the pure decision
// function and per-container backoff (see ../../README.md and the dispatcher issue). It is empty
// until the dispatcher lands.
package queue
