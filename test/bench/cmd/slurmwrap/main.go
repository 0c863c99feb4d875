// Command slurmwrap is the benchmark's counting wrapper for Slurm's commands (see package
// slurmwrap): `make bench` links it as sbatch, squeue, scancel and scontrol for the dispatcher.
package main

import (
	"os"

	"github.com/dispatch-slurm/dispatch-slurm/test/bench/slurmwrap"
)

func main() { os.Exit(slurmwrap.Main()) }
