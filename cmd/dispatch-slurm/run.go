package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/config"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/metrics"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/queue"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

// envPrefix prefixes the environment variable of every run flag: --poll-period is
// DISPATCH_SLURM_POLL_PERIOD.
const envPrefix = "DISPATCH_SLURM_"

func envVar(flag string) []string {
	return []string{envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))}
}

const runExample = `Example:
   dispatch-slurm run --config /etc/arvados/config.yml

   ARVADOS_API_HOST=zzzzz.example.org ARVADOS_API_TOKEN=... \
   dispatch-slurm run --poll-period=10s --squeue-period=2s --max-jobs=1000 \
     --crunch-run-command="/usr/bin/crunch-run" --crunch-run-args="--cgroup-parent-subsystem=memory" \
     --sbatch-args="--job-name=%U --mem=%M --cpus-per-task=%C --tmp=%T --partition=%P" \
     --job-env=TMPDIR=/scratch --lock-file=/run/dispatch-slurm.lock

The configuration comes from the file given with --config (our YAML, or the Arvados cluster
config that drives crunch-dispatch-slurm; default $ARVADOS_CONFIG, else
/etc/arvados/config.yml if it exists), then ARVADOS_API_HOST, ARVADOS_API_TOKEN and
ARVADOS_API_HOST_INSECURE, then the flags given, which override the file. Every flag can
also be set with an environment variable: DISPATCH_SLURM_<FLAG NAME IN CAPITALS, DASHES AS
UNDERSCORES>, e.g. DISPATCH_SLURM_MAX_JOBS=500. "dispatch-slurm config dump" prints the
effective configuration. sbatch template placeholders: %U uuid, %C vcpus, %M MiB of memory,
%T MiB of scratch, %P partitions, %G GPUs, %W minutes of max run time, %% a percent sign.
SIGTERM stops polling and leaves the Slurm jobs running; a second SIGTERM exits at once.`

func runCommand() *cli.Command {
	return &cli.Command{
		Name:        "run",
		Usage:       "run the dispatcher: lock queued containers and run them as Slurm jobs",
		Description: runExample,
		Flags:       runFlags(),
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		Action: func(c *cli.Context) error {
			rc, notices, err := runConfigFrom(c)
			if err != nil {
				for _, n := range notices {
					fmt.Fprintln(c.App.ErrWriter, n)
				}
				return err
			}
			return rc.run(c.Context, c.App.ErrWriter, notices)
		},
	}
}

// flagKey ties a run flag to the configuration key it overrides when given.
type flagKey struct {
	flag, key string
	// value turns the flag's value into the key's; nil: the flag's value as text.
	value func(c *cli.Context) (string, error)
}

// runKeys lists the run flags that set a configuration key. The others (rejection-hold)
// have no key.
var runKeys = []flagKey{
	{flag: "poll-period", key: "dispatch.poll_period"},
	{flag: "squeue-period", key: "dispatch.squeue_period"},
	{flag: "max-jobs", key: "dispatch.max_jobs"},
	{flag: "supervisor-fraction", key: "dispatch.supervisor_fraction", value: supervisorFractionValue},
	{flag: "crunch-run-command", key: "crunch_run.command"},
	{flag: "crunch-run-args", key: "crunch_run.args"},
	{flag: "runtime-engine", key: "crunch_run.runtime_engine"},
	{flag: "sbatch-args", key: "slurm.sbatch_args"},
	{flag: "sbatch-gpu-args", key: "slurm.sbatch_gpu_args"},
	{flag: "supervisor-sbatch-args", key: "slurm.supervisor_sbatch_args"},
	{flag: "reserve-ram", key: "crunch_run.reserve_extra_ram", value: reserveRAMValue},
	{flag: "job-env", key: "slurm.environment", value: jobEnvValue},
	{flag: "sbatch-path", key: "slurm.sbatch"},
	{flag: "squeue-path", key: "slurm.squeue"},
	{flag: "scancel-path", key: "slurm.scancel"},
	{flag: "scontrol-path", key: "slurm.scontrol"},
	{flag: "slurm-dir", key: "slurm.work_dir"},
	{flag: "lock-file", key: "lock_file"},
	{flag: "min-retry-period", key: "dispatch.min_retry_period"},
	{flag: "max-backoff", key: "dispatch.max_backoff"},
	{flag: "rejection-burst", key: "dispatch.rejection_burst"},
	{flag: "orphan-sweep-period", key: "dispatch.orphan_sweep_period"},
	{flag: "cluster-id", key: "dispatch.cluster_id"},
	{flag: "management-listen", key: "management.listen"},
	{flag: "log-level", key: "logging.level"},
	{flag: "log-format", key: "logging.format"},
}

// applyFlags sets the key of every flag in keys that was given (on the command line or by
// its environment variable), returning every problem.
func applyFlags(c *cli.Context, cfg *config.Config, keys []flagKey) []error {
	var errs []error
	for _, fk := range keys {
		if !c.IsSet(fk.flag) {
			continue
		}
		v, err := c.String(fk.flag), error(nil) // any flag's value as text: "200ms", "5"
		if fk.value != nil {
			v, err = fk.value(c)
		}
		if err == nil {
			err = cfg.SetFrom(fk.key, v, flagSource(fk.flag))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// supervisorFractionValue: the flag's negative means no limit, which is the key's 0.
func supervisorFractionValue(c *cli.Context) (string, error) {
	switch f := c.Float64("supervisor-fraction"); {
	case f < 0:
		return "0", nil
	case f == 0 || f > 1:
		return "", fmt.Errorf("--supervisor-fraction %g: want a share in (0, 1], or negative for no limit", f)
	default:
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	}
}

// reserveRAMValue: the flag is in MiB.
func reserveRAMValue(c *cli.Context) (string, error) {
	r := c.Int64("reserve-ram")
	if r < 0 || r > 1<<30 {
		return "", fmt.Errorf("--reserve-ram %d: want 0..%d MiB", r, int64(1)<<30)
	}
	return strconv.FormatInt(r, 10) + "MiB", nil
}

// jobEnvValue quotes each KEY=VALUE so that the key's shell-like splitting gives them back.
// The error never shows a value.
func jobEnvValue(c *cli.Context) (string, error) {
	var words []string
	for i, kv := range c.StringSlice("job-env") {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.ContainsAny(k, " \t\n\x00") {
			return "", fmt.Errorf("--job-env #%d: want KEY=VALUE (key %q)", i+1, k)
		}
		words = append(words, "'"+strings.ReplaceAll(kv, "'", `'\''`)+"'")
	}
	return strings.Join(words, " "), nil
}

func runFlags() []cli.Flag {
	def := config.Default()
	dur := func(name string, def time.Duration, usage string) cli.Flag {
		return &cli.DurationFlag{Name: name, Value: def, Usage: usage, EnvVars: envVar(name)}
	}
	str := func(name, def, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, Value: def, Usage: usage, EnvVars: envVar(name)}
	}
	words := func(name string, def []string, usage string) cli.Flag {
		return str(name, strings.Join(def, " "), usage)
	}
	integer := func(name string, def int, usage string) cli.Flag {
		return &cli.IntFlag{Name: name, Value: def, Usage: usage, EnvVars: envVar(name)}
	}
	return []cli.Flag{
		configFlag(),
		dur("poll-period", def.Dispatch.PollPeriod, "period of the API poll"),
		dur("squeue-period", def.Dispatch.SqueuePeriod, "period of squeue"),
		integer("max-jobs", def.Dispatch.MaxJobs, "most containers held locked (and in Slurm) at once"),
		&cli.Float64Flag{Name: "supervisor-fraction", Value: def.Dispatch.SupervisorFraction, EnvVars: envVar("supervisor-fraction"),
			Usage: "share of --max-jobs that supervisor containers may hold (negative: no limit)"},
		words("crunch-run-command", def.CrunchRun.Command, "the job's command (split like a shell would, never run by one)"),
		words("crunch-run-args", def.CrunchRun.Args, "extra arguments for crunch-run, before the container uuid"),
		str("runtime-engine", def.CrunchRun.RuntimeEngine, "passed to crunch-run as --runtime-engine"),
		words("sbatch-args", def.Slurm.SbatchArgs, "sbatch argument template"),
		words("sbatch-gpu-args", def.Slurm.SbatchGPUArgs, "sbatch arguments added for containers that ask for GPUs"),
		words("supervisor-sbatch-args", def.Slurm.SupervisorSbatchArgs, "sbatch argument template for supervisor containers (default: --sbatch-args)"),
		&cli.Int64Flag{Name: "reserve-ram", Value: def.CrunchRun.ReserveExtraRAM.Bytes() >> 20, EnvVars: envVar("reserve-ram"),
			Usage: "MiB added to every job's memory for crunch-run and the container runtime"},
		&cli.StringSliceFlag{Name: "job-env", EnvVars: envVar("job-env"),
			Usage: "KEY=VALUE added to the job's environment (repeatable; replaces slurm.environment of the config file)"},
		str("sbatch-path", def.Slurm.SbatchPath, "sbatch command (looked up in PATH)"),
		str("squeue-path", def.Slurm.SqueuePath, "squeue command (looked up in PATH)"),
		str("scancel-path", def.Slurm.ScancelPath, "scancel command (looked up in PATH)"),
		str("scontrol-path", def.Slurm.ScontrolPath, "scontrol command (looked up in PATH)"),
		str("slurm-dir", def.Slurm.WorkDir, "sbatch's working directory, where job output lands (default: the current directory)"),
		str("lock-file", def.LockFile, "lock file that keeps a second dispatcher on this host from starting"),
		dur("min-retry-period", def.Dispatch.MinRetryPeriod, "least time between attempts for a container after a failure"),
		dur("max-backoff", def.Dispatch.MaxBackoff, "most time between attempts for a container after repeated failures"),
		integer("rejection-burst", def.Dispatch.RejectionBurst,
			"distinct containers rejected by sbatch with the same message that pause submitting (misconfiguration)"),
		dur("rejection-hold", queue.DefaultRejectionHold,
			"how long a container rejected by sbatch is held before it is cancelled, unless others are rejected the same way"),
		dur("orphan-sweep-period", def.Dispatch.OrphanSweepPeriod, "period of the sweep for jobs whose containers are not ours"),
		clusterFlag(),
		str("management-listen", def.Management.Listen,
			"host:port of the health, metrics and management endpoint (plain http; port 0 picks one, logged); empty: none"),
		str("log-level", def.Logging.Level, "debug, info, warn or error"),
		str("log-format", def.Logging.Format, "json or console (default: console when stderr is a terminal, else json)"),
	}
}

// runConfig is everything run needs, checked.
type runConfig struct {
	arv      arvados.Config
	cli      slurm.CLIConfig
	squeue   squeue.Config
	queue    queue.Config
	lockFile string
	level    zapcore.Level
	format   string
	ops      opsConfig
}

// runConfigFrom loads the configuration (file, ARVADOS_API_* environment, the flags given)
// and checks it and the system (Slurm commands, directories), reporting every problem at
// once as a usageError. No message shows a token or a job environment value.
func runConfigFrom(c *cli.Context) (*runConfig, []config.Notice, error) {
	cfg, notices, errs, err := loadConfigProblems(c, runKeys)
	if err != nil {
		return nil, notices, err
	}
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if d := c.Duration("rejection-hold"); d <= 0 {
		add(fmt.Errorf("--rejection-hold %s: must be positive", d))
	}
	rc := &runConfig{lockFile: cfg.LockFile, squeue: cfg.SqueueConfig(""), format: logFormat(cfg.Logging.Format),
		ops: opsConfigFrom(cfg)}
	rc.arv = cfg.ArvadosConfig()
	rc.arv.Retry.MaxDelay = 2 * time.Second
	rc.cli = cfg.SlurmCLIConfig()
	for key, p := range map[string]*string{"slurm.sbatch": &rc.cli.SbatchPath, "slurm.squeue": &rc.cli.SqueuePath,
		"slurm.scancel": &rc.cli.ScancelPath, "slurm.scontrol": &rc.cli.ScontrolPath} {
		if *p == "" {
			continue // Validate said so
		}
		found, err := exec.LookPath(*p)
		if err != nil {
			add(fmt.Errorf("%s: %w", describeKey(cfg, key), err))
		}
		*p = found
	}
	if dir := rc.cli.Dir; dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			add(fmt.Errorf("%s: %q is not a directory", describeKey(cfg, "slurm.work_dir"), dir))
		}
	}
	_ = rc.level.UnmarshalText([]byte(cfg.Logging.Level)) // Validate checked it
	if len(errs) == 0 {
		rc.queue, err = queueConfig(cfg, c.Duration("rejection-hold"))
		add(err)
	}
	if err := problemsError(errs); err != nil {
		return nil, notices, err
	}
	return rc, notices, nil
}

// queueConfig maps a valid configuration to the dispatcher's.
func queueConfig(cfg *config.Config, rejectionHold time.Duration) (queue.Config, error) {
	tmpl, err := slurm.ParseTemplateGPU(cfg.Slurm.SbatchArgs, cfg.Slurm.SbatchGPUArgs)
	if err != nil {
		return queue.Config{}, fmt.Errorf("slurm.sbatch_args with slurm.sbatch_gpu_args: %w", err)
	}
	var supTmpl *slurm.Template
	if len(cfg.Slurm.SupervisorSbatchArgs) > 0 {
		if supTmpl, err = slurm.ParseTemplateGPU(cfg.Slurm.SupervisorSbatchArgs, cfg.Slurm.SbatchGPUArgs); err != nil {
			return queue.Config{}, fmt.Errorf("slurm.supervisor_sbatch_args with slurm.sbatch_gpu_args: %w", err)
		}
	}
	frac := cfg.Dispatch.SupervisorFraction
	if frac == 0 {
		frac = -1 // Arvados's 0 is no limit; the dispatcher's is a negative share
	}
	return queue.Config{
		PollPeriod:         cfg.Dispatch.PollPeriod,
		MinRetryPeriod:     cfg.Dispatch.MinRetryPeriod,
		MaxBackoff:         cfg.Dispatch.MaxBackoff,
		MaxJobs:            cfg.Dispatch.MaxJobs,
		SupervisorFraction: frac,
		LockConcurrency:    cfg.Dispatch.LockConcurrency,
		SubmitConcurrency:  cfg.Dispatch.SubmitConcurrency,
		CrunchRunCommand:   cfg.CrunchRun.Command,
		CrunchRunArgs:      cfg.CrunchRun.Args,
		RuntimeEngine:      cfg.CrunchRun.RuntimeEngine,
		Template:           tmpl,
		SupervisorTemplate: supTmpl,
		ReserveRAM:         cfg.CrunchRun.ReserveExtraRAM.Bytes(),
		JobEnv:             cfg.JobEnv(),
		RejectionBurst:     cfg.Dispatch.RejectionBurst,
		RejectionHold:      rejectionHold,
		OrphanSweepPeriod:  cfg.Dispatch.OrphanSweepPeriod,
		ClusterID:          cfg.Dispatch.ClusterID,
	}, nil
}

// indent puts each line of a joined error on its own indented line.
func indent(err error) error {
	return errors.New(strings.ReplaceAll(err.Error(), "\n", "\n  "))
}

// run takes the lock file, learns our token's uuid, and runs the watcher, the dispatcher and
// the management endpoint until ctx is done.
func (rc *runConfig) run(ctx context.Context, stderr io.Writer, notices []config.Notice) error {
	started := time.Now()
	m := metrics.New(version)
	log := newLogger(stderr, rc.format, rc.level, m.LogDropped)
	defer func() { _ = log.Sync() }()
	config.LogNotices(log, notices)
	unlock, err := lockFile(rc.lockFile)
	if err != nil {
		return err
	}
	defer unlock()
	o := &ops{metrics: m, log: log}
	if err := o.listen(rc.ops); err != nil {
		return err
	}
	defer o.close()

	rc.arv.Logger, rc.arv.Observe = log.Named("arvados"), m.ObserveAPICall
	client, err := arvados.NewClient(rc.arv)
	if err != nil {
		return usageError{err}
	}
	defer client.CloseIdleConnections()
	tok, err := startupToken(ctx, client, log, sleepCtx)
	if err != nil {
		if ctx.Err() != nil {
			log.Info("dispatch-slurm stopped before the API server answered")
			return nil
		}
		return err
	}
	rc.cli.Logger, rc.cli.Observe = log.Named("slurm"), m.ObserveSlurmCommand
	if rc.cli.Env == nil {
		rc.cli.Env = slurmEnviron()
	}
	cli, err := slurm.NewCLI(rc.cli)
	if err != nil {
		return usageError{err}
	}
	cluster := rc.queue.ClusterID
	if cluster == "" {
		cluster = tok.UUID[:5]
	}
	rc.squeue.ClusterID, rc.squeue.Logger = cluster, log
	w, err := squeue.New(cli, rc.squeue)
	if err != nil {
		return usageError{err}
	}
	rc.queue.TokenUUID, rc.queue.ClusterID, rc.queue.Logger = tok.UUID, cluster, log.Named("queue")
	rc.queue.Observer = m.Queue()
	d, err := queue.New(client, cli, w, rc.queue)
	if err != nil {
		return usageError{err}
	}
	if err := o.attach(rc.ops, d, w, started); err != nil {
		return err
	}
	log.Info("dispatch-slurm starting", zap.String("version", version), zap.String("api_host", client.Host()),
		zap.String("token_uuid", tok.UUID), zap.String("cluster_id", cluster), zap.String("sbatch_args", rc.queue.Template.String()),
		zap.Int("max_jobs", rc.queue.MaxJobs))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(runCtx) })
	o.serve(runCtx, &wg, d, w)
	err = d.Run(runCtx)
	stop() // the watcher too, should the dispatcher stop on its own
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		return err
	}
	log.Info("dispatch-slurm stopped; Slurm jobs keep running and are adopted at the next start")
	return nil
}

// currentToken asks the API for our token's record, retrying transient failures a few
// times (each call has the client's own retry budget).
func currentToken(ctx context.Context, client *arvados.Client) (arvados.APIClientAuthorization, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var tok arvados.APIClientAuthorization
		tok, err = client.CurrentToken(ctx)
		switch {
		case err == nil && len(tok.UUID) < 5:
			return tok, fmt.Errorf("the API server %s answered a token record without a uuid", client.Host())
		case err == nil:
			return tok, nil
		case arvados.IsUnauthenticated(err):
			return tok, usageError{fmt.Errorf("the API server %s refused our token (check %s): %w",
				client.Host(), arvados.EnvToken, err)}
		case !arvados.IsTransient(err) || ctx.Err() != nil:
			return tok, err
		}
	}
	return arvados.APIClientAuthorization{}, fmt.Errorf("the API server %s is unavailable: %w", client.Host(), err)
}

// startupToken waits for the API server to take our token at start-up: while it is
// unavailable (down, or restarting along with us) it asks again after a delay growing from 1 s
// to 30 s, logging each failure, until it answers or ctx is done. A refused token or another
// permanent error ends the start at once. (The admin commands give up at once instead.)
// systemd's start timeout bounds the wait: READY=1 comes only after the first poll.
func startupToken(ctx context.Context, client *arvados.Client, log *zap.Logger,
	sleep func(context.Context, time.Duration) error) (arvados.APIClientAuthorization, error) {
	delay := time.Second
	for {
		tok, err := currentToken(ctx, client)
		if err == nil || !arvados.IsTransient(err) || ctx.Err() != nil {
			return tok, err
		}
		log.Warn("the API server is unavailable; asking again", zap.Duration("retry_in", delay), zap.Error(err))
		if serr := sleep(ctx, delay); serr != nil {
			return tok, err
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// lockFile takes an exclusive, non-blocking flock on path, so that a second dispatcher on this
// host refuses to start. The lock goes with the process.
func lockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock file %s: %w (set --lock-file to a writable path)", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another dispatch-slurm holds the lock file %s: only one may run on a host", path)
		}
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	return func() { _ = f.Close() }, nil
}
