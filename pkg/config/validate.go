package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

var (
	clusterIDRe = regexp.MustCompile(`^[a-z0-9]{5}$`)
	envNameRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// problems collects Validate's errors, each naming the key and where its value came from.
type problems struct {
	c    *Config
	errs []error
}

// add records a problem with key's value.
func (p *problems) add(key, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", p.c.describe(key), fmt.Sprintf(format, args...)))
}

// addErr records err (each of a joined error on its own) as problems with key's value.
func (p *problems) addErr(key string, err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			p.addErr(key, e)
		}
		return
	}
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %w", p.c.describe(key), err))
	}
}

// describe names key and where its value came from: "dispatch.poll_period (from
// Clusters.zzzzz.Containers.CloudVMs.PollInterval in /etc/arvados/config.yml:41)".
func (c *Config) describe(key string) string {
	s := c.Source(key)
	switch {
	case s.Kind == FromDefault:
		return key + " (default)"
	case s.Kind == FromFile && s.Name != "":
		return key + " (from " + s.Name + " in " + Source{Kind: FromFile, File: s.File, Line: s.Line}.String() + ")"
	}
	return key + " (from " + s.String() + ")"
}

// Validate reports every problem at once (errors.Join), each naming the key and where its
// value came from. It never shows a token or a job environment value. It does not look at
// the system (Slurm commands in PATH, directories): config check --live does.
func (c *Config) Validate() error {
	p := &problems{c: c}
	c.validateAPI(p)
	c.validateDispatch(p)
	c.validateCrunchRun(p)
	c.validateSlurm(p)
	c.validateRest(p)
	return errors.Join(p.errs...)
}

func (c *Config) validateAPI(p *problems) {
	switch host := c.API.Host; {
	case host == "":
		p.add("api.host", "no API server: set %s (host[:port]), api.host in our file, or Services.Controller.ExternalURL in the Arvados config", arvados.EnvHost)
	default:
		if err := checkAPIHost(host); err != nil {
			p.addErr("api.host", err)
		}
	}
	switch tok := c.API.Token.Value(); {
	case tok == "":
		p.add("api.token", "no API token: set %s, api.token in our file, or SystemRootToken in the Arvados config", arvados.EnvToken)
	case strings.ContainsAny(tok, " \t\r\n"):
		p.add("api.token", "the token contains white space")
	}
	if n := c.API.MaxItemsPerResponse; n < 1 {
		p.add("api.max_items_per_response", "%d: want at least 1", n)
	}
	positive(p, "api.timeout", c.API.Timeout)
	if c.API.MaxAttempts < 1 {
		p.add("api.max_attempts", "%d: want at least 1 (1: no retries)", c.API.MaxAttempts)
	}
	positive(p, "api.max_elapsed", c.API.MaxElapsed)
}

// checkAPIHost accepts host[:port], optionally after https:// or http:// (plain http only
// to loopback: real clusters are https).
func checkAPIHost(host string) error {
	scheme, rest, ok := strings.Cut(host, "://")
	if !ok {
		scheme, rest = "https", host
	}
	if scheme != "https" && scheme != "http" {
		return fmt.Errorf("%q: want host[:port], or https://host[:port]", host)
	}
	if rest == "" || strings.ContainsAny(rest, "/?#@ \t\r\n") {
		return fmt.Errorf("%q: want host[:port], without a path", host)
	}
	name := rest
	if h, port, err := net.SplitHostPort(rest); err == nil {
		name = h
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: bad port %q", host, port)
		}
	}
	if scheme == "http" && !isLoopback(name) {
		return fmt.Errorf("%q: plain http is allowed only to a loopback host; use https", host)
	}
	return nil
}

func isLoopback(name string) bool {
	if strings.EqualFold(name, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(name, "[]"))
	return ip != nil && ip.IsLoopback()
}

func positive(p *problems, key string, d time.Duration) {
	if d <= 0 {
		p.add(key, "%s: must be more than 0", FormatDuration(d))
	}
}

func atLeast1(p *problems, key string, n int) {
	if n < 1 {
		p.add(key, "%d: want at least 1", n)
	}
}

func (c *Config) validateDispatch(p *problems) {
	d := &c.Dispatch
	if d.ClusterID != "" && !clusterIDRe.MatchString(d.ClusterID) {
		p.add("dispatch.cluster_id", "%q: want five lower-case letters or digits, or nothing (then our token's)", d.ClusterID)
	}
	positive(p, "dispatch.poll_period", d.PollPeriod)
	positive(p, "dispatch.squeue_period", d.SqueuePeriod)
	positive(p, "dispatch.min_retry_period", d.MinRetryPeriod)
	positive(p, "dispatch.max_backoff", d.MaxBackoff)
	positive(p, "dispatch.orphan_sweep_period", d.OrphanSweepPeriod)
	if d.MaxBackoff > 0 && d.MaxBackoff < d.MinRetryPeriod {
		p.add("dispatch.max_backoff", "%s is less than dispatch.min_retry_period %s", FormatDuration(d.MaxBackoff), FormatDuration(d.MinRetryPeriod))
	}
	atLeast1(p, "dispatch.max_jobs", d.MaxJobs)
	if f := d.SupervisorFraction; !(f >= 0 && f <= 1) {
		p.add("dispatch.supervisor_fraction", "%g: want a share from 0 to 1 (0: no limit)", f)
	}
	atLeast1(p, "dispatch.max_dispatch_attempts", d.MaxDispatchAttempts)
	atLeast1(p, "dispatch.lock_concurrency", d.LockConcurrency)
	atLeast1(p, "dispatch.submit_concurrency", d.SubmitConcurrency)
	atLeast1(p, "dispatch.rejection_burst", d.RejectionBurst)
}

func (c *Config) validateCrunchRun(p *problems) {
	cr := &c.CrunchRun
	if len(cr.Command) == 0 || cr.Command[0] == "" {
		p.add("crunch_run.command", "empty: want the crunch-run program, e.g. [crunch-run]")
	}
	for _, k := range []string{"crunch_run.command", "crunch_run.args"} {
		f, _ := fieldByKey(k)
		for i, w := range *f.ptr(c).(*[]string) {
			if strings.ContainsAny(w, "\x00\n") {
				p.add(k, "word %d contains a NUL or a newline", i+1)
			}
		}
	}
	if e := cr.RuntimeEngine; e == "" || strings.ContainsAny(e, " \t\n\x00'\"\\") {
		p.add("crunch_run.runtime_engine", "%q: want one word, such as docker or singularity", e)
	}
	if cr.ReserveExtraRAM < 0 {
		p.add("crunch_run.reserve_extra_ram", "%s: must not be negative", cr.ReserveExtraRAM)
	}
}

func (c *Config) validateSlurm(p *problems) {
	s := &c.Slurm
	if _, err := slurm.ParseTemplateGPU(s.SbatchArgs, nil); err != nil {
		p.addErr("slurm.sbatch_args", err)
	}
	if _, err := slurm.ParseTemplateGPU(nil, s.SbatchGPUArgs); err != nil {
		p.addErr("slurm.sbatch_gpu_args", err)
	}
	if _, err := slurm.ParseTemplateGPU(s.SupervisorSbatchArgs, nil); err != nil {
		p.addErr("slurm.supervisor_sbatch_args", err)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Environment)) {
		switch {
		case !envNameRe.MatchString(name):
			p.add("slurm.environment", "%q is not a variable name", name)
		case name == arvados.EnvHost || name == arvados.EnvToken || name == arvados.EnvInsecure:
			p.add("slurm.environment", "%s is set by the dispatcher (from api.*)", name)
		}
	}
	if s.PrioritySpread < 1 {
		p.add("slurm.priority_spread", "%d: want at least 1", s.PrioritySpread)
	}
	if s.NiceHeadroom < 0 || s.NiceHeadroom > slurm.MaxNice {
		p.add("slurm.nice_headroom", "%d: want 0 to %d", s.NiceHeadroom, slurm.MaxNice)
	}
	for _, k := range []string{"slurm.sbatch", "slurm.squeue", "slurm.scancel", "slurm.scontrol"} {
		f, _ := fieldByKey(k)
		if *f.ptr(c).(*string) == "" {
			p.add(k, "empty: want the command's name or path")
		}
	}
	atLeast1(p, "slurm.max_concurrent", s.MaxConcurrent)
	positive(p, "slurm.submit_timeout", s.SubmitTimeout)
	positive(p, "slurm.query_timeout", s.QueryTimeout)
	positive(p, "slurm.update_timeout", s.UpdateTimeout)
}

func (c *Config) validateRest(p *problems) {
	if l := c.Management.Listen; l != "" {
		if _, port, err := net.SplitHostPort(l); err != nil {
			p.add("management.listen", "%q: want host:port (or :port)", l)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			p.add("management.listen", "%q: bad port %q", l, port)
		}
	}
	if _, err := zapcore.ParseLevel(c.Logging.Level); err != nil || c.Logging.Level == "" {
		p.add("logging.level", "%q: want debug, info, warn or error", c.Logging.Level)
	}
	switch c.Logging.Format {
	case "", "json", "console":
	default:
		p.add("logging.format", "%q: want json or console (or nothing: console on a terminal, else json)", c.Logging.Format)
	}
	if c.LockFile == "" || !filepath.IsAbs(c.LockFile) {
		p.add("lock_file", "%q: want an absolute path", c.LockFile)
	}
}
