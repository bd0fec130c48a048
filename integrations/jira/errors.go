package jira

import (
	"errors"
	"slices"

	jira "github.com/andygrunwald/go-jira"

	"github.com/secretbot/secretbot/integrations/internal/httpx"
)

// Errors callers tell apart with errors.Is. ErrUnknownUser, ErrInvalidKey and
// ErrNotConfigured are answers; every *Error means Jira could not answer and
// the caller must fail closed.
var (
	// ErrNotConfigured: JIRA_URL and credentials are not set.
	ErrNotConfigured = errors.New("jira: not configured")
	// ErrInvalidKey: the ticket key is malformed or outside the configured project.
	ErrInvalidKey = errors.New("jira: not a ticket key of the configured project (accepted: PROJ-123)")
	// ErrUnknownUser: no Jira user has exactly that e-mail address (or Jira hides it).
	ErrUnknownUser = errors.New("jira: no Jira user with that e-mail address is visible to the bot")
	// ErrNotFound matches an *Error whose status is 404 (Jira also answers 404
	// when the bot may not see the issue).
	ErrNotFound = errors.New("jira: not found")
	// ErrCredentialsRejected matches an *Error whose status is 401 or 403.
	ErrCredentialsRejected = errors.New("jira: credentials rejected")
	// ErrUnavailable matches a retryable *Error (429, 5xx, timeout, network).
	ErrUnavailable = errors.New("jira: temporarily unavailable")
)

var sentinels = httpx.Sentinels{NotFound: ErrNotFound, CredentialsRejected: ErrCredentialsRejected, Unavailable: ErrUnavailable}

// Error is a call to Jira that did not succeed. Its text never holds a
// credential. Its fields are those of the shared HTTP error: Op (what was
// being done, e.g. "get ticket SEC-12"), Status (HTTP status; 0 when no reply
// came), Retryable (429, 5xx, timeout or network failure), RetryAfter (the
// server's Retry-After, when it sent one) and Detail (short explanation,
// credential-free).
type Error httpx.Error

func (e *Error) Error() string { return (*httpx.Error)(e).Text("jira") }

// Is lets errors.Is match the sentinel that describes the failure.
func (e *Error) Is(target error) bool { return (*httpx.Error)(e).Matches(target, sentinels) }

// Unwrap exposes context.Canceled / context.DeadlineExceeded, nothing else:
// library errors (which may quote a whole reply body) are summarised in
// Detail, not chained.
func (e *Error) Unwrap() error { return (*httpx.Error)(e).Cause() }

// wording is the text of the HTTP statuses; credVars names the credentials
// to check after a 401.
func wording(credVars string) httpx.Wording {
	return httpx.Wording{
		Unauthorized: "credentials rejected (HTTP 401): check " + credVars,
		Forbidden:    "access denied (HTTP 403): the bot's Jira user may not do this",
		NotFound:     "not found or not visible to the bot (HTTP 404)",
		Service:      "Jira",
	}
}

// jiraMessage is the first message of Jira's JSON error body, if any.
func jiraMessage(err error) string {
	var je *jira.Error
	if !errors.As(err, &je) {
		return ""
	}
	if len(je.ErrorMessages) > 0 {
		return je.ErrorMessages[0]
	}
	keys := make([]string, 0, len(je.Errors))
	for k := range je.Errors {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > 0 {
		return keys[0] + ": " + je.Errors[keys[0]]
	}
	return ""
}
