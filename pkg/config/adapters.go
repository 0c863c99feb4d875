package config

import (
	"maps"
	"slices"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

// The adapters below give the other packages their settings. They fill only what the
// configuration decides; callers add loggers and clocks.

// ArvadosConfig returns the API client's settings. It holds the token.
func (c *Config) ArvadosConfig() arvados.Config {
	return arvados.Config{
		Host:                c.API.Host,
		Token:               c.API.Token.Value(),
		Insecure:            c.API.Insecure,
		Timeout:             c.API.Timeout,
		MaxItemsPerResponse: c.API.MaxItemsPerResponse,
		Retry:               arvados.RetryPolicy{MaxAttempts: c.API.MaxAttempts, MaxElapsed: c.API.MaxElapsed},
	}
}

// SlurmCLIConfig returns the Slurm backend's settings.
func (c *Config) SlurmCLIConfig() slurm.CLIConfig {
	s := &c.Slurm
	return slurm.CLIConfig{
		SbatchPath: s.SbatchPath, SqueuePath: s.SqueuePath, ScancelPath: s.ScancelPath, ScontrolPath: s.ScontrolPath,
		MaxConcurrent: s.MaxConcurrent,
		SubmitTimeout: s.SubmitTimeout, QueryTimeout: s.QueryTimeout, UpdateTimeout: s.UpdateTimeout,
		Dir: s.WorkDir,
	}
}

// SqueueConfig returns the squeue watcher's settings. clusterID is used when
// dispatch.cluster_id is empty (the prefix of our token's uuid, learnt at start).
func (c *Config) SqueueConfig(clusterID string) squeue.Config {
	if c.Dispatch.ClusterID != "" {
		clusterID = c.Dispatch.ClusterID
	}
	return squeue.Config{
		ClusterID:      clusterID,
		Period:         c.Dispatch.SqueuePeriod,
		PrioritySpread: c.Slurm.PrioritySpread,
		NiceHeadroom:   c.Slurm.NiceHeadroom,
	}
}

// JobEnv returns what every job's environment gets, as KEY=value: the API host, token and
// insecure flag (crunch-run acts with the dispatcher's credentials, as with
// crunch-dispatch-slurm), then slurm.environment sorted by name. It holds the token: never
// log it.
func (c *Config) JobEnv() []string {
	insecure := "0"
	if c.API.Insecure {
		insecure = "1"
	}
	env := []string{
		arvados.EnvHost + "=" + c.API.Host,
		arvados.EnvToken + "=" + c.API.Token.Value(),
		arvados.EnvInsecure + "=" + insecure,
	}
	for _, k := range slices.Sorted(maps.Keys(c.Slurm.Environment)) {
		env = append(env, k+"="+c.Slurm.Environment[k])
	}
	return env
}
