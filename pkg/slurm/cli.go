package slurm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
)

// CLIConfig configures the CLI backend.
type CLIConfig struct {
	// Paths to the four commands; defaults "sbatch", "squeue", "scancel", "scontrol" (PATH).
	SbatchPath, SqueuePath, ScancelPath, ScontrolPath string
	// MaxConcurrent caps Slurm commands running at once (default 8).
	MaxConcurrent int
	// Timeouts per command kind. SubmitTimeout defaults to 3m (longer than sbatch's own ~2 min
	// retry while slurmctld is busy); QueryTimeout (squeue, scontrol show) 30s; UpdateTimeout
	// (scontrol update, scancel) 30s.
	SubmitTimeout, QueryTimeout, UpdateTimeout time.Duration
	// User filters squeue to this user (default: the current user, --me).
	User string
	// Env is the base environment for every command (default os.Environ()).
	Env []string
	// Dir is the working directory for sbatch (job output lands there). Default: current dir.
	Dir    string
	Logger *zap.Logger
	// Now is the clock for Snapshot.Started/Finished (default time.Now).
	Now func() time.Time
	// WaitDelay bounds how long a command may take to exit after SIGTERM (timeout or
	// cancelled context) before it is killed (default 5s).
	WaitDelay time.Duration
	// MaxIDsPerCommand bounds the job ids given to one scontrol update or scancel (default 200).
	MaxIDsPerCommand int
	// Observe, if set, hears of every command once it has ended (see Observer): metrics.
	Observe Observer
}

// Defaults for CLIConfig.
const (
	DefaultMaxConcurrent    = 8
	DefaultSubmitTimeout    = 3 * time.Minute
	DefaultQueryTimeout     = 30 * time.Second
	DefaultUpdateTimeout    = 30 * time.Second
	DefaultMaxIDsPerCommand = 200
)

// CLI is the Client that runs Slurm's command-line tools. It is safe for concurrent use.
type CLI struct {
	cfg    CLIConfig
	run    runner
	sem    chan struct{}
	now    func() time.Time
	logger *zap.Logger
}

var _ Client = (*CLI)(nil)

// NewCLI returns a CLI backend with cfg's zero fields set to their defaults.
func NewCLI(cfg CLIConfig) (*CLI, error) {
	if cfg.MaxConcurrent < 0 || cfg.SubmitTimeout < 0 || cfg.QueryTimeout < 0 || cfg.UpdateTimeout < 0 ||
		cfg.WaitDelay < 0 || cfg.MaxIDsPerCommand < 0 {
		return nil, errors.New("slurm CLI config: limits and timeouts must not be negative")
	}
	if cfg.User != "" && !validUser(cfg.User) {
		return nil, fmt.Errorf("slurm CLI config: invalid user name %q", cfg.User)
	}
	setDefault(&cfg.SbatchPath, "sbatch")
	setDefault(&cfg.SqueuePath, "squeue")
	setDefault(&cfg.ScancelPath, "scancel")
	setDefault(&cfg.ScontrolPath, "scontrol")
	setDefault(&cfg.MaxConcurrent, DefaultMaxConcurrent)
	setDefault(&cfg.SubmitTimeout, DefaultSubmitTimeout)
	setDefault(&cfg.QueryTimeout, DefaultQueryTimeout)
	setDefault(&cfg.UpdateTimeout, DefaultUpdateTimeout)
	setDefault(&cfg.WaitDelay, defaultWaitDelay)
	setDefault(&cfg.MaxIDsPerCommand, DefaultMaxIDsPerCommand)
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &CLI{
		cfg:    cfg,
		run:    execRunner{waitDelay: cfg.WaitDelay},
		sem:    make(chan struct{}, cfg.MaxConcurrent),
		now:    cfg.Now,
		logger: cfg.Logger,
	}, nil
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// exec runs one command under the concurrency cap and the given timeout. Waiting for a slot
// counts against the caller's ctx, not the timeout.
func (c *CLI) exec(ctx context.Context, timeout time.Duration, inv invocation) ([]byte, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, &CommandError{Name: inv.Name, Args: inv.Args, ExitCode: -1,
			Err: fmt.Errorf("waiting for a free command slot: %w", errors.Join(errNotStarted, ctx.Err()))}
	}
	// A command that never got a slot is not observed: it did not run.
	defer func() { <-c.sem }()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if inv.Env == nil {
		inv.Env = c.cfg.Env
	}
	start := c.now()
	out, err := c.run.run(ctx, inv)
	took := c.now().Sub(start)
	if c.cfg.Observe != nil {
		var cerr error
		if err != nil {
			cerr = classify(err)
		}
		c.cfg.Observe(inv.Name, took, cerr)
	}
	if err != nil {
		fields := []zap.Field{zap.String("cmd", inv.Name), zap.Duration("took", took), zap.Error(err)}
		if ce := (*CommandError)(nil); errors.As(err, &ce) {
			fields = append(fields, zap.Int("exit_code", ce.ExitCode), zap.String("stderr", lastLine(ce.Stderr)))
		}
		c.logger.Debug("slurm command failed", fields...)
		return out, err
	}
	c.logger.Debug("slurm command", zap.String("cmd", inv.Name), zap.Duration("took", took))
	return out, nil
}

// userArgs selects our user's jobs for squeue and scancel.
func (c *CLI) userArgs() string {
	if c.cfg.User != "" {
		return "--user=" + c.cfg.User
	}
	return "--me"
}
