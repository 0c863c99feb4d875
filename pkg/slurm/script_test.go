package slurm

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBatchScript(t *testing.T) {
	got, err := BatchScript([]string{"/usr/bin/crunch-run", "-cgroup-parent-subsystem=memory", "it's"}, testUUID)
	if err != nil {
		t.Fatal(err)
	}
	want := "#!/bin/sh\nexec '/usr/bin/crunch-run' '-cgroup-parent-subsystem=memory' 'it'\\''s' '" + testUUID + "'\n"
	if string(got) != want {
		t.Errorf("script\n%s\nwant\n%s", got, want)
	}
}

func TestBatchScriptRefuses(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		uuid    string
	}{
		{"a bad uuid", []string{"crunch-run"}, "zzzzz-dz642-x'; rm -rf /"},
		{"no command", nil, testUUID},
		{"an empty program", []string{""}, testUUID},
		{"a word with a newline", []string{"crunch-run", "a\nb"}, testUUID},
		{"a word with a carriage return", []string{"crunch-run", "a\rb"}, testUUID},
		{"a word with a NUL", []string{"crunch-run", "a\x00b"}, testUUID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := BatchScript(tt.command, tt.uuid); err == nil {
				t.Fatalf("script %q", s)
			}
		})
	}
}

// The script, run by a real sh, passes exactly our words to the program: the program is this
// test binary in "json-args" helper mode.
func TestBatchScriptPassesExactWordsThroughSh(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	words := []string{"plain", "with space", "it's", `"double"`, "$HOME", "`id`", "$(id)", "a;b", "a|b", "*", "~", "\\", "-n", "", "\t", "é ü"}
	script, err := BatchScript(append([]string{os.Args[0]}, words...), testUUID)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "job.sh")
	if err := os.WriteFile(path, script, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sh, path)
	cmd.Env = append(os.Environ(), "SLURM_TEST_HELPER_MODE=json-args")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if want := append(words, testUUID); !slices.Equal(got, want) {
		t.Errorf("sh passed %q, want %q", got, want)
	}
}

// unquoteExecLine reads the script back: the words of its exec line, single-quoted as
// BatchScript writes them.
func unquoteExecLine(script string) ([]string, bool) {
	body, ok := strings.CutPrefix(script, "#!/bin/sh\nexec")
	if !ok || !strings.HasSuffix(body, "\n") || strings.Count(body, "\n") != 1 {
		return nil, false
	}
	body = strings.TrimSuffix(body, "\n")
	var words []string
	for body != "" {
		rest, ok := strings.CutPrefix(body, " '")
		if !ok {
			return nil, false
		}
		var w strings.Builder
		for {
			i := strings.IndexByte(rest, '\'')
			if i < 0 {
				return nil, false
			}
			w.WriteString(rest[:i])
			rest = rest[i+1:]
			if after, ok := strings.CutPrefix(rest, `\''`); ok {
				w.WriteByte('\'')
				rest = after
				continue
			}
			break
		}
		words = append(words, w.String())
		body = rest
	}
	return words, true
}

func FuzzBatchScript(f *testing.F) {
	f.Add("/usr/bin/crunch-run", "-cgroup-parent-subsystem=memory", "it's", testUUID)
	f.Add("crunch-run", "''''", `\'`, testUUID)
	f.Add("crunch-run", "a\nb", "$(id)", testUUID)
	f.Add("x", "", "", "zzzzz-dz642-short")
	f.Fuzz(func(t *testing.T, prog, arg1, arg2, uuid string) {
		command := []string{prog, arg1, arg2}
		script, err := BatchScript(command, uuid)
		if err != nil {
			return
		}
		words, ok := unquoteExecLine(string(script))
		if !ok {
			t.Fatalf("cannot read back %q", script)
		}
		if want := append(command, uuid); !slices.Equal(words, want) {
			t.Fatalf("script %q carries %q, want %q", script, words, want)
		}
	})
}
