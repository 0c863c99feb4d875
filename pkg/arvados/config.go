package arvados

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Environment variables read by ConfigFromEnv (the Arvados conventions).
const (
	EnvHost     = "ARVADOS_API_HOST"          // host[:port] of the API server
	EnvToken    = "ARVADOS_API_TOKEN"         // the API token (a secret)
	EnvInsecure = "ARVADOS_API_HOST_INSECURE" // "1", "true" or "yes": skip TLS verification
)

// Defaults applied by NewClient to zero values in Config.
const (
	DefaultTimeout             = 30 * time.Second
	DefaultMaxItemsPerResponse = 1000
	DefaultMaxAttempts         = 5
	DefaultMaxElapsed          = 30 * time.Second
	DefaultBaseDelay           = 250 * time.Millisecond
	DefaultMaxDelay            = 5 * time.Second
)

// Config configures a Client. Only Host and Token are required.
type Config struct {
	// Host is the API server as host[:port] (ARVADOS_API_HOST). A scheme prefix
	// ("https://host", "http://127.0.0.1:8000") is also accepted and sets Scheme; this is not an
	// Arvados convention but lets test tools reach an http server on loopback from the
	// environment alone.
	Host string
	// Token is the API token (ARVADOS_API_TOKEN). It is sent only in the Authorization header
	// and never appears in logs or errors.
	Token string
	// Insecure skips TLS certificate verification (ARVADOS_API_HOST_INSECURE). It has no
	// effect when HTTPClient is set: that client's transport decides.
	Insecure bool
	// Scheme is "https" (the default) or "http". Plain http is allowed only for loopback hosts
	// (localhost, 127.0.0.0/8, ::1): real clusters are always https.
	Scheme string
	// HTTPClient, if set, is used for every request. Its Timeout should be zero: each attempt
	// already has Timeout. The default client keeps connections alive (MaxIdleConnsPerHost 32).
	HTTPClient *http.Client
	// Timeout bounds each attempt of each request, including reading the response body.
	// Default 30s.
	Timeout time.Duration
	// Retry bounds retries of transient failures. Zero fields take the defaults.
	Retry RetryPolicy
	// MaxItemsPerResponse is the page size EachContainer asks for: the cluster's
	// API.MaxItemsPerResponse (default 1000, the Arvados default and cap).
	MaxItemsPerResponse int
	// Logger receives one Debug line per request attempt. Default zap.NewNop().
	Logger *zap.Logger
	// Now is the clock used for the retry budget, Retry-After dates and durations in logs.
	// Default time.Now.
	Now func() time.Time
	// Sleep waits between retries; it must return early with ctx.Err() when ctx is done.
	// Default: a timer that selects on ctx.Done(). Tests inject one that records delays.
	Sleep func(ctx context.Context, d time.Duration) error
	// Observe, if set, hears of every call once it has ended (see Observer): metrics.
	Observe Observer
}

// RetryPolicy bounds the retries of one call. Zero fields take the defaults; MaxAttempts 1
// disables retries.
type RetryPolicy struct {
	// MaxAttempts is the most attempts per call, the first included (default 5).
	MaxAttempts int
	// MaxElapsed is the most time from the first attempt to the start of the last one
	// (default 30s). A wait that would end past it is not started: the call fails at once.
	MaxElapsed time.Duration
	// BaseDelay is the wait before the first retry; it doubles with every retry (default
	// 250ms), up to MaxDelay (default 5s). Each wait is drawn at random from [d/2, d].
	BaseDelay, MaxDelay time.Duration
}

// ConfigFromEnv reads ARVADOS_API_HOST, ARVADOS_API_TOKEN and ARVADOS_API_HOST_INSECURE. It
// fails only on an ARVADOS_API_HOST_INSECURE it cannot read; NewClient reports missing values.
func ConfigFromEnv() (Config, error) {
	cfg := Config{Host: os.Getenv(EnvHost), Token: os.Getenv(EnvToken)}
	insecure, err := ParseBool(os.Getenv(EnvInsecure))
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", EnvInsecure, err)
	}
	cfg.Insecure = insecure
	return cfg, nil
}

// ParseBool reads a boolean the way Arvados reads ARVADOS_API_HOST_INSECURE: "1", "true",
// "yes" are true; "", "0", "false", "no" are false (any case); anything else is an error.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes":
		return true, nil
	case "", "0", "false", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (use 1/true/yes or 0/false/no)", s)
}

// Validate reports every problem with the configuration at once. It never mentions the token's
// value.
func (c Config) Validate() error {
	var errs []error
	host, scheme, err := splitScheme(c.Host, c.Scheme)
	switch {
	case err != nil:
		errs = append(errs, err)
	case host == "":
		errs = append(errs, fmt.Errorf("no API host: set %s (host[:port]) or Config.Host", EnvHost))
	default:
		errs = append(errs, checkHost(host, scheme))
	}
	switch {
	case c.Token == "":
		errs = append(errs, fmt.Errorf("no API token: set %s or Config.Token", EnvToken))
	case strings.ContainsAny(c.Token, " \t\r\n"):
		errs = append(errs, fmt.Errorf("the API token contains white space: check %s", EnvToken))
	}
	if c.Timeout < 0 || c.MaxItemsPerResponse < 0 || c.Retry.MaxAttempts < 0 || c.Retry.MaxElapsed < 0 ||
		c.Retry.BaseDelay < 0 || c.Retry.MaxDelay < 0 {
		errs = append(errs, errors.New("timeouts, delays, attempts and page size must not be negative"))
	}
	return errors.Join(errs...)
}

// splitScheme separates an optional scheme prefix from host and reconciles it with scheme.
func splitScheme(host, scheme string) (string, string, error) {
	host = strings.TrimSpace(host)
	if before, after, ok := strings.Cut(host, "://"); ok {
		if scheme != "" && scheme != before {
			return "", "", fmt.Errorf("API host %q has scheme %q but Config.Scheme is %q", host, before, scheme)
		}
		host, scheme = strings.TrimSuffix(after, "/"), before
	}
	if scheme == "" {
		scheme = "https"
	}
	if scheme != "https" && scheme != "http" {
		return "", "", fmt.Errorf("API scheme %q: use https (or http on loopback)", scheme)
	}
	return host, scheme, nil
}

// checkHost checks that host is host[:port] and that plain http goes only to loopback.
func checkHost(host, scheme string) error {
	if strings.ContainsAny(host, "/?#@ \t\r\n") {
		return fmt.Errorf("API host %q is not host[:port]: check %s", host, EnvHost)
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	if scheme == "http" && !isLoopback(name) {
		return fmt.Errorf("plain http to %q: http is allowed only for loopback hosts; real clusters use https", host)
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

// withDefaults returns c with every zero value replaced by its default.
func (c Config) withDefaults() Config {
	c.Host, c.Scheme, _ = splitScheme(c.Host, c.Scheme)
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxItemsPerResponse == 0 {
		c.MaxItemsPerResponse = DefaultMaxItemsPerResponse
	}
	r := &c.Retry
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.MaxElapsed == 0 {
		r.MaxElapsed = DefaultMaxElapsed
	}
	if r.BaseDelay == 0 {
		r.BaseDelay = DefaultBaseDelay
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = DefaultMaxDelay
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleepCtx
	}
	if c.HTTPClient == nil {
		c.HTTPClient = newHTTPClient(c.Insecure)
	}
	return c
}

// newHTTPClient returns a keep-alive client sized for one API server: the dispatcher's trackers
// make many concurrent calls to the same host, so idle connections per host are raised from
// net/http's default of 2.
func newHTTPClient(insecure bool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 64
	t.MaxIdleConnsPerHost = 32
	t.IdleConnTimeout = 90 * time.Second
	// InsecureSkipVerify only when ARVADOS_API_HOST_INSECURE asks for it.
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	return &http.Client{Transport: t}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
