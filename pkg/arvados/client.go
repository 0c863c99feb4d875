package arvados

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Client calls the Arvados REST API. It is safe for concurrent use; make one per token and share
// it (it keeps connections alive).
//
// Every call takes a context, bounds each attempt with Config.Timeout, sends
// "Authorization: Bearer <token>" and an X-Request-Id ("req-" and 20 random [a-z0-9], the same
// for all attempts of one call), retries as described at retryable, and logs each attempt at
// Debug (method, path, status, took, request_id, attempt) without the token.
type Client struct {
	cfg  Config // with defaults applied
	base string // scheme://host/arvados/v1/
	log  *zap.Logger
	// jitter returns a number in [0, 1); tests make it deterministic.
	jitter func() float64
	// errorHook, if set, sees every error a request returns (tests check them for the token).
	errorHook func(error)
}

// NewClient checks cfg (see Config.Validate), applies defaults and returns a Client.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("arvados client configuration: %w", err)
	}
	cfg = cfg.withDefaults()
	return &Client{
		cfg:    cfg,
		base:   cfg.Scheme + "://" + cfg.Host + "/arvados/v1/",
		log:    cfg.Logger,
		jitter: rand.Float64,
	}, nil
}

// Host is the API server's host[:port].
func (c *Client) Host() string { return c.cfg.Host }

// CloseIdleConnections closes the kept-alive connections that are idle (at shutdown, and in
// tests that check for leaked goroutines).
func (c *Client) CloseIdleConnections() { c.cfg.HTTPClient.CloseIdleConnections() }

// request is one API call.
type request struct {
	method string
	path   string // below /arvados/v1/, e.g. "containers/zzzzz-dz642-…/lock"
	query  url.Values
	form   url.Values
	// idempotent calls may be repeated after an ambiguous failure (see retryable).
	idempotent bool
	// decode reads a 2xx body; it may be called once per attempt and must reset its target.
	// nil discards the body.
	decode func(io.Reader) error
}

// decodeInto returns a decode function that resets *v and decodes the body into it, streaming.
func decodeInto[T any](v *T) func(io.Reader) error {
	return func(r io.Reader) error {
		var zero T
		*v = zero
		return json.NewDecoder(r).Decode(v)
	}
}

// do performs r with retries within the budget and returns the last error, classified, with
// the token hidden should it ever be in the message.
func (c *Client) do(ctx context.Context, r request) error {
	start := c.cfg.Now()
	err := c.doRetries(ctx, r)
	c.observe(r, start, err)
	if err == nil {
		return nil
	}
	err = c.redact(err)
	if c.errorHook != nil {
		c.errorHook(err)
	}
	return err
}

// doRetries performs r with retries within the budget. A call takes at most about
// Retry.MaxElapsed + Timeout: no wait starts that would end past MaxElapsed, and the last
// attempt has its own Timeout.
func (c *Client) doRetries(ctx context.Context, r request) error {
	rid := newRequestID()
	start := c.cfg.Now()
	for attempt := 1; ; attempt++ {
		err := c.attempt(ctx, r, rid, attempt)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !retryable(err, r.idempotent) {
			return err
		}
		elapsed := c.cfg.Now().Sub(start)
		if attempt >= c.cfg.Retry.MaxAttempts {
			return fmt.Errorf("%w (gave up after %d attempts in %s)", err, attempt, elapsed.Round(time.Millisecond))
		}
		wait := max(c.backoff(attempt), retryAfter(err))
		if elapsed+wait > c.cfg.Retry.MaxElapsed {
			return fmt.Errorf("%w (gave up after %d attempts: waiting %s more would exceed the retry budget of %s)",
				err, attempt, wait.Round(time.Millisecond), c.cfg.Retry.MaxElapsed)
		}
		c.log.Debug("arvados request will be retried", zap.String("method", r.method),
			zap.String("path", "/arvados/v1/"+r.path), zap.String("request_id", rid),
			zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.String("reason", c.redact(err).Error()))
		if serr := c.cfg.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (stopped waiting to retry: %w)", err, serr)
		}
	}
}

// retryable decides whether a failed attempt is tried again. The rules:
//
//   - A network failure before the request was sent (connection refused, DNS failure, connect
//     timeout): always retried. The server never saw the request.
//   - 429 Too Many Requests and 503 Service Unavailable: always retried (after Retry-After, if
//     given). The server or its proxy declined the request without acting on it.
//   - A failure after the request was sent (timeout, reset, EOF before or while reading the
//     answer) and any other 5xx except 501: retried only for idempotent calls — GETs, and
//     updates, which set absolute values. For Lock, Unlock and CreateLog the outcome is unknown:
//     the error is returned at once and IsAmbiguous reports true, so the caller can GET the
//     container to learn the truth instead of locking twice or burning an unlock.
//   - Everything else (4xx, 501, an untrusted certificate, an unreadable response): never.
func retryable(err error, idempotent bool) bool {
	var te *TransportError
	if errors.As(err, &te) {
		return te.transient() && (idempotent || !te.Sent)
	}
	switch s := httpStatus(err); {
	case s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		return true
	case s >= 500 && s != http.StatusNotImplemented:
		return idempotent
	}
	return false
}

// backoff is the wait before retry number n (n ≥ 1): BaseDelay·2^(n-1), at most MaxDelay, drawn
// at random from [d/2, d] so that many clients do not retry in step.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.Retry.BaseDelay
	for i := 1; i < n && d < c.cfg.Retry.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, c.cfg.Retry.MaxDelay)
	return d/2 + time.Duration(c.jitter()*float64(d/2))
}

func retryAfter(err error) time.Duration {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.RetryAfter
	}
	return 0
}

// attempt makes one HTTP request.
func (c *Client) attempt(parent context.Context, r request, rid string, n int) error {
	ctx, cancel := context.WithTimeout(parent, c.cfg.Timeout)
	defer cancel()
	// wrote records whether any of the request reached the connection: after that, a failure
	// is ambiguous. http.Transport calls WroteRequest even when the write fails.
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return fmt.Errorf("build request %s %s: %w", r.method, c.base+r.path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("X-Request-Id", rid)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	t0 := c.cfg.Now()
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		err = &TransportError{Method: r.method, URL: c.base + r.path, RequestID: rid,
			// A custom transport may not report WroteRequest: only a failure to connect
			// proves that nothing was sent.
			Sent: wrote.Load() || !isDialError(err),
			Err:  c.cause(parent, err)}
		c.logAttempt(r, rid, n, 0, c.cfg.Now().Sub(t0), err)
		return err
	}
	err = c.response(parent, resp, r, rid)
	drainClose(resp.Body)
	c.logAttempt(r, rid, n, resp.StatusCode, c.cfg.Now().Sub(t0), err)
	return err
}

// response decodes a 2xx body, or turns any other status into an *HTTPError.
func (c *Client) response(parent context.Context, resp *http.Response, r request, rid string) error {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.httpError(resp, r, rid)
	}
	if r.decode == nil {
		return nil
	}
	err := r.decode(resp.Body)
	if err == nil {
		return nil
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syntax) || errors.As(err, &typ) {
		return fmt.Errorf("%s %s: decode %d response [%s]: %w", r.method, c.base+r.path, resp.StatusCode, rid, err)
	}
	return &TransportError{Method: r.method, URL: c.base + r.path, RequestID: rid, Sent: true,
		Status: resp.StatusCode, Err: c.cause(parent, err)}
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

func (c *Client) httpError(resp *http.Response, r request, rid string) *HTTPError {
	he := &HTTPError{Method: r.method, URL: c.base + r.path, Host: c.cfg.Host, Status: resp.StatusCode,
		RequestID: rid, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.cfg.Now())}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(b, &body) == nil && len(body.Errors) > 0 {
		he.Messages = body.Errors
	} else if text := strings.TrimSpace(string(b)); text != "" && !strings.HasPrefix(text, "<") {
		// A proxy's plain-text error; HTML pages say nothing the status does not.
		he.Messages = []string{truncate(text, 300)}
	}
	for i, m := range he.Messages {
		he.Messages[i] = c.redactString(m)
	}
	return he
}

// cause unwraps net/http's *url.Error (its message repeats the URL with the query) and says
// when an attempt timed out rather than the caller giving up.
func (c *Client) cause(parent context.Context, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
		return fmt.Errorf("attempt timed out after %s: %w", c.cfg.Timeout, err)
	}
	return err
}

func (c *Client) logAttempt(r request, rid string, n, status int, took time.Duration, err error) {
	if ce := c.log.Check(zap.DebugLevel, "arvados request"); ce != nil {
		fields := []zap.Field{zap.String("method", r.method), zap.String("path", "/arvados/v1/"+r.path),
			zap.Int("status", status), zap.Duration("took", took), zap.String("request_id", rid), zap.Int("attempt", n)}
		if err != nil {
			fields = append(fields, zap.String("error", c.redact(err).Error()))
		}
		ce.Write(fields...)
	}
}

// redact is the last line of defence for invariant 6: errors are built without the token, but
// should one ever carry it (say, a server echoing it in a message), it is hidden here.
func (c *Client) redact(err error) error {
	if err == nil || !strings.Contains(err.Error(), c.cfg.Token) {
		return err
	}
	return &redactedError{msg: c.redactString(err.Error()), err: err}
}

func (c *Client) redactString(s string) string {
	return strings.ReplaceAll(s, c.cfg.Token, "[token hidden]")
}

// redactedError hides the token in an error's message; errors.As still finds what it wraps.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// drainClose reads what is left of a body (a little) so the connection can be reused.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	_ = body.Close()
}

// newRequestID returns "req-" and 20 random characters from [a-z0-9], like Arvados's own.
func newRequestID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 4, 24)
	copy(b, "req-")
	for range 20 {
		b = append(b, alphabet[rand.IntN(len(alphabet))])
	}
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
