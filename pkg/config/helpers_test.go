package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// opts returns LoadOptions that see only env and never the machine's own
// /etc/arvados/config.yml or environment.
func opts(t *testing.T, env map[string]string) LoadOptions {
	t.Helper()
	return LoadOptions{
		DefaultPath: filepath.Join(t.TempDir(), "absent", "config.yml"),
		Env: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
	}
}

// writeFile writes content to a new file with mode perm and returns its path.
func writeFile(t *testing.T, name, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return p
}

// testdata copies a file of testdata/ to a private (0600) temporary file: a checkout's
// permissions would otherwise decide whether the token warning appears.
func testdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, name, string(b), 0o600)
}

// mustLoad loads with o and fails the test on an error.
func mustLoad(t *testing.T, o LoadOptions) (*Config, []Notice) {
	t.Helper()
	c, notices, err := Load(o)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c, notices
}

// noticesWith returns the notices whose message contains every one of subs.
func noticesWith(notices []Notice, subs ...string) []Notice {
	var out []Notice
next:
	for _, n := range notices {
		for _, s := range subs {
			if !strings.Contains(n.Message, s) {
				continue next
			}
		}
		out = append(out, n)
	}
	return out
}

// errLines splits a joined error into its lines.
func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}
