package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// field is one configuration key: its dotted YAML name, what it means, the Arvados cluster
// config key it comes from (relative to Clusters.<id>), and where it lives in Config.
type field struct {
	key, arvados, help string
	ptr                func(*Config) any
}

// fields lists every key, in the order of the YAML file and of config dump.
var fields = []field{
	{"api.host", "Services.Controller.ExternalURL", "API server as host[:port] (https; http only on loopback). Env ARVADOS_API_HOST",
		func(c *Config) any { return &c.API.Host }},
	{"api.token", "SystemRootToken", "the dispatcher's API token, an admin's; never printed. Env ARVADOS_API_TOKEN",
		func(c *Config) any { return &c.API.Token }},
	{"api.insecure", "TLS.Insecure", "skip TLS certificate verification. Env ARVADOS_API_HOST_INSECURE",
		func(c *Config) any { return &c.API.Insecure }},
	{"api.max_items_per_response", "API.MaxItemsPerResponse", "page size of container lists",
		func(c *Config) any { return &c.API.MaxItemsPerResponse }},
	{"api.timeout", "", "bound on each API request attempt",
		func(c *Config) any { return &c.API.Timeout }},
	{"api.max_attempts", "", "attempts per API call for transient failures, the first included",
		func(c *Config) any { return &c.API.MaxAttempts }},
	{"api.max_elapsed", "", "retry budget of one API call",
		func(c *Config) any { return &c.API.MaxElapsed }},

	{"dispatch.cluster_id", "Clusters.<id>", "our cluster's uuid prefix; empty: our token's, learnt at start",
		func(c *Config) any { return &c.Dispatch.ClusterID }},
	{"dispatch.poll_period", "Containers.CloudVMs.PollInterval", "period of the API poll",
		func(c *Config) any { return &c.Dispatch.PollPeriod }},
	{"dispatch.squeue_period", "", "period of squeue",
		func(c *Config) any { return &c.Dispatch.SqueuePeriod }},
	{"dispatch.min_retry_period", "Containers.MinRetryPeriod", "least time between attempts for one container after a failure (Arvados's 0s keeps the default)",
		func(c *Config) any { return &c.Dispatch.MinRetryPeriod }},
	{"dispatch.max_backoff", "", "most time between attempts for one container after repeated failures",
		func(c *Config) any { return &c.Dispatch.MaxBackoff }},
	{"dispatch.max_jobs", "", "most containers locked (and in Slurm) at once",
		func(c *Config) any { return &c.Dispatch.MaxJobs }},
	{"dispatch.supervisor_fraction", "Containers.CloudVMs.SupervisorFraction", "share of max_jobs that supervisor (workflow runner) containers may hold; 0: no limit",
		func(c *Config) any { return &c.Dispatch.SupervisorFraction }},
	{"dispatch.max_dispatch_attempts", "Containers.MaxDispatchAttempts", "the API server cancels a container unlocked this many times",
		func(c *Config) any { return &c.Dispatch.MaxDispatchAttempts }},
	{"dispatch.lock_concurrency", "", "lock requests in flight at once",
		func(c *Config) any { return &c.Dispatch.LockConcurrency }},
	{"dispatch.submit_concurrency", "", "sbatch commands in flight at once",
		func(c *Config) any { return &c.Dispatch.SubmitConcurrency }},
	{"dispatch.rejection_burst", "", "distinct containers rejected by sbatch with the same message that pause submitting (our misconfiguration, not theirs)",
		func(c *Config) any { return &c.Dispatch.RejectionBurst }},
	{"dispatch.orphan_sweep_period", "", "period of the sweep for Slurm jobs whose containers are not ours to run",
		func(c *Config) any { return &c.Dispatch.OrphanSweepPeriod }},

	{"crunch_run.command", "Containers.CrunchRunCommand", "the job's command and its first arguments",
		func(c *Config) any { return &c.CrunchRun.Command }},
	{"crunch_run.args", "Containers.CrunchRunArgumentsList", "more arguments, before --runtime-engine and the uuid",
		func(c *Config) any { return &c.CrunchRun.Args }},
	{"crunch_run.runtime_engine", "Containers.RuntimeEngine", "passed as --runtime-engine=<engine> (docker or singularity)",
		func(c *Config) any { return &c.CrunchRun.RuntimeEngine }},
	{"crunch_run.reserve_extra_ram", "Containers.ReserveExtraRAM", "added to every job's memory (%M) for crunch-run and the runtime",
		func(c *Config) any { return &c.CrunchRun.ReserveExtraRAM }},

	{"slurm.sbatch_args", "Containers.SLURM.SbatchArgumentsList", "sbatch argument template (%U %C %M %T %P %G %W %%); from Arvados: its list, taken literally, then the default template",
		func(c *Config) any { return &c.Slurm.SbatchArgs }},
	{"slurm.sbatch_gpu_args", "Containers.SLURM.SbatchGPUArgumentsList", "appended for containers that ask for GPUs",
		func(c *Config) any { return &c.Slurm.SbatchGPUArgs }},
	{"slurm.supervisor_sbatch_args", "", "template for supervisor containers; empty: sbatch_args",
		func(c *Config) any { return &c.Slurm.SupervisorSbatchArgs }},
	{"slurm.environment", "Containers.SLURM.SbatchEnvironmentVariables", "added to every job's environment",
		func(c *Config) any { return &c.Slurm.Environment }},
	{"slurm.priority_spread", "Containers.SLURM.PrioritySpread", "gap between the Slurm priorities of neighbouring jobs (Arvados's 0 keeps the default)",
		func(c *Config) any { return &c.Slurm.PrioritySpread }},
	{"slurm.nice_headroom", "", "nice of the top job of an empty queue: room above it for higher priorities",
		func(c *Config) any { return &c.Slurm.NiceHeadroom }},
	{"slurm.sbatch", "", "sbatch command, looked up in PATH",
		func(c *Config) any { return &c.Slurm.SbatchPath }},
	{"slurm.squeue", "", "squeue command, looked up in PATH",
		func(c *Config) any { return &c.Slurm.SqueuePath }},
	{"slurm.scancel", "", "scancel command, looked up in PATH",
		func(c *Config) any { return &c.Slurm.ScancelPath }},
	{"slurm.scontrol", "", "scontrol command, looked up in PATH",
		func(c *Config) any { return &c.Slurm.ScontrolPath }},
	{"slurm.max_concurrent", "", "Slurm commands running at once",
		func(c *Config) any { return &c.Slurm.MaxConcurrent }},
	{"slurm.submit_timeout", "", "bound on one sbatch (sbatch itself retries for about 2m when slurmctld is busy)",
		func(c *Config) any { return &c.Slurm.SubmitTimeout }},
	{"slurm.query_timeout", "", "bound on one squeue or scontrol show",
		func(c *Config) any { return &c.Slurm.QueryTimeout }},
	{"slurm.update_timeout", "", "bound on one scancel or scontrol update",
		func(c *Config) any { return &c.Slurm.UpdateTimeout }},
	{"slurm.work_dir", "", "sbatch's working directory, where job output lands; empty: the dispatcher's",
		func(c *Config) any { return &c.Slurm.WorkDir }},

	{"management.listen", "Services.DispatchSLURM.InternalURLs", "host:port of the health, metrics and management endpoint (plain http; loopback by default); empty: none",
		func(c *Config) any { return &c.Management.Listen }},
	{"management.token", "ManagementToken", "bearer token the management endpoint requires; never printed",
		func(c *Config) any { return &c.Management.Token }},

	{"logging.level", "SystemLogs.LogLevel", "debug, info, warn or error",
		func(c *Config) any { return &c.Logging.Level }},
	{"logging.format", "SystemLogs.Format", "json or console (Arvados's text); empty: console on a terminal, else json",
		func(c *Config) any { return &c.Logging.Format }},

	{"lock_file", "", "absolute path of the lock file that keeps a second dispatcher on this host from starting",
		func(c *Config) any { return &c.LockFile }},
}

// fieldByKey returns the field named key.
func fieldByKey(key string) (field, bool) {
	i := slices.IndexFunc(fields, func(f field) bool { return f.key == key })
	if i < 0 {
		return field{}, false
	}
	return fields[i], true
}

// Key describes one configuration key, for documentation and command-line flags.
type Key struct {
	// Name is the dotted YAML key ("dispatch.poll_period"); Set takes it.
	Name string
	// Default is the default value as it would be written in YAML.
	Default string
	// Help says what the key means.
	Help string
	// ArvadosKey is the key in an Arvados cluster config (under Clusters.<id>) it is read
	// from, or "".
	ArvadosKey string
}

// Keys lists every key in file order.
func Keys() []Key {
	def := Default()
	out := make([]Key, 0, len(fields))
	for _, f := range fields {
		out = append(out, Key{Name: f.key, Default: formatValue(f.ptr(def)), Help: f.help, ArvadosKey: f.arvados})
	}
	return out
}

// formatValue writes the value behind ptr as it would appear after a key in YAML (lists
// and maps in flow style). Secrets are redacted.
func formatValue(ptr any) string {
	switch p := ptr.(type) {
	case *string:
		return *p
	case *Secret:
		return p.String()
	case *bool:
		return fmt.Sprint(*p)
	case *int:
		return fmt.Sprint(*p)
	case *int64:
		return fmt.Sprint(*p)
	case *float64:
		return fmt.Sprint(*p)
	case *time.Duration:
		return FormatDuration(*p)
	case *ByteSize:
		return p.String()
	case *[]string:
		return "[" + strings.Join(*p, ", ") + "]"
	case *map[string]string:
		keys := slices.Sorted(maps.Keys(*p))
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+": "+(*p)[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	panic(fmt.Sprintf("config: no format for %T", ptr))
}
