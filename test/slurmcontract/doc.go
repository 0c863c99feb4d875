// Package slurmcontract holds one contract suite for slurm.Client (the CLI backend from
// slurm.NewCLI) that runs against the fake Slurm (test/fakeslurm) always and against the
// real local Slurm when it is up (and must, under CI). Where the two disagree, the fake
// is wrong: the suite is what keeps the fake faithful for the tests built on it.
//
// Every subtest submits jobs named with fresh container uuids, looks only at those, and
// cancels them when it ends: the real Slurm is shared with other tests.
package slurmcontract
