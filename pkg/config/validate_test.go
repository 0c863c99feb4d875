package config

import (
	"strings"
	"testing"
)

// valid returns the defaults plus what they lack: an API host and token.
func valid() *Config {
	c := Default()
	c.API.Host = "zzzzz.example.org"
	c.API.Token = "v2/zzzzz-gj3su-0123456789abcde/sekrit"
	return c
}

func TestTheDefaultsWithAHostAndTokenAreValid(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamesWhatToSetWhenHostAndTokenAreMissing(t *testing.T) {
	err := Default().Validate()
	for _, want := range []string{
		"api.host (default): no API server: set ARVADOS_API_HOST (host[:port]), api.host in our file, or Services.Controller.ExternalURL",
		"api.token (default): no API token: set ARVADOS_API_TOKEN, api.token in our file, or SystemRootToken",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want a line %q", err, want)
		}
	}
	if n := len(errLines(err)); n != 2 {
		t.Errorf("%d problems; want 2:\n%v", n, err)
	}
}

func TestValidateReportsEveryProblemAtOnceWithKeyAndFile(t *testing.T) {
	o := opts(t, map[string]string{"ARVADOS_API_TOKEN": "sekrit-token"})
	o.Path = writeFile(t, "bad.yml", `api:
  host: http://api.example.org
dispatch:
  poll_period: -5s
  max_jobs: 0
  supervisor_fraction: 1.5
crunch_run:
  command: []
slurm:
  sbatch_args: [--job-name=%U, --mem=%M, --foo=%Q, --nice=3]
logging:
  level: chatty
lock_file: run/lock
`, 0o600)
	c, _ := mustLoad(t, o)
	err := c.Validate()
	lines := errLines(err)
	for _, want := range []string{
		"api.host (from " + o.Path + ":2): \"http://api.example.org\": plain http is allowed only to a loopback host",
		"dispatch.poll_period (from " + o.Path + ":4): -5s: must be more than 0",
		"dispatch.max_jobs (from " + o.Path + ":5): 0: want at least 1",
		"dispatch.supervisor_fraction (from " + o.Path + ":6): 1.5: want a share from 0 to 1",
		"crunch_run.command (from " + o.Path + ":8): empty",
		"slurm.sbatch_args (from " + o.Path + ":10): sbatch argument \"--foo=%Q\": unknown placeholder %Q",
		"slurm.sbatch_args (from " + o.Path + ":10): sbatch argument \"--nice=3\": --nice is set by the dispatcher",
		"logging.level (from " + o.Path + ":12): \"chatty\": want debug, info, warn or error",
		"lock_file (from " + o.Path + ":13): \"run/lock\": want an absolute path",
	} {
		if len(noticesOrLines(lines, want)) != 1 {
			t.Errorf("Validate lacks a line starting %q", want)
		}
	}
	if len(lines) != 9 {
		t.Errorf("%d problems; want 9:\n%v", len(lines), err)
	}
	if strings.Contains(err.Error(), "sekrit") {
		t.Errorf("Validate shows the token:\n%v", err)
	}
}

func TestValidateNamesTheArvadosKeyAValueCameFrom(t *testing.T) {
	o := opts(t, nil)
	o.Path = writeFile(t, "config.yml", `Clusters:
  zzzzz:
    SystemRootToken: sekrit
    Services: {Controller: {ExternalURL: "https://zzzzz.example.org/"}}
    Containers:
      SLURM:
        SbatchGPUArgumentsList: ["--gres=gpu:%X"]
`, 0o600)
	c, _ := mustLoad(t, o)
	want := "slurm.sbatch_gpu_args (from Clusters.zzzzz.Containers.SLURM.SbatchGPUArgumentsList in " + o.Path + ":7): sbatch GPU argument \"--gres=gpu:%X\": unknown placeholder %X (known: %U %C %M %T %P %G %W %%)"
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
}

func TestValidateFindsEachProblem(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(c *Config)
		wantErr string
	}{
		{"an API host with a path", func(c *Config) { c.API.Host = "zzzzz.example.org/arvados" }, "without a path"},
		{"an API host with a bad port", func(c *Config) { c.API.Host = "zzzzz.example.org:http" }, "bad port"},
		{"an API host with another scheme", func(c *Config) { c.API.Host = "ftp://zzzzz.example.org" }, "want host[:port]"},
		{"a token with white space", func(c *Config) { c.API.Token = "abc def" }, "white space"},
		{"a page size of 0", func(c *Config) { c.API.MaxItemsPerResponse = 0 }, "api.max_items_per_response (default): 0"},
		{"no attempts", func(c *Config) { c.API.MaxAttempts = 0 }, "api.max_attempts"},
		{"a zero request timeout", func(c *Config) { c.API.Timeout = 0 }, "api.timeout"},
		{"a cluster id of the wrong shape", func(c *Config) { c.Dispatch.ClusterID = "ZZZZ" }, "five lower-case"},
		{"a zero squeue period", func(c *Config) { c.Dispatch.SqueuePeriod = 0 }, "dispatch.squeue_period"},
		{"a backoff below the retry period", func(c *Config) { c.Dispatch.MaxBackoff = c.Dispatch.MinRetryPeriod / 2 }, "less than dispatch.min_retry_period"},
		{"a negative supervisor fraction", func(c *Config) { c.Dispatch.SupervisorFraction = -1 }, "want a share from 0 to 1"},
		{"no dispatch attempts", func(c *Config) { c.Dispatch.MaxDispatchAttempts = 0 }, "dispatch.max_dispatch_attempts"},
		{"no lock concurrency", func(c *Config) { c.Dispatch.LockConcurrency = 0 }, "dispatch.lock_concurrency"},
		{"no submit concurrency", func(c *Config) { c.Dispatch.SubmitConcurrency = 0 }, "dispatch.submit_concurrency"},
		{"a rejection burst of 0", func(c *Config) { c.Dispatch.RejectionBurst = 0 }, "dispatch.rejection_burst"},
		{"a zero orphan sweep period", func(c *Config) { c.Dispatch.OrphanSweepPeriod = 0 }, "dispatch.orphan_sweep_period"},
		{"an empty crunch-run program", func(c *Config) { c.CrunchRun.Command = []string{""} }, "crunch_run.command (default): empty"},
		{"a newline in a crunch-run argument", func(c *Config) { c.CrunchRun.Args = []string{"a\nb"} }, "crunch_run.args (default): word 1 contains"},
		{"a runtime engine of two words", func(c *Config) { c.CrunchRun.RuntimeEngine = "docker run" }, "want one word"},
		{"a negative reserve", func(c *Config) { c.CrunchRun.ReserveExtraRAM = -1 }, "must not be negative"},
		{"a job name other than the uuid", func(c *Config) { c.Slurm.SbatchArgs = []string{"--job-name=x"} }, "job name is always the container uuid"},
		{"a bad supervisor template", func(c *Config) { c.Slurm.SupervisorSbatchArgs = []string{"--mem=%Z"} }, "slurm.supervisor_sbatch_args (default)"},
		{"an environment variable that is not a name", func(c *Config) { c.Slurm.Environment = map[string]string{"A-B": "x"} }, `"A-B" is not a variable name`},
		{"an environment variable the dispatcher sets", func(c *Config) { c.Slurm.Environment = map[string]string{"ARVADOS_API_TOKEN": "x"} }, "set by the dispatcher"},
		{"a priority spread of 0", func(c *Config) { c.Slurm.PrioritySpread = 0 }, "slurm.priority_spread"},
		{"a nice headroom past Slurm's range", func(c *Config) { c.Slurm.NiceHeadroom = 1 << 40 }, "slurm.nice_headroom"},
		{"no squeue command", func(c *Config) { c.Slurm.SqueuePath = "" }, "slurm.squeue (default): empty"},
		{"no Slurm concurrency", func(c *Config) { c.Slurm.MaxConcurrent = 0 }, "slurm.max_concurrent"},
		{"a zero submit timeout", func(c *Config) { c.Slurm.SubmitTimeout = 0 }, "slurm.submit_timeout"},
		{"a listen address without a port", func(c *Config) { c.Management.Listen = "localhost" }, "want host:port"},
		{"an unknown log format", func(c *Config) { c.Logging.Format = "xml" }, "want json or console"},
		{"an empty lock file", func(c *Config) { c.LockFile = "" }, "lock_file (default): \"\": want an absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v; want an error containing %q", err, tc.wantErr)
			}
			if n := len(errLines(err)); n != 1 {
				t.Errorf("%d problems; want 1:\n%v", n, err)
			}
		})
	}
}

func TestValidateAcceptsPlainHTTPToLoopback(t *testing.T) {
	for _, host := range []string{"http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000", "https://zzzzz.example.org:8443", "zzzzz.example.org:443"} {
		c := valid()
		c.API.Host = host
		if err := c.Validate(); err != nil {
			t.Errorf("host %q: %v", host, err)
		}
	}
}
