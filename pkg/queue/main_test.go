package queue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/squeue"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/fakeslurmtest"
)

// standinPath is the crunch-run stand-in, built once in TestMain.
var standinPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "queue-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	standinPath = filepath.Join(dir, "crunchrun-standin")
	cmd := exec.Command("go", "build", "-o", standinPath, "github.com/dispatch-slurm/dispatch-slurm/test/crunchrun-standin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build crunchrun-standin: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// stack is the dispatcher with its real neighbours, in process: the fake API server, the
// Arvados client, slurm.CLI against a fake Slurm cluster running the crunch-run stand-in, and
// a real squeue watcher, with short periods.
type stack struct {
	t       *testing.T
	srv     *fakearvados.Server
	client  *arvados.Client
	env     *fakeslurmtest.Env
	cli     *slurm.CLI
	w       *squeue.Watcher
	d       *Dispatcher
	cfg     Config
	log     *zap.Logger
	cluster string

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// stackOptions change the defaults of newStack.
type stackOptions struct {
	slurm  fakeslurmtest.Options
	config func(*Config)
	// squeuePath replaces the fake squeue (a shim around it).
	squeuePath func(env *fakeslurmtest.Env) string
	// real runs against the machine's Slurm (testenv.RequireRealSlurm first) with a random
	// cluster id, so that only this test's jobs are ours.
	real bool
}

func newStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	s := &stack{t: t, cluster: "zzzzz", log: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))}
	if opts.real {
		s.cluster = randomCluster()
	}
	s.srv = fakearvados.New(fakearvados.Options{ClusterID: s.cluster})
	t.Cleanup(s.srv.Close)
	var err error
	s.client, err = arvados.NewClient(arvados.Config{Host: s.srv.URL(), Token: fakearvados.AdminToken,
		Retry:   arvados.RetryPolicy{MaxAttempts: 3, MaxElapsed: time.Second, BaseDelay: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond},
		Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.client.CloseIdleConnections)
	if opts.real {
		s.cli, err = slurm.NewCLI(slurm.CLIConfig{Dir: t.TempDir(), SubmitTimeout: 20 * time.Second})
		// Registered before the stack's own stop, so it runs after it: cancel our jobs.
		t.Cleanup(s.cancelJobs)
	} else {
		s.env = fakeslurmtest.Start(t, opts.slurm)
		sq := s.env.SqueuePath
		if opts.squeuePath != nil {
			sq = opts.squeuePath(s.env)
		}
		s.cli, err = slurm.NewCLI(slurm.CLIConfig{SbatchPath: s.env.SbatchPath, SqueuePath: sq, ScancelPath: s.env.ScancelPath,
			ScontrolPath: s.env.ScontrolPath, Env: s.env.Env, Dir: t.TempDir(), SubmitTimeout: 20 * time.Second})
	}
	if err != nil {
		t.Fatal(err)
	}
	s.cfg = Config{
		PollPeriod:        300 * time.Millisecond,
		MinRetryPeriod:    50 * time.Millisecond,
		MaxBackoff:        time.Second,
		CrunchRunCommand:  []string{standinPath},
		JobEnv:            []string{"ARVADOS_API_HOST=" + s.srv.URL(), "ARVADOS_API_TOKEN=" + fakearvados.AdminToken, "ARVADOS_API_HOST_INSECURE=0"},
		RejectionHold:     time.Second,
		OrphanSweepPeriod: time.Second,
		ClusterID:         s.cluster,
		Logger:            s.log,
	}
	if opts.real {
		// A time limit bounds anything this test leaves behind.
		tmpl, err := slurm.ParseTemplate(append(slurm.DefaultTemplateArgs(), "--time=10"))
		if err != nil {
			t.Fatal(err)
		}
		s.cfg.Template = tmpl
	}
	if opts.config != nil {
		opts.config(&s.cfg)
	}
	s.restart()
	return s
}

// restart starts a new watcher and dispatcher on the same fakes (the old ones stopped).
func (s *stack) restart() {
	s.t.Helper()
	s.stop()
	var err error
	s.w, err = squeue.New(s.cli, squeue.Config{ClusterID: s.cluster, Period: 150 * time.Millisecond,
		CancelGrace: time.Second, Logger: s.log})
	if err != nil {
		s.t.Fatal(err)
	}
	s.d, err = New(s.client, s.cli, s.w, s.cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() { _ = s.w.Run(ctx) })
	s.wg.Go(func() {
		if err := s.d.Run(ctx); err != nil {
			s.t.Errorf("dispatcher: %v", err)
		}
	})
	s.t.Cleanup(s.stop)
}

// stop stops the dispatcher and the watcher (jobs keep running).
func (s *stack) stop() {
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
		s.cancel = nil
	}
}

// cancelJobs cancels the jobs of this test's containers (real Slurm is shared).
func (s *stack) cancelJobs() {
	s.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range s.srv.Containers() {
		if arvados.ValidContainerUUID(c.UUID) {
			if err := s.cli.Cancel(ctx, slurm.CancelRequest{Name: c.UUID}); err != nil {
				s.t.Logf("cancel the jobs named %s: %v", c.UUID, err)
			}
		}
	}
}

// randomCluster returns a cluster id no other test uses: five random [a-z0-9], starting
// with a letter other than z.
func randomCluster() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := []byte{alphabet[rand.IntN(25)]}
	for range 4 {
		b = append(b, alphabet[rand.IntN(len(alphabet))])
	}
	return string(b)
}

// waitFor polls cond until it holds, failing the test after timeout.
func (s *stack) waitFor(what string, timeout time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("waited %s for %s; tracked: %+v", timeout, what, s.d.Tracked())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// container returns the fake's record.
func (s *stack) container(uuid string) arvados.Container {
	s.t.Helper()
	c, ok := s.srv.Container(uuid)
	if !ok {
		s.t.Fatalf("no container %s", uuid)
	}
	return c
}

// states waits until every container is in one of the states.
func (s *stack) waitStates(uuids []string, timeout time.Duration, states ...arvados.ContainerState) {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("%d containers in %v", len(uuids), states), timeout, func() bool {
		for _, u := range uuids {
			c := s.container(u)
			ok := false
			for _, st := range states {
				ok = ok || c.State == st
			}
			if !ok {
				return false
			}
		}
		return true
	})
}

// sbatchCalls counts the sbatch calls for uuid.
func (s *stack) sbatchCalls(uuid string) int {
	n := 0
	for _, c := range s.env.Calls() {
		if c.Command != "sbatch" {
			continue
		}
		for _, a := range c.Args {
			if a == "--job-name="+uuid {
				n++
			}
		}
	}
	return n
}

// small is a container that runs for d.
func small(d string) arvados.Container {
	return arvados.Container{
		Priority:           1,
		Command:            []string{"sleep", d},
		RuntimeConstraints: arvados.RuntimeConstraints{RAM: 64 << 20, VCPUs: 1},
	}
}
