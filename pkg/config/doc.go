// Package config owns dispatch-slurm's configuration: one Config struct with documented
// defaults, loaded from a file (our YAML, or an Arvados cluster config), then the
// ARVADOS_API_* environment, then command-line flags, and validated all at once.
//
// # Order
//
//  1. Default(): the defaults listed by Keys.
//  2. A file: LoadOptions.Path (--config); without it $ARVADOS_CONFIG; without that
//     /etc/arvados/config.yml if it exists. A file with a top-level Clusters key is an
//     Arvados cluster config, anything else is ours.
//  3. ARVADOS_API_HOST, ARVADOS_API_TOKEN, ARVADOS_API_HOST_INSECURE, when set and not empty.
//  4. Flags: the command line calls Config.Set(key, value) for each flag given.
//
// Then Validate reports every problem at once, each naming the key and where its value came
// from (default, file and line, environment variable, flag).
//
// # Our file
//
// snake_case keys in sections; Keys lists them all with their defaults. Durations and sizes
// are written as in Arvados ("10s", "1m30s"; "550MiB", "1GiB", "1G" = 10^9 bytes, or bytes).
// Argument lists are YAML lists, or one string split like a shell would split it (it never
// reaches a shell). Unknown keys are errors.
//
//	api:
//	  host: zzzzz.example.org
//	  token: …                  # better in ARVADOS_API_TOKEN; a file others can read draws a warning
//	dispatch:
//	  poll_period: 10s
//	  max_jobs: 1000
//	crunch_run:
//	  command: [crunch-run]
//	  reserve_extra_ram: 550MiB
//	slurm:
//	  sbatch_args: [--job-name=%U, --mem=%M, --cpus-per-task=%C, --tmp=%T, --partition=%P]
//	  environment: {TMPDIR: /scratch}
//	lock_file: /var/run/dispatch-slurm.lock
//
// # An Arvados cluster config
//
// The same /etc/arvados/config.yml that drives crunch-dispatch-slurm drives us (one cluster,
// or LoadOptions.ClusterID to choose). The keys read are those with an ArvadosKey in Keys;
// one Info notice lists the ones ignored. Containers.SLURM.SbatchArgumentsList holds extra
// arguments, taken literally (no placeholders: a % stays a %), that the incumbent put before
// its own; our template is therefore that list followed by the default template, which gives
// Slurm the same request. Arvados zero values that mean "unset" there (MinRetryPeriod 0s,
// PrioritySpread 0, MaxDispatchAttempts 0, empty strings) keep our defaults.
//
// Tokens are Secret values: they print as "<redacted>" through fmt, encoding/json, YAML and
// zap, and Validate never shows one.
package config
