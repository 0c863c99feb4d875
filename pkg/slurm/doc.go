// Package slurm is dispatch-slurm's stateless Slurm layer: it builds argument lists, runs
// Slurm's commands through one runner, and parses their output into structs. It owns the sbatch
// argument template (%U %C %M %T %P %G %W %%), the resource arithmetic from a container record
// (the same sizes the incumbent crunch-dispatch-slurm asks for), the batch script, squeue
// parsing, and the classification of Slurm's error texts (transient, permanent, not found).
// It keeps no state between calls: what we know about our jobs lives in package squeue.
//
// # Pieces
//
//   - Client is the interface the rest of the dispatcher uses; CLI implements it with
//     sbatch, squeue, scancel and scontrol. Every command goes through one runner
//     (exec.CommandContext, SIGTERM on cancel, bounded WaitDelay, stderr tail kept in a
//     *CommandError), under a cap on concurrent commands and a per-kind timeout.
//   - ComputeResources and Template turn a container record into sbatch arguments;
//     BatchScript writes the script sbatch reads on stdin. Values from the record are
//     validated (uuid, partition names, sane ranges) and may only fill option values.
//   - ParseSqueue reads squeue --format="%i|%j|%T|%y|%Q|%r" output.
//   - Errors: every failed command comes back as ErrTransient (*TransientError; IsAmbiguous
//     says whether it may have taken effect), ErrPermanent (*RejectError with Slurm's
//     message), or ErrNotFound. ClassifyText holds the table of Slurm's texts;
//     ClassifyReason sorts pending reasons into waiting, attention and never.
//
// # Commands, as run
//
//	sbatch --parsable --job-name=<uuid> --nice=<n> --no-requeue <template args…>   (script on stdin)
//	squeue --noheader --me --format=%i|%j|%T|%y|%Q|%r                              (Snapshot)
//	squeue --noheader --states=all --format=… --jobs=<id> | --me --name=<uuid>     (Lookup)
//	scontrol update JobId=<id>,<id>… Nice=<n>                                      (Renice)
//	scancel <id>… | scancel --me --name=<uuid>                                     (Cancel)
//	scancel --batch --signal=TERM --state=RUNNING <ids>; scancel --state=PENDING <ids>  (Cancel, Running)
//
// # Slurm 22.05 behaviour this package relies on (observed; fixtures in testdata/)
//
//   - squeue --format fields without a width are not truncated; -O prints the priority as a
//     fraction, so it is not used. squeue --jobs=<id> exits 1 ("Invalid job id specified")
//     once slurmctld has forgotten the id: Lookup maps that to "no job".
//   - scontrol update JobId=a,b,c updates the ids that exist and exits 1 with one line per
//     other id: "Invalid job id specified for job <id>" or "Job has already finished for
//     job <id>". Renice returns those ids as gone.
//   - Plain scancel exits 0, silently, for unknown and finished ids. With --signal or
//     --state it exits 1 with "Kill job error on job id <id>: Invalid job id specified".
//   - scancel --batch --signal=TERM on a PENDING job does not cancel it: slurmctld answers
//     "Job can not be altered now, try again later", scancel retries that for about 95 s and
//     exits 228. Hence the --state=RUNNING filter, and a plain cancel of the PENDING ones.
//   - --mem or --tmp larger than any node, unknown --constraint or partition, --gpus without
//     GPUs: sbatch exits 1 at once. --cpus-per-task larger than any node, and --account or
//     --qos unknown without accounting, are accepted (PartitionConfig: never starts).
//   - sbatch takes any unambiguous prefix of a long option ("--j=x" is --job-name), which
//     is why templates are checked for abbreviations.
package slurm
