package demo

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/config"
)

func TestTheGeneratedConfigLoadsAndValidates(t *testing.T) {
	dir := t.TempDir()
	p := configParams{APIHost: "127.0.0.1:4443", ClusterID: "abcde", Standin: "/opt/it's here/crunchrun-standin",
		Slurm:   map[string]string{"sbatch": "/x/sbatch", "squeue": "/x/squeue", "scancel": "/x/scancel", "scontrol": "/x/scontrol"},
		WorkDir: dir, Lock: filepath.Join(dir, "lock")}
	path := filepath.Join(dir, "c.yml")
	if err := os.WriteFile(path, []byte(dispatcherConfig(p)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{arvados.EnvToken: "secret"}
	cfg, _, err := config.Load(config.LoadOptions{Path: path, Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatalf("load: %v\n%s", err, dispatcherConfig(p))
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if cfg.API.Host != p.APIHost || !cfg.API.Insecure || cfg.Dispatch.ClusterID != "abcde" ||
		cfg.Dispatch.PollPeriod != time.Second || cfg.Dispatch.SqueuePeriod != time.Second {
		t.Errorf("api %s insecure %v, cluster %s, periods %v %v", cfg.API.Host, cfg.API.Insecure, cfg.Dispatch.ClusterID,
			cfg.Dispatch.PollPeriod, cfg.Dispatch.SqueuePeriod)
	}
	if !slices.Equal(cfg.CrunchRun.Command, []string{p.Standin}) || cfg.Slurm.SbatchPath != "/x/sbatch" ||
		cfg.Slurm.WorkDir != dir || cfg.LockFile != p.Lock {
		t.Errorf("command %q, sbatch %s, work dir %s, lock %s", cfg.CrunchRun.Command, cfg.Slurm.SbatchPath, cfg.Slurm.WorkDir, cfg.LockFile)
	}
	if !slices.Contains(cfg.Slurm.SbatchArgs, "--time=10") || !slices.Contains(cfg.Slurm.SbatchArgs, "--job-name=%U") {
		t.Errorf("sbatch args %q lack the time limit or the job name", cfg.Slurm.SbatchArgs)
	}
}
