// Package e2e is the end-to-end scenario suite of `dispatch-slurm run`: the built binary, run
// as an operator runs it, against the fake Arvados API (test/fakearvados, in the test process,
// behind a recording middleware) with the crunch-run stand-in (test/crunchrun-standin) as every
// job's command, at two tiers:
//
//   - fake: test/fakeslurm in a temporary directory, always;
//   - real: the machine's Slurm (scripts/local-slurm.sh up), when it is up, and always with
//     CI=true (testenv.RequireRealSlurm fails then instead of skipping).
//
// Every scenario is one test function with a parallel subtest per tier. The dispatcher runs
// each Slurm command through a wrapper script that logs the call (argv, times, exit code) and
// applies injected faults (fail, print nothing, lose sbatch's answer), so both tiers are
// observed and faulted the same way. When a scenario ends, the harness stops the dispatcher
// (SIGTERM must exit 0), checks that no container ever had two jobs and that no token, panic
// or data race appeared in its output, and on failure prints the tail of its log, the Slurm
// calls, the containers not final and the jobs. The package has no code outside its tests:
//
//	main_test.go          builds dispatch-slurm (with -race when the tests are) and the stand-in
//	api_test.go           the fake API and its request log (times, caller, container updates)
//	slurm_test.go         the tiers: wrappers, faults, job listing, foreign jobs, cleanup
//	dispatcher_test.go    the dispatcher process: start, SIGTERM, SIGKILL, logs
//	harness_test.go       one scenario's world, waiting on conditions, end-of-scenario checks
//	harness_self_test.go  the wrappers' own promises
//	config_test.go        configuration errors exit with code 2
//	scenario_*_test.go    the acceptance scenarios of the dispatcher issue
//
// Run it with
//
//	go test -race -count=1 ./test/e2e/            # both tiers (real one as root with Slurm up)
//	DISPATCH_SLURM_NO_REAL=1 go test ./test/e2e/  # fake tier only (not honoured when CI=true)
//
// DISPATCH_SLURM_E2E_BINARY=<path> tests a prebuilt dispatch-slurm instead of building one;
// DISPATCH_SLURM_E2E_KEEP=1 keeps every scenario's directory (dispatcher logs, the Slurm call
// log ctl/calls, job output) and prints where.
//
// The real tier shares the machine's Slurm with other tests: each scenario uses a random
// cluster id (--cluster-id), so its jobs are named "<id>-dz642-…" and the dispatcher looks at
// nothing else, and it cancels its own jobs (by id) when it ends.
package e2e
