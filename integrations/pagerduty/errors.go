package pagerduty

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/PagerDuty/go-pagerduty"
)

// Errors callers tell apart with errors.Is. ErrUnknownUser, ErrInvalidRef and
// ErrNotConfigured are answers; every *Error means PagerDuty could not answer
// and the caller must fail closed.
var (
	// ErrNotConfigured: PAGERDUTY_TOKEN (or the escalation policies) is not set.
	ErrNotConfigured = errors.New("pagerduty: not configured")
	// ErrUnknownUser: no PagerDuty user has exactly that e-mail address.
	ErrUnknownUser = errors.New("pagerduty: no PagerDuty user has that e-mail address")
	// ErrInvalidRef: the incident reference is not an id, a number or an incident URL.
	ErrInvalidRef = errors.New("pagerduty: not an incident reference (accepted: an id like PABC123, a number like #1234, or https://<sub>.pagerduty.com/incidents/PABC123)")
	// ErrNotFound matches an *Error whose status is 404.
	ErrNotFound = errors.New("pagerduty: not found")
	// ErrCredentialsRejected matches an *Error whose status is 401 or 403.
	ErrCredentialsRejected = errors.New("pagerduty: credentials rejected")
	// ErrUnavailable matches a retryable *Error (429, 5xx, timeout, network).
	ErrUnavailable = errors.New("pagerduty: temporarily unavailable")
)

// Error is a call to PagerDuty that did not succeed. Its text never holds a
// credential.
type Error struct {
	Op         string        // what was being done, e.g. "list on-calls"
	Status     int           // HTTP status; 0 when no reply came
	Retryable  bool          // 429, 5xx, timeout or network failure
	RetryAfter time.Duration // the server's Retry-After, when it sent one
	Detail     string        // short explanation, credential-free
	cause      error         // only context errors, so errors.Is(err, context.Canceled) works
}

func (e *Error) Error() string {
	s := "pagerduty: " + e.Op + ": " + e.Detail
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// Is lets errors.Is match the sentinel that describes the failure.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrCredentialsRejected:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrUnavailable:
		return e.Retryable
	}
	return false
}

// Unwrap exposes context.Canceled / context.DeadlineExceeded, nothing else:
// library errors are summarised in Detail, not chained, so no text we do not
// control reaches a log.
func (e *Error) Unwrap() error { return e.cause }

// errRedirect is returned by the redirect guard: a redirect elsewhere could
// carry the token to another host.
var errRedirect = errors.New("redirect to another host refused")

// classify turns a failed attempt into an *Error. ctx is the caller's context
// (not the per-attempt one), so a per-attempt timeout stays retryable.
func (c *Client) classify(ctx context.Context, op string, rec *record, err error) *Error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &Error{Op: op, Detail: ctxErr.Error(), cause: ctxErr}
	}
	if rec.err != nil {
		return c.transportError(op, rec.err)
	}
	if rec.timedOut && (rec.status == 0 || rec.status/100 == 2) {
		return &Error{Op: op, Retryable: true, Detail: "timed out"}
	}
	if rec.status == 0 {
		// The request was never sent (e.g. it could not be built).
		return &Error{Op: op, Detail: "request not sent: " + c.clean(err.Error())}
	}
	if rec.status < 200 || rec.status > 299 {
		e := &Error{Op: op, Status: rec.status}
		e.RetryAfter = parseRetryAfter(rec.retryAfter, c.now())
		msg := ""
		var apiErr pagerduty.APIError
		if errors.As(err, &apiErr) && apiErr.APIError.Valid {
			msg = apiErr.APIError.ErrorObject.Message
		}
		e.Detail = c.statusDetail(rec.status, msg)
		e.Retryable = rec.status == http.StatusTooManyRequests || rec.status >= 500
		return e
	}
	// A 2xx reply the library could not decode.
	return &Error{Op: op, Status: rec.status, Detail: "unexpected reply: " + c.clean(err.Error())}
}

func (c *Client) transportError(op string, err error) *Error {
	if errors.Is(err, errRedirect) {
		return &Error{Op: op, Detail: errRedirect.Error()}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &Error{Op: op, Retryable: true, Detail: "timed out"}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop method and URL: the detail is what went wrong
	}
	return &Error{Op: op, Retryable: true, Detail: "unreachable: " + c.clean(err.Error())}
}

func (c *Client) statusDetail(status int, msg string) string {
	var d string
	switch {
	case status == http.StatusUnauthorized:
		d = "credentials rejected (HTTP 401): check PAGERDUTY_TOKEN"
	case status == http.StatusForbidden:
		d = "access denied (HTTP 403): the API key may not read this"
	case status == http.StatusNotFound:
		d = "not found (HTTP 404)"
	case status == http.StatusTooManyRequests:
		d = "rate limited (HTTP 429)"
	case status >= 500:
		d = fmt.Sprintf("PagerDuty server error (HTTP %d)", status)
	default:
		d = fmt.Sprintf("request refused (HTTP %d)", status)
	}
	if msg = c.clean(msg); msg != "" && status != http.StatusNotFound {
		d += ": " + msg
	}
	return d
}

// clean removes every credential and bounds the length of text that came
// from outside.
func (c *Client) clean(s string) string {
	for _, sec := range c.secrets.list() {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

// secrets holds the credential values clean removes.
type secrets []string

func (s *secrets) list() []string {
	if s == nil {
		return nil
	}
	return *s
}
