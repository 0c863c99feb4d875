package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestDumpNeverShowsATokenAndSaysWhereValuesCameFrom(t *testing.T) {
	o := opts(t, map[string]string{"ARVADOS_API_HOST": "env.example.org"})
	o.Path = testdata(t, "arvados-config.yml")
	c, _ := mustLoad(t, o)
	var buf bytes.Buffer
	if err := c.Dump(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, tok := range []string{rootToken, mgmtToken} {
		if strings.Contains(out, tok) {
			t.Errorf("dump shows a token:\n%s", out)
		}
	}
	for _, want := range []string{
		"  token: <redacted> # " + o.Path + ":5 (Clusters.zzzzz.SystemRootToken)\n",
		"  host: env.example.org # environment variable ARVADOS_API_HOST\n",
		"  squeue_period: 2s # default\n",
		"  reserve_extra_ram: 1GiB # " + o.Path,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %q:\n%s", want, out)
		}
	}
	if c.API.Token.Value() != rootToken {
		t.Errorf("Dump changed the configuration")
	}
}

func TestADumpLoadsBackAsTheSameConfiguration(t *testing.T) {
	o := opts(t, nil)
	o.Path = testdata(t, "arvados-config.yml")
	c, _ := mustLoad(t, o)
	c.Slurm.SupervisorSbatchArgs = []string{"--partition=supervisors", "--comment=a: b #c", "--mem=%M"}
	c.Slurm.WorkDir = "123" // a string that looks like a number
	var buf bytes.Buffer
	if err := c.Dump(&buf); err != nil {
		t.Fatal(err)
	}
	again := opts(t, nil)
	again.Path = filepath.Join(t.TempDir(), "dump.yml")
	if err := os.WriteFile(again.Path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	d, notices := mustLoad(t, again)
	if len(notices) != 0 {
		t.Errorf("notices %v", notices)
	}
	for _, f := range fields {
		got, want := reflect.ValueOf(f.ptr(d)).Elem().Interface(), reflect.ValueOf(f.ptr(c)).Elem().Interface()
		if s, ok := want.(Secret); ok && s != "" {
			want = Secret(Redacted)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: loaded back %#v; dumped %#v", f.key, got, want)
		}
	}
}

func TestRedactedReplacesTokensInACopy(t *testing.T) {
	c := valid()
	c.Management.Token = "mgmt-sekrit"
	r := c.Redacted()
	if r.API.Token.Value() != Redacted || r.Management.Token.Value() != Redacted {
		t.Errorf("Redacted kept a token")
	}
	if c.API.Token.Value() == Redacted || c.Management.Token.Value() != "mgmt-sekrit" {
		t.Errorf("Redacted changed the original")
	}
	r.Slurm.SbatchArgs[0] = "changed"
	if c.Slurm.SbatchArgs[0] == "changed" {
		t.Errorf("Redacted shares the original's lists")
	}
	if e := Default().Redacted(); e.API.Token != "" {
		t.Errorf("an empty token became %q", e.API.Token)
	}
}

func TestNoWayOfPrintingAConfigShowsAToken(t *testing.T) {
	c := valid()
	c.Management.Token = "mgmt-sekrit"
	c.Slurm.Environment = map[string]string{"LICENSE_KEY": "env-value"}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]string{
		"String": c.String(), "%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"%v of the value": fmt.Sprintf("%v", *c), "%+v of the value": fmt.Sprintf("%+v", *c),
	}
	for name, out := range logged {
		if strings.Contains(out, "env-value") || !strings.Contains(out, "slurm.environment=[LICENSE_KEY]") {
			t.Errorf("%s shows job environment values, which may be secrets, or lacks their names: %s", name, out)
		}
	}
	logged["json"], logged["yaml"] = string(j), string(y)
	for name, out := range logged {
		if strings.Contains(out, "sekrit") || !strings.Contains(out, "redacted") {
			t.Errorf("%s shows a token: %s", name, out)
		}
	}
	var back struct {
		API      map[string]any
		Dispatch map[string]any
		LockFile string `json:"lock_file"`
	}
	if err := json.Unmarshal(j, &back); err != nil || back.Dispatch["poll_period"] != "10s" || back.API["host"] != c.API.Host ||
		back.LockFile != DefaultLockFile {
		t.Errorf("json %s: %v", j, err)
	}
}

func TestKeysDescribeEveryFieldAndEveryArvadosKeyWeRead(t *testing.T) {
	keys := Keys()
	if len(keys) != len(fields) {
		t.Fatalf("%d keys for %d fields", len(keys), len(fields))
	}
	byName := map[string]Key{}
	for _, k := range keys {
		if k.Help == "" {
			t.Errorf("%s has no help", k.Name)
		}
		byName[k.Name] = k
	}
	for _, ak := range arvadosKeys {
		if k, ok := byName[ak.key]; !ok || k.ArvadosKey != ak.path {
			t.Errorf("Arvados key %s is read into %s, but Keys says %q", ak.path, ak.key, k.ArvadosKey)
		}
	}
	for name, want := range map[string]string{
		"dispatch.poll_period": "10s", "crunch_run.reserve_extra_ram": "550MiB", "crunch_run.command": "[crunch-run]",
		"slurm.sbatch_args":            "[--job-name=%U, --mem=%M, --cpus-per-task=%C, --tmp=%T, --partition=%P]",
		"dispatch.supervisor_fraction": "0.5", "lock_file": DefaultLockFile, "api.token": "",
	} {
		if got := byName[name].Default; got != want {
			t.Errorf("default of %s = %q; want %q", name, got, want)
		}
	}
	// Every field's pointer is distinct: no two keys write the same field.
	c := Default()
	var ptrs []any
	for _, f := range fields {
		p := f.ptr(c)
		if slices.ContainsFunc(ptrs, func(q any) bool { return q == p }) {
			t.Errorf("%s shares its field with another key", f.key)
		}
		ptrs = append(ptrs, p)
	}
}
