package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `dispatch-slurm run` refuses a bad configuration at once with exit code 2 (so that systemd
// can be told not to restart it), says what is wrong, and never prints the token.
func TestRunRefusesBadConfigurationWithExitCode2(t *testing.T) {
	a := startAPI(t, "zzzzz", false)
	dir := t.TempDir()
	base := []string{"--lock-file=" + filepath.Join(dir, "lock"), "--slurm-dir=" + dir,
		"--crunch-run-command=" + standinBin, "--log-format=json"}
	env := func(withToken bool) []string {
		var out []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "ARVADOS_") {
				out = append(out, kv)
			}
		}
		for _, kv := range a.Env() {
			if withToken || !strings.HasPrefix(kv, "ARVADOS_API_TOKEN=") {
				out = append(out, kv)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		withToken bool
		args      []string
	}{
		{"without a token", false, nil},
		{"with an unknown flag", true, []string{"--no-such-flag"}},
		{"with a poll period that is not a duration", true, []string{"--poll-period=often"}},
		{"with an unknown placeholder in the sbatch template", true, []string{"--sbatch-args=--mem=%Q"}},
		{"with a template that renames the job", true, []string{"--sbatch-args=--job-name=other --mem=%M"}},
		{"with an unbalanced quote in the sbatch arguments", true, []string{"--sbatch-args=--comment='oops"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDispatcher(t, 0, t.TempDir(), env(tc.withToken), append(append([]string(nil), base...), tc.args...))
			select {
			case <-d.done:
			case <-time.After(20 * time.Second):
				d.kill()
				t.Fatalf("still running after 20s")
			}
			stdout, stderr := d.output()
			if d.exitCode != 2 {
				t.Errorf("exit code %d, want 2; stderr:\n%s", d.exitCode, d.tail(20))
			}
			if len(strings.TrimSpace(string(stderr))) == 0 {
				t.Errorf("nothing on stderr to say what is wrong")
			}
			for what, s := range secrets {
				if strings.Contains(string(stdout), s) || strings.Contains(string(stderr), s) {
					t.Errorf("printed %s", what)
				}
			}
		})
	}
}
