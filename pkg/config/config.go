package config

import (
	"maps"
	"slices"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// Config is every setting of dispatch-slurm. Default returns it with the documented
// defaults; Load fills it from a file, the environment and flags; Validate checks it. Keys
// lists the YAML key, default, meaning and Arvados key of every field.
type Config struct {
	API        API
	Dispatch   Dispatch
	CrunchRun  CrunchRun
	Slurm      Slurm
	Management Management
	Logging    Logging
	// LockFile is an absolute path that one dispatcher per host holds locked (flock);
	// a second one refuses to start. Key lock_file.
	LockFile string

	// sources says where each key's value came from; absent means the default.
	sources map[string]Source
}

// API is how we reach the Arvados API server.
type API struct {
	Host                string        // api.host: host[:port] of the API server
	Token               Secret        // api.token: an admin token; never printed
	Insecure            bool          // api.insecure: skip TLS certificate verification
	MaxItemsPerResponse int           // api.max_items_per_response: page size of container lists
	Timeout             time.Duration // api.timeout: bound on each request attempt
	MaxAttempts         int           // api.max_attempts: attempts per call, the first included
	MaxElapsed          time.Duration // api.max_elapsed: retry budget of one call
}

// Dispatch is the dispatcher's loop and its limits.
type Dispatch struct {
	// ClusterID is the five-character uuid prefix of our cluster. Empty: the prefix of our
	// token's uuid, learnt at run time.
	ClusterID      string
	PollPeriod     time.Duration
	SqueuePeriod   time.Duration
	MinRetryPeriod time.Duration
	MaxBackoff     time.Duration
	MaxJobs        int
	// SupervisorFraction is the share of MaxJobs that supervisor containers may hold, in
	// [0, 1]; 0 means no limit, as in Arvados.
	SupervisorFraction  float64
	MaxDispatchAttempts int
	LockConcurrency     int
	SubmitConcurrency   int
	RejectionBurst      int
	OrphanSweepPeriod   time.Duration
}

// CrunchRun is what the batch script runs: Command, Args, --runtime-engine=RuntimeEngine,
// then the container uuid.
type CrunchRun struct {
	Command         []string
	Args            []string
	RuntimeEngine   string
	ReserveExtraRAM ByteSize
}

// Slurm is how jobs are submitted and watched.
type Slurm struct {
	// SbatchArgs is the sbatch argument template (%U %C %M %T %P %G %W %%).
	SbatchArgs []string
	// SbatchGPUArgs are appended for containers that ask for GPUs.
	SbatchGPUArgs []string
	// SupervisorSbatchArgs, if not empty, replace SbatchArgs for supervisor containers.
	SupervisorSbatchArgs []string
	// Environment is added to every job's environment (through sbatch's).
	Environment    map[string]string
	PrioritySpread int64
	NiceHeadroom   int64
	SbatchPath     string
	SqueuePath     string
	ScancelPath    string
	ScontrolPath   string
	MaxConcurrent  int
	SubmitTimeout  time.Duration
	QueryTimeout   time.Duration
	UpdateTimeout  time.Duration
	// WorkDir is sbatch's working directory (job output lands there); empty: ours.
	WorkDir string
}

// Management is the HTTP endpoint for health and metrics.
type Management struct {
	// Listen is host:port (default DefaultManagementListen, loopback); empty: no management
	// endpoint.
	Listen string
	// Token is required in "Authorization: Bearer <token>" by the endpoint.
	Token Secret
}

// Logging is the log level and format.
type Logging struct {
	Level  string // debug, info, warn or error
	Format string // json or console; empty: console on a terminal, else json
}

// Defaults that are not another package's.
const (
	DefaultArvadosConfigPath   = "/etc/arvados/config.yml"
	DefaultLockFile            = "/var/run/dispatch-slurm.lock"
	DefaultMaxDispatchAttempts = 10
	// DefaultManagementListen is where the management endpoint listens unless told
	// otherwise: loopback only (the incumbent's conventional port for DispatchSLURM).
	DefaultManagementListen = "127.0.0.1:9007"
)

// Default returns the configuration with every default set.
func Default() *Config {
	return &Config{
		API: API{
			MaxItemsPerResponse: 1000,
			Timeout:             30 * time.Second,
			MaxAttempts:         5,
			MaxElapsed:          30 * time.Second,
		},
		Dispatch: Dispatch{
			PollPeriod:          10 * time.Second,
			SqueuePeriod:        2 * time.Second,
			MinRetryPeriod:      time.Second,
			MaxBackoff:          5 * time.Minute,
			MaxJobs:             1000,
			SupervisorFraction:  0.5,
			MaxDispatchAttempts: DefaultMaxDispatchAttempts,
			LockConcurrency:     4,
			SubmitConcurrency:   8,
			RejectionBurst:      3,
			OrphanSweepPeriod:   5 * time.Minute,
		},
		CrunchRun: CrunchRun{
			Command:         []string{"crunch-run"},
			RuntimeEngine:   "docker",
			ReserveExtraRAM: ByteSize(slurm.DefaultReserveRAM),
		},
		Slurm: Slurm{
			SbatchArgs:     slurm.DefaultTemplateArgs(),
			SbatchGPUArgs:  slurm.DefaultGPUArgs(),
			PrioritySpread: 10,
			NiceHeadroom:   10000,
			SbatchPath:     "sbatch",
			SqueuePath:     "squeue",
			ScancelPath:    "scancel",
			ScontrolPath:   "scontrol",
			MaxConcurrent:  slurm.DefaultMaxConcurrent,
			SubmitTimeout:  slurm.DefaultSubmitTimeout,
			QueryTimeout:   slurm.DefaultQueryTimeout,
			UpdateTimeout:  slurm.DefaultUpdateTimeout,
		},
		Management: Management{Listen: DefaultManagementListen},
		Logging:    Logging{Level: "info"},
		LockFile:   DefaultLockFile,
	}
}

// clone returns a deep copy of c.
func (c *Config) clone() *Config {
	d := *c
	d.CrunchRun.Command = slices.Clone(c.CrunchRun.Command)
	d.CrunchRun.Args = slices.Clone(c.CrunchRun.Args)
	d.Slurm.SbatchArgs = slices.Clone(c.Slurm.SbatchArgs)
	d.Slurm.SbatchGPUArgs = slices.Clone(c.Slurm.SbatchGPUArgs)
	d.Slurm.SupervisorSbatchArgs = slices.Clone(c.Slurm.SupervisorSbatchArgs)
	d.Slurm.Environment = maps.Clone(c.Slurm.Environment)
	d.sources = maps.Clone(c.sources)
	return &d
}
