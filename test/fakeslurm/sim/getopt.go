package sim

import (
	"fmt"
	"strings"
)

// Argument kinds of an option, as getopt_long has them.
const (
	noArg       = 0
	requiredArg = 1
	optionalArg = 2
)

// optSpec is one option: a long name (may be empty), a short letter (0 for none), its
// argument kind and the canonical id the command switches on.
type optSpec struct {
	long  string
	short byte
	arg   int
	id    string
}

// opt is one parsed option.
type opt struct {
	id     string
	val    string
	hasVal bool
	name   string // as typed, for messages: "--mem" or "-c"
}

// getoptError is a GNU getopt diagnostic; the caller adds its "Try … --help" line.
type getoptError struct{ msg string }

func (e *getoptError) Error() string { return e.msg }

// getopt parses args (without argv[0]) the way glibc's getopt_long does: long options may
// be abbreviated to a unique prefix, "--" ends the options, and the messages are glibc's.
// With stopAtFirst the first non-option ends the options (an optstring starting with
// "+"); otherwise non-options are collected wherever they are (glibc's permutation).
func getopt(prog string, args []string, specs []optSpec, stopAtFirst bool) ([]opt, []string, error) {
	var opts []opt
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return opts, append(rest, args[i+1:]...), nil
		case strings.HasPrefix(a, "--"):
			o, used, err := parseLong(prog, a, args[i+1:], specs)
			if err != nil {
				return nil, nil, err
			}
			i += used
			opts = append(opts, o)
		case len(a) > 1 && a[0] == '-':
			short, used, err := parseShort(prog, a, args[i+1:], specs)
			if err != nil {
				return nil, nil, err
			}
			i += used
			opts = append(opts, short...)
		default:
			if stopAtFirst {
				return opts, append(rest, args[i:]...), nil
			}
			rest = append(rest, a)
		}
	}
	return opts, rest, nil
}

func parseLong(prog, a string, next []string, specs []optSpec) (opt, int, error) {
	body := a[2:]
	name, val, hasVal := strings.Cut(body, "=")
	var exact *optSpec
	var matches []*optSpec
	for k := range specs {
		s := &specs[k]
		if s.long == "" || !strings.HasPrefix(s.long, name) {
			continue
		}
		if s.long == name {
			exact = s
			break
		}
		dup := false
		for _, m := range matches {
			if m.id == s.id && m.arg == s.arg {
				dup = true
			}
		}
		if !dup {
			matches = append(matches, s)
		}
	}
	s := exact
	if s == nil {
		switch len(matches) {
		case 0:
			return opt{}, 0, &getoptError{fmt.Sprintf("%s: unrecognized option '%s'", prog, a)}
		case 1:
			s = matches[0]
		default:
			var b strings.Builder
			fmt.Fprintf(&b, "%s: option '--%s' is ambiguous; possibilities:", prog, name)
			for _, m := range matches {
				fmt.Fprintf(&b, " '--%s'", m.long)
			}
			return opt{}, 0, &getoptError{b.String()}
		}
	}
	o := opt{id: s.id, name: "--" + s.long}
	switch s.arg {
	case noArg:
		if hasVal {
			return opt{}, 0, &getoptError{fmt.Sprintf("%s: option '--%s' doesn't allow an argument", prog, s.long)}
		}
	case requiredArg:
		if hasVal {
			o.val, o.hasVal = val, true
		} else if len(next) > 0 {
			o.val, o.hasVal = next[0], true
			return o, 1, nil
		} else {
			return opt{}, 0, &getoptError{fmt.Sprintf("%s: option '--%s' requires an argument", prog, s.long)}
		}
	case optionalArg:
		o.val, o.hasVal = val, hasVal
	}
	return o, 0, nil
}

func parseShort(prog, a string, next []string, specs []optSpec) ([]opt, int, error) {
	var out []opt
	for k := 1; k < len(a); k++ {
		c := a[k]
		var s *optSpec
		for n := range specs {
			if specs[n].short == c && c != 0 {
				s = &specs[n]
				break
			}
		}
		if s == nil {
			return nil, 0, &getoptError{fmt.Sprintf("%s: invalid option -- '%c'", prog, c)}
		}
		o := opt{id: s.id, name: "-" + string(c)}
		switch s.arg {
		case noArg:
			out = append(out, o)
			continue
		case requiredArg:
			if k+1 < len(a) {
				o.val, o.hasVal = a[k+1:], true
				return append(out, o), 0, nil
			}
			if len(next) > 0 {
				o.val, o.hasVal = next[0], true
				return append(out, o), 1, nil
			}
			return nil, 0, &getoptError{fmt.Sprintf("%s: option requires an argument -- '%c'", prog, c)}
		case optionalArg:
			if k+1 < len(a) {
				o.val, o.hasVal = a[k+1:], true
			}
			return append(out, o), 0, nil
		}
	}
	return out, 0, nil
}
