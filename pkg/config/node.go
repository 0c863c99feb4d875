package config

import (
	"fmt"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// resolve follows YAML aliases (*anchor) to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent or an explicit null ("key:" or "key: ~").
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// kindName names a node's kind for error messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "single value"
}

// setNode parses the YAML value n into the field behind ptr. Lists take a YAML list, or a
// string split like a shell would; maps take a mapping of strings. Errors never show the
// value of a secret.
func setNode(ptr any, n *yaml.Node) error {
	n = resolve(n)
	switch p := ptr.(type) {
	case *[]string:
		switch n.Kind {
		case yaml.ScalarNode:
			return setString(p, n.Value)
		case yaml.SequenceNode:
			list := make([]string, 0, len(n.Content))
			for i, item := range n.Content {
				item = resolve(item)
				if item.Kind != yaml.ScalarNode || item.ShortTag() == "!!null" {
					return fmt.Errorf("item %d: want a string, not a %s", i+1, kindName(item))
				}
				list = append(list, item.Value)
			}
			*p = list
			return nil
		}
		return fmt.Errorf("want a list of strings, not a %s", kindName(n))
	case *map[string]string:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("want a mapping of NAME: value, not a %s", kindName(n))
		}
		m := make(map[string]string, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
			if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: want NAME: value", k.Line)
			}
			if v.ShortTag() == "!!null" {
				m[k.Value] = ""
			} else {
				m[k.Value] = v.Value
			}
		}
		*p = m
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a single value, not a %s", kindName(n))
	}
	switch p := ptr.(type) {
	case *bool:
		if err := n.Decode(p); err != nil {
			return fmt.Errorf("%q is not true or false", n.Value)
		}
		return nil
	case *int, *int64:
		if n.ShortTag() != "!!int" || n.Decode(p) != nil {
			return fmt.Errorf("%q is not a whole number", n.Value)
		}
		return nil
	case *float64:
		if err := n.Decode(p); err != nil {
			return fmt.Errorf("%q is not a number", n.Value)
		}
		return nil
	}
	return setString(ptr, n.Value)
}

// assignNonZero parses n into a fresh value of key's type and, unless keepDefaultIfZero
// and the value is the zero value, stores it in c. It reports whether c changed.
func assignNonZero(c *Config, key string, n *yaml.Node, keepDefaultIfZero bool) (bool, error) {
	f, ok := fieldByKey(key)
	if !ok {
		panic("config: unknown key " + key)
	}
	p := f.ptr(&Config{})
	if err := setNode(p, n); err != nil {
		return false, err
	}
	v := reflect.ValueOf(p).Elem()
	if keepDefaultIfZero && v.IsZero() {
		return false, nil
	}
	reflect.ValueOf(f.ptr(c)).Elem().Set(v)
	return true, nil
}
