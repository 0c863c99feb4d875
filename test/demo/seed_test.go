package demo

import (
	"strings"
	"testing"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

func TestSeedsAreAboutTwentyWithEveryKindOfEnd(t *testing.T) {
	seeds := Seeds()
	if len(seeds) < 18 || len(seeds) > 22 {
		t.Errorf("%d seeds, want about 20", len(seeds))
	}
	names := map[string]bool{}
	var drops, rejected, never int
	for _, s := range seeds {
		if names[s.Name] {
			t.Errorf("two seeds named %s", s.Name)
		}
		names[s.Name] = true
		if s.DropPriority {
			drops++
		}
		if strings.Contains(s.ErrorHas, "Requested node configuration is not available") {
			rejected++
		}
		if s.ErrorHas == "PartitionConfig" {
			never++
		}
	}
	if drops != 1 || rejected != 1 || never != 1 {
		t.Errorf("priority drops %d, rejected %d, never-starting %d: want one of each", drops, rejected, never)
	}
}

func TestSeedJudge(t *testing.T) {
	done := Seed{Name: "a", Expect: arvados.Complete}
	rejected := Seed{Name: "b", Expect: arvados.Cancelled, ErrorHas: "Requested node configuration is not available"}
	for _, tc := range []struct {
		name string
		seed Seed
		ctr  arvados.Container
		ok   bool
		why  string
	}{
		{name: "a container that completed with exit code 0 ended as expected", seed: done,
			ctr: arvados.Container{State: arvados.Complete, ExitCode: new(0)}, ok: true},
		{name: "a container that completed with another exit code did not", seed: done,
			ctr: arvados.Container{State: arvados.Complete, ExitCode: new(1)}, why: "exit code 0"},
		{name: "a container still running did not", seed: done,
			ctr: arvados.Container{State: arvados.Running}, why: "ended Running, want Complete"},
		{name: "a cancel with Slurm's message ended as expected", seed: rejected,
			ctr: arvados.Container{State: arvados.Cancelled, RuntimeStatus: map[string]any{
				"error": "Slurm rejected the job: Requested node configuration is not available"}}, ok: true},
		{name: "a cancel without Slurm's message did not", seed: rejected,
			ctr: arvados.Container{State: arvados.Cancelled, RuntimeStatus: map[string]any{"error": "something else"}},
			why: "lacks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := tc.seed.Judge(tc.ctr)
			if ok != tc.ok || !strings.Contains(why, tc.why) {
				t.Errorf("Judge = %v, %q; want %v and %q", ok, why, tc.ok, tc.why)
			}
		})
	}
}

func TestSeedAsks(t *testing.T) {
	for _, tc := range []struct {
		seed Seed
		want string
	}{
		{Seed{VCPUs: 1, RAMMiB: 256}, "1 cpu, 256 MiB"},
		{Seed{VCPUs: 4, RAMMiB: 2048}, "4 cpus, 2 GiB"},
		{Seed{VCPUs: 2, RAMMiB: 1 << 20, Partitions: []string{"debug"}}, "2 cpus, 1 TiB, partition debug"},
	} {
		if got := tc.seed.Asks(); got != tc.want {
			t.Errorf("Asks() = %q, want %q", got, tc.want)
		}
	}
}
