package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/config"
)

// config check --live proves, from this host, that the configuration works: the API server
// answers and accepts the token, the token is an admin's, the Slurm commands exist,
// slurmctld answers, and the partitions named in the sbatch arguments exist. Each check prints
// one line: ok, FAIL (with what to do), warn (works, but needs a look) or skip (an earlier
// check failed). Only FAIL makes the command fail.

// liveTimeout bounds each live check.
const liveTimeout = 20 * time.Second

// liveSlurm is what the live check asks Slurm.
type liveSlurm interface {
	// Ping asks slurmctld whether it is up and returns scontrol's answer ("Slurmctld(primary)
	// at host is UP"); the error says it is not.
	Ping(ctx context.Context) (string, error)
	// Partition returns the state of a partition (UP, DOWN, DRAIN, INACTIVE), "" if
	// slurmctld does not know it.
	Partition(ctx context.Context, name string) (string, error)
}

// scontrolCLI asks scontrol.
type scontrolCLI struct{ path string }

var _ liveSlurm = scontrolCLI{}

// run runs scontrol with args and returns its output (stdout then stderr) and exit code;
// err is set only when it could not run or was stopped.
func (s scontrolCLI) run(ctx context.Context, args ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.path, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	text := strings.TrimSpace(out.String() + "\n" + errOut.String())
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return text, ee.ExitCode(), nil
	}
	if err != nil {
		return text, -1, fmt.Errorf("scontrol %s: %w", strings.Join(args, " "), err)
	}
	return text, 0, nil
}

func (s scontrolCLI) Ping(ctx context.Context) (string, error) {
	text, code, err := s.run(ctx, "ping")
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(text, "\n")
	if code != 0 || !strings.Contains(line, " is UP") {
		return line, fmt.Errorf("scontrol ping (exit %d): %s", code, line)
	}
	return line, nil
}

var partitionStateRe = regexp.MustCompile(`(?:^|\s)State=(\S+)`)

func (s scontrolCLI) Partition(ctx context.Context, name string) (string, error) {
	text, code, err := s.run(ctx, "show", "partition", name)
	switch {
	case err != nil:
		return "", err
	case code == 0 && strings.Contains(text, "PartitionName="+name):
		if m := partitionStateRe.FindStringSubmatch(text); m != nil {
			return m[1], nil
		}
		return "UNKNOWN", nil
	case strings.Contains(text, "Partition "+name+" not found"):
		// Real scontrol prints it on stdout, exit 1.
		return "", nil
	}
	line, _, _ := strings.Cut(text, "\n")
	return "", fmt.Errorf("scontrol show partition %s (exit %d): %s", name, code, line)
}

// liveEnv is what the live checks use; tests replace parts of it.
type liveEnv struct {
	lookPath func(string) (string, error)
	slurm    func(scontrolPath string) liveSlurm
}

func defaultLiveEnv() liveEnv {
	return liveEnv{lookPath: exec.LookPath, slurm: func(p string) liveSlurm { return scontrolCLI{path: p} }}
}

// liveResult is one line of the live check.
type liveResult struct {
	status string // "ok", "FAIL", "warn" or "skip"
	what   string
}

// liveChecks runs every live check of cfg (valid) and returns their results in order.
func liveChecks(ctx context.Context, cfg *config.Config, env liveEnv) []liveResult {
	var res []liveResult
	add := func(status, format string, args ...any) {
		res = append(res, liveResult{status, fmt.Sprintf(format, args...)})
	}
	apiOK := checkAPI(ctx, cfg, add)
	if !apiOK {
		add("skip", "admin token: needs the API check to pass")
	}
	paths := map[string]string{}
	for _, k := range []struct{ key, path string }{{"slurm.sbatch", cfg.Slurm.SbatchPath}, {"slurm.squeue", cfg.Slurm.SqueuePath},
		{"slurm.scancel", cfg.Slurm.ScancelPath}, {"slurm.scontrol", cfg.Slurm.ScontrolPath}} {
		found, err := env.lookPath(k.path)
		if err != nil {
			add("FAIL", "%s: %v: install the Slurm client commands on this host, or set %s", describeKey(cfg, k.key), err, k.key)
			continue
		}
		paths[k.key] = found
		add("ok", "%s: %s", k.key, found)
	}
	parts := partitionsIn(cfg)
	scontrol, ok := paths["slurm.scontrol"]
	if !ok {
		add("skip", "slurmctld: no scontrol to ask")
		if len(parts) > 0 {
			add("skip", "partitions: no scontrol to ask")
		}
		return res
	}
	sl := env.slurm(scontrol)
	line, err := sl.Ping(ctx)
	if err != nil {
		add("FAIL", "slurmctld: %v: start slurmctld, or check slurm.conf and munge on this host", err)
		if len(parts) > 0 {
			add("skip", "partitions: slurmctld did not answer")
		}
		return res
	}
	add("ok", "slurmctld: %s", line)
	if len(parts) == 0 {
		add("ok", "partitions: the sbatch arguments name none (each container's %%P, or Slurm's default partition)")
	}
	for _, p := range parts {
		switch state, err := sl.Partition(ctx, p.name); {
		case err != nil:
			add("FAIL", "partition %s (in %s): %v", p.name, p.key, err)
		case state == "":
			add("FAIL", "partition %s (in %s) does not exist: fix %s, or add the partition to slurm.conf", p.name, p.key, p.key)
		case state != "UP":
			add("warn", "partition %s (in %s) exists but is %s: jobs wait (reason PartitionDown or similar) until it is UP",
				p.name, p.key, state)
		default:
			add("ok", "partition %s (in %s) exists and is UP", p.name, p.key)
		}
	}
	return res
}

// checkAPI checks that the API server answers and accepts the token, then that the token is
// an admin's. It never prints the token (the client's errors do not hold it).
func checkAPI(ctx context.Context, cfg *config.Config, add func(status, format string, args ...any)) bool {
	acfg := cfg.ArvadosConfig()
	acfg.Timeout = min(acfg.Timeout, liveTimeout)
	acfg.Retry = arvados.RetryPolicy{MaxAttempts: 2, MaxElapsed: liveTimeout}
	client, err := arvados.NewClient(acfg)
	if err != nil {
		add("FAIL", "API: %v", err)
		return false
	}
	defer client.CloseIdleConnections()
	tok, err := client.CurrentToken(ctx)
	switch {
	case arvados.IsUnauthenticated(err):
		add("FAIL", "API: the server %s refused the token: check %s (or %s, or the cluster config's SystemRootToken)",
			client.Host(), describeKey(cfg, "api.token"), arvados.EnvToken)
		return false
	case err != nil:
		add("FAIL", "API: %v: check %s and that this host can reach it (a self-signed certificate needs api.insecure)",
			err, describeKey(cfg, "api.host"))
		return false
	}
	add("ok", "API: %s answers and accepts the token (%s)", client.Host(), tok.UUID)
	u, err := client.CurrentUser(ctx)
	switch {
	case err != nil:
		add("FAIL", "admin token: %v", err)
	case !u.IsAdmin:
		add("FAIL", "admin token: the token belongs to %s, who is not an admin: the dispatcher needs an admin's token "+
			"(the cluster's SystemRootToken, or a token of an admin user)", u.UUID)
	default:
		add("ok", "admin token: it belongs to %s, an admin", u.UUID)
	}
	return true
}

// partition is a partition named in an sbatch argument list, and the key of that list.
type partition struct{ name, key string }

// partitionsIn returns the partitions that the sbatch argument templates name literally
// (--partition=a,b, --partition a, -p a, -pa), skipping templated values (%P: each
// container's own).
func partitionsIn(cfg *config.Config) []partition {
	var parts []partition
	for _, l := range []struct {
		key  string
		args []string
	}{{"slurm.sbatch_args", cfg.Slurm.SbatchArgs}, {"slurm.sbatch_gpu_args", cfg.Slurm.SbatchGPUArgs},
		{"slurm.supervisor_sbatch_args", cfg.Slurm.SupervisorSbatchArgs}} {
		for i, a := range l.args {
			var value string
			switch {
			case strings.HasPrefix(a, "--partition="):
				value = strings.TrimPrefix(a, "--partition=")
			case (a == "--partition" || a == "-p") && i+1 < len(l.args):
				value = l.args[i+1]
			case strings.HasPrefix(a, "-p") && !strings.HasPrefix(a, "--") && len(a) > 2:
				value = a[2:]
			default:
				continue
			}
			if strings.Contains(value, "%") {
				continue
			}
			for _, name := range strings.Split(value, ",") {
				p := partition{strings.TrimSpace(name), l.key}
				if p.name != "" && !slices.ContainsFunc(parts, func(q partition) bool { return q.name == p.name }) {
					parts = append(parts, p)
				}
			}
		}
	}
	return parts
}

// printLive prints the results and returns an error if any failed.
func printLive(w io.Writer, res []liveResult) error {
	failed := 0
	for _, r := range res {
		if r.status == "FAIL" {
			failed++
		}
		fmt.Fprintf(w, "%-4s  %s\n", r.status, r.what)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d live checks failed (see above)", failed, len(res))
	}
	return nil
}
