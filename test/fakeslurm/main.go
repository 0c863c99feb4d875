package main

import (
	"os"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

func main() { os.Exit(sim.Main(os.Args)) }
