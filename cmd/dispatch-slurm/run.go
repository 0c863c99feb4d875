package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/shlex"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/queue"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
)

// envPrefix prefixes the environment variable of every run flag: --poll-period is
// DISPATCH_SLURM_POLL_PERIOD.
const envPrefix = "DISPATCH_SLURM_"

var clusterIDRe = regexp.MustCompile(`^[a-z0-9]{5}$`)

func envVar(flag string) []string {
	return []string{envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))}
}

const runExample = `Example:
   ARVADOS_API_HOST=zzzzz.example.org ARVADOS_API_TOKEN=... \
   dispatch-slurm run --poll-period=10s --squeue-period=2s --max-jobs=1000 \
     --crunch-run-command="/usr/bin/crunch-run" --crunch-run-args="--cgroup-parent-subsystem=memory" \
     --sbatch-args="--job-name=%U --mem=%M --cpus-per-task=%C --tmp=%T --partition=%P" \
     --job-env=TMPDIR=/scratch --lock-file=/run/dispatch-slurm.lock

The API host and token come from ARVADOS_API_HOST, ARVADOS_API_TOKEN and
ARVADOS_API_HOST_INSECURE. Every flag can also be set with an environment variable:
DISPATCH_SLURM_<FLAG NAME IN CAPITALS, DASHES AS UNDERSCORES>, e.g. DISPATCH_SLURM_MAX_JOBS=500.
sbatch template placeholders: %U uuid, %C vcpus, %M MiB of memory, %T MiB of scratch,
%P partitions, %G GPUs, %W minutes of max run time, %% a percent sign.
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
			rc, err := runConfigFrom(c)
			if err != nil {
				return usageError{err}
			}
			return rc.run(c.Context, c.App.ErrWriter)
		},
	}
}

func runFlags() []cli.Flag {
	dur := func(name string, def time.Duration, usage string) cli.Flag {
		return &cli.DurationFlag{Name: name, Value: def, Usage: usage, EnvVars: envVar(name)}
	}
	str := func(name, def, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, Value: def, Usage: usage, EnvVars: envVar(name)}
	}
	integer := func(name string, def int, usage string) cli.Flag {
		return &cli.IntFlag{Name: name, Value: def, Usage: usage, EnvVars: envVar(name)}
	}
	return []cli.Flag{
		dur("poll-period", queue.DefaultPollPeriod, "period of the API poll"),
		dur("squeue-period", 2*time.Second, "period of squeue"),
		integer("max-jobs", queue.DefaultMaxJobs, "most containers held locked (and in Slurm) at once"),
		&cli.Float64Flag{Name: "supervisor-fraction", Value: queue.DefaultSupervisorFrac, EnvVars: envVar("supervisor-fraction"),
			Usage: "share of --max-jobs that supervisor containers may hold (negative: no limit)"},
		str("crunch-run-command", "crunch-run", "the job's command (split like a shell would, never run by one)"),
		str("crunch-run-args", "", "extra arguments for crunch-run, before the container uuid"),
		str("runtime-engine", queue.DefaultRuntimeEngine, "passed to crunch-run as --runtime-engine"),
		str("sbatch-args", strings.Join(slurm.DefaultTemplateArgs(), " "), "sbatch argument template"),
		str("sbatch-gpu-args", strings.Join(slurm.DefaultGPUArgs(), " "), "sbatch arguments added for containers that ask for GPUs"),
		str("supervisor-sbatch-args", "", "sbatch argument template for supervisor containers (default: --sbatch-args)"),
		&cli.Int64Flag{Name: "reserve-ram", Value: slurm.DefaultReserveRAM >> 20, EnvVars: envVar("reserve-ram"),
			Usage: "MiB added to every job's memory for crunch-run and the container runtime"},
		&cli.StringSliceFlag{Name: "job-env", EnvVars: envVar("job-env"),
			Usage: "KEY=VALUE added to the job's environment (repeatable)"},
		str("sbatch-path", "sbatch", "sbatch command (looked up in PATH)"),
		str("squeue-path", "squeue", "squeue command (looked up in PATH)"),
		str("scancel-path", "scancel", "scancel command (looked up in PATH)"),
		str("scontrol-path", "scontrol", "scontrol command (looked up in PATH)"),
		str("slurm-dir", "", "sbatch's working directory, where job output lands (default: the current directory)"),
		str("lock-file", "/var/run/dispatch-slurm.lock", "lock file that keeps a second dispatcher on this host from starting"),
		dur("min-retry-period", queue.DefaultMinRetryPeriod, "least time between attempts for a container after a failure"),
		dur("max-backoff", queue.DefaultMaxBackoff, "most time between attempts for a container after repeated failures"),
		integer("rejection-burst", queue.DefaultRejectionBurst,
			"distinct containers rejected by sbatch with the same message that pause submitting (misconfiguration)"),
		dur("rejection-hold", queue.DefaultRejectionHold,
			"how long a container rejected by sbatch is held before it is cancelled, unless others are rejected the same way"),
		dur("orphan-sweep-period", queue.DefaultOrphanSweepPeriod, "period of the sweep for jobs whose containers are not ours"),
		str("cluster-id", "", "our cluster's uuid prefix: only containers and jobs named <cluster-id>-dz642-… are ours "+
			"(default: the prefix of the API token's uuid)"),
		str("log-level", "info", "debug, info, warn or error"),
		str("log-format", "", "json or console (default: console when stderr is a terminal, else json)"),
	}
}

// runConfig is everything run needs, checked.
type runConfig struct {
	arv      arvados.Config
	cli      slurm.CLIConfig
	squeue   time.Duration
	queue    queue.Config
	lockFile string
	cluster  string
	level    zapcore.Level
	format   string
}

// runConfigFrom reads and checks the flags and the ARVADOS_* environment, reporting every
// problem at once. No message shows a token or a job environment value.
func runConfigFrom(c *cli.Context) (*runConfig, error) {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	words := func(flag string) []string {
		w, err := shlex.Split(c.String(flag))
		if err != nil {
			add(fmt.Errorf("--%s: %w", flag, err))
		}
		return w
	}
	rc := &runConfig{lockFile: c.String("lock-file"), squeue: c.Duration("squeue-period"), cluster: c.String("cluster-id")}
	if rc.cluster != "" && !clusterIDRe.MatchString(rc.cluster) {
		add(fmt.Errorf("--cluster-id %q: want five lower-case letters or digits", rc.cluster))
	}

	arv, err := arvados.ConfigFromEnv()
	add(err)
	arv.Retry = arvados.RetryPolicy{MaxDelay: 2 * time.Second}
	add(arv.Validate())
	rc.arv = arv

	for _, flag := range []string{"poll-period", "squeue-period", "min-retry-period", "max-backoff", "rejection-hold", "orphan-sweep-period"} {
		if c.Duration(flag) <= 0 {
			add(fmt.Errorf("--%s %s: must be positive", flag, c.Duration(flag)))
		}
	}
	for _, flag := range []string{"max-jobs", "rejection-burst"} {
		if c.Int(flag) < 1 {
			add(fmt.Errorf("--%s %d: want at least 1", flag, c.Int(flag)))
		}
	}
	if f := c.Float64("supervisor-fraction"); f > 1 || f == 0 {
		add(fmt.Errorf("--supervisor-fraction %g: want a share in (0, 1], or negative for no limit", f))
	}
	if r := c.Int64("reserve-ram"); r < 0 || r > 1<<30 {
		add(fmt.Errorf("--reserve-ram %d: want 0..%d MiB", r, int64(1)<<30))
	}

	command, crArgs := words("crunch-run-command"), words("crunch-run-args")
	if len(command) == 0 {
		add(errors.New("--crunch-run-command: empty"))
	}
	sbatchArgs, gpuArgs, supArgs := words("sbatch-args"), words("sbatch-gpu-args"), words("supervisor-sbatch-args")
	tmpl, err := slurm.ParseTemplateGPU(sbatchArgs, gpuArgs)
	if err != nil {
		add(fmt.Errorf("--sbatch-args/--sbatch-gpu-args: %w", err))
	}
	var supTmpl *slurm.Template
	if len(supArgs) > 0 {
		if supTmpl, err = slurm.ParseTemplateGPU(supArgs, gpuArgs); err != nil {
			add(fmt.Errorf("--supervisor-sbatch-args: %w", err))
		}
	}
	engine := c.String("runtime-engine")
	if engine == "" || strings.ContainsAny(engine, " \t\n'\"\\") {
		add(fmt.Errorf("--runtime-engine %q: want one word such as docker or singularity", engine))
	}

	extra := c.StringSlice("job-env")
	for i, kv := range extra {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.ContainsAny(k, " \t\n\x00") {
			add(fmt.Errorf("--job-env #%d: want KEY=VALUE (key %q)", i+1, k))
		}
	}

	rc.cli = slurm.CLIConfig{Dir: c.String("slurm-dir")}
	for flag, p := range map[string]*string{"sbatch-path": &rc.cli.SbatchPath, "squeue-path": &rc.cli.SqueuePath,
		"scancel-path": &rc.cli.ScancelPath, "scontrol-path": &rc.cli.ScontrolPath} {
		found, err := exec.LookPath(c.String(flag))
		if err != nil {
			add(fmt.Errorf("--%s: %w", flag, err))
		}
		*p = found
	}
	if rc.cli.Dir != "" {
		if st, err := os.Stat(rc.cli.Dir); err != nil || !st.IsDir() {
			add(fmt.Errorf("--slurm-dir %q: not a directory", rc.cli.Dir))
		}
	}
	if rc.lockFile == "" {
		add(errors.New("--lock-file: empty"))
	}
	if err := rc.level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		add(fmt.Errorf("--log-level %q: want debug, info, warn or error", c.String("log-level")))
	}
	rc.format = c.String("log-format")
	switch rc.format {
	case "json", "console":
	case "":
		rc.format = "json"
		if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			rc.format = "console"
		}
	default:
		add(fmt.Errorf("--log-format %q: want json or console", rc.format))
	}

	insecure := "0"
	if arv.Insecure {
		insecure = "1"
	}
	jobEnv := append([]string{
		arvados.EnvHost + "=" + arv.Host,
		arvados.EnvToken + "=" + arv.Token,
		arvados.EnvInsecure + "=" + insecure,
	}, extra...)
	rc.queue = queue.Config{
		PollPeriod:         c.Duration("poll-period"),
		MinRetryPeriod:     c.Duration("min-retry-period"),
		MaxBackoff:         c.Duration("max-backoff"),
		MaxJobs:            c.Int("max-jobs"),
		SupervisorFraction: c.Float64("supervisor-fraction"),
		CrunchRunCommand:   command,
		CrunchRunArgs:      crArgs,
		RuntimeEngine:      engine,
		Template:           tmpl,
		SupervisorTemplate: supTmpl,
		ReserveRAM:         c.Int64("reserve-ram") << 20,
		JobEnv:             jobEnv,
		RejectionBurst:     c.Int("rejection-burst"),
		RejectionHold:      c.Duration("rejection-hold"),
		OrphanSweepPeriod:  c.Duration("orphan-sweep-period"),
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration:\n  %w", indent(errors.Join(errs...)))
	}
	return rc, nil
}

// indent puts each line of a joined error on its own indented line.
func indent(err error) error {
	return errors.New(strings.ReplaceAll(err.Error(), "\n", "\n  "))
}

func (rc *runConfig) logger(w io.Writer) *zap.Logger {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if rc.format == "console" {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), rc.level))
}

// run takes the lock file, learns our token's uuid, and runs the watcher and the dispatcher
// until ctx is done.
func (rc *runConfig) run(ctx context.Context, stderr io.Writer) error {
	log := rc.logger(stderr)
	defer func() { _ = log.Sync() }()
	unlock, err := lockFile(rc.lockFile)
	if err != nil {
		return err
	}
	defer unlock()

	rc.arv.Logger = log.Named("arvados")
	client, err := arvados.NewClient(rc.arv)
	if err != nil {
		return usageError{err}
	}
	defer client.CloseIdleConnections()
	tok, err := currentToken(ctx, client)
	if err != nil {
		return err
	}
	rc.cli.Logger = log.Named("slurm")
	cli, err := slurm.NewCLI(rc.cli)
	if err != nil {
		return usageError{err}
	}
	cluster := tok.UUID[:5]
	if rc.cluster != "" {
		cluster = rc.cluster
	}
	w, err := squeue.New(cli, squeue.Config{ClusterID: cluster, Period: rc.squeue, Logger: log})
	if err != nil {
		return usageError{err}
	}
	rc.queue.TokenUUID, rc.queue.ClusterID, rc.queue.Logger = tok.UUID, cluster, log.Named("queue")
	d, err := queue.New(client, cli, w, rc.queue)
	if err != nil {
		return usageError{err}
	}
	log.Info("dispatch-slurm starting", zap.String("version", version), zap.String("api_host", client.Host()),
		zap.String("token_uuid", tok.UUID), zap.String("cluster_id", cluster), zap.String("sbatch_args", rc.queue.Template.String()),
		zap.Int("max_jobs", rc.queue.MaxJobs))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(runCtx) })
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
