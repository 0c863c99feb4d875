package config

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Redacted returns a copy of c with every non-empty token replaced by "<redacted>".
func (c *Config) Redacted() *Config {
	d := c.clone()
	for _, f := range fields {
		if s, ok := f.ptr(d).(*Secret); ok && *s != "" {
			*s = Redacted
		}
	}
	return d
}

// Dump writes the effective configuration as our YAML, every key with a comment saying
// where its value came from, tokens redacted. Its output is a valid file for --config
// (after putting the tokens back).
func (c *Config) Dump(w io.Writer) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(c.yamlNode()); err != nil {
		return fmt.Errorf("write the configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write the configuration: %w", err)
	}
	return nil
}

// MarshalYAML writes what Dump writes, so that a Config given to any YAML encoder shows
// no token.
func (c Config) MarshalYAML() (any, error) { return c.yamlNode(), nil }

// MarshalJSON writes the configuration as JSON objects by section with our keys, tokens
// redacted, so that a Config given to encoding/json or zap.Any shows no token.
func (c Config) MarshalJSON() ([]byte, error) {
	out := map[string]any{}
	for _, f := range fields {
		var v any = reflect.ValueOf(f.ptr(&c)).Elem().Interface()
		switch x := v.(type) {
		case time.Duration:
			v = FormatDuration(x)
		case ByteSize:
			v = x.String()
		case []string:
			if x == nil {
				v = []string{}
			}
		}
		section, name, ok := strings.Cut(f.key, ".")
		if !ok {
			out[f.key] = v
			continue
		}
		if out[section] == nil {
			out[section] = map[string]any{}
		}
		out[section].(map[string]any)[name] = v
	}
	return json.Marshal(out)
}

// yamlNode renders c as our YAML, each value with its source as a line comment.
func (c *Config) yamlNode() *yaml.Node {
	root := &yaml.Node{Kind: yaml.MappingNode}
	secs := map[string]*yaml.Node{}
	for _, f := range fields {
		val := valueNode(f.ptr(c))
		val.LineComment = c.Source(f.key).String()
		section, name, ok := strings.Cut(f.key, ".")
		if !ok {
			root.Content = append(root.Content, scalar(f.key, "!!str"), val)
			continue
		}
		sec := secs[section]
		if sec == nil {
			sec = &yaml.Node{Kind: yaml.MappingNode}
			secs[section] = sec
			root.Content = append(root.Content, scalar(section, "!!str"), sec)
		}
		sec.Content = append(sec.Content, scalar(name, "!!str"), val)
	}
	return root
}

func scalar(v, tag string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v}
}

// valueNode renders the value behind ptr as YAML; secrets are redacted.
func valueNode(ptr any) *yaml.Node {
	switch p := ptr.(type) {
	case *string:
		return scalar(*p, "!!str")
	case *Secret:
		return scalar(p.String(), "!!str")
	case *bool:
		return scalar(strconv.FormatBool(*p), "!!bool")
	case *int:
		return scalar(strconv.Itoa(*p), "!!int")
	case *int64:
		return scalar(strconv.FormatInt(*p, 10), "!!int")
	case *float64:
		return scalar(strconv.FormatFloat(*p, 'g', -1, 64), "!!float")
	case *time.Duration:
		return scalar(FormatDuration(*p), "!!str")
	case *ByteSize:
		return scalar(p.String(), "!!str")
	case *[]string:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, s := range *p {
			n.Content = append(n.Content, scalar(s, "!!str"))
		}
		return n
	case *map[string]string:
		n := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		for _, k := range slices.Sorted(maps.Keys(*p)) {
			n.Content = append(n.Content, scalar(k, "!!str"), scalar((*p)[k], "!!str"))
		}
		return n
	}
	panic(fmt.Sprintf("config: no YAML for %T", ptr))
}

// String is every key=value on one line, tokens redacted and job environment values
// hidden (they may hold secrets): fit for a log line.
func (c Config) String() string {
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f.key)
		b.WriteByte('=')
		if m, ok := f.ptr(&c).(*map[string]string); ok {
			b.WriteString("[" + strings.Join(slices.Sorted(maps.Keys(*m)), ",") + "]")
			continue
		}
		b.WriteString(formatValue(f.ptr(&c)))
	}
	return b.String()
}

// GoString keeps %#v from printing tokens.
func (c Config) GoString() string { return "config.Config{" + c.String() + "}" }
