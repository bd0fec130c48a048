package pagerduty

import (
	"errors"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/secretbot/secretbot/integrations/internal/httpx"
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

var sentinels = httpx.Sentinels{NotFound: ErrNotFound, CredentialsRejected: ErrCredentialsRejected, Unavailable: ErrUnavailable}

// Error is a call to PagerDuty that did not succeed. Its text never holds a
// credential. Its fields are those of the shared HTTP error: Op (what was
// being done, e.g. "list on-calls"), Status (HTTP status; 0 when no reply
// came), Retryable (429, 5xx, timeout or network failure), RetryAfter (the
// server's Retry-After, when it sent one) and Detail (short explanation,
// credential-free).
type Error httpx.Error

func (e *Error) Error() string { return (*httpx.Error)(e).Text("pagerduty") }

// Is lets errors.Is match the sentinel that describes the failure.
func (e *Error) Is(target error) bool { return (*httpx.Error)(e).Matches(target, sentinels) }

// Unwrap exposes context.Canceled / context.DeadlineExceeded, nothing else:
// library errors are summarised in Detail, not chained, so no text we do not
// control reaches a log.
func (e *Error) Unwrap() error { return (*httpx.Error)(e).Cause() }

// wording is the text of the HTTP statuses; a 404 gets no server message.
var wording = httpx.Wording{
	Unauthorized:        "credentials rejected (HTTP 401): check PAGERDUTY_TOKEN",
	Forbidden:           "access denied (HTTP 403): the API key may not read this",
	NotFound:            "not found (HTTP 404)",
	Service:             "PagerDuty",
	OmitNotFoundMessage: true,
}

// apiMessage is the message of PagerDuty's JSON error body, if any.
func apiMessage(err error) string {
	var apiErr pagerduty.APIError
	if errors.As(err, &apiErr) && apiErr.APIError.Valid {
		return apiErr.APIError.ErrorObject.Message
	}
	return ""
}
