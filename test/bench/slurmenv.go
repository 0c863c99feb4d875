package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
)

// Tier names a Slurm backend.
type Tier string

// The tiers.
const (
	FakeTier Tier = "fake"
	RealTier Tier = "real"
)

// slurmEnv is the Slurm of one scenario: a fresh fakeslurm cluster, or the machine's Slurm,
// with the counting wrappers the dispatcher runs.
type slurmEnv struct {
	tier Tier
	// real are the commands themselves; wrappers the paths the dispatcher gets.
	real, wrappers map[string]string
	// env runs the commands (the dispatcher's environment adds dispEnv).
	env, dispEnv []string
	calls        *CallLog
	admin        *sim.Admin
	cluster      string
}

// newSlurmEnv sets up the backend in dir. exe is the wrapper binary (test/bench/cmd/slurmwrap);
// fakeslurm the fakeslurm binary (fake tier).
func newSlurmEnv(tier Tier, dir, exe, fakeslurm, cluster string) (*slurmEnv, error) {
	s := &slurmEnv{tier: tier, real: map[string]string{}, cluster: cluster}
	switch tier {
	case FakeTier:
		state := filepath.Join(dir, "fakeslurm-state")
		links := filepath.Join(dir, "fakeslurm-bin")
		if err := os.MkdirAll(links, 0o755); err != nil {
			return nil, fmt.Errorf("fake Slurm: %w", err)
		}
		for _, name := range slurmCommands {
			p := filepath.Join(links, name)
			if err := os.Symlink(fakeslurm, p); err != nil {
				return nil, fmt.Errorf("fake Slurm: %w", err)
			}
			s.real[name] = p
		}
		c := sim.DefaultCluster()
		// Short timings as in the project's tests; room for the largest benchmark queue.
		c.KillWait = sim.Duration(300 * time.Millisecond)
		c.SignalRetry = sim.Duration(time.Second)
		c.SubmitRetryUnit = sim.Duration(10 * time.Millisecond)
		c.MaxJobCount = 100000
		s.admin = &sim.Admin{Dir: state, Exe: fakeslurm}
		if err := s.admin.Init(c); err != nil {
			return nil, fmt.Errorf("fake Slurm: %w", err)
		}
		s.dispEnv = []string{sim.EnvState + "=" + state}
		s.env = append(os.Environ(), s.dispEnv...)
	case RealTier:
		for _, name := range slurmCommands {
			p, err := exec.LookPath(name)
			if err != nil {
				return nil, fmt.Errorf("real Slurm: %w", err)
			}
			s.real[name] = p
		}
		s.env = os.Environ()
	default:
		return nil, fmt.Errorf("unknown tier %q", tier)
	}
	wdir := filepath.Join(dir, "wrappers")
	var err error
	if s.wrappers, err = installWrappers(wdir, exe, s.real); err != nil {
		return nil, err
	}
	s.calls = NewCallLog(filepath.Join(wdir, callLogName))
	return s, nil
}

// ourJobs lists the live jobs named after our cluster's uuids (id → name).
func (s *slurmEnv) ourJobs(ctx context.Context) (map[string]string, error) {
	out, err := runCmd(ctx, time.Minute, s.env, "", s.real["squeue"], "--me", "--noheader", "--format=%i|%j")
	if err != nil {
		return nil, fmt.Errorf("list our jobs: %w", err)
	}
	jobs := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		id, name, ok := strings.Cut(strings.TrimSpace(line), "|")
		if ok && strings.HasPrefix(name, s.cluster+"-") {
			jobs[id] = name
		}
	}
	return jobs, nil
}

// cancel cancels jobs by id, a few hundred per scancel.
func (s *slurmEnv) cancel(ctx context.Context, ids []string) error {
	slices.Sort(ids)
	for chunk := range slices.Chunk(ids, 500) {
		if _, err := runCmd(ctx, 2*time.Minute, s.env, "", s.real["scancel"], chunk...); err != nil {
			return fmt.Errorf("cancel our jobs: %w", err)
		}
	}
	return nil
}

// cleanup cancels every live job of our cluster (real Slurm) or shuts the fake cluster down.
func (s *slurmEnv) cleanup(ctx context.Context) error {
	if s.tier == FakeTier {
		return s.admin.Shutdown()
	}
	jobs, err := s.ourJobs(ctx)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(jobs))
	for id := range jobs {
		ids = append(ids, id)
	}
	return s.cancel(ctx, ids)
}
