// Package httpx is the mechanism the HTTP integrations (Jira, PagerDuty)
// share for calling a REST API through a client library: a bounded retry
// loop, the classification of failed attempts into an Error, Retry-After
// parsing, a redirect guard and the redaction of credentials from any text
// that came from outside.
//
// Each integration keeps its own error type (defined as httpx.Error, so
// pointers convert), its own sentinels and its own wording; httpx never
// returns a Go error of its own.
package httpx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Error is a call that did not succeed. Integrations define their error type
// as `type Error httpx.Error` and convert pointers, adding Error, Is and
// Unwrap methods built on Text, Matches and Cause. Its text never holds a
// credential.
type Error struct {
	Op         string        // what was being done, e.g. "get ticket SEC-12"
	Status     int           // HTTP status; 0 when no reply came
	Retryable  bool          // 429, 5xx, timeout or network failure
	RetryAfter time.Duration // the server's Retry-After, when it sent one
	Detail     string        // short explanation, credential-free
	cause      error         // only context errors, so errors.Is(err, context.Canceled) works
}

// Text is the error text: "prefix: op: detail", with the Retry-After wait
// when the server sent one.
func (e *Error) Text(prefix string) string {
	s := prefix + ": " + e.Op + ": " + e.Detail
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// Sentinels are an integration's errors that its *Error matches with
// errors.Is.
type Sentinels struct {
	NotFound            error // status 404
	CredentialsRejected error // status 401 or 403
	Unavailable         error // retryable (429, 5xx, timeout, network)
}

// Matches reports whether target is the sentinel of s that describes the
// failure: the body of the integration's Is method.
func (e *Error) Matches(target error, s Sentinels) bool {
	switch target {
	case s.NotFound:
		return e.Status == http.StatusNotFound
	case s.CredentialsRejected:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case s.Unavailable:
		return e.Retryable
	}
	return false
}

// Cause is context.Canceled / context.DeadlineExceeded, nothing else: library
// errors (which may quote a whole reply body) are summarised in Detail, not
// chained, so no text we do not control reaches a log. It is the body of the
// integration's Unwrap method.
func (e *Error) Cause() error { return e.cause }

// errRedirect is returned by the redirect guard: a redirect elsewhere could
// carry the credentials to another host.
var errRedirect = errors.New("redirect to another host refused")

// Wording is an integration's text for the HTTP statuses its users act on.
type Wording struct {
	Unauthorized string // the 401 text, e.g. "credentials rejected (HTTP 401): check JIRA_PAT"
	Forbidden    string // the 403 text
	NotFound     string // the 404 text
	Service      string // names the server in "Jira server error (HTTP 503)"
	// OmitNotFoundMessage leaves the server's own message off the 404 text.
	OmitNotFoundMessage bool
}

// statusDetail describes a non-2xx reply; msg is the server's own
// explanation, already cleaned, appended when not empty.
func (w *Wording) statusDetail(status int, msg string) string {
	var d string
	switch {
	case status == http.StatusUnauthorized:
		d = w.Unauthorized
	case status == http.StatusForbidden:
		d = w.Forbidden
	case status == http.StatusNotFound:
		d = w.NotFound
	case status == http.StatusTooManyRequests:
		d = "rate limited (HTTP 429)"
	case status >= 500:
		d = fmt.Sprintf("%s server error (HTTP %d)", w.Service, status)
	default:
		d = fmt.Sprintf("request refused (HTTP %d)", status)
	}
	if msg != "" && !(w.OmitNotFoundMessage && status == http.StatusNotFound) {
		d += ": " + msg
	}
	return d
}

// Secrets holds the credential values Clean removes. Clients keep a
// *Secrets, so printing a client value shows no credential.
type Secrets []string

// Clean removes every credential and bounds the length of text that came
// from outside. A nil *Secrets removes nothing.
func (s *Secrets) Clean(text string) string {
	if s != nil {
		for _, sec := range *s {
			if sec != "" {
				text = strings.ReplaceAll(text, sec, "[redacted]")
			}
		}
	}
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > 200 {
		text = strings.ToValidUTF8(text[:200], "") + "…"
	}
	return text
}

// classify turns a failed attempt into an *Error. ctx is the caller's context
// (not the per-attempt one), so a per-attempt timeout stays retryable.
func (p *Policy) classify(ctx context.Context, op string, rec *record, err error) *Error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &Error{Op: op, Detail: ctxErr.Error(), cause: ctxErr}
	}
	if rec.err != nil {
		return p.transportError(op, rec.err)
	}
	if rec.timedOut && (rec.status == 0 || rec.status/100 == 2) {
		return &Error{Op: op, Retryable: true, Detail: "timed out"}
	}
	if rec.status == 0 {
		// The request was never sent (e.g. it could not be built).
		return &Error{Op: op, Detail: "request not sent: " + p.Secrets.Clean(err.Error())}
	}
	if rec.status < 200 || rec.status > 299 {
		e := &Error{Op: op, Status: rec.status}
		e.RetryAfter = parseRetryAfter(rec.retryAfter, p.Now())
		msg := ""
		if p.Message != nil {
			msg = p.Message(err)
		}
		e.Detail = p.Wording.statusDetail(rec.status, p.Secrets.Clean(msg))
		e.Retryable = rec.status == http.StatusTooManyRequests || rec.status >= 500
		return e
	}
	// A 2xx reply the library could not decode.
	return &Error{Op: op, Status: rec.status, Detail: "unexpected reply: " + p.Secrets.Clean(err.Error())}
}

func (p *Policy) transportError(op string, err error) *Error {
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
	return &Error{Op: op, Retryable: true, Detail: "unreachable: " + p.Secrets.Clean(err.Error())}
}
