// Package metrics owns dispatch-slurm's Prometheus metrics: the collectors, on a registry of
// their own (never the global one), and the observers that the other packages call through
// their small hooks (queue.Observer, arvados.Observer, slurm.Observer), so that none of them
// imports Prometheus. What is cheap to read when Prometheus scrapes (containers tracked by
// state, our Slurm jobs by state and pending reason, snapshot and poll age, the squeue
// watcher's counters, health) is read then, from the sources given to Attach, rather than
// kept up to date on every change.
//
// Every name starts with dispatch_slurm_ (plus the Go runtime's go_* and the process's
// process_* from the standard collectors). No label value ever holds a token, a container
// uuid or a job id: labels are outcomes, classes, states, commands and endpoint classes, so
// the number of series stays small and fixed. The list, with what each means, is in
// README's Operations section; docs/grafana-dashboard.json charts every one of them (a test
// checks that it queries nothing else).
package metrics
