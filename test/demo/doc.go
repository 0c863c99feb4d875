// Package demo is the driver behind `make demo`: the whole pipeline, from a queue of Arvados
// containers to Slurm jobs that run and finish, on one machine and without an Arvados cluster.
//
// Run builds nothing (make does); it takes the built binaries (dispatch-slurm, fakearvados,
// fakeslurm, crunchrun-standin) from Options.Bin and:
//
//  1. chooses Slurm (Options.Slurm): the real local Slurm when `scripts/local-slurm.sh status`
//     says it is up, or when, as root on Debian, `scripts/local-slurm.sh up` starts it;
//     fakeslurm running the jobs as local processes otherwise. It says which and why.
//  2. starts the standalone fake Arvados API on loopback (https, self-signed certificate) and
//     seeds it with the containers of Seeds, under a fresh random cluster id so that its Slurm
//     jobs (named after the container uuids) are told apart from everyone else's;
//  3. writes a dispatcher config (our YAML: short poll and squeue periods, the crunch-run
//     stand-in as the job's command) in a temporary directory and starts `dispatch-slurm run`;
//  4. watches the containers (the fake's /_fake/containers) and the jobs (squeue), showing
//     counts per state, a progress bar and the last events, redrawn in place on a terminal;
//     when the container marked DropPriority is Running it sets its priority to 0, as a user
//     who no longer wants it would;
//  5. when every container is final (or on timeout or interruption) stops everything it
//     started: the dispatcher, the demo's Slurm jobs (only those: by id, named after its own
//     containers), the fake API, the local Slurm if it started it and nobody else has jobs;
//     removes its directory; prints a summary table (each container, its Slurm job, how it
//     ended and why) and the output of `dispatch-slurm containers list`.
//
// Result.OK is true only if every container ended as its Seed expects.
package demo
