package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/config"
)

// defaultConfigPath is read when neither --config nor ARVADOS_CONFIG names a file, if it
// exists. Tests point it elsewhere so that the machine's file is never picked up.
var defaultConfigPath = config.DefaultArvadosConfigPath

// configFlag is --config, shared by run and the config commands.
func configFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", EnvVars: envVar("config"), TakesFile: true,
		Usage: "configuration file: our YAML, or an Arvados cluster config (default: $" + config.EnvConfig +
			", else " + config.DefaultArvadosConfigPath + " if it exists)"}
}

// clusterFlag is --cluster-id: it chooses the cluster of an Arvados config that has several,
// and is dispatch.cluster_id.
func clusterFlag() cli.Flag {
	return &cli.StringFlag{Name: "cluster-id", EnvVars: envVar("cluster-id"),
		Usage: "our cluster's uuid prefix: only containers and jobs named <cluster-id>-dz642-… are ours; " +
			"chooses the cluster of an Arvados config (default: the config's cluster, else the prefix of the API token's uuid)"}
}

// loadConfig loads the configuration file and the ARVADOS_API_* environment, then applies
// the flags of keys that were given, and validates the result. The error lists every
// problem at once, each naming the key and where its value came from; it is a usageError.
// The configuration is returned, for config dump, unless the file could not be loaded.
func loadConfig(c *cli.Context, keys []flagKey) (*config.Config, []config.Notice, error) {
	cfg, notices, problems, err := loadConfigProblems(c, keys)
	if err == nil {
		err = problemsError(problems)
	}
	return cfg, notices, err
}

// loadConfigProblems is loadConfig returning the problems one by one, for the caller to add
// its own. err is set when the file could not be loaded (then cfg is nil).
func loadConfigProblems(c *cli.Context, keys []flagKey) (cfg *config.Config, notices []config.Notice, problems []error, err error) {
	cfg, notices, err = config.Load(config.LoadOptions{
		Path:        c.String("config"),
		ClusterID:   c.String("cluster-id"),
		DefaultPath: defaultConfigPath,
	})
	if err != nil {
		return nil, notices, nil, usageError{fmt.Errorf("load the configuration: %w", err)}
	}
	problems = applyFlags(c, cfg, keys)
	if err := cfg.Validate(); err != nil {
		problems = append(problems, err)
	}
	return cfg, notices, problems, nil
}

// problemsError lists problems, one a line, as a usageError; nil if there are none.
func problemsError(problems []error) error {
	if err := errors.Join(problems...); err != nil {
		return usageError{fmt.Errorf("invalid configuration:\n  %w", indent(err))}
	}
	return nil
}

// describeKey names key and where its value came from, for problems found outside Validate.
func describeKey(cfg *config.Config, key string) string {
	return key + " (" + cfg.Source(key).String() + ")"
}

// flagSource is where a flag's value came from: the command line, or its environment
// variable (urfave/cli does not say which, so both are named when the variable is set).
func flagSource(flag string) config.Source {
	name := "--" + flag
	if v, ok := os.LookupEnv(envVar(flag)[0]); ok && v != "" {
		name += " (or environment variable " + envVar(flag)[0] + ")"
	}
	return config.Source{Kind: config.FromFlag, Name: name}
}

const configCheckExample = `Example:
   dispatch-slurm config check --config /etc/arvados/config.yml
   ARVADOS_CONFIG=/etc/arvados/config.yml dispatch-slurm config check
   dispatch-slurm config check --live --config /etc/arvados/config.yml

Loads the file (our YAML, or an Arvados cluster config), then ARVADOS_API_HOST,
ARVADOS_API_TOKEN and ARVADOS_API_HOST_INSECURE, and checks the result. It prints
"configuration OK" and exits 0, or prints every problem, each naming the key and where its
value came from, and exits 2.

With --live it then proves, from this host, that the configuration works, one line per
check (ok; FAIL with what to do; warn; or skip when an earlier check failed), and exits 1
if any failed: the API server answers and accepts the token; the token is an admin's; the four
Slurm commands are found; "scontrol ping" says slurmctld is UP; and every partition that the
sbatch arguments name literally exists ("scontrol show partition"; a partition that is not
UP is a warning; %P is each container's own and is not checked). The token is never printed.`

const configDumpExample = `Example:
   dispatch-slurm config dump --config /etc/arvados/config.yml > dispatch-slurm.yml

Prints the effective configuration as our YAML, every key with a comment saying where its
value came from. Tokens are printed as <redacted>: put them back (or set ARVADOS_API_TOKEN)
before using the output as a --config file.`

func configCommand() *cli.Command {
	onUsage := func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
	return &cli.Command{
		Name:  "config",
		Usage: "check or print the configuration",
		Description: "Example:\n   dispatch-slurm config check --config /etc/arvados/config.yml\n" +
			"   dispatch-slurm config dump --config /etc/arvados/config.yml",
		OnUsageError: onUsage,
		Subcommands: []*cli.Command{
			{
				Name:        "check",
				Usage:       "load and check the configuration, reporting every problem at once",
				Description: configCheckExample,
				Flags: []cli.Flag{configFlag(), clusterFlag(),
					&cli.BoolFlag{Name: "live", Usage: "also prove from this host that the API, the token and Slurm work (see below)"}},
				OnUsageError: onUsage,
				Action:       configCheck,
			},
			{
				Name:         "dump",
				Usage:        "print the effective configuration as YAML, tokens redacted",
				Description:  configDumpExample,
				Flags:        []cli.Flag{configFlag(), clusterFlag()},
				OnUsageError: onUsage,
				Action:       configDump,
			},
		},
	}
}

// configKeys are the flags of the config commands that set a key.
var configKeys = []flagKey{{flag: "cluster-id", key: "dispatch.cluster_id"}}

func configCheck(c *cli.Context) error {
	cfg, notices, err := loadConfig(c, configKeys)
	for _, n := range notices {
		fmt.Fprintln(c.App.Writer, n)
	}
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(c.App.Writer, "configuration OK"); err != nil || !c.Bool("live") {
		return err
	}
	return printLive(c.App.Writer, liveChecks(c.Context, cfg, defaultLiveEnv()))
}

func configDump(c *cli.Context) error {
	cfg, notices, err := loadConfig(c, configKeys)
	if cfg == nil {
		return err
	}
	for _, n := range notices {
		fmt.Fprintln(c.App.ErrWriter, n)
	}
	// An invalid configuration is printed too, to help find the problems, which main
	// prints after it with exit code 2.
	if derr := cfg.Dump(c.App.Writer); derr != nil {
		return derr
	}
	return err
}
