package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/config"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/fakeslurmtest"
)

// runApp runs the app with args and returns its error and stderr.
func runApp(ctx context.Context, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := newApp(&out, &errOut).RunContext(ctx, append([]string{"dispatch-slurm", "run"}, args...))
	return errOut.String(), err
}

func TestRunReportsEveryConfigurationProblemAtOnceWithExitCode2(t *testing.T) {
	t.Setenv(arvados.EnvHost, "")
	t.Setenv(arvados.EnvToken, "")
	_, err := runApp(context.Background(),
		"--max-jobs=0", "--poll-period=-1s", "--log-format=xml", "--sbatch-args=--mem=%Q",
		"--job-env=NOEQUALS", "--sbatch-path=/nonexistent/sbatch", "--cluster-id=BAD")
	if err == nil {
		t.Fatal("a bad configuration was accepted")
	}
	if code := exitCode(err); code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
	for _, want := range []string{"dispatch.max_jobs (from flag --max-jobs): 0", "dispatch.poll_period (from flag --poll-period): -1s",
		"logging.format (from flag --log-format): \"xml\"", "unknown placeholder %Q", "--job-env #1",
		"slurm.sbatch (flag --sbatch-path)", "dispatch.cluster_id (from flag --cluster-id)", "ARVADOS_API_HOST", "ARVADOS_API_TOKEN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %q:\n%v", want, err)
		}
	}
}

func TestAnUnparsableFlagIsAUsageError(t *testing.T) {
	_, err := runApp(context.Background(), "--poll-period=soon")
	if err == nil || exitCode(err) != exitUsage {
		t.Fatalf("err %v (exit %d), want a usage error", err, exitCode(err))
	}
}

func TestASecondDispatcherOnTheHostRefusesToStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "dispatch-slurm.lock")
	unlock, err := lockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockFile(path); err == nil || !strings.Contains(err.Error(), "another dispatch-slurm holds the lock file") {
		t.Errorf("second lock: %v", err)
	}
	unlock()
	unlock2, err := lockFile(path)
	if err != nil {
		t.Fatalf("lock after the first holder went away: %v", err)
	}
	unlock2()
}

// fakeEnv points the run command at a fake API server and a fake Slurm whose jobs stay pending.
func fakeEnv(t *testing.T, token string) (*fakearvados.Server, *fakeslurmtest.Env, []string) {
	srv := fakearvados.New(fakearvados.Options{})
	t.Cleanup(srv.Close)
	env := fakeslurmtest.Start(t, fakeslurmtest.Options{NoRun: true})
	t.Setenv(arvados.EnvHost, srv.URL())
	t.Setenv(arvados.EnvToken, token)
	t.Setenv(arvados.EnvInsecure, "")
	t.Setenv(config.EnvConfig, "")
	for _, kv := range env.Env {
		if k, v, _ := strings.Cut(kv, "="); k == "FAKESLURM_STATE" {
			t.Setenv(k, v)
		}
	}
	args := []string{"--sbatch-path=" + env.SbatchPath, "--squeue-path=" + env.SqueuePath,
		"--scancel-path=" + env.ScancelPath, "--scontrol-path=" + env.ScontrolPath,
		"--slurm-dir=" + t.TempDir(), "--lock-file=" + filepath.Join(t.TempDir(), "lock"),
		"--poll-period=200ms", "--squeue-period=100ms", "--log-format=json", "--management-listen=127.0.0.1:0"}
	return srv, env, args
}

func TestRunDispatchesAndLeavesJobsRunningWhenStopped(t *testing.T) {
	srv, env, args := fakeEnv(t, fakearvados.AdminToken)
	uuid := srv.Seed(arvados.Container{Priority: 1, RuntimeConstraints: arvados.RuntimeConstraints{RAM: 64 << 20, VCPUs: 1}})[0]
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg     sync.WaitGroup
		runErr error
		stderr string
	)
	wg.Go(func() { stderr, runErr = runApp(ctx, args...) })
	if !waitForActivity(srv, uuid, 15*time.Second) {
		cancel()
		wg.Wait()
		c, _ := srv.Container(uuid)
		t.Fatalf("the job's pending reason never reached the container: %+v\n%s", c, stderr)
	}
	cancel() // what the first SIGTERM does
	wg.Wait()
	if runErr != nil {
		t.Fatalf("run returned %v after the stop, want nil (exit 0)\n%s", runErr, stderr)
	}
	jobs := env.JobsNamed(uuid)
	if len(jobs) != 1 || jobs[0].Finished() {
		t.Errorf("jobs after the stop: %+v, want one live job", jobs)
	}
	if c, _ := srv.Container(uuid); c.State != arvados.Locked {
		t.Errorf("container %s after the stop, want Locked", c.State)
	}
	if strings.Contains(stderr, fakearvados.AdminToken) {
		t.Error("the token appears in the logs")
	}
	if !strings.Contains(stderr, `"msg":"submitted"`) {
		t.Errorf("no submit in the logs:\n%s", stderr)
	}
}

func TestABadTokenIsAClearConfigurationError(t *testing.T) {
	const secret = "notAValidTokenxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	_, _, args := fakeEnv(t, secret)
	stderr, err := runApp(context.Background(), args...)
	if err == nil || exitCode(err) != exitUsage {
		t.Fatalf("err %v (exit %d), want a configuration error", err, exitCode(err))
	}
	if !strings.Contains(err.Error(), "refused our token") {
		t.Errorf("error %q does not say the token was refused", err)
	}
	if strings.Contains(err.Error()+stderr, secret) {
		t.Error("the token appears in the error or the logs")
	}
}

// waitForActivity polls until the container's runtime_status has an activity (the pending
// job's reason reached it), or the deadline passes.
func waitForActivity(srv *fakearvados.Server, uuid string, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, _ := srv.Container(uuid); c.RuntimeStatus["activity"] != nil {
			return true
		}
	}
	return false
}
