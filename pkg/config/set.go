package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/shlex"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// SourceKind says what kind of place a value came from.
type SourceKind int

// Kinds of source, from weakest to strongest.
const (
	FromDefault SourceKind = iota
	FromFile
	FromEnv
	FromFlag
)

// Source is where a value came from: used in every Validate error and in config dump.
type Source struct {
	Kind SourceKind
	// File is the configuration file (FromFile); Line its line, when known.
	File string
	Line int
	// Name is the key as the source spells it: the Arvados key
	// ("Clusters.zzzzz.Containers.CloudVMs.PollInterval"), our YAML key, the environment
	// variable, or the flag ("--poll-period").
	Name string
}

// String describes the source for people: "default", "/etc/arvados/config.yml:41
// (Clusters.zzzzz.Containers.CloudVMs.PollInterval)", "environment variable
// ARVADOS_API_HOST", "flag --poll-period".
func (s Source) String() string {
	switch s.Kind {
	case FromFile:
		where := s.File
		if s.Line > 0 {
			where += ":" + strconv.Itoa(s.Line)
		}
		if s.Name != "" {
			where += " (" + s.Name + ")"
		}
		return where
	case FromEnv:
		return "environment variable " + s.Name
	case FromFlag:
		if s.Name != "" {
			return "flag " + s.Name
		}
		return "flag"
	}
	return "default"
}

// Source returns where the value of key came from.
func (c *Config) Source(key string) Source {
	return c.sources[key] // the zero Source is FromDefault
}

// setSource records where key's value came from.
func (c *Config) setSource(key string, s Source) {
	if c.sources == nil {
		c.sources = make(map[string]Source)
	}
	c.sources[key] = s
}

// Set sets key (a dotted YAML key, as listed by Keys: "dispatch.poll_period") from a
// command-line flag's value, and records the flag as its source. Lists are split like a
// shell would split them (never run by one); slurm.environment takes KEY=VALUE words;
// durations and sizes take the YAML forms ("10s", "550MiB"); booleans 1/true/yes or
// 0/false/no. The error never shows a token's value.
func (c *Config) Set(key, value string) error {
	return c.SetFrom(key, value, Source{Kind: FromFlag})
}

// SetFrom is Set with the source to record, e.g. Source{Kind: FromFlag, Name:
// "--poll-period"} so that Validate names the flag the operator typed.
func (c *Config) SetFrom(key, value string, src Source) error {
	f, ok := fieldByKey(key)
	if !ok {
		return fmt.Errorf("unknown configuration key %q (see config dump for the keys)", key)
	}
	if err := setString(f.ptr(c), value); err != nil {
		return fmt.Errorf("%s (%s): %w", key, src, err)
	}
	c.setSource(key, src)
	return nil
}

// setString parses value into the field behind ptr.
func setString(ptr any, value string) error {
	switch p := ptr.(type) {
	case *string:
		*p = value
	case *Secret:
		*p = Secret(value)
	case *bool:
		b, err := arvados.ParseBool(value)
		if err != nil {
			return err
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("%q is not a whole number", value)
		}
		*p = n
	case *int64:
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", value)
		}
		*p = n
	case *float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", value)
		}
		*p = f
	case *time.Duration:
		d, err := ParseDuration(value)
		if err != nil {
			return err
		}
		*p = d
	case *ByteSize:
		b, err := ParseByteSize(value)
		if err != nil {
			return err
		}
		*p = b
	case *[]string:
		words, err := splitWords(value)
		if err != nil {
			return fmt.Errorf("%q: %w", value, err)
		}
		*p = words
	case *map[string]string:
		words, err := splitWords(value)
		if err != nil {
			return err
		}
		m, err := parseEnvMap(words)
		if err != nil {
			return err
		}
		*p = m
	default:
		panic(fmt.Sprintf("config: no parser for %T", ptr))
	}
	return nil
}

// splitWords splits s like a POSIX shell would (quotes, backslashes), without running one.
// Its error does not show s, which may hold a secret.
func splitWords(s string) ([]string, error) {
	words, err := shlex.Split(s)
	if err != nil {
		return nil, fmt.Errorf("cannot split into words: %w", err)
	}
	return words, nil
}
