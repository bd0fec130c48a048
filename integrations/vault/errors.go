package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/hashicorp/vault/api"
)

// Sentinel errors callers tell apart with errors.Is. Every error this package
// returns is an *Error wrapping one of these (or a context error), or plain
// input validation.
var (
	// ErrNotFound: the accessor, role or path does not exist (or no longer does).
	ErrNotFound = errors.New("not found")
	// ErrPermissionDenied: Vault refused the bot's token (policy or invalid token).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnavailable: Vault could not be reached, is sealed, or failed (5xx, 429).
	// Worth retrying later.
	ErrUnavailable = errors.New("vault unavailable")
	// ErrNotLoggedIn: Login has not succeeded yet.
	ErrNotLoggedIn = errors.New("not logged in to vault")
)

// Error is what a failed Vault call returns. Detail is a one-line summary
// already scrubbed of credentials; the raw library error is deliberately not
// kept, so nothing downstream can print more than this.
type Error struct {
	Op         string // e.g. "create token", "lookup accessor"
	StatusCode int    // HTTP status, 0 when no reply came
	Detail     string
	kind       error
}

func (e *Error) Error() string { return "vault: " + e.Op + ": " + e.Detail }

// Unwrap exposes the sentinel (ErrNotFound, ErrPermissionDenied,
// ErrUnavailable, or a context error), never the underlying library error.
func (e *Error) Unwrap() error { return e.kind }

// tokenPattern matches Vault token shapes (hvs./hvb./hvr. and legacy s./b.),
// scrubbed from any text we return, as defence in depth.
var tokenPattern = regexp.MustCompile(`\b(hv[sbr]\.[A-Za-z0-9_\-]{8,}|[sb]\.[A-Za-z0-9]{24})\b`)

var multiErrPrefix = regexp.MustCompile(`^\d+ errors? occurred:\s*`)

// scrub removes every known credential and anything token-shaped from s.
func scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return tokenPattern.ReplaceAllString(s, "[redacted]")
}

// oneLine collapses whitespace and caps the length: Vault's multi-line
// error texts become readable log fields and check details.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// wrapErr turns a library error into an *Error. secrets are scrubbed from the
// detail in addition to the token-shaped pattern.
func wrapErr(ctx context.Context, op string, err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op}
	var re *api.ResponseError
	switch {
	case errors.As(err, &re):
		e.StatusCode = re.StatusCode
		e.Detail = fmt.Sprintf("HTTP %d: %s", re.StatusCode, responseErrors(re))
		e.kind = kindOf(re.StatusCode)
	case ctx != nil && ctx.Err() != nil:
		e.Detail = ctx.Err().Error()
		e.kind = ctx.Err()
	default:
		e.Detail = err.Error()
		e.kind = ErrUnavailable
	}
	e.Detail = oneLine(scrub(e.Detail, secrets...))
	return e
}

func kindOf(status int) error {
	switch {
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return ErrPermissionDenied
	case status == http.StatusTooManyRequests || status >= 500:
		return ErrUnavailable
	}
	return nil
}

// responseErrors joins Vault's error list into one line, dropping the
// "1 error occurred: *" decoration multierror adds.
func responseErrors(re *api.ResponseError) string {
	var parts []string
	for _, m := range re.Errors {
		m = oneLine(m)
		m = multiErrPrefix.ReplaceAllString(m, "")
		m = strings.TrimSpace(strings.TrimPrefix(m, "* "))
		m = strings.ReplaceAll(m, " * ", "; ")
		if m != "" {
			parts = append(parts, m)
		}
	}
	if len(parts) == 0 {
		return http.StatusText(re.StatusCode)
	}
	return strings.Join(parts, "; ")
}

// hasMessage reports whether a Vault error reply carries msg (case-insensitive).
func hasMessage(err error, status int, msg string) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status {
		return false
	}
	for _, m := range re.Errors {
		if strings.Contains(strings.ToLower(m), msg) {
			return true
		}
	}
	return false
}
