package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/config"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/fakeslurmtest"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakeslurm/sim"
	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

// liveConfig is our YAML naming the Slurm commands at paths (empty: the defaults) and the
// sbatch arguments.
func liveConfig(paths map[string]string, sbatchArgs, supervisorArgs string) string {
	var b strings.Builder
	b.WriteString("slurm:\n")
	for _, k := range []string{"sbatch", "squeue", "scancel", "scontrol"} {
		if p := paths[k]; p != "" {
			fmt.Fprintf(&b, "  %s: %s\n", k, p)
		}
	}
	fmt.Fprintf(&b, "  sbatch_args: %q\n", sbatchArgs)
	if supervisorArgs != "" {
		fmt.Fprintf(&b, "  supervisor_sbatch_args: %q\n", supervisorArgs)
	}
	return b.String()
}

func fakePaths(env *fakeslurmtest.Env) map[string]string {
	return map[string]string{"sbatch": env.SbatchPath, "squeue": env.SqueuePath, "scancel": env.ScancelPath, "scontrol": env.ScontrolPath}
}

// liveLines runs config check --live and returns its output and error, failing the test if
// the token appears.
func liveLines(t *testing.T, configText, token string) (string, error) {
	t.Helper()
	path := writeFile(t, "dispatch-slurm.yml", configText)
	out, errOut, err := appOutput("config", "check", "--live", "--config", path)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if strings.Contains(out+errOut+msg, token) {
		t.Errorf("the token appears in the output:\n%s%s", out, errOut)
	}
	return out, err
}

func TestConfigCheckLive(t *testing.T) {
	const badToken = "notAValidTokenxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	const args = "--job-name=%U --mem=%M --partition=debug"
	for _, tc := range []struct {
		name       string
		token      string
		paths      func(env *fakeslurmtest.Env) map[string]string
		sbatchArgs string
		supervisor string
		fault      *sim.Fault
		want       []string
		wantFail   int
	}{
		{"everything works", fakearvados.AdminToken, fakePaths, args, "", nil,
			[]string{"ok    API: ", "ok    admin token: it belongs to zzzzz-tpzed-000000000000000, an admin",
				"ok    slurm.scontrol: ", "ok    slurmctld: Slurmctld(primary) at fakectld is UP",
				"ok    partition debug (in slurm.sbatch_args) exists and is UP"}, 0},
		{"templated partitions are not checked", fakearvados.AdminToken, fakePaths, "--job-name=%U --partition=%P", "", nil,
			[]string{"ok    partitions: the sbatch arguments name none"}, 0},
		{"a partition that does not exist fails", fakearvados.AdminToken, fakePaths, args, "-p nosuch", nil,
			[]string{"ok    partition debug", "FAIL  partition nosuch (in slurm.supervisor_sbatch_args) does not exist: fix slurm.supervisor_sbatch_args"}, 1},
		{"a partition that is down is a warning, not a failure", fakearvados.AdminToken, fakePaths, "--partition=down", "", nil,
			[]string{"warn  partition down (in slurm.sbatch_args) exists but is DOWN: jobs wait"}, 0},
		{"a token that is not an admin's fails", fakearvados.UserToken, fakePaths, args, "", nil,
			[]string{"FAIL  admin token: the token belongs to zzzzz-tpzed-000000000000003, who is not an admin"}, 1},
		{"a refused token fails and the admin check is skipped", badToken, fakePaths, args, "", nil,
			[]string{"FAIL  API: the server", "refused the token: check api.token", "skip  admin token"}, 1},
		{"a missing Slurm command fails and skips what needs it", fakearvados.AdminToken, func(env *fakeslurmtest.Env) map[string]string {
			p := fakePaths(env)
			p["scontrol"] = "/nonexistent/scontrol"
			return p
		}, args, "", nil, []string{"FAIL  slurm.scontrol (", "dispatch-slurm.yml:5): ", "/nonexistent/scontrol", "skip  slurmctld", "skip  partitions"}, 1},
		{"slurmctld down fails and skips the partitions", fakearvados.AdminToken, fakePaths, args, "",
			&sim.Fault{Command: "scontrol", Kind: sim.FaultControllerDown},
			[]string{"FAIL  slurmctld: scontrol ping (exit 1): Slurmctld(primary) at fakectld is DOWN: start slurmctld", "skip  partitions"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, env, _ := fakeEnv(t, tc.token)
			if tc.fault != nil {
				env.AddFault(*tc.fault)
			}
			out, err := liveLines(t, liveConfig(tc.paths(env), tc.sbatchArgs, tc.supervisor), tc.token)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("the output does not say %q:\n%s", w, out)
				}
			}
			if fails := strings.Count(out, "\nFAIL  "); fails != tc.wantFail {
				t.Errorf("%d checks failed, want %d:\n%s", fails, tc.wantFail, out)
			}
			if (err != nil) != (tc.wantFail > 0) || (err != nil && exitCode(err) != exitFailure) {
				t.Errorf("err %v (exit %d) with %d failures", err, exitCode(err), tc.wantFail)
			}
		})
	}
}

func TestConfigCheckLiveSaysWhenTheAPIServerDoesNotAnswer(t *testing.T) {
	srv, env, _ := fakeEnv(t, fakearvados.AdminToken)
	srv.Close()
	out, err := liveLines(t, liveConfig(fakePaths(env), "--partition=debug", ""), fakearvados.AdminToken)
	if err == nil || !strings.Contains(out, "FAIL  API: ") || !strings.Contains(out, "check api.host (environment variable ARVADOS_API_HOST)") {
		t.Errorf("err %v, output:\n%s", err, out)
	}
}

func TestConfigCheckLiveDoesNothingLiveWhenTheFileIsInvalid(t *testing.T) {
	noAPIEnv(t)
	out, err := liveLines(t, "dispatch:\n  max_jobs: 0\n", fakearvados.AdminToken)
	if err == nil || exitCode(err) != exitUsage || strings.Contains(out, "ok    ") {
		t.Errorf("err %v (exit %d), output:\n%s", err, exitCode(err), out)
	}
}

func TestPartitionsNamedInTheSbatchArguments(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"--partition= with a list", []string{"--partition=a,b"}, "a b"},
		{"--partition and its value", []string{"--mem=%M", "--partition", "a"}, "a"},
		{"-p and its value", []string{"-p", "a"}, "a"},
		{"-p glued to its value", []string{"-pa"}, "a"},
		{"a templated partition is each container's own", []string{"--partition=%P"}, ""},
		{"a partition named twice is checked once", []string{"--partition=a", "-p", "a"}, "a"},
		{"no partition", []string{"--job-name=%U"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Slurm.SbatchArgs = tc.args
			var got []string
			for _, p := range partitionsIn(cfg) {
				got = append(got, p.name)
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("partitions %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRealSlurmConfigCheckLive(t *testing.T) {
	testenv.RequireRealSlurm(t)
	srv := fakearvados.New(fakearvados.Options{})
	t.Cleanup(srv.Close)
	t.Setenv(arvados.EnvHost, srv.URL())
	t.Setenv(arvados.EnvToken, fakearvados.AdminToken)
	t.Setenv(arvados.EnvInsecure, "")
	t.Setenv(config.EnvConfig, "")
	out, err := liveLines(t, liveConfig(nil, "--job-name=%U --partition=debug,down", "--partition=nosuchpartition"), fakearvados.AdminToken)
	t.Logf("config check --live:\n%s", out)
	for _, w := range []string{"ok    slurm.sbatch: /", "ok    slurmctld: Slurmctld(primary) at ", " is UP",
		"ok    partition debug", "warn  partition down (in slurm.sbatch_args) exists but is DOWN", "FAIL  partition nosuchpartition (in slurm.supervisor_sbatch_args) does not exist"} {
		if !strings.Contains(out, w) {
			t.Errorf("the output does not say %q", w)
		}
	}
	if err == nil || strings.Count(out, "FAIL") != 1 {
		t.Errorf("err %v, want exactly the missing partition to fail", err)
	}
}
