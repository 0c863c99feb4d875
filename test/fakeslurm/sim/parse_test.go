package sim

import (
	"reflect"
	"strings"
	"testing"
)

func TestGetopt(t *testing.T) {
	specs := []optSpec{
		{"mem", 0, requiredArg, "mem"},
		{"hold", 'H', noArg, "hold"},
		{"nice", 0, optionalArg, "nice"},
		{"nodes", 'N', requiredArg, "nodes"},
		{"nodelist", 'w', requiredArg, "nodelist"},
		{"job-name", 'J', requiredArg, "job-name"},
		{"jobs", 'j', optionalArg, "jobs"},
	}
	tests := []struct {
		name    string
		args    []string
		stop    bool
		want    []opt
		rest    []string
		wantErr string
	}{
		{name: "a long option takes its value after an equals sign",
			args: []string{"--mem=100"}, want: []opt{{id: "mem", val: "100", hasVal: true, name: "--mem"}}},
		{name: "a long option takes its value from the next word",
			args: []string{"--mem", "100"}, want: []opt{{id: "mem", val: "100", hasVal: true, name: "--mem"}}},
		{name: "a unique prefix names a long option",
			args: []string{"--ho"}, want: []opt{{id: "hold", name: "--hold"}}},
		{name: "an ambiguous prefix lists the possibilities",
			args: []string{"--no"}, wantErr: "sbatch: option '--no' is ambiguous; possibilities: '--nodes' '--nodelist'"},
		{name: "an unknown long option is reported with its value",
			args: []string{"--bogus=3"}, wantErr: "sbatch: unrecognized option '--bogus=3'"},
		{name: "an unknown short option is reported",
			args: []string{"-Z"}, wantErr: "sbatch: invalid option -- 'Z'"},
		{name: "a missing value is reported",
			args: []string{"--mem"}, wantErr: "sbatch: option '--mem' requires an argument"},
		{name: "a missing short value is reported",
			args: []string{"-J"}, wantErr: "sbatch: option requires an argument -- 'J'"},
		{name: "a flag given a value is reported",
			args: []string{"--hold=1"}, wantErr: "sbatch: option '--hold' doesn't allow an argument"},
		{name: "short options cluster and take the rest of the word as a value",
			args: []string{"-HJname"}, want: []opt{{id: "hold", name: "-H"}, {id: "job-name", val: "name", hasVal: true, name: "-J"}}},
		{name: "an optional value must be attached",
			args: []string{"--nice", "5"}, want: []opt{{id: "nice", name: "--nice"}}, rest: []string{"5"}},
		{name: "an optional short value must be attached",
			args: []string{"-j", "8", "-j9"}, want: []opt{{id: "jobs", name: "-j"}, {id: "jobs", val: "9", hasVal: true, name: "-j"}}, rest: []string{"8"}},
		{name: "options end at the first word when stopping there",
			args: []string{"-H", "script", "-J", "x"}, stop: true, want: []opt{{id: "hold", name: "-H"}}, rest: []string{"script", "-J", "x"}},
		{name: "words are collected around options when permuting",
			args: []string{"a", "-H", "b"}, want: []opt{{id: "hold", name: "-H"}}, rest: []string{"a", "b"}},
		{name: "a double dash ends the options",
			args: []string{"--", "-H"}, rest: []string{"-H"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rest, err := getopt("sbatch", tt.args, specs, tt.stop)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) || !reflect.DeepEqual(rest, tt.rest) {
				t.Errorf("got %+v rest %q, want %+v rest %q", got, rest, tt.want, tt.rest)
			}
		})
	}
}

func TestParseTimeLimit(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"10", 10, true},
		{"1:30", 2, true},
		{"1:00", 1, true},
		{"2:03:04", 124, true},
		{"2-00:00:00", 2880, true},
		{"1-02:03:04", 1564, true},
		{"1-2", 1560, true},
		{"UNLIMITED", 0, true},
		{"infinite", 0, true},
		{"abc", 0, false},
		{"1:2:3:4", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseTimeLimit(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseTimeLimit(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseMiB(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"100", 100, true}, {"100M", 100, true}, {"1G", 1024, true}, {"2g", 2048, true},
		{"1T", 1048576, true}, {"512K", 1, true}, {"0", 0, true}, {"abc", 0, false}, {"", 0, false}, {"-1", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseMiB(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseMiB(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestFormatMiBKeepsHalfUnitsAndOtherwiseStaysExact(t *testing.T) {
	for in, want := range map[int64]string{
		0: "0", 10: "10M", 256: "256M", 1024: "1G", 1536: "1.50G", 2000: "2000M", 2048: "2G",
		19285: "19285M", 1048576: "1T",
	} {
		if got := formatMiB(in); got != want {
			t.Errorf("formatMiB(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestDurationsPrintAsSqueueAndScontrolDo(t *testing.T) {
	for secs, want := range map[int64][2]string{
		0: {"0:00", "00:00:00"}, 59: {"0:59", "00:00:59"}, 90: {"1:30", "00:01:30"},
		3600: {"1:00:00", "01:00:00"}, 93784: {"1-02:03:04", "1-02:03:04"},
	} {
		if got := squeueDuration(secs); got != want[0] {
			t.Errorf("squeueDuration(%d) = %q, want %q", secs, got, want[0])
		}
		if got := scontrolDuration(secs); got != want[1] {
			t.Errorf("scontrolDuration(%d) = %q, want %q", secs, got, want[1])
		}
	}
}

func TestExportEnv(t *testing.T) {
	env := []string{"A=1", "B=2", "SLURM_X=3"}
	tests := []struct {
		export string
		want   []string
	}{
		{"", env},
		{"ALL", env},
		{"NONE", nil},
		{"A", []string{"A=1", "SLURM_X=3"}},
		{"ALL,B=9", []string{"A=1", "SLURM_X=3", "B=9"}},
	}
	for _, tt := range tests {
		if got := exportEnv(env, tt.export); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("exportEnv(%q) = %q, want %q", tt.export, got, tt.want)
		}
	}
}

func TestScriptDirectivesStopAtTheFirstCommand(t *testing.T) {
	script := "#!/bin/sh\n#SBATCH --job-name=x -p down\n# a comment\n\n#SBATCH --nice=3 # trailing\necho hi\n#SBATCH --hold\n"
	var ids []string
	for _, o := range scriptDirectives([]byte(script)) {
		ids = append(ids, o.id+"="+o.val)
	}
	if got, want := strings.Join(ids, " "), "job-name=x partition=down nice=3"; got != want {
		t.Errorf("directives %q, want %q", got, want)
	}
}

func TestJobRecordsSurviveTheJournal(t *testing.T) {
	j := &Job{ID: 42, Name: "tab\there\nand\\backslash", UID: 1000, User: "u", Partition: "a,b",
		Nice: -5, Mem: 2048, MemPerCPU: true, TimeLimit: 90, Requeue: true, State: StateRunning,
		Completing: true, ExitStatus: 3, ExitSignal: 15, Submit: 1700000000, NodeList: "n1", RunnerPID: 77}
	got, err := decodeJob(string(j.encode(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, j) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, j)
	}
	if _, err := decodeJob("J1\t1\tx"); err == nil {
		t.Error("a short record decoded without error")
	}
	if _, err := decodeJob(strings.Replace(string(j.encode(nil)), "\t42\t", "\tx42\t", 1)); err == nil {
		t.Error("a record with a bad number decoded without error")
	}
}
