package config

import (
	"slices"
	"testing"
	"time"
)

func TestAdaptersCarryTheSettings(t *testing.T) {
	o := opts(t, nil)
	o.Path = testdata(t, "arvados-config.yml")
	c, _ := mustLoad(t, o)

	a := c.ArvadosConfig()
	if a.Host != "zzzzz.example.org:8443" || a.Token != rootToken || !a.Insecure || a.MaxItemsPerResponse != 500 ||
		a.Timeout != 30*time.Second || a.Retry.MaxAttempts != 5 || a.Retry.MaxElapsed != 30*time.Second {
		t.Errorf("ArvadosConfig() = %+v", a)
	}
	if err := a.Validate(); err != nil {
		t.Errorf("the API client refuses its settings: %v", err)
	}

	s := c.SlurmCLIConfig()
	if s.SbatchPath != "sbatch" || s.MaxConcurrent != 8 || s.SubmitTimeout != 3*time.Minute || s.Dir != "" {
		t.Errorf("SlurmCLIConfig() = %+v", s)
	}

	q := c.SqueueConfig("yyyyy")
	if q.ClusterID != "zzzzz" || q.Period != 2*time.Second || q.PrioritySpread != 100 || q.NiceHeadroom != 10000 {
		t.Errorf("SqueueConfig() = %+v", q)
	}
	c.Dispatch.ClusterID = ""
	if q := c.SqueueConfig("yyyyy"); q.ClusterID != "yyyyy" {
		t.Errorf("without dispatch.cluster_id, SqueueConfig took %q; want the one learnt at start", q.ClusterID)
	}

	want := []string{"ARVADOS_API_HOST=zzzzz.example.org:8443", "ARVADOS_API_TOKEN=" + rootToken, "ARVADOS_API_HOST_INSECURE=1",
		"SINGULARITY_TMPDIR=/scratch/singularity", "TMPDIR=/scratch"}
	if got := c.JobEnv(); !slices.Equal(got, want) {
		t.Errorf("JobEnv() = %q; want %q", got, want)
	}
}
