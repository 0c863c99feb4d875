// Package squeue will own what dispatch-slurm knows about its Slurm jobs: the latest squeue
// snapshot, three-state presence (present, absent-confirmed, unknown), renicing into priority
// order and cancelling jobs whose containers are no longer wanted. It is empty until the squeue
// watcher lands.
package squeue
