package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const ourFile = `# dispatch-slurm's own configuration
api:
  host: zzzzz.example.org
  insecure: false
dispatch:
  poll_period: 20s
  max_jobs: 50
crunch_run:
  command: /opt/arvados/bin/crunch-run --verbose
  reserve_extra_ram: 1GiB
slurm:
  sbatch_args: "--job-name=%U --mem=%M --cpus-per-task=%C --tmp=%T --partition=%P '--comment=from arvados'"
  environment:
    TMPDIR: /scratch
lock_file: /run/dispatch-slurm/lock
`

func TestOurOwnFile(t *testing.T) {
	o := opts(t, nil)
	o.Path = writeFile(t, "dispatch-slurm.yml", ourFile, 0o600)
	c, notices := mustLoad(t, o)
	if len(notices) != 0 {
		t.Errorf("notices %v; want none", notices)
	}
	if c.API.Host != "zzzzz.example.org" || c.Dispatch.PollPeriod != 20*time.Second || c.Dispatch.MaxJobs != 50 ||
		c.CrunchRun.ReserveExtraRAM != 1<<30 || c.Slurm.Environment["TMPDIR"] != "/scratch" || c.LockFile != "/run/dispatch-slurm/lock" {
		t.Errorf("loaded %s", c)
	}
	if want := []string{"/opt/arvados/bin/crunch-run", "--verbose"}; !slices.Equal(c.CrunchRun.Command, want) {
		t.Errorf("a one-string command is split like a shell would: %q; want %q", c.CrunchRun.Command, want)
	}
	if last := c.Slurm.SbatchArgs[len(c.Slurm.SbatchArgs)-1]; last != "--comment=from arvados" {
		t.Errorf("quoted word split as %q", c.Slurm.SbatchArgs)
	}
	if s := c.Source("dispatch.max_jobs"); s.Kind != FromFile || s.File != o.Path || s.Line != 7 {
		t.Errorf("Source(dispatch.max_jobs) = %+v; want %s line 7", s, o.Path)
	}
	if c.Dispatch.SqueuePeriod != 2*time.Second || c.Source("dispatch.squeue_period").Kind != FromDefault {
		t.Errorf("a key the file leaves out keeps its default")
	}
}

func TestOurFileRefusesUnknownKeysNamingKeyAndFile(t *testing.T) {
	o := opts(t, nil)
	o.Path = writeFile(t, "dispatch-slurm.yml", `api:
  host: zzzzz.example.org
slurm:
  sbatch_arg: [--exclusive]
dispatch:
  poll_period: 10s
  poll_period: 20s
  max_jobs: many
polling: 10s
`, 0o600)
	_, _, err := Load(o)
	lines := errLines(err)
	for _, want := range []string{
		o.Path + `:4: unknown key "slurm.sbatch_arg" (the keys of slurm are sbatch_args, sbatch_gpu_args,`,
		o.Path + `:7: dispatch.poll_period is given twice`,
		o.Path + `:8: dispatch.max_jobs: "many" is not a whole number`,
		o.Path + `:9: unknown key "polling" (the top-level keys are api, dispatch,`,
	} {
		if len(noticesOrLines(lines, want)) != 1 {
			t.Errorf("Load error lacks a line starting %q:\n%v", want, err)
		}
	}
	if len(lines) != 4 {
		t.Errorf("%d problems; want 4:\n%v", len(lines), err)
	}
}

func TestFileThenEnvironmentThenFlags(t *testing.T) {
	file := writeFile(t, "dispatch-slurm.yml", `api:
  host: file.example.org
  token: filetoken
  insecure: false
dispatch:
  poll_period: 20s
  max_jobs: 50
`, 0o600)
	o := opts(t, map[string]string{
		"ARVADOS_API_HOST":          "env.example.org",
		"ARVADOS_API_TOKEN":         "envtoken",
		"ARVADOS_API_HOST_INSECURE": "yes",
	})
	o.Path = file
	c, notices := mustLoad(t, o)
	if err := c.Set("dispatch.poll_period", "30s"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetFrom("api.host", "flag.example.org", Source{Kind: FromFlag, Name: "--api-host"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, got, want string
		kind           SourceKind
	}{
		{"dispatch.max_jobs", formatValue(&c.Dispatch.MaxJobs), "50", FromFile},
		{"api.token", c.API.Token.Value(), "envtoken", FromEnv},
		{"api.insecure", formatValue(&c.API.Insecure), "true", FromEnv},
		{"dispatch.poll_period", formatValue(&c.Dispatch.PollPeriod), "30s", FromFlag},
		{"api.host", c.API.Host, "flag.example.org", FromFlag},
		{"dispatch.squeue_period", formatValue(&c.Dispatch.SqueuePeriod), "2s", FromDefault},
	} {
		if tc.got != tc.want || c.Source(tc.key).Kind != tc.kind {
			t.Errorf("%s = %q from %v; want %q from kind %d", tc.key, tc.got, c.Source(tc.key), tc.want, tc.kind)
		}
	}
	if got := c.describe("api.host"); got != "api.host (from flag --api-host)" {
		t.Errorf("describe(api.host) = %q", got)
	}
	if got := c.describe("api.token"); got != "api.token (from environment variable ARVADOS_API_TOKEN)" {
		t.Errorf("describe(api.token) = %q", got)
	}
	for _, name := range []string{"ARVADOS_API_HOST", "ARVADOS_API_TOKEN", "ARVADOS_API_HOST_INSECURE"} {
		if len(noticesWith(notices, name+" overrides")) != 1 {
			t.Errorf("notices %v; want one saying %s overrides the file", notices, name)
		}
	}
	for _, n := range notices {
		if strings.Contains(n.Message, "filetoken") || strings.Contains(n.Message, "envtoken") {
			t.Errorf("a notice shows a token: %q", n.Message)
		}
	}
}

func TestEmptyEnvironmentVariablesDoNotOverride(t *testing.T) {
	o := opts(t, map[string]string{"ARVADOS_API_HOST": "", "ARVADOS_API_TOKEN": ""})
	o.Path = writeFile(t, "c.yml", "api: {host: file.example.org, token: t}\n", 0o600)
	c, _ := mustLoad(t, o)
	if c.API.Host != "file.example.org" || c.API.Token.Value() != "t" {
		t.Errorf("empty variables overrode the file: %s", c)
	}
}

func TestABadInsecureVariableIsAnError(t *testing.T) {
	_, _, err := Load(opts(t, map[string]string{"ARVADOS_API_HOST_INSECURE": "maybe"}))
	if err == nil || !strings.Contains(err.Error(), "ARVADOS_API_HOST_INSECURE") {
		t.Errorf("Load error = %v; want one naming ARVADOS_API_HOST_INSECURE", err)
	}
}

func TestSetRefusesUnknownKeysAndBadValues(t *testing.T) {
	for _, tc := range []struct{ name, key, value, wantErr string }{
		{"an unknown key", "dispatch.polling", "10s", `unknown configuration key "dispatch.polling"`},
		{"a duration without a unit", "dispatch.poll_period", "10", "has no unit"},
		{"a bad size", "crunch_run.reserve_extra_ram", "lots", "want a number"},
		{"a bad number", "dispatch.max_jobs", "1k", "not a whole number"},
		{"a bad boolean", "api.insecure", "perhaps", "not a boolean"},
		{"unbalanced quotes", "slurm.sbatch_args", "--comment='x", "cannot split"},
		{"an environment word without =", "slurm.environment", "TMPDIR", "want KEY=VALUE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			err := c.Set(tc.key, tc.value)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Set(%q, %q) = %v; want an error containing %q", tc.key, tc.value, err, tc.wantErr)
			}
			if c.Source(tc.key).Kind != FromDefault {
				t.Errorf("a failed Set recorded a source")
			}
		})
	}
}

func TestSetParsesEveryKind(t *testing.T) {
	c := Default()
	for k, v := range map[string]string{
		"api.token": "tok", "api.insecure": "1", "dispatch.supervisor_fraction": "0.25",
		"slurm.priority_spread": "7", "crunch_run.reserve_extra_ram": "2GiB",
		"slurm.environment": "A=1 'B=two words'", "crunch_run.args": "--x '--y z'",
	} {
		if err := c.Set(k, v); err != nil {
			t.Fatalf("Set(%s): %v", k, err)
		}
	}
	if c.API.Token.Value() != "tok" || !c.API.Insecure || c.Dispatch.SupervisorFraction != 0.25 || c.Slurm.PrioritySpread != 7 ||
		c.CrunchRun.ReserveExtraRAM != 2<<30 || c.Slurm.Environment["B"] != "two words" || !slices.Equal(c.CrunchRun.Args, []string{"--x", "--y z"}) {
		t.Errorf("after Set: %s", c)
	}
}

func TestWhichFileIsRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, host string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("api: {host: "+host+"}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	explicit, fromEnv, def := write("explicit.yml", "explicit"), write("env.yml", "env"), write("default.yml", "default")
	absent := filepath.Join(dir, "absent.yml")
	for _, tc := range []struct {
		name, path, envConfig, defaultPath string
		wantHost, wantErr                  string
	}{
		{"the default path when it is there", "", "", def, "default", ""},
		{"nothing when the default path is absent", "", "", absent, "", ""},
		{"ARVADOS_CONFIG before the default path", "", fromEnv, def, "env", ""},
		{"the explicit path before ARVADOS_CONFIG", explicit, fromEnv, def, "explicit", ""},
		{"an absent explicit path is an error", absent, "", def, "", "read the config file"},
		{"an absent ARVADOS_CONFIG is an error", "", absent, def, "", "named by ARVADOS_CONFIG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			if tc.envConfig != "" {
				env["ARVADOS_CONFIG"] = tc.envConfig
			}
			o := opts(t, env)
			o.Path, o.DefaultPath = tc.path, tc.defaultPath
			c, _, err := Load(o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), absent) {
					t.Fatalf("Load error = %v; want one containing %q and the path", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.API.Host != tc.wantHost {
				t.Errorf("api.host = %q; want %q", c.API.Host, tc.wantHost)
			}
		})
	}
}

func TestAnUnreadableDefaultFileIsSkippedWithAWarning(t *testing.T) {
	o := opts(t, map[string]string{"ARVADOS_API_HOST": "env.example.org"})
	o.DefaultPath = writeFile(t, "config.yml", "Clusters: {zzzzz: {}}\n", 0o600)
	o.ReadFile = func(string) ([]byte, error) { return nil, fs.ErrPermission }
	c, notices := mustLoad(t, o)
	if c.API.Host != "env.example.org" {
		t.Errorf("api.host = %q", c.API.Host)
	}
	if w := noticesWith(notices, "not using "+o.DefaultPath); len(w) != 1 || w[0].Level != Warn {
		t.Errorf("notices %v; want one warning naming the file", notices)
	}
	o.Path = o.DefaultPath
	if _, _, err := Load(o); err == nil {
		t.Errorf("an unreadable explicit file loaded without an error")
	}
}

func TestATokenInAFileOthersCanReadDrawsAWarning(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		perm          os.FileMode
		wantWho       string
	}{
		{"our file, readable by everyone", "api: {token: sekrit}\n", 0o644, "its group and everyone"},
		{"an Arvados config, readable by its group", "Clusters: {zzzzz: {SystemRootToken: sekrit}}\n", 0o640, "its group"},
		{"a management token, readable by others", "management: {token: sekrit}\n", 0o604, "everyone"},
		{"a private file", "api: {token: sekrit}\n", 0o600, ""},
		{"a file without a token", "api: {host: h}\n", 0o644, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(t, nil)
			o.Path = writeFile(t, "config.yml", tc.content, tc.perm)
			_, notices := mustLoad(t, o)
			w := noticesWith(notices, "holds a token")
			if tc.wantWho == "" {
				if len(w) != 0 {
					t.Errorf("notices %v; want no warning", w)
				}
				return
			}
			if len(w) != 1 || w[0].Level != Warn || !strings.Contains(w[0].Message, "readable by "+tc.wantWho+" (") ||
				!strings.Contains(w[0].Message, "chmod 600 "+o.Path) || strings.Contains(w[0].Message, "sekrit") {
				t.Errorf("notices %v; want one warning: readable by %s, chmod 600 %s", notices, tc.wantWho, o.Path)
			}
		})
	}
}

func TestAnEmptyFileMeansTheDefaults(t *testing.T) {
	o := opts(t, nil)
	o.Path = writeFile(t, "empty.yml", "# nothing yet\n", 0o600)
	c, _ := mustLoad(t, o)
	if c.String() != Default().String() {
		t.Errorf("got %s", c)
	}
}

func TestNullValuesKeepTheDefaults(t *testing.T) {
	o := opts(t, nil)
	o.Path = writeFile(t, "c.yml", "dispatch:\n  poll_period:\nslurm:\n", 0o600)
	c, _ := mustLoad(t, o)
	if c.Dispatch.PollPeriod != 10*time.Second || c.Source("dispatch.poll_period").Kind != FromDefault {
		t.Errorf("poll_period = %v from %v", c.Dispatch.PollPeriod, c.Source("dispatch.poll_period"))
	}
}

func TestNotYAMLIsAnErrorNamingTheFile(t *testing.T) {
	o := opts(t, nil)
	o.Path = writeFile(t, "c.yml", "api: [unclosed\n", 0o600)
	if _, _, err := Load(o); err == nil || !strings.Contains(err.Error(), o.Path) {
		t.Errorf("Load error = %v; want one naming the file", err)
	}
}
