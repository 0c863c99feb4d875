// Package bench measures dispatch-slurm against the figures of the benchmark issue: it runs
// the real binaries (dispatch-slurm, fakearvados, fakeslurm) as processes, against fakeslurm
// and, when it is up, the machine's real Slurm, and runs the in-process Go benchmarks of
// pkg/slurm, pkg/squeue and pkg/queue with `go test -bench`. Run prints one table (figure,
// value, target, within target?) and writes the same as JSON. Figures are medians of several
// runs; nothing here asserts on timings.
//
// How each whole-process figure is measured:
//
//   - The dispatcher runs its four Slurm commands through a small wrapper (cmd/slurmwrap,
//     linked as sbatch, squeue, scancel and scontrol; package slurmwrap) that appends one line
//     per call to a log, with start and end times, exit code and arguments, and the driver
//     reads the log. The wrapper costs a process start per call: the raw-rate rows show
//     sbatch through it beside sbatch direct. Renice calls are `scontrol update`; snapshots are squeue calls
//     without --name/--jobs.
//   - API requests and response bytes come from fakearvados's request log (/_fake/requests);
//     a poll starts with the list of containers locked by our token (no keyset filter).
//   - CPU is the dispatcher process's own utime+stime from /proc/PID/stat; memory is VmRSS
//     and VmHWM from /proc/PID/status.
//   - Jobs go to the partition "down" (State=DOWN in the local Slurm, Up=false in fakeslurm),
//     so they stay pending; "Running" containers are set Running through the fake API's
//     control (crunch-run would do it), their jobs still pending.
//
// Real Slurm is shared: every job the benchmark creates is named after a fresh random
// cluster id, and only those are cancelled at the end (by id).
package bench
