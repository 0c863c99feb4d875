package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

const (
	rootToken = "systemroottoken0123456789abcdefghijklmnopqrstuvwxyz"
	mgmtToken = "managementtoken0123456789abcdefghijklmnopqrstuvwxy"
)

func TestAnArvadosClusterConfigGivesTheIncumbentsSettings(t *testing.T) {
	path := testdata(t, "arvados-config.yml")
	o := opts(t, nil)
	o.Path = path
	c, notices := mustLoad(t, o)

	want := Default()
	want.API.Host = "zzzzz.example.org:8443"
	want.API.Token = rootToken
	want.API.Insecure = true
	want.API.MaxItemsPerResponse = 500
	want.Dispatch.ClusterID = "zzzzz"
	want.Dispatch.PollPeriod = 15 * time.Second
	want.Dispatch.MinRetryPeriod = 30 * time.Second
	want.Dispatch.MaxDispatchAttempts = 5
	want.Dispatch.SupervisorFraction = 0.3
	want.CrunchRun.Command = []string{"/usr/bin/crunch-run"}
	want.CrunchRun.Args = []string{"--cgroup-parent-subsystem=memory", "--debug"}
	want.CrunchRun.RuntimeEngine = "singularity"
	want.CrunchRun.ReserveExtraRAM = 1 << 30
	want.Slurm.SbatchArgs = []string{"--account=arvados", "--output=/var/log/slurm/arvados-%%j.out", "--partition=compute",
		"--job-name=%U", "--mem=%M", "--cpus-per-task=%C", "--tmp=%T", "--partition=%P"}
	want.Slurm.SbatchGPUArgs = []string{"--gres=gpu:%G"}
	want.Slurm.Environment = map[string]string{"TMPDIR": "/scratch", "SINGULARITY_TMPDIR": "/scratch/singularity"}
	want.Slurm.PrioritySpread = 100
	want.Management.Listen = "slurm-head.zzzzz.example.org:9007"
	want.Management.Token = mgmtToken
	want.Logging.Level = "debug"
	want.Logging.Format = "console"
	for _, f := range fields {
		got, exp := reflect.ValueOf(f.ptr(c)).Elem().Interface(), reflect.ValueOf(f.ptr(want)).Elem().Interface()
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%s = %#v; want %#v", f.key, got, exp)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	// Every value read from the file names the Arvados key and its line.
	for key, arv := range map[string]string{
		"api.host":                     "Clusters.zzzzz.Services.Controller.ExternalURL",
		"api.token":                    "Clusters.zzzzz.SystemRootToken",
		"dispatch.poll_period":         "Clusters.zzzzz.Containers.CloudVMs.PollInterval",
		"slurm.sbatch_args":            "Clusters.zzzzz.Containers.SLURM.SbatchArgumentsList",
		"management.listen":            "Clusters.zzzzz.Services.DispatchSLURM.InternalURLs",
		"dispatch.supervisor_fraction": "Clusters.zzzzz.Containers.CloudVMs.SupervisorFraction",
	} {
		s := c.Source(key)
		if s.Kind != FromFile || s.File != path || s.Name != arv || s.Line == 0 {
			t.Errorf("Source(%s) = %+v; want %s in %s with a line", key, s, arv, path)
		}
	}
	if s := c.Source("dispatch.squeue_period"); s.Kind != FromDefault {
		t.Errorf("Source(dispatch.squeue_period) = %+v; want the default", s)
	}

	// One info line lists what we ignore, collapsed to the subtrees we do not read.
	unused := noticesWith(notices, "does not use")
	if len(unused) != 1 || unused[0].Level != Info {
		t.Fatalf("notices about unused keys: %v; want one at Info", unused)
	}
	msg := unused[0].Message
	for _, k := range []string{"PostgreSQL", "Collections", "Users", "Services.RailsAPI", "Services.Keepstore",
		"Services.Controller.InternalURLs", "API.RequestTimeout", "TLS.Certificate", "Containers.DefaultKeepCacheRAM",
		"Containers.CloudVMs.MaxInstances", "Containers.Logging"} {
		if !strings.Contains(msg, k) {
			t.Errorf("the unused-keys notice does not list %s: %s", k, msg)
		}
	}
	for _, k := range []string{"SystemRootToken", "ExternalURL,", "PollInterval", "SbatchArgumentsList", "TLS.Insecure", "dbpassword"} {
		if strings.Contains(msg, k) {
			t.Errorf("the unused-keys notice lists %s, which we use (or is a value): %s", k, msg)
		}
	}
	if w := noticesWith(notices, "readable"); len(w) != 0 {
		t.Errorf("a 0600 file drew a permission warning: %v", w)
	}
}

// The incumbent's sbatch command line for a container: its SbatchArgumentsList, then
// --job-name, --nice and --no-requeue (which Submit adds for us), then the resources and
// the partitions. Ours must ask Slurm for the same.
func TestSbatchArgumentsListGivesTheIncumbentsCommandLine(t *testing.T) {
	const uuid = "zzzzz-dz642-0123456789abcde"
	for _, tc := range []struct {
		name       string
		list       string
		res        slurm.Resources
		wantSbatch []string
	}{
		{
			name:       "no extra arguments and no partitions",
			list:       "[]",
			res:        slurm.Resources{VCPUs: 2, MemMiB: 789, ScratchMiB: 0},
			wantSbatch: []string{"--mem=789", "--cpus-per-task=2", "--tmp=0"},
		},
		{
			name: "extra arguments come first, literally, and the container's partitions last",
			list: `["--account=arv", "--output=/tmp/slurm-%j.out", "--partition=compute", "--exclusive"]`,
			res:  slurm.Resources{VCPUs: 4, MemMiB: 1024, ScratchMiB: 2048, Partitions: []string{"a", "b"}},
			wantSbatch: []string{"--account=arv", "--output=/tmp/slurm-%j.out", "--partition=compute", "--exclusive",
				"--mem=1024", "--cpus-per-task=4", "--tmp=2048", "--partition=a,b"},
		},
		{
			name:       "a configured partition stands when the container names none",
			list:       `["-p", "compute"]`,
			res:        slurm.Resources{VCPUs: 1, MemMiB: 600, ScratchMiB: 64},
			wantSbatch: []string{"-p", "compute", "--mem=600", "--cpus-per-task=1", "--tmp=64"},
		},
		{
			name:       "options the incumbent overrode are dropped",
			list:       `["--job-name=custom", "--nice=5", "--no-requeue", "-J", "other", "--qos=high"]`,
			res:        slurm.Resources{VCPUs: 1, MemMiB: 600, ScratchMiB: 64},
			wantSbatch: []string{"--qos=high", "--mem=600", "--cpus-per-task=1", "--tmp=64"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(t, nil)
			o.Path = writeFile(t, "config.yml", "Clusters:\n  zzzzz:\n    Containers:\n      SLURM:\n        SbatchArgumentsList: "+tc.list+"\n", 0o600)
			c, _ := mustLoad(t, o)
			tmpl, err := slurm.ParseTemplateGPU(c.Slurm.SbatchArgs, c.Slurm.SbatchGPUArgs)
			if err != nil {
				t.Fatalf("template %q: %v", c.Slurm.SbatchArgs, err)
			}
			got, err := tmpl.Expand(uuid, tc.res)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.wantSbatch) {
				t.Errorf("sbatch arguments\n got %q\nwant %q", got, tc.wantSbatch)
			}
		})
	}
}

func TestOptionsTheDispatcherSetsAreDroppedWithOneWarning(t *testing.T) {
	o := opts(t, nil)
	o.Path = writeFile(t, "config.yml", `Clusters:
  zzzzz:
    Containers:
      SLURM:
        SbatchArgumentsList: ["--nice=5", "--job-name", "x", "--account=a"]
`, 0o600)
	_, notices := mustLoad(t, o)
	w := noticesWith(notices, "SbatchArgumentsList", "--nice=5", "--job-name x")
	if len(w) != 1 || w[0].Level != Warn {
		t.Errorf("notices %v; want one warning naming --nice=5 and --job-name x", notices)
	}
}

func TestArvadosZeroValuesThatMeanUnsetKeepOurDefaults(t *testing.T) {
	o := opts(t, nil)
	// What "arvados-server config-dump" writes for an untouched cluster.
	o.Path = writeFile(t, "config.yml", `Clusters:
  zzzzz:
    SystemRootToken: ""
    ManagementToken: ""
    API: {MaxItemsPerResponse: 1000}
    Services:
      Controller: {ExternalURL: ""}
      DispatchSLURM: {InternalURLs: {}}
    TLS: {Insecure: false}
    Containers:
      CrunchRunCommand: crunch-run
      CrunchRunArgumentsList: []
      MinRetryPeriod: 0s
      MaxDispatchAttempts: 10
      ReserveExtraRAM: 550MiB
      RuntimeEngine: docker
      CloudVMs: {PollInterval: 10s, SupervisorFraction: 0}
      SLURM:
        PrioritySpread: 0
        SbatchArgumentsList: []
        SbatchEnvironmentVariables: {SAMPLE: ""}
`, 0o600)
	c, _ := mustLoad(t, o)
	def := Default()
	def.Dispatch.ClusterID = "zzzzz"
	def.Dispatch.SupervisorFraction = 0 // 0 is "no limit" in Arvados and here
	def.CrunchRun.Args = []string{}
	def.Slurm.Environment = map[string]string{}
	for _, f := range fields {
		got, exp := reflect.ValueOf(f.ptr(c)).Elem().Interface(), reflect.ValueOf(f.ptr(def)).Elem().Interface()
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%s = %#v; want %#v", f.key, got, exp)
		}
	}
}

func TestChoosingAmongSeveralClusters(t *testing.T) {
	path := writeFile(t, "config.yml", `Clusters:
  aaaaa: {SystemRootToken: tokena}
  bbbbb: {SystemRootToken: tokenb, API: {MaxItemsPerResponse: 7}}
`, 0o600)
	for _, tc := range []struct {
		name, clusterID, wantErr string
		wantMax                  int
	}{
		{"without a cluster id it is an error naming them", "", "several clusters (aaaaa, bbbbb)", 0},
		{"a cluster id chooses", "bbbbb", "", 7},
		{"an unknown cluster id is an error", "ccccc", `no cluster "ccccc"`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(t, nil)
			o.Path, o.ClusterID = path, tc.clusterID
			c, notices, err := Load(o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("Load error = %v; want one naming %s and containing %q", err, path, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.API.MaxItemsPerResponse != tc.wantMax || c.API.Token.Value() != "tokenb" || c.Dispatch.ClusterID != "bbbbb" {
				t.Errorf("got max %d token %q cluster %q", c.API.MaxItemsPerResponse, c.API.Token.Value(), c.Dispatch.ClusterID)
			}
			if len(noticesWith(notices, "Clusters.aaaaa")) != 1 {
				t.Errorf("notices %v; want the other cluster listed as unused", notices)
			}
		})
	}
}

func TestArvadosValuesOfTheWrongTypeAreAllReportedWithTheirKeys(t *testing.T) {
	o := opts(t, nil)
	o.Path = writeFile(t, "config.yml", `Clusters:
  zzzzz:
    API: {MaxItemsPerResponse: lots}
    Services:
      Controller: {ExternalURL: "ftp://zzzzz.example.org"}
    Containers:
      ReserveExtraRAM: 5 bushels
      CloudVMs: {PollInterval: 10}
`, 0o600)
	_, _, err := Load(o)
	lines := errLines(err)
	for _, want := range []string{
		":3: Clusters.zzzzz.API.MaxItemsPerResponse: \"lots\" is not a whole number",
		":5: Clusters.zzzzz.Services.Controller.ExternalURL: \"ftp://zzzzz.example.org\": want https://",
		":7: Clusters.zzzzz.Containers.ReserveExtraRAM: size \"5 bushels\": want a number, then",
		":8: Clusters.zzzzz.Containers.CloudVMs.PollInterval: duration \"10\" has no unit",
	} {
		if len(noticesOrLines(lines, o.Path+want)) != 1 {
			t.Errorf("Load error lacks %q:\n%v", want, err)
		}
	}
	if len(lines) != 4 {
		t.Errorf("got %d problems; want 4:\n%v", len(lines), err)
	}
}

func noticesOrLines(lines []string, prefix string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func TestManagementListenAddress(t *testing.T) {
	for _, tc := range []struct {
		name, urls, want, wantNotice string
	}{
		{"the first InternalURL's host and port", `{"http://head:9007": {}, "http://other:9008": {}}`, "head:9007", "lists 2 URLs"},
		{"its ListenURL when set", `{"https://head.example.org:9007": {ListenURL: "http://0.0.0.0:9007"}}`, "0.0.0.0:9007", ""},
		{"the scheme's port when none is given", `{"http://head/": {}}`, "head:80", ""},
		{"https is served as plain http, with a warning", `{"https://head:9007": {}}`, "head:9007", "plain http"},
		{"the SAMPLE entry is not an address: the default stays", `{SAMPLE: {}}`, "127.0.0.1:9007", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts(t, nil)
			o.Path = writeFile(t, "config.yml", "Clusters:\n  zzzzz:\n    Services:\n      DispatchSLURM:\n        InternalURLs: "+tc.urls+"\n", 0o600)
			c, notices := mustLoad(t, o)
			if c.Management.Listen != tc.want {
				t.Errorf("management.listen = %q; want %q", c.Management.Listen, tc.want)
			}
			if tc.wantNotice != "" && len(noticesWith(notices, tc.wantNotice)) != 1 {
				t.Errorf("notices %v; want one with %q", notices, tc.wantNotice)
			}
		})
	}
}

func TestInstanceTypesDrawAWarningAboutTheConstraint(t *testing.T) {
	o := opts(t, nil)
	o.Path = writeFile(t, "config.yml", `Clusters:
  zzzzz:
    InstanceTypes:
      m4.large: {VCPUs: 2, RAM: 8GiB}
`, 0o600)
	_, notices := mustLoad(t, o)
	if w := noticesWith(notices, "InstanceTypes", "m4.large", "--constraint=instancetype"); len(w) != 1 || w[0].Level != Warn {
		t.Errorf("notices %v; want one warning about instance types", notices)
	}
}

func TestArvadosPlainHTTPControllerKeepsItsScheme(t *testing.T) {
	o := opts(t, nil)
	o.Path = writeFile(t, "config.yml", "Clusters:\n  zzzzz:\n    Services: {Controller: {ExternalURL: \"http://127.0.0.1:8000/\"}}\n", 0o600)
	c, _ := mustLoad(t, o)
	if c.API.Host != "http://127.0.0.1:8000" {
		t.Errorf("api.host = %q; want http://127.0.0.1:8000", c.API.Host)
	}
}
