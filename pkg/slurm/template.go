package slurm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// DefaultTemplateArgs is the incumbent's sbatch argument list.
func DefaultTemplateArgs() []string {
	return []string{"--job-name=%U", "--mem=%M", "--cpus-per-task=%C", "--tmp=%T", "--partition=%P"}
}

// DefaultGPUArgs are appended to the arguments when a container asks for GPUs.
func DefaultGPUArgs() []string { return []string{"--gpus=%G"} }

// Template is a parsed sbatch argument template. Placeholders:
//
//	%U container uuid        %C vcpus                 %M MiB of ram+keep_cache_ram+reserve
//	%T MiB of scratch        %P partitions, by commas %G GPU count
//	%W minutes of max_run_time (rounded up)           %% a percent sign
//
// An argument whose %P or %W expands to nothing (no partitions, no run time limit) is
// dropped. The job name is always the container uuid: --job-name/-J is refused unless its
// value is %U (then it is dropped, since Submit names the job itself).
type Template struct {
	args, gpuArgs []tmplArg
}

// tmplArg is one argument: literal text and placeholders, in order.
type tmplArg struct {
	raw   string
	parts []tmplPart
}

type tmplPart struct {
	lit string
	ph  byte // 0 for literal text
}

// ParseTemplate parses args, with DefaultGPUArgs for containers that ask for GPUs.
func ParseTemplate(args []string) (*Template, error) {
	return ParseTemplateGPU(args, DefaultGPUArgs())
}

// ParseTemplateGPU parses args, and gpuArgs appended when a container asks for GPUs. All
// problems are returned at once.
func ParseTemplateGPU(args, gpuArgs []string) (*Template, error) {
	var errs []error
	t := &Template{}
	t.args = parseArgList(args, "sbatch argument", &errs)
	t.gpuArgs = parseArgList(gpuArgs, "sbatch GPU argument", &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func parseArgList(list []string, what string, errs *[]error) []tmplArg {
	var out []tmplArg
	for i := 0; i < len(list); i++ {
		a := list[i]
		fail := func(format string, v ...any) {
			*errs = append(*errs, fmt.Errorf("%s %q: %s", what, a, fmt.Sprintf(format, v...)))
		}
		if a == "" || strings.ContainsAny(a, "\x00\n") {
			fail("empty, or contains a NUL or newline")
			continue
		}
		opt, value, hasValue := optionOf(a)
		if opt == "" && (i == 0 || !takesSeparateValue(list[i-1])) {
			fail("not an option (sbatch would take it for the script)")
			continue
		}
		if opt == "job-name" {
			if !hasValue && i+1 < len(list) {
				i++
				value, hasValue = list[i], true
			}
			if !hasValue || value != "%U" {
				fail("the job name is always the container uuid: use --job-name=%%U or leave it out")
			}
			continue // dropped: Submit names the job
		}
		if forbidden[opt] {
			fail("--%s is set by the dispatcher or breaks it (spell options out in full)", opt)
			continue
		}
		ta, err := parseArg(a)
		if err != nil {
			fail("%v", err)
			continue
		}
		if opt == "" && (strings.Contains(a, "%P") || strings.Contains(a, "%W")) {
			// Dropping it when empty would leave its option to swallow the next argument.
			fail("%%P and %%W must be in the same argument as their option (--partition=%%P)")
			continue
		}
		if p := firstPlaceholder(a); p >= 0 && p < valueStart(a) {
			// A value from the container record must never become an option name.
			fail("placeholders may only stand in an option's value (--name=%%X or -x%%X)")
			continue
		}
		out = append(out, ta)
	}
	return out
}

// forbidden are sbatch options a template may not set: Submit sets them itself, or they
// break the dispatcher (several jobs per container, sbatch blocking until the job ends,
// requeueing a job crunch-run already started).
var forbidden = map[string]bool{
	"nice": true, "requeue": true, "no-requeue": true, "parsable": true,
	"array": true, "wrap": true, "wait": true, "test-only": true,
}

// longOptions are the long options whose abbreviations we must recognize: sbatch (getopt)
// takes any unambiguous prefix, "--j=x" and "--job=x" are --job-name.
var longOptions = []string{"job-name", "nice", "requeue", "no-requeue", "parsable", "array", "wrap", "wait", "test-only"}

// shortOptions maps the short options among them; shortNoArg are sbatch's short options
// that take no value and so may be grouped before another ("-HJname").
var (
	shortOptions = map[byte]string{'J': "job-name", 'a': "array", 'W': "wait"}
	shortNoArg   = "hHIkOQsuVv"
)

// optionOf says which of the options we care about arg sets ("" for a non-option), and
// its inline value. An abbreviation that could stand for one of them counts as that one.
func optionOf(arg string) (opt, value string, hasValue bool) {
	switch {
	case arg == "--" || arg == "-" || !strings.HasPrefix(arg, "-"):
		return "", "", false
	case strings.HasPrefix(arg, "--"):
		name, value, hasValue := strings.Cut(arg[2:], "=")
		for _, o := range longOptions {
			if strings.HasPrefix(o, name) {
				return o, value, hasValue
			}
		}
		return "-" + name, value, hasValue
	default:
		for i := 1; i < len(arg); i++ {
			if o, ok := shortOptions[arg[i]]; ok {
				rest := strings.TrimPrefix(arg[i+1:], "=")
				return o, rest, rest != ""
			}
			if !strings.ContainsRune(shortNoArg, rune(arg[i])) {
				break
			}
		}
		return "-" + arg[1:2], "", false
	}
}

// takesSeparateValue reports whether prev may be an option whose value is the next argument
// ("-p debug", "--partition debug").
func takesSeparateValue(prev string) bool {
	if strings.HasPrefix(prev, "--") {
		return len(prev) > 2 && !strings.Contains(prev, "=")
	}
	return len(prev) == 2 && prev[0] == '-'
}

// firstPlaceholder returns the index of the first placeholder in a (not counting %%), or -1.
func firstPlaceholder(a string) int {
	for i := 0; i+1 < len(a); i++ {
		if a[i] == '%' {
			if a[i+1] != '%' {
				return i
			}
			i++
		}
	}
	return -1
}

// valueStart returns where the value begins in a template argument: after "=" in a long
// option, after the letter of a short option that takes a value, at 0 in a separate value.
// It returns len(a)+1 when the argument has no value part for placeholders.
func valueStart(a string) int {
	switch {
	case !strings.HasPrefix(a, "-"):
		return 0
	case strings.HasPrefix(a, "--"):
		if i := strings.IndexByte(a, '='); i >= 0 {
			return i + 1
		}
		return len(a) + 1
	case len(a) >= 2 && a[1] != '%' && !strings.ContainsRune(shortNoArg, rune(a[1])):
		return 2
	}
	return len(a) + 1
}

func parseArg(a string) (tmplArg, error) {
	ta := tmplArg{raw: a}
	var lit strings.Builder
	for i := 0; i < len(a); i++ {
		if a[i] != '%' {
			lit.WriteByte(a[i])
			continue
		}
		if i+1 == len(a) {
			return ta, errors.New("lone % at the end (write %% for a percent sign)")
		}
		i++
		switch c := a[i]; c {
		case '%':
			lit.WriteByte('%')
		case 'U', 'C', 'M', 'T', 'P', 'G', 'W':
			if lit.Len() > 0 {
				ta.parts = append(ta.parts, tmplPart{lit: lit.String()})
				lit.Reset()
			}
			ta.parts = append(ta.parts, tmplPart{ph: c})
		default:
			return ta, fmt.Errorf("unknown placeholder %%%c (known: %%U %%C %%M %%T %%P %%G %%W %%%%)", c)
		}
	}
	if lit.Len() > 0 {
		ta.parts = append(ta.parts, tmplPart{lit: lit.String()})
	}
	return ta, nil
}

// Expand returns the sbatch arguments for the container uuid with resources res, with the
// GPU arguments appended when res.GPUs > 0.
func (t *Template) Expand(uuid string, res Resources) ([]string, error) {
	if !arvados.ValidContainerUUID(uuid) {
		return nil, fmt.Errorf("expand sbatch arguments: %q is not a container uuid", uuid)
	}
	for _, p := range res.Partitions {
		if !ValidPartition(p) {
			return nil, fmt.Errorf("expand sbatch arguments for %s: invalid partition name %q", uuid, p)
		}
	}
	if res.VCPUs < 0 || res.MemMiB < 0 || res.ScratchMiB < 0 || res.GPUs < 0 || res.MaxRunMinutes < 0 {
		return nil, fmt.Errorf("expand sbatch arguments for %s: negative resources %+v", uuid, res)
	}
	out := make([]string, 0, len(t.args)+len(t.gpuArgs))
	out = expandList(out, t.args, uuid, res)
	if res.GPUs > 0 {
		out = expandList(out, t.gpuArgs, uuid, res)
	}
	return out, nil
}

func expandList(out []string, list []tmplArg, uuid string, res Resources) []string {
	var b strings.Builder
next:
	for _, a := range list {
		b.Reset()
		for _, p := range a.parts {
			v := p.lit
			if p.ph != 0 {
				v = placeholder(p.ph, uuid, res)
				if v == "" && (p.ph == 'P' || p.ph == 'W') {
					continue next // dropped: no partitions, or no time limit
				}
			}
			b.WriteString(v)
		}
		out = append(out, b.String())
	}
	return out
}

func placeholder(ph byte, uuid string, res Resources) string {
	switch ph {
	case 'U':
		return uuid
	case 'C':
		return strconv.Itoa(res.VCPUs)
	case 'M':
		return strconv.FormatInt(res.MemMiB, 10)
	case 'T':
		return strconv.FormatInt(res.ScratchMiB, 10)
	case 'P':
		return strings.Join(res.Partitions, ",")
	case 'G':
		return strconv.Itoa(res.GPUs)
	case 'W':
		if res.MaxRunMinutes == 0 {
			return ""
		}
		return strconv.FormatInt(res.MaxRunMinutes, 10)
	}
	return ""
}

// String shows the template as configured.
func (t *Template) String() string {
	var raw []string
	for _, a := range t.args {
		raw = append(raw, a.raw)
	}
	if len(t.gpuArgs) > 0 {
		raw = append(raw, "(GPU:")
		for _, a := range t.gpuArgs {
			raw = append(raw, a.raw)
		}
		raw[len(raw)-1] += ")"
	}
	return strings.Join(raw, " ")
}
