package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// sections are the top-level mappings of our file, in file order.
func sections() []string {
	var out []string
	for _, f := range fields {
		if s, _, ok := strings.Cut(f.key, "."); ok && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// topLevel lists what may appear at the top of our file: the sections and the plain keys.
func topLevel() []string {
	out := sections()
	for _, f := range fields {
		if !strings.Contains(f.key, ".") {
			out = append(out, f.key)
		}
	}
	return out
}

// loadOurs applies our own YAML file (root is its top-level mapping) to c. Every unknown
// or duplicate key and every bad value is reported, each with the file and line.
func (c *Config) loadOurs(path string, root *yaml.Node) error {
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: want a mapping with the keys %s, not a %s",
			path, root.Line, strings.Join(topLevel(), ", "), kindName(root))
	}
	var errs []error
	seen := map[string]bool{}
	apply := func(key string, k, v *yaml.Node) {
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s:%d: %s is given twice", path, k.Line, key))
			return
		}
		seen[key] = true
		if isNull(v) {
			return // "key:" with no value keeps the default
		}
		f, _ := fieldByKey(key)
		if err := setNode(f.ptr(c), v); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %s: %w", path, v.Line, key, err))
			return
		}
		c.setSource(key, Source{Kind: FromFile, File: path, Line: v.Line})
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := resolve(root.Content[i]), resolve(root.Content[i+1])
		name := k.Value
		if _, ok := fieldByKey(name); ok {
			apply(name, k, v)
			continue
		}
		if !slices.Contains(sections(), name) {
			errs = append(errs, fmt.Errorf("%s:%d: unknown key %q (the top-level keys are %s)",
				path, k.Line, name, strings.Join(topLevel(), ", ")))
			continue
		}
		if isNull(v) {
			continue
		}
		if v.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("%s:%d: %s: want a mapping of its keys, not a %s", path, v.Line, name, kindName(v)))
			continue
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			kk, vv := resolve(v.Content[j]), resolve(v.Content[j+1])
			key := name + "." + kk.Value
			if _, ok := fieldByKey(key); !ok {
				errs = append(errs, fmt.Errorf("%s:%d: unknown key %q (the keys of %s are %s)",
					path, kk.Line, key, name, strings.Join(sectionKeys(name), ", ")))
				continue
			}
			apply(key, kk, vv)
		}
	}
	return errors.Join(errs...)
}

// sectionKeys lists the keys of one section, without the section prefix.
func sectionKeys(section string) []string {
	var out []string
	for _, f := range fields {
		if rest, ok := strings.CutPrefix(f.key, section+"."); ok {
			out = append(out, rest)
		}
	}
	return out
}
