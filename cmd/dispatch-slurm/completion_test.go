package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompletionPrintsAScriptForEachShell(t *testing.T) {
	for shell, want := range map[string][]string{
		"bash": {"complete -o bashdefault -o default -o nospace -F _dispatch_slurm_complete dispatch-slurm", "--generate-bash-completion"},
		"zsh":  {"#compdef dispatch-slurm", "compdef _dispatch_slurm dispatch-slurm", "--generate-bash-completion"},
		"fish": {"complete -c dispatch-slurm", "'containers'", "-l dry-run"},
	} {
		out, errOut, err := appOutput("completion", shell)
		if err != nil {
			t.Errorf("completion %s: %v\n%s", shell, err, errOut)
			continue
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("the %s script does not contain %q", shell, w)
			}
		}
	}
}

func TestCompletionRefusesAnUnknownOrMissingShell(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		_, _, err := appOutput(args...)
		if err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), "bash, zsh or fish") {
			t.Errorf("%v: err %v (exit %d), want a usage error naming the shells", args, err, exitCode(err))
		}
	}
}

func TestGenerateBashCompletionListsSubcommands(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"run", "config", "containers", "jobs", "completion", "version"}},
		{[]string{"containers"}, []string{"list", "unlock", "cancel"}},
		{[]string{"config"}, []string{"check", "dump"}},
		{[]string{"completion"}, []string{"bash", "zsh", "fish"}},
	} {
		out, errOut, err := completeWith(t, append(tc.args, "--generate-bash-completion")...)
		if err != nil {
			t.Errorf("%v --generate-bash-completion: %v\n%s", tc.args, err, errOut)
		}
		lines := strings.Fields(out)
		for _, w := range tc.want {
			if !strings.Contains(" "+strings.Join(lines, " ")+" ", " "+w+" ") {
				t.Errorf("%v --generate-bash-completion does not list %q:\n%s", tc.args, w, out)
			}
		}
	}
	out, _, _ := completeWith(t, "containers", "unlock", "--generate-bash-completion")
	if strings.Contains(out, "help") {
		t.Errorf("completion offers the help command as a leaf command's argument:\n%s", out)
	}
}

// completeWith runs the app with args, and with os.Args as the shell would give them:
// urfave/cli v2 reads os.Args (not the arguments given to Run) to tell whether a flag is
// being completed. No test of this package runs in parallel.
func completeWith(t *testing.T, args ...string) (string, string, error) {
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = append([]string{"dispatch-slurm"}, args...)
	return appOutput(args...)
}

// TestTheBashScriptAsksTheBinaryAndFiltersItsAnswer runs the bash script with a stand-in
// dispatch-slurm function that records what it was asked.
func TestTheBashScriptAsksTheBinaryAndFiltersItsAnswer(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "completion.bash")
	if err := os.WriteFile(script, []byte(bashCompletion), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		words string
		asked string
		want  string
	}{
		{"a command is completed from the binary's list", "dispatch-slurm cont", "--generate-bash-completion", "containers"},
		{"a subcommand is asked with the words before it", "dispatch-slurm containers un", "containers --generate-bash-completion", "unlock"},
		{"a flag is asked with the dash typed so far", "dispatch-slurm containers unlock --dr",
			"containers unlock --dr --generate-bash-completion", "--dry-run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked := filepath.Join(dir, "asked")
			prog := `source "$1"; asked=$2
dispatch-slurm() { echo "$*" > "$asked"; printf '%s\n' containers config unlock cancel --dry-run --yes; }
COMP_WORDS=(` + tc.words + `); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_dispatch_slurm_complete
echo "${COMPREPLY[*]}"`
			cmd := exec.Command(bash, "-c", prog, "bash", script, asked)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Errorf("completions %q, want %q", got, tc.want)
			}
			if got, _ := os.ReadFile(asked); strings.TrimSpace(string(got)) != tc.asked {
				t.Errorf("the binary was asked %q, want %q", strings.TrimSpace(string(got)), tc.asked)
			}
		})
	}
}

func TestEveryCommandShowsAnExampleInItsHelp(t *testing.T) {
	var paths [][]string
	for _, c := range newApp(nil, nil).Commands {
		paths = append(paths, []string{c.Name})
		for _, s := range c.Subcommands {
			paths = append(paths, []string{c.Name, s.Name})
		}
	}
	for _, p := range paths {
		out, _, err := appOutput(append(p, "--help")...)
		if err != nil || !strings.Contains(out, "Example:") || !strings.Contains(out, "   dispatch-slurm "+p[0]) {
			t.Errorf("%v --help: err %v, no example:\n%s", p, err, out)
		}
	}
	if len(paths) < 12 {
		t.Errorf("only %d commands found: %v", len(paths), paths)
	}
}
