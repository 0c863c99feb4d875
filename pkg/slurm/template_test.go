package slurm

import (
	"slices"
	"strings"
	"testing"
)

var testRes = Resources{VCPUs: 2, MemMiB: 1574, ScratchMiB: 2048, Partitions: []string{"a", "b.c"}, GPUs: 0, MaxRunMinutes: 0}

func TestTemplateExpand(t *testing.T) {
	tests := []struct {
		name string
		args []string
		gpu  []string
		res  Resources
		want []string
	}{
		{"the default template drops our job name and keeps the rest",
			DefaultTemplateArgs(), nil, testRes,
			[]string{"--mem=1574", "--cpus-per-task=2", "--tmp=2048", "--partition=a,b.c"}},
		{"no partitions drops --partition",
			DefaultTemplateArgs(), nil, Resources{VCPUs: 1, MemMiB: 551, ScratchMiB: 0},
			[]string{"--mem=551", "--cpus-per-task=1", "--tmp=0"}},
		{"GPU arguments are appended when GPUs are asked for",
			DefaultTemplateArgs(), DefaultGPUArgs(), Resources{VCPUs: 4, MemMiB: 10, ScratchMiB: 1, GPUs: 2},
			[]string{"--mem=10", "--cpus-per-task=4", "--tmp=1", "--gpus=2"}},
		{"GPU arguments are left out otherwise",
			[]string{"--mem=%M"}, []string{"--gres=gpu:%G"}, Resources{MemMiB: 10},
			[]string{"--mem=10"}},
		{"a run time limit in minutes, dropped when there is none",
			[]string{"--time=%W", "--comment=%U"}, nil, Resources{MaxRunMinutes: 61},
			[]string{"--time=61", "--comment=" + testUUID}},
		{"no run time limit drops the argument",
			[]string{"--time=%W", "--comment=%U"}, nil, Resources{},
			[]string{"--comment=" + testUUID}},
		{"several placeholders and percent signs in one argument",
			[]string{"--comment=%C cpus, %M MiB, %T MiB, %G gpus, 100%%"}, nil, Resources{VCPUs: 3, MemMiB: 4, ScratchMiB: 5},
			[]string{"--comment=3 cpus, 4 MiB, 5 MiB, 0 gpus, 100%"}},
		{"literal arguments and separate option values pass through",
			[]string{"--account", "arvados", "-p", "batch", "--exclusive", "--output=slurm-%%j.out"}, nil, testRes,
			[]string{"--account", "arvados", "-p", "batch", "--exclusive", "--output=slurm-%j.out"}},
		{"placeholders in short options' values and separate values",
			[]string{"-c%C", "--comment", "mem %M", "-p%P"}, nil, testRes,
			[]string{"-c2", "--comment", "mem 1574", "-pa,b.c"}},
		{"job names given as %U in any spelling are dropped",
			[]string{"-J%U", "--job-name", "%U", "-J", "%U", "--job=%U", "-HJ%U", "--mem=%M"}, nil, Resources{MemMiB: 1},
			[]string{"--mem=1"}},
		{"an empty template",
			nil, nil, testRes, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := ParseTemplateGPU(tt.args, tt.gpu)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tmpl.Expand(testUUID, tt.res)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Expand = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseTemplateRefusesBadTemplates(t *testing.T) {
	tests := []struct {
		name string
		args []string
		gpu  []string
		want string // in the error
	}{
		{"an unknown placeholder", []string{"--mem=%Q"}, nil, "unknown placeholder %Q"},
		{"a lone percent sign at the end", []string{"--comment=100%"}, nil, "lone %"},
		{"another job name", []string{"--job-name=foo"}, nil, "job name"},
		{"another job name in a separate argument", []string{"--job-name", "%C"}, nil, "job name"},
		{"an abbreviated job name option", []string{"--j=x"}, nil, "job name"},
		{"a short job name option", []string{"-Jfoo"}, nil, "job name"},
		{"a short job name grouped after a flag", []string{"-HJfoo"}, nil, "job name"},
		{"a job name option with nothing after it", []string{"--job-name"}, nil, "job name"},
		{"an argument that is not an option", []string{"script.sh"}, nil, "not an option"},
		{"an argument after a flag with a value", []string{"--mem=1", "stray"}, nil, "not an option"},
		{"an empty argument", []string{""}, nil, "empty"},
		{"a newline", []string{"--comment=a\nb"}, nil, "newline"},
		{"requeueing", []string{"--requeue"}, nil, "--requeue"},
		{"a nice value", []string{"--nice=5"}, nil, "--nice"},
		{"an abbreviation that could be --nice", []string{"--n=1"}, nil, "--nice"},
		{"a job array", []string{"--array=1-3"}, nil, "--array"},
		{"a short job array", []string{"-a", "1-3"}, nil, "--array"},
		{"waiting for the job", []string{"-W"}, nil, "--wait"},
		{"%P in a separate value", []string{"-p", "%P"}, nil, "same argument"},
		{"a placeholder in a short option's name", []string{"-%P0"}, nil, "option's value"},
		{"a placeholder in a long option's name", []string{"--%P=1"}, nil, "option's value"},
		{"a placeholder in a long option without a value", []string{"--x%C"}, nil, "option's value"},
		{"a placeholder after a groupable flag", []string{"-H%C"}, nil, "option's value"},
		{"a bad GPU argument", nil, []string{"--gpus=%X"}, "GPU argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTemplateGPU(tt.args, tt.gpu)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	_, err := ParseTemplate([]string{"--mem=%Q", "--job-name=x"})
	if err == nil || !strings.Contains(err.Error(), "%Q") || !strings.Contains(err.Error(), "job name") {
		t.Errorf("all problems at once: %v", err)
	}
}

func TestExpandRefusesWhatMustNotReachSbatch(t *testing.T) {
	tmpl, err := ParseTemplate(DefaultTemplateArgs())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		uuid string
		res  Resources
	}{
		{"a bad uuid", "zzzzz-dz642-x;rm -rf", testRes},
		{"a hostile partition", testUUID, Resources{Partitions: []string{"debug;touch /tmp/x"}}},
		{"a partition with a comma", testUUID, Resources{Partitions: []string{"a,b"}}},
		{"an empty partition", testUUID, Resources{Partitions: []string{""}}},
		{"negative memory", testUUID, Resources{MemMiB: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if args, err := tmpl.Expand(tt.uuid, tt.res); err == nil {
				t.Fatalf("Expand = %q", args)
			}
		})
	}
}

func TestTemplateString(t *testing.T) {
	tmpl, err := ParseTemplate([]string{"--mem=%M", "--partition=%P"})
	if err != nil {
		t.Fatal(err)
	}
	if s := tmpl.String(); s != "--mem=%M --partition=%P (GPU: --gpus=%G)" {
		t.Errorf("String() = %q", s)
	}
}

func FuzzTemplateExpand(f *testing.F) {
	f.Add("--mem=%M --cpus-per-task=%C --tmp=%T --partition=%P --time=%W", "--gpus=%G", 2, int64(1574), int64(0), "a,b", 1, int64(61))
	f.Add("--comment=100%% %U", "", 1, int64(1), int64(1), "", 0, int64(0))
	f.Add("-J %U -p batch", "--gres=gpu:%G", 64, int64(1<<40), int64(1<<30), "gpu", 8, int64(0))
	f.Add("--x=%", "%Z", 0, int64(0), int64(0), "debug;touch /tmp/x", -1, int64(-1))
	f.Fuzz(func(t *testing.T, args, gpu string, vcpus int, mem, scratch int64, parts string, gpus int, minutes int64) {
		tmpl, err := ParseTemplateGPU(strings.Fields(args), strings.Fields(gpu))
		if err != nil {
			return
		}
		var partitions []string
		if parts != "" {
			partitions = strings.Split(parts, ",")
		}
		res := Resources{VCPUs: vcpus, MemMiB: mem, ScratchMiB: scratch, Partitions: partitions, GPUs: gpus, MaxRunMinutes: minutes}
		out, err := tmpl.Expand(testUUID, res)
		if err != nil {
			return
		}
		for _, p := range partitions {
			if !ValidPartition(p) {
				t.Fatalf("expanded with invalid partition %q: %q", p, out)
			}
		}
		if len(out) > len(strings.Fields(args))+len(strings.Fields(gpu)) {
			t.Fatalf("more arguments out than in: %q", out)
		}
		inOpts := map[string]bool{}
		for _, a := range append(strings.Fields(args), strings.Fields(gpu)...) {
			// Option names are literal (placeholders may only fill values), up to %% → %.
			opt, _, _ := optionOf(strings.ReplaceAll(a, "%%", "%"))
			inOpts[opt] = true
		}
		for i, a := range out {
			if opt, _, _ := optionOf(a); !inOpts[opt] {
				t.Fatalf("expansion made option %q, not in the template: %q", opt, out)
			}
			if strings.ContainsAny(a, "\x00\n") {
				t.Fatalf("argument %q", a)
			}
			opt, value, hasValue := optionOf(a)
			if opt == "job-name" && !(hasValue && value == testUUID) {
				t.Fatalf("expanded a job name: %q", out)
			}
			if forbidden[opt] {
				t.Fatalf("expanded a forbidden option: %q", out)
			}
			if opt == "" && (i == 0 || !takesSeparateValue(out[i-1])) {
				t.Fatalf("expanded a non-option where sbatch would take it for the script: %q", out)
			}
		}
		if err := checkSubmitArgs(testUUID, out); err != nil {
			t.Fatalf("Submit would refuse what Expand made: %v (%q)", err, out)
		}
	})
}
