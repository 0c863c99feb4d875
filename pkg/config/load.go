package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"

	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// EnvConfig names the Arvados cluster config file when no path is given, as in Arvados.
const EnvConfig = "ARVADOS_CONFIG"

// LoadOptions says where Load looks. Zero fields take the defaults listed with them.
type LoadOptions struct {
	// Path is the file given with --config: our YAML or an Arvados cluster config. It must
	// exist. Empty: $ARVADOS_CONFIG (which must exist when set), else DefaultPath if it
	// exists, else no file.
	Path string
	// ClusterID chooses the cluster of an Arvados config that has several.
	ClusterID string
	// DefaultPath is the file read when neither Path nor ARVADOS_CONFIG is given, if it
	// exists (default /etc/arvados/config.yml).
	DefaultPath string
	// Env looks up environment variables (default os.LookupEnv).
	Env func(string) (string, bool)
	// Stat and ReadFile reach the file system (default os.Stat, os.ReadFile).
	Stat     func(string) (fs.FileInfo, error)
	ReadFile func(string) ([]byte, error)
}

// Level is a Notice's importance.
type Level int

// Notice levels.
const (
	Info Level = iota
	Warn
)

// Notice is something Load wants the operator to know, for the caller to log.
type Notice struct {
	Level   Level
	Message string
}

func (n Notice) String() string {
	if n.Level == Warn {
		return "warning: " + n.Message
	}
	return n.Message
}

// LogNotices writes notices to log at Info or Warn.
func LogNotices(log *zap.Logger, notices []Notice) {
	for _, n := range notices {
		if n.Level == Warn {
			log.Warn(n.Message)
		} else {
			log.Info(n.Message)
		}
	}
}

// Load returns the configuration: the defaults, then the file (see LoadOptions.Path), then
// ARVADOS_API_HOST, ARVADOS_API_TOKEN and ARVADOS_API_HOST_INSECURE when set and not empty.
// The caller then applies flags with Set and calls Validate. A file is an Arvados cluster
// config when it has a top-level Clusters key, else ours; every problem in it is reported
// at once. Notices list what the caller should log: the Arvados keys we ignore, a token
// in a file others can read, environment variables that override the file.
func Load(opts LoadOptions) (*Config, []Notice, error) {
	opts = opts.withDefaults()
	c := Default()
	path, namedBy, err := opts.findFile()
	if err != nil {
		return nil, nil, err
	}
	var notices []Notice
	if path != "" {
		n, err := c.loadFile(opts, path, namedBy)
		notices = append(notices, n...)
		if err != nil {
			return nil, notices, err
		}
	}
	n, err := c.applyEnv(opts.Env)
	notices = append(notices, n...)
	if err != nil {
		return nil, notices, err
	}
	return c, notices, nil
}

func (o LoadOptions) withDefaults() LoadOptions {
	if o.DefaultPath == "" {
		o.DefaultPath = DefaultArvadosConfigPath
	}
	if o.Env == nil {
		o.Env = os.LookupEnv
	}
	if o.Stat == nil {
		o.Stat = os.Stat
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	return o
}

// findFile returns the file to read, if any, and who named it: "" for the default path
// (then a file we may not read is skipped with a warning), EnvConfig, or "config" for
// LoadOptions.Path.
func (o LoadOptions) findFile() (path, namedBy string, err error) {
	if o.Path != "" {
		return o.Path, "config", nil
	}
	if p, ok := o.Env(EnvConfig); ok && p != "" {
		return p, EnvConfig, nil
	}
	switch _, err := o.Stat(o.DefaultPath); {
	case err == nil:
		return o.DefaultPath, "", nil
	case errors.Is(err, fs.ErrNotExist):
		return "", "", nil
	default:
		return "", "", fmt.Errorf("look for the Arvados config %s: %w (give a file with --config)", o.DefaultPath, err)
	}
}

// loadFile reads and applies one file, our YAML or an Arvados cluster config.
func (c *Config) loadFile(o LoadOptions, path, namedBy string) ([]Notice, error) {
	data, err := o.ReadFile(path)
	switch {
	case err != nil && namedBy == "" && errors.Is(err, fs.ErrPermission):
		return []Notice{{Level: Warn, Message: fmt.Sprintf(
			"not using %s: %v (give a file with --config, or set %s and %s)",
			path, err, arvados.EnvHost, arvados.EnvToken)}}, nil
	case err != nil && namedBy == EnvConfig:
		return nil, fmt.Errorf("read the config file named by %s: %w", EnvConfig, err)
	case err != nil:
		return nil, fmt.Errorf("read the config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: not YAML: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil // an empty file: the defaults
	}
	root := resolve(doc.Content[0])
	var notices []Notice
	if _, clusters := lookupKey(root, "Clusters"); clusters != nil {
		notices, err = c.loadArvados(path, root, o.ClusterID)
	} else {
		err = c.loadOurs(path, root)
	}
	if err != nil {
		return notices, err
	}
	if n, ok := c.tokenPermissionNotice(o, path); ok {
		notices = append(notices, n)
	}
	return notices, nil
}

// tokenPermissionNotice warns when the file gave us a token and group or others may read it.
func (c *Config) tokenPermissionNotice(o LoadOptions, path string) (Notice, bool) {
	hasToken := false
	for _, key := range []string{"api.token", "management.token"} {
		f, _ := fieldByKey(key)
		if s := c.Source(key); s.Kind == FromFile && s.File == path && *f.ptr(c).(*Secret) != "" {
			hasToken = true
		}
	}
	if !hasToken {
		return Notice{}, false
	}
	st, err := o.Stat(path)
	if err != nil {
		return Notice{Level: Warn, Message: fmt.Sprintf("%s holds a token, and its permissions are unknown: %v", path, err)}, true
	}
	perm := st.Mode().Perm()
	who := map[fs.FileMode]string{0o040: "its group", 0o004: "everyone", 0o044: "its group and everyone"}[perm&0o044]
	if who == "" {
		return Notice{}, false
	}
	return Notice{Level: Warn, Message: fmt.Sprintf(
		"%s holds a token and is readable by %s (mode %04o): chmod 600 %s", path, who, perm, path)}, true
}

// envKeys are the environment variables that override the file.
var envKeys = []struct{ name, key string }{
	{arvados.EnvHost, "api.host"},
	{arvados.EnvToken, "api.token"},
	{arvados.EnvInsecure, "api.insecure"},
}

// applyEnv applies ARVADOS_API_* and notes each that overrides a value from the file.
func (c *Config) applyEnv(env func(string) (string, bool)) ([]Notice, error) {
	var notices []Notice
	var errs []error
	for _, e := range envKeys {
		v, ok := env(e.name)
		if !ok || v == "" {
			continue
		}
		f, _ := fieldByKey(e.key)
		ptr := reflect.ValueOf(f.ptr(c)).Elem()
		before, prev := ptr.Interface(), c.Source(e.key)
		if err := setString(f.ptr(c), v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s: %w", e.name, err))
			continue
		}
		c.setSource(e.key, Source{Kind: FromEnv, Name: e.name})
		if prev.Kind == FromFile && ptr.Interface() != before {
			notices = append(notices, Notice{Level: Info, Message: fmt.Sprintf(
				"%s overrides %s from %s", e.name, e.key, prev)})
		}
	}
	return notices, errors.Join(errs...)
}
