package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// sample is the placeholder key of Arvados's config.default.yml; Arvados's loader drops
// every map entry named SAMPLE, and so do we.
const sample = "SAMPLE"

// arvDoc is an Arvados cluster config being read: the chosen cluster's mapping, and the
// nodes we have used (for the one line listing what we ignore).
type arvDoc struct {
	file    string
	id      string
	cluster *yaml.Node
	used    map[*yaml.Node]bool
	errs    []error
	notices []Notice
}

// arvadosKey maps one Arvados key (under Clusters.<id>) to ours. apply, when set, converts
// the value and returns whether it set c. Otherwise the value is parsed as our key's type;
// a zero value keeps our default (in Arvados it means "unset") unless zeroIsSet.
type arvadosKey struct {
	path, key string
	zeroIsSet bool
	apply     func(d *arvDoc, c *Config, n *yaml.Node) (bool, error)
}

var arvadosKeys = []arvadosKey{
	{path: "SystemRootToken", key: "api.token"},
	{path: "Services.Controller.ExternalURL", key: "api.host", apply: applyExternalURL},
	{path: "TLS.Insecure", key: "api.insecure", zeroIsSet: true},
	{path: "API.MaxItemsPerResponse", key: "api.max_items_per_response"},
	{path: "Containers.CloudVMs.PollInterval", key: "dispatch.poll_period"},
	{path: "Containers.MinRetryPeriod", key: "dispatch.min_retry_period"},
	{path: "Containers.MaxDispatchAttempts", key: "dispatch.max_dispatch_attempts"},
	{path: "Containers.CloudVMs.SupervisorFraction", key: "dispatch.supervisor_fraction", zeroIsSet: true},
	{path: "Containers.CrunchRunCommand", key: "crunch_run.command", apply: applyCrunchRunCommand},
	{path: "Containers.CrunchRunArgumentsList", key: "crunch_run.args", zeroIsSet: true},
	{path: "Containers.RuntimeEngine", key: "crunch_run.runtime_engine"},
	{path: "Containers.ReserveExtraRAM", key: "crunch_run.reserve_extra_ram", zeroIsSet: true},
	{path: "Containers.SLURM.SbatchArgumentsList", key: "slurm.sbatch_args", apply: applySbatchArgs},
	{path: "Containers.SLURM.SbatchGPUArgumentsList", key: "slurm.sbatch_gpu_args", zeroIsSet: true},
	{path: "Containers.SLURM.SbatchEnvironmentVariables", key: "slurm.environment", apply: applyEnvironment},
	{path: "Containers.SLURM.PrioritySpread", key: "slurm.priority_spread"},
	{path: "Services.DispatchSLURM.InternalURLs", key: "management.listen", apply: applyInternalURLs},
	{path: "ManagementToken", key: "management.token", zeroIsSet: true},
	{path: "SystemLogs.LogLevel", key: "logging.level", apply: applyLogLevel},
	{path: "SystemLogs.Format", key: "logging.format", apply: applyLogFormat},
}

// loadArvados applies an Arvados cluster config (root has a Clusters key) to c.
func (c *Config) loadArvados(path string, root *yaml.Node, clusterID string) ([]Notice, error) {
	clusters := lookup(root, "Clusters")
	if clusters == nil || clusters.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: Clusters: want a mapping of cluster ids", path)
	}
	var ids []string
	for i := 0; i+1 < len(clusters.Content); i += 2 {
		ids = append(ids, clusters.Content[i].Value)
	}
	switch {
	case clusterID == "" && len(ids) == 1:
		clusterID = ids[0]
	case clusterID == "" && len(ids) == 0:
		return nil, fmt.Errorf("%s: Clusters is empty: no cluster to read", path)
	case clusterID == "":
		return nil, fmt.Errorf("%s: several clusters (%s): say which one is ours with the cluster id",
			path, strings.Join(ids, ", "))
	case !slices.Contains(ids, clusterID):
		return nil, fmt.Errorf("%s: no cluster %q under Clusters (there is %s)", path, clusterID, strings.Join(ids, ", "))
	}
	keyNode, cluster := lookupKey(clusters, clusterID)
	d := &arvDoc{file: path, id: clusterID, cluster: cluster, used: map[*yaml.Node]bool{}}
	c.Dispatch.ClusterID = clusterID
	c.setSource("dispatch.cluster_id", Source{Kind: FromFile, File: path, Line: keyNode.Line, Name: "Clusters." + clusterID})
	if isNull(cluster) {
		return d.notices, nil
	}
	if cluster.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: Clusters.%s: want a mapping", path, cluster.Line, clusterID)
	}
	for _, ak := range arvadosKeys {
		d.apply(c, ak)
	}
	d.checkInstanceTypes()
	d.noteUnused(root, clusters)
	return d.notices, errors.Join(d.errs...)
}

// apply reads one Arvados key, if present, into c.
func (d *arvDoc) apply(c *Config, ak arvadosKey) {
	n := lookup(d.cluster, ak.path)
	if n == nil {
		return
	}
	d.used[n] = true
	if isNull(n) {
		return
	}
	var set bool
	var err error
	if ak.apply != nil {
		set, err = ak.apply(d, c, n)
	} else {
		set, err = assignNonZero(c, ak.key, n, !ak.zeroIsSet)
	}
	full := "Clusters." + d.id + "." + ak.path
	if err != nil {
		d.errs = append(d.errs, fmt.Errorf("%s:%d: %s: %w", d.file, n.Line, full, err))
		return
	}
	if set {
		c.setSource(ak.key, Source{Kind: FromFile, File: d.file, Line: n.Line, Name: full})
	}
}

// applyExternalURL turns the controller's URL into our API host: host[:port] for https
// (what the incumbent takes), "http://host:port" for plain http, which Validate allows on
// loopback only.
func applyExternalURL(_ *arvDoc, c *Config, n *yaml.Node) (bool, error) {
	if n.Kind != yaml.ScalarNode {
		return false, fmt.Errorf("want a URL, not a %s", kindName(n))
	}
	if n.Value == "" {
		return false, nil
	}
	u, err := url.Parse(n.Value)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return false, fmt.Errorf("%q: want https://host[:port]/", n.Value)
	}
	c.API.Host = u.Host
	if u.Scheme == "http" {
		c.API.Host = "http://" + u.Host
	}
	return true, nil
}

// applyCrunchRunCommand: Arvados's CrunchRunCommand is one string, the program, never
// split (the incumbent runs it as one word).
func applyCrunchRunCommand(_ *arvDoc, c *Config, n *yaml.Node) (bool, error) {
	if n.Kind != yaml.ScalarNode {
		return false, fmt.Errorf("want the crunch-run program, not a %s", kindName(n))
	}
	if n.Value == "" {
		return false, nil
	}
	c.CrunchRun.Command = []string{n.Value}
	return true, nil
}

// applySbatchArgs reproduces the incumbent's command line. crunch-dispatch-slurm runs
//
//	sbatch <SbatchArgumentsList…> --job-name=<uuid> --nice=10000 --no-requeue
//	       --mem=<MiB> --cpus-per-task=<n> --tmp=<MiB> [--partition=<p,…>]
//
// with the list taken literally, so the template is the list with every % doubled, then
// the default template. Options the incumbent overrides after the list (job name, nice,
// requeue) are dropped with a warning: Submit sets them.
func applySbatchArgs(d *arvDoc, c *Config, n *yaml.Node) (bool, error) {
	var list []string
	if err := setNode(&list, n); err != nil {
		return false, err
	}
	var args, dropped []string
	for i := 0; i < len(list); i++ {
		a := list[i]
		switch {
		case a == "--job-name" || a == "-J":
			if i+1 < len(list) {
				i++
				a += " " + list[i]
			}
			dropped = append(dropped, a)
			continue
		case strings.HasPrefix(a, "--job-name=") || (strings.HasPrefix(a, "-J") && len(a) > 2),
			a == "--nice" || strings.HasPrefix(a, "--nice="),
			a == "--requeue", a == "--no-requeue", a == "--parsable":
			dropped = append(dropped, a)
			continue
		}
		args = append(args, strings.ReplaceAll(a, "%", "%%"))
	}
	if len(dropped) > 0 {
		d.notices = append(d.notices, Notice{Level: Warn, Message: fmt.Sprintf(
			"%s: Clusters.%s.Containers.SLURM.SbatchArgumentsList: ignoring %s: the dispatcher sets the job name, nice and --no-requeue itself (crunch-dispatch-slurm overrode them too)",
			d.file, d.id, strings.Join(dropped, ", "))})
	}
	c.Slurm.SbatchArgs = append(args, slurm.DefaultTemplateArgs()...)
	return true, nil
}

// applyEnvironment reads SbatchEnvironmentVariables, without Arvados's SAMPLE entry.
func applyEnvironment(_ *arvDoc, c *Config, n *yaml.Node) (bool, error) {
	var m map[string]string
	if err := setNode(&m, n); err != nil {
		return false, err
	}
	delete(m, sample)
	c.Slurm.Environment = m
	return true, nil
}

// applyInternalURLs takes the first of Services.DispatchSLURM.InternalURLs (or its
// ListenURL, when set) as the management endpoint's host:port.
func applyInternalURLs(d *arvDoc, c *Config, n *yaml.Node) (bool, error) {
	if n.Kind != yaml.MappingNode {
		return false, fmt.Errorf("want a mapping of URLs, not a %s", kindName(n))
	}
	var urls []string
	var first *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k != sample {
			urls = append(urls, k)
			if first == nil {
				first = resolve(n.Content[i+1])
			}
		}
	}
	if len(urls) == 0 {
		return false, nil
	}
	raw := urls[0]
	if listen := lookup(first, "ListenURL"); listen != nil && listen.Kind == yaml.ScalarNode && listen.Value != "" {
		raw = listen.Value
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false, fmt.Errorf("%q: want http://host:port", raw)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	c.Management.Listen = net.JoinHostPort(u.Hostname(), port)
	if len(urls) > 1 {
		d.notices = append(d.notices, Notice{Level: Info, Message: fmt.Sprintf(
			"%s: Clusters.%s.Services.DispatchSLURM.InternalURLs lists %d URLs; the management endpoint listens on the first, %s",
			d.file, d.id, len(urls), c.Management.Listen)})
	}
	if u.Scheme == "https" {
		d.notices = append(d.notices, Notice{Level: Warn, Message: fmt.Sprintf(
			"%s: Clusters.%s.Services.DispatchSLURM.InternalURLs: %s is https, but the management endpoint serves plain http on %s (put a TLS proxy in front)",
			d.file, d.id, raw, c.Management.Listen)})
	}
	return true, nil
}

// applyLogLevel maps Arvados's levels onto zap's: trace is debug.
func applyLogLevel(_ *arvDoc, c *Config, n *yaml.Node) (bool, error) {
	if n.Kind != yaml.ScalarNode {
		return false, fmt.Errorf("want a level, not a %s", kindName(n))
	}
	switch v := strings.ToLower(n.Value); v {
	case "":
		return false, nil
	case "trace":
		c.Logging.Level = "debug"
	case "warning":
		c.Logging.Level = "warn"
	default:
		c.Logging.Level = v
	}
	return true, nil
}

// applyLogFormat maps Arvados's formats onto ours: text is console.
func applyLogFormat(_ *arvDoc, c *Config, n *yaml.Node) (bool, error) {
	if n.Kind != yaml.ScalarNode {
		return false, fmt.Errorf("want json or text, not a %s", kindName(n))
	}
	switch v := strings.ToLower(n.Value); v {
	case "":
		return false, nil
	case "text":
		c.Logging.Format = "console"
	default:
		c.Logging.Format = v
	}
	return true, nil
}

// checkInstanceTypes warns that configured instance types change the incumbent's request.
func (d *arvDoc) checkInstanceTypes() {
	it := lookup(d.cluster, "InstanceTypes")
	if it == nil || it.Kind != yaml.MappingNode {
		return
	}
	var names []string
	for i := 0; i+1 < len(it.Content); i += 2 {
		if k := it.Content[i].Value; k != sample {
			names = append(names, k)
		}
	}
	if len(names) > 0 {
		d.notices = append(d.notices, Notice{Level: Warn, Message: fmt.Sprintf(
			"%s: Clusters.%s.InstanceTypes is set (%s): crunch-dispatch-slurm asked Slurm for --constraint=instancetype=<type>; dispatch-slurm asks for --mem, --cpus-per-task and --tmp (add a --constraint to slurm.sbatch_args if your nodes need it)",
			d.file, d.id, strings.Join(names, ", "))})
	}
}

// noteUnused adds one Info notice listing the keys we ignored: other top-level keys, other
// clusters, and our cluster's keys we do not read (a subtree none of whose keys we read is
// listed once, by its root).
func (d *arvDoc) noteUnused(root, clusters *yaml.Node) {
	var out []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i].Value; k != "Clusters" {
			out = append(out, k)
		}
	}
	for i := 0; i+1 < len(clusters.Content); i += 2 {
		if k := clusters.Content[i].Value; k != d.id {
			out = append(out, "Clusters."+k)
		}
	}
	for i := 0; i+1 < len(d.cluster.Content); i += 2 {
		p, _ := unusedPaths(d.cluster.Content[i].Value, resolve(d.cluster.Content[i+1]), d.used)
		out = append(out, p...)
	}
	if len(out) > 0 {
		d.notices = append(d.notices, Notice{Level: Info, Message: fmt.Sprintf(
			"%s: dispatch-slurm does not use these keys of Clusters.%s (ignored): %s", d.file, d.id, strings.Join(out, ", "))})
	}
}

// unusedPaths returns the paths under n that we did not use, and whether we used any.
func unusedPaths(path string, n *yaml.Node, used map[*yaml.Node]bool) ([]string, bool) {
	if used[n] {
		return nil, true
	}
	if strings.HasSuffix(path, "."+sample) || path == sample {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		return []string{path}, false
	}
	var out []string
	anyUsed := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		p, u := unusedPaths(path+"."+n.Content[i].Value, resolve(n.Content[i+1]), used)
		out = append(out, p...)
		anyUsed = anyUsed || u
	}
	if !anyUsed {
		return []string{path}, false
	}
	return out, true
}

// lookup follows a dotted path of mapping keys from n; nil when any is missing.
func lookup(n *yaml.Node, path string) *yaml.Node {
	for _, k := range strings.Split(path, ".") {
		if _, n = lookupKey(n, k); n == nil {
			return nil
		}
	}
	return n
}

// lookupKey returns the key and value nodes of key in the mapping n, or nils.
func lookupKey(n *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], resolve(n.Content[i+1])
		}
	}
	return nil, nil
}
