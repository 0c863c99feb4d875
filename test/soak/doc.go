// Package soak is the fault-injection soak of dispatch-slurm: it runs the dispatcher binary
// against the fake Arvados API (in this process, behind a fault-injecting proxy) and the fake
// Slurm (test/fakeslurm) for a bounded time, with a steady stream of short containers of mixed
// priorities, while injecting faults at random from a seeded RNG (the seed is printed, so a run
// can be replayed as far as timing allows):
//
//   - API: bursts of 5xx answers and added latency (the dispatcher's requests only);
//   - squeue: failures, empty output with exit 0, garbage added to the output;
//   - sbatch: transient failures, and failures or timeouts after the job was created;
//   - a running crunch-run stand-in killed with SIGKILL;
//   - the dispatcher killed with SIGKILL (its process group) and restarted;
//   - priority changes, priority 0, and user cancellations.
//
// Then it drains: no more faults or containers, until every container is final or a deadline
// passes. Invariants are checked while it runs (the fake Slurm's job table and the API are
// sampled every SampleEvery) and at the end; see check.go for each check and how it is judged.
// Run returns a Report whose Violations must be empty.
//
// Why the crunch-run stand-ins reach the API through a second listener without faults: the
// stand-in makes one attempt per request, where the real crunch-run retries. API faults aimed
// at them would end containers for reasons that have nothing to do with the dispatcher; the
// soak is about the dispatcher.
//
// Why fake Slurm only: faults are injected through test/fakeslurm (and stand-ins are found by
// its job table); the real Slurm on a build machine is shared with other tests, and a soak that
// kills and floods it would disturb them. The fake tier exercises the same dispatcher code.
//
// The logic is here so that a Go test (soak_test.go, about 35 s) and the command
// test/soak/cmd/soak (`make soak`, 5 minutes by default) share it.
package soak
