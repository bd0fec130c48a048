package httpx

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

var (
	errNotFound = errors.New("example: not found")
	errRejected = errors.New("example: credentials rejected")
	errDown     = errors.New("example: temporarily unavailable")
	sentinels   = Sentinels{NotFound: errNotFound, CredentialsRejected: errRejected, Unavailable: errDown}
)

func TestErrorText(t *testing.T) {
	e := &Error{Op: "get ticket SEC-12", Status: 429, Retryable: true, Detail: "rate limited (HTTP 429)"}
	if got, want := e.Text("jira"), "jira: get ticket SEC-12: rate limited (HTTP 429)"; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
	e.RetryAfter = 2 * time.Minute
	if got, want := e.Text("jira"), "jira: get ticket SEC-12: rate limited (HTTP 429) (retry after 2m0s)"; got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
}

func TestErrorMatches(t *testing.T) {
	other := errors.New("other")
	tests := []struct {
		name string
		e    Error
		want []error // matched; every other sentinel must not match
	}{
		{name: "404", e: Error{Status: http.StatusNotFound}, want: []error{errNotFound}},
		{name: "401", e: Error{Status: http.StatusUnauthorized}, want: []error{errRejected}},
		{name: "403", e: Error{Status: http.StatusForbidden}, want: []error{errRejected}},
		{name: "429", e: Error{Status: http.StatusTooManyRequests, Retryable: true}, want: []error{errDown}},
		{name: "503", e: Error{Status: http.StatusServiceUnavailable, Retryable: true}, want: []error{errDown}},
		{name: "timeout", e: Error{Retryable: true}, want: []error{errDown}},
		{name: "400", e: Error{Status: http.StatusBadRequest}},
		{name: "canceled", e: Error{cause: context.Canceled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, target := range []error{errNotFound, errRejected, errDown, other, context.Canceled} {
				want := false
				for _, w := range tt.want {
					want = want || w == target
				}
				if got := tt.e.Matches(target, sentinels); got != want {
					t.Errorf("Matches(%v) = %v, want %v", target, got, want)
				}
			}
		})
	}
}

func TestStatusDetail(t *testing.T) {
	w := Wording{
		Unauthorized: "credentials rejected (HTTP 401): check EXAMPLE_TOKEN",
		Forbidden:    "access denied (HTTP 403): the bot may not do this",
		NotFound:     "not found (HTTP 404)",
		Service:      "Example",
	}
	quiet := w
	quiet.OmitNotFoundMessage = true
	tests := []struct {
		w      Wording
		status int
		msg    string
		want   string
	}{
		{w, 401, "", "credentials rejected (HTTP 401): check EXAMPLE_TOKEN"},
		{w, 403, "You do not have permission", "access denied (HTTP 403): the bot may not do this: You do not have permission"},
		{w, 404, "Issue does not exist", "not found (HTTP 404): Issue does not exist"},
		{quiet, 404, "Not Found", "not found (HTTP 404)"},
		{quiet, 403, "Forbidden", "access denied (HTTP 403): the bot may not do this: Forbidden"},
		{w, 429, "", "rate limited (HTTP 429)"},
		{w, 500, "Internal server error", "Example server error (HTTP 500): Internal server error"},
		{w, 503, "", "Example server error (HTTP 503)"},
		{w, 400, "issuetype: Specify a valid issue type", "request refused (HTTP 400): issuetype: Specify a valid issue type"},
		{w, 302, "", "request refused (HTTP 302)"},
	}
	for _, tt := range tests {
		if got := tt.w.statusDetail(tt.status, tt.msg); got != tt.want {
			t.Errorf("statusDetail(%d, %q) = %q, want %q", tt.status, tt.msg, got, tt.want)
		}
	}
}

func TestClean(t *testing.T) {
	s := &Secrets{"", "t0ken", "dXNlcjp0MGtlbg=="}
	tests := []struct {
		s    *Secrets
		in   string
		want string
	}{
		{nil, "  a\n b\tc  ", "a b c"},
		{s, "Token token=t0ken, Basic dXNlcjp0MGtlbg==", "Token token=[redacted], Basic [redacted]"},
		{s, strings.Repeat("x", 200), strings.Repeat("x", 200)},
		{s, strings.Repeat("x", 201), strings.Repeat("x", 200) + "…"},
		{s, strings.Repeat("x", 199) + "é", strings.Repeat("x", 199) + "…"}, // no half rune
	}
	for _, tt := range tests {
		if got := tt.s.Clean(tt.in); got != tt.want {
			t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
