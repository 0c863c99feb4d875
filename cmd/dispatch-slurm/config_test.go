package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/goleak"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/config"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

func TestMain(m *testing.M) {
	// Never the machine's /etc/arvados/config.yml.
	defaultConfigPath = filepath.Join(os.TempDir(), "dispatch-slurm-test-no-such-dir", "config.yml")
	goleak.VerifyTestMain(m)
}

// noAPIEnv clears the environment that Load reads, so that only the file counts.
func noAPIEnv(t *testing.T) {
	for _, k := range []string{arvados.EnvHost, arvados.EnvToken, arvados.EnvInsecure, config.EnvConfig} {
		t.Setenv(k, "")
	}
}

// writeFile writes content to a file readable by its owner only, in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// arvadosConfig is an Arvados cluster config for cluster zzzzz whose controller is at url.
func arvadosConfig(url, token string) string {
	return fmt.Sprintf(`Clusters:
  zzzzz:
    SystemRootToken: %s
    ManagementToken: managementTokenxxxxxxxxxxxxxxxxx
    Services:
      Controller:
        ExternalURL: %s/
    Containers:
      CloudVMs:
        PollInterval: 7s
        SupervisorFraction: 0
      ReserveExtraRAM: 300MiB
      RuntimeEngine: singularity
      SLURM:
        SbatchEnvironmentVariables:
          FROM_FILE: "yes"
`, token, url)
}

// appOutput runs the app with args and returns stdout, stderr and the error.
func appOutput(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := newApp(&out, &errOut).RunContext(context.Background(), append([]string{"dispatch-slurm"}, args...))
	return out.String(), errOut.String(), err
}

// runConfigFor parses args as the run command would and returns what run would get.
func runConfigFor(t *testing.T, args ...string) (*runConfig, error) {
	t.Helper()
	var (
		rc  *runConfig
		err error
	)
	app := &cli.App{Name: "dispatch-slurm", Commands: []*cli.Command{{Name: "run", Flags: runFlags(),
		Action: func(c *cli.Context) error { rc, _, err = runConfigFrom(c); return nil }}}}
	if perr := app.Run(append([]string{"dispatch-slurm", "run"}, args...)); perr != nil {
		t.Fatalf("parse %q: %v", args, perr)
	}
	return rc, err
}

// slurmPathArgs point the Slurm commands at a program that exists on every machine.
var slurmPathArgs = []string{"--sbatch-path=/bin/true", "--squeue-path=/bin/true", "--scancel-path=/bin/true", "--scontrol-path=/bin/true"}

func TestConfigCheckSaysOKForAGoodArvadosConfig(t *testing.T) {
	noAPIEnv(t)
	path := writeFile(t, "config.yml", arvadosConfig("https://zzzzz.example.org", fakearvados.AdminToken))
	out, stderr, err := appOutput("config", "check", "--config", path)
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "configuration OK") {
		t.Errorf("output %q does not say the configuration is OK", out)
	}
	if strings.Contains(out+stderr, fakearvados.AdminToken) {
		t.Error("the token appears in the output")
	}
}

func TestConfigCheckListsEveryProblemOfABadFileWithExitCode2(t *testing.T) {
	noAPIEnv(t)
	path := writeFile(t, "dispatch-slurm.yml", `api:
  host: api.example.org/path
dispatch:
  poll_period: 0s
  max_jobs: 0
crunch_run:
  runtime_engine: "two words"
slurm:
  sbatch_args: [--mem=%Q]
`)
	out, stderr, err := appOutput("config", "check", "--config", path)
	if err == nil {
		t.Fatalf("a bad file was accepted:\n%s", out)
	}
	if code := exitCode(err); code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
	for _, want := range []string{"api.host (from " + path, "api.token (default)", "dispatch.poll_period (from " + path,
		"dispatch.max_jobs (from " + path, "crunch_run.runtime_engine (from " + path, "unknown placeholder %Q"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(out+stderr, "configuration OK") {
		t.Error("a bad configuration was called OK")
	}
}

func TestConfigCheckRefusesAnUnknownKeyInOurFile(t *testing.T) {
	noAPIEnv(t)
	path := writeFile(t, "dispatch-slurm.yml", "dispatch:\n  poll_perod: 5s\n")
	_, _, err := appOutput("config", "check", "--config", path)
	if err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), "poll_perod") {
		t.Fatalf("err %v (exit %d), want a usage error naming the unknown key", err, exitCode(err))
	}
}

func TestConfigDumpShowsTheEffectiveValuesButNeverATokenOrKey(t *testing.T) {
	noAPIEnv(t)
	path := writeFile(t, "config.yml", arvadosConfig("https://zzzzz.example.org", fakearvados.AdminToken))
	out, stderr, err := appOutput("config", "dump", "--config", path)
	if err != nil {
		t.Fatalf("config dump: %v\n%s", err, stderr)
	}
	for _, want := range []string{"host: zzzzz.example.org", "poll_period: 7s", "runtime_engine: singularity", "<redacted>"} {
		if !strings.Contains(out, want) {
			t.Errorf("the dump does not contain %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{fakearvados.AdminToken, "managementTokenxxxxxxxxxxxxxxxxx"} {
		if strings.Contains(out+stderr, secret) {
			t.Errorf("the dump shows a token:\n%s", out)
		}
	}
}

func TestConfigDumpOfAnInvalidConfigurationStillPrintsItAndExits2(t *testing.T) {
	noAPIEnv(t)
	out, _, err := appOutput("config", "dump")
	if err == nil || exitCode(err) != exitUsage {
		t.Fatalf("err %v, want a usage error (no API host nor token)", err)
	}
	if !strings.Contains(out, "poll_period: 10s") {
		t.Errorf("the dump is missing:\n%s", out)
	}
}

func TestEveryConfigCommandShowsAnExampleInItsHelp(t *testing.T) {
	for _, args := range [][]string{{"run", "--help"}, {"config", "--help"}, {"config", "check", "--help"}, {"config", "dump", "--help"}} {
		out, _, err := appOutput(args...)
		if err != nil {
			t.Errorf("%q: %v", args, err)
		}
		if !strings.Contains(out, "Example:") {
			t.Errorf("%q shows no example:\n%s", args, out)
		}
	}
}

func TestRunTakesValuesFromTheFileUnlessAFlagIsGiven(t *testing.T) {
	noAPIEnv(t)
	dir := t.TempDir()
	path := writeFile(t, "config.yml", arvadosConfig("https://zzzzz.example.org", fakearvados.AdminToken))
	base := append([]string{"--config=" + path, "--lock-file=" + filepath.Join(dir, "lock")}, slurmPathArgs...)
	for _, tc := range []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, rc *runConfig)
	}{
		{"file values survive when no flag is given", nil, nil, func(t *testing.T, rc *runConfig) {
			if rc.queue.PollPeriod != 7*time.Second || rc.queue.RuntimeEngine != "singularity" || rc.queue.ReserveRAM != 300<<20 {
				t.Errorf("poll %s, engine %q, reserve %d: want the file's 7s, singularity, 300MiB",
					rc.queue.PollPeriod, rc.queue.RuntimeEngine, rc.queue.ReserveRAM)
			}
			if rc.arv.Host != "zzzzz.example.org" || rc.arv.Token != fakearvados.AdminToken || rc.queue.ClusterID != "zzzzz" {
				t.Errorf("API host %q, cluster %q: want the file's", rc.arv.Host, rc.queue.ClusterID)
			}
			if rc.squeue.Period != 2*time.Second || rc.queue.MaxJobs != 1000 {
				t.Errorf("squeue period %s, max jobs %d: want the defaults", rc.squeue.Period, rc.queue.MaxJobs)
			}
		}},
		{"a flag overrides the file", []string{"--poll-period=3s", "--runtime-engine=docker", "--reserve-ram=100", "--slurm-dir=" + dir},
			nil, func(t *testing.T, rc *runConfig) {
				if rc.queue.PollPeriod != 3*time.Second || rc.queue.RuntimeEngine != "docker" || rc.queue.ReserveRAM != 100<<20 || rc.cli.Dir != dir {
					t.Errorf("poll %s, engine %q, reserve %d, dir %q: want the flags'",
						rc.queue.PollPeriod, rc.queue.RuntimeEngine, rc.queue.ReserveRAM, rc.cli.Dir)
				}
			}},
		{"a flag's environment variable overrides the file", nil, map[string]string{"DISPATCH_SLURM_POLL_PERIOD": "4s"},
			func(t *testing.T, rc *runConfig) {
				if rc.queue.PollPeriod != 4*time.Second {
					t.Errorf("poll %s, want 4s", rc.queue.PollPeriod)
				}
			}},
		{"ARVADOS_API_HOST overrides the file", nil, map[string]string{arvados.EnvHost: "other.example.org"},
			func(t *testing.T, rc *runConfig) {
				if rc.arv.Host != "other.example.org" {
					t.Errorf("API host %q, want the environment's", rc.arv.Host)
				}
			}},
		{"the file's environment reaches the job with the API credentials", nil, nil, func(t *testing.T, rc *runConfig) {
			want := []string{"ARVADOS_API_HOST=zzzzz.example.org", "ARVADOS_API_TOKEN=" + fakearvados.AdminToken,
				"ARVADOS_API_HOST_INSECURE=0", "FROM_FILE=yes"}
			if fmt.Sprint(rc.queue.JobEnv) != fmt.Sprint(want) {
				t.Errorf("job environment has %d entries, want %d", len(rc.queue.JobEnv), len(want))
			}
		}},
		{"--job-env replaces the file's environment, quotes and all", []string{"--job-env=A=it's x", "--job-env=B="}, nil,
			func(t *testing.T, rc *runConfig) {
				got := strings.Join(rc.queue.JobEnv[3:], "|")
				if got != "A=it's x|B=" {
					t.Errorf("job environment after the API's: %q, want A=it's x|B=", got)
				}
			}},
		{"the file's supervisor fraction 0 means no limit", nil, nil, func(t *testing.T, rc *runConfig) {
			if rc.queue.SupervisorFraction >= 0 {
				t.Errorf("supervisor fraction %g, want negative (no limit)", rc.queue.SupervisorFraction)
			}
		}},
		{"a negative --supervisor-fraction means no limit", []string{"--supervisor-fraction=-1"}, nil, func(t *testing.T, rc *runConfig) {
			if rc.queue.SupervisorFraction >= 0 {
				t.Errorf("supervisor fraction %g, want negative (no limit)", rc.queue.SupervisorFraction)
			}
		}},
		{"a share --supervisor-fraction is kept", []string{"--supervisor-fraction=0.25"}, nil, func(t *testing.T, rc *runConfig) {
			if rc.queue.SupervisorFraction != 0.25 {
				t.Errorf("supervisor fraction %g, want 0.25", rc.queue.SupervisorFraction)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			rc, err := runConfigFor(t, append(append([]string(nil), base...), tc.args...)...)
			if err != nil {
				t.Fatalf("run configuration: %v", err)
			}
			tc.check(t, rc)
		})
	}
}

func TestRunNamesTheFlagOrTheFileOfEachBadValue(t *testing.T) {
	noAPIEnv(t)
	path := writeFile(t, "dispatch-slurm.yml", "dispatch:\n  max_jobs: 0\n")
	_, err := runConfigFor(t, append([]string{"--config=" + path, "--supervisor-fraction=0", "--reserve-ram=-1",
		"--rejection-hold=0s", "--slurm-dir=/nonexistent/dir"}, slurmPathArgs...)...)
	if err == nil || exitCode(err) != exitUsage {
		t.Fatalf("err %v, want a usage error", err)
	}
	for _, want := range []string{"dispatch.max_jobs (from " + path, "--supervisor-fraction 0", "--reserve-ram -1",
		"--rejection-hold 0s", "slurm.work_dir (flag --slurm-dir)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %q:\n%v", want, err)
		}
	}
}

func TestRunDispatchesWithAnArvadosClusterConfig(t *testing.T) {
	srv, env, args := fakeEnv(t, fakearvados.AdminToken)
	noAPIEnv(t)
	path := writeFile(t, "config.yml", arvadosConfig(srv.URL(), fakearvados.AdminToken))
	uuid := srv.Seed(arvados.Container{Priority: 1, RuntimeConstraints: arvados.RuntimeConstraints{RAM: 64 << 20, VCPUs: 1}})[0]
	if !strings.HasPrefix(uuid, "zzzzz-") {
		t.Fatalf("the fake's container %s is not of cluster zzzzz", uuid)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg     sync.WaitGroup
		runErr error
		stderr string
	)
	wg.Go(func() { stderr, runErr = runApp(ctx, append(args, "--config="+path)...) })
	ok := waitForActivity(srv, uuid, 15*time.Second)
	cancel()
	wg.Wait()
	if !ok {
		t.Fatalf("the container was not dispatched:\n%s", stderr)
	}
	if runErr != nil {
		t.Fatalf("run: %v\n%s", runErr, stderr)
	}
	jobs := env.JobsNamed(uuid)
	if len(jobs) != 1 {
		t.Fatalf("jobs %+v, want one", jobs)
	}
	if strings.Contains(stderr, fakearvados.AdminToken) {
		t.Error("the token appears in the logs")
	}
	if !strings.Contains(stderr, `"cluster_id":"zzzzz"`) {
		t.Errorf("the cluster id did not come from the file:\n%s", stderr)
	}
}
