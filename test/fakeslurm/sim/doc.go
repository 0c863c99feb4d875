// Package sim is a fake Slurm 22.05 controller and its four commands (sbatch, squeue,
// scancel, scontrol), faithful to what real Slurm prints and exits with for the calls
// dispatch-slurm makes: golden files of real output under test/fakeslurm/testdata/real
// keep it honest.
//
// State lives in one directory: cluster.json (nodes, partitions, slurm.conf-like
// settings), jobs.journal (an append-only table of job records under an flock, compacted
// as it grows, so sbatch stays cheap at 10,000 jobs), faults.json (injected misbehaviour)
// and calls.log (every command run). There is no daemon: every command "ticks" the
// scheduler (purges jobs older than MinJobAge, starts pending jobs that fit), and each
// running job has a detached runner process (the binary re-executed as
// fakeslurm-jobrunner) that runs the batch script, enforces the time limit, escalates a
// cancel from SIGTERM to SIGKILL after KillWait and records how the job ended.
//
// Admin changes the cluster from outside (faults, partitions, inspection, shutdown).
package sim
