package config

import (
	"os"
	"strings"
	"testing"
)

// readmeRows renders Keys() as the rows of the README's configuration reference table.
func readmeRows() []string {
	var rows []string
	for _, k := range Keys() {
		arv := k.ArvadosKey
		if arv == "" {
			arv = "—"
		}
		def := k.Default
		if def == "" {
			def = `""`
		}
		rows = append(rows, "| `"+k.Name+"` | `"+def+"` | "+k.Help+" | "+arv+" |")
	}
	return rows
}

// The README's configuration reference is Keys() rendered: a key added, renamed or given a
// new default must show there too. On failure the test prints the rows to paste.
func TestTheREADMEConfigurationReferenceMatchesKeys(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const header = "| key | default | meaning | Arvados key (under `Clusters.<id>`) |"
	text := string(b)
	i := strings.Index(text, header)
	if i < 0 {
		t.Fatalf("README.md has no configuration table headed %q", header)
	}
	var got []string
	for _, line := range strings.Split(text[i:], "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		got = append(got, line)
	}
	want := readmeRows()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("README.md's configuration table differs from Keys(); its rows should be:\n%s", strings.Join(want, "\n"))
	}
}
