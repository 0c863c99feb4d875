package arvados

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidUUID is returned, before any request, for a container uuid that does not have the
// form of one (see ValidContainerUUID). Such a string is never put into a URL path.
var ErrInvalidUUID = errors.New("not a container uuid")

// ErrKeysetIgnored is returned by EachContainer when the server returns a record that the
// previous page already covered: it ignores the uuid filter or the uuid order, and paging
// would never end.
var ErrKeysetIgnored = errors.New("the API server ignores the uuid keyset filter or order")

// HTTPError is a response with a non-2xx status. Its fields and message never contain the
// token.
type HTTPError struct {
	Method string
	// URL is scheme://host/path, without the query string.
	URL string
	// Host is the API server's host[:port].
	Host   string
	Status int
	// Messages are the server's "errors" (or a short plain-text body).
	Messages []string
	// RequestID is the X-Request-Id sent with the request (and echoed in server logs).
	RequestID string
	// RetryAfter is the server's Retry-After (429, 503), zero if absent.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if len(e.Messages) > 0 {
		b.WriteString(": " + strings.Join(e.Messages, "; "))
	}
	if e.Status == http.StatusUnauthorized {
		fmt.Fprintf(&b, " (the API server %s refused the token: check %s)", e.Host, EnvToken)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [%s]", e.RequestID)
	}
	return b.String()
}

// TransportError is a failure without an HTTP status: the connection could not be made, broke,
// or an attempt timed out; or the body of a 2xx response could not be read.
type TransportError struct {
	Method    string
	URL       string // scheme://host/path, without the query string
	RequestID string
	// Sent is false only when the request certainly never left this process (the connection
	// could not be made). When it is true the server may have acted on the request.
	Sent bool
	// Status is the HTTP status when a response arrived but its body could not be read (0 if
	// none arrived).
	Status int
	Err    error
}

func (e *TransportError) Error() string {
	what := "request failed"
	if e.Status != 0 {
		what = fmt.Sprintf("reading %d response failed", e.Status)
	} else if e.Sent {
		what = "no response"
	}
	msg := fmt.Sprintf("%s %s: %s: %v", e.Method, e.URL, what, e.Err)
	if isCertError(e.Err) {
		msg += fmt.Sprintf(" (set %s=1 to skip verification of a self-signed certificate)", EnvInsecure)
	}
	if e.RequestID != "" {
		msg += " [" + e.RequestID + "]"
	}
	return msg
}

func (e *TransportError) Unwrap() error { return e.Err }

// transient reports whether trying again later may succeed: every network failure and
// timeout except a certificate the client does not trust.
func (e *TransportError) transient() bool { return !isCertError(e.Err) }

func isCertError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verification)
}

// isDialError reports whether err happened while connecting, before any byte of the request
// was written (connection refused, DNS failure, connect timeout).
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

func httpStatus(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// IsTransient reports whether err may clear by itself: network errors, timeouts, 429, and 5xx
// except 501 Not Implemented. The client has already retried such errors within its budget;
// callers retry later (keeping locks) rather than giving up on the container.
func IsTransient(err error) bool {
	var te *TransportError
	if errors.As(err, &te) {
		return te.transient()
	}
	s := httpStatus(err)
	return s == http.StatusTooManyRequests || (s >= 500 && s != http.StatusNotImplemented)
}

// IsAmbiguous reports whether the request may have taken effect although err was returned: it
// was sent and no answer came back (timeout, broken connection), the answer was a 5xx that a
// proxy or a failing server may give after acting (500, 502, 504…; not 501 or 503), or a 2xx
// arrived whose body could not be read. After an ambiguous Lock or Unlock, GET the container to
// learn the truth.
func IsAmbiguous(err error) bool {
	var te *TransportError
	if errors.As(err, &te) {
		return te.Sent
	}
	s := httpStatus(err)
	return s >= 500 && s != http.StatusNotImplemented && s != http.StatusServiceUnavailable
}

// IsNotFound reports a 404: no such record.
func IsNotFound(err error) bool { return httpStatus(err) == http.StatusNotFound }

// IsInvalid reports a 422 (or 409): the server refused the change in the record's current
// state, e.g. locking a container that is not Queued.
func IsInvalid(err error) bool {
	s := httpStatus(err)
	return s == http.StatusUnprocessableEntity || s == http.StatusConflict
}

// IsForbidden reports a 403: the token may not do this, e.g. unlock a container locked by
// another token.
func IsForbidden(err error) bool { return httpStatus(err) == http.StatusForbidden }

// IsUnauthenticated reports a 401: the server does not accept the token.
func IsUnauthenticated(err error) bool { return httpStatus(err) == http.StatusUnauthorized }

// maxRetryAfter caps a Retry-After value; the retry budget caps it again.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date (RFC 9110 10.2.3).
// Anything unreadable, or a date in the past, is zero.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return min(time.Duration(min(n, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}
