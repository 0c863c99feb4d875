// Command fakeslurm is one binary that answers as Slurm 22.05's sbatch, squeue, scancel and
// scontrol, chosen by the base name of argv[0] (link it under those names), for tests, the
// demo and benchmarks. The fake cluster lives in the directory named by FAKESLURM_STATE:
// its nodes and partitions (cluster.json), its jobs, injected faults and a log of calls.
// Jobs that can run really run their batch script, detached, with the submitted
// environment.
//
// Run as "fakeslurm", it administers a state directory: init, jobs, calls, partition,
// fault, tick, shutdown (see `fakeslurm` without arguments). The logic lives in package
// sim; package fakeslurmtest builds the binary for Go tests.
package main
