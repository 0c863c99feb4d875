// Command crunchrun-standin does to the Arvados API what crunch-run does, without running
// anything: real-Slurm tests and the demo use it as the job's command in place of crunch-run.
//
// Usage, as the dispatcher's batch script runs crunch-run:
//
//	crunchrun-standin [--runtime-engine=docker --any-flag=value ...] <container-uuid>
//
// Every argument but the last is ignored (crunch-run's flags); the last is the container uuid.
// ARVADOS_API_HOST, ARVADOS_API_TOKEN and ARVADOS_API_HOST_INSECURE come from the environment,
// as the dispatcher passes them through sbatch. ARVADOS_API_HOST may carry an "http://" prefix
// for a fake server on loopback.
//
// What it does:
//
//  1. GETs the container. Unless it is Locked, it exits 1 with a message saying its state
//     (crunch-run only starts containers the dispatcher has locked).
//  2. Moves it to Running.
//  3. "Runs" it: the container's command says for how long. ["sleep", "N"] waits N seconds
//     (a decimal number, or a Go duration such as "1500ms"); any other command waits 1 s.
//  4. Sets state Complete with exit_code 0 and exits 0.
//
// ["exit", "N"] instead moves the container to Running and exits N at once without touching it
// again, like a crunch-run that died: the dispatcher must notice and clean up.
//
// On SIGTERM or SIGINT while running it sets state Cancelled with runtime_status.error
// "crunch-run stand-in: received SIGTERM" (or SIGINT) and exits 0. If the container was
// already finished meanwhile, it says so and exits 0 too. Any API failure exits 1. The token
// is never printed.
package main
