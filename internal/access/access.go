// Package access is secretbot's just-in-time access domain: grants and their
// state machine, request parsing, the evidence verdicts, and the Service that
// runs a request from the slash command to a delivered (and later revoked)
// Vault grant.
//
// It depends only on the standard library, internal/config, internal/policy,
// internal/audit and internal/outbox. Outside systems are reached through the
// small ports declared here (Store/Tx, Tickets, OnCall, Vault, Messenger,
// Directory); internal/app adapts the real integrations to them.
//
// Rules the package keeps:
//   - Fail closed: a check that cannot be made refuses, naming the check and why.
//   - Every state change is a compare-and-set on the grant's Version, in one
//     transaction with its audit event and the messages it owes (Tx.Send).
//   - A token or wrapping token is never stored, audited, logged, put in an
//     error or enqueued: it exists only in the one DM sent via Messenger.SendNow.
package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

// State is where a grant is in its life.
type State string

// Grant states. pending -> approved -> issued -> expired | revoked; or
// denied | failed. expired, revoked, denied and failed are final.
const (
	StatePending  State = "pending"
	StateApproved State = "approved"
	StateIssued   State = "issued"
	StateExpired  State = "expired"
	StateRevoked  State = "revoked"
	StateDenied   State = "denied"
	StateFailed   State = "failed"
)

// ActiveStates are the states of a grant that is not over.
var ActiveStates = []State{StatePending, StateApproved, StateIssued}

// Final reports whether s is a final state.
func (s State) Final() bool {
	switch s {
	case StateExpired, StateRevoked, StateDenied, StateFailed:
		return true
	}
	return false
}

// Evidence statuses.
const (
	EvidenceOK       = "ok"
	EvidenceFailed   = "failed"   // checked, and it does not hold
	EvidenceError    = "error"    // could not be checked (fail closed)
	EvidenceChecking = "checking" // not answered yet
)

// Evidence is the outcome of one check a grant rests on. Kind is one of the
// config.Evidence* kinds ("jira", "oncall", "incident", "approval").
type Evidence struct {
	Kind   string `json:"kind"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"` // one line for people, never a credential
	Link   string `json:"link,omitempty"`
}

// End reasons (Grant.EndReason). A person's revoke is "revoked-by:<U>".
const (
	EndExpired          = "expired"
	EndTicketExpired    = "ticket-expired"
	EndDone             = "done"
	EndIncidentResolved = "incident-resolved"
	EndWrapUnused       = "wrap-unused"
	// EndUndelivered marks an issued grant whose DM could not be sent and whose
	// token is being revoked; the grant goes back to approved once it is.
	EndUndelivered = "undelivered"
	endRevokedBy   = "revoked-by:"
)

// RevokedBy is the end reason of a revoke by person slackID.
func RevokedBy(slackID string) string { return endRevokedBy + slackID }

// Wrap statuses (Grant.WrapStatus) of a wrapped-token grant.
const (
	WrapUnknown = ""       // not looked up yet
	WrapUnused  = "unused" // the wrapping token was alive at the last look-up
	WrapUsed    = "used"   // it was gone before it expired: unwrapped
)

// AccessorDryRun is the accessor recorded for grants issued in dry-run mode.
const AccessorDryRun = "dry-run"

// Grant is one request for a scope and everything that happened to it. It
// never holds a token or a wrapping token: only their accessors.
type Grant struct {
	ID                       string // "G" + 8 Crockford base32 characters, e.g. GK3D9QX2A
	Requester, Email, Scope  string // Slack user id, e-mail Slack reported, scope name
	RequesterName            string // Slack display name, for the Vault token's display name
	TTL                      time.Duration
	Ticket, Incident, Reason string
	State                    State
	Version                  int64 // bumped by every change (compare-and-set)
	Evidence                 []Evidence
	Approver, DenyReason     string
	DecidedAt                time.Time
	Delivery                 string // config.DeliveryWrappedToken | config.DeliveryEntityGroup
	TokenAccessor            string
	WrapAccessor             string
	VaultGroup               string
	WrapExpires              time.Time
	WrapStatus               string // WrapUnknown | WrapUnused | WrapUsed
	IssuedAt, ExpiresAt      time.Time
	DeliveredAt              time.Time // the DM went out (zero: issued but not yet delivered)
	EndedAt                  time.Time
	EndReason                string    // expired | ticket-expired | done | revoked-by:<U> | incident-resolved | wrap-unused
	RevokePending            bool      // a revoke was attempted and failed: retried by Sweep, shown to people
	LastError                string    // never a credential
	ResponseURL              string    // the requester's ephemeral message, updated as checks land
	CardChannel, CardTS      string    // the approval card, once known
	NotAfter                 time.Time // hard cap (the ticket's expiry); zero = none
	CreatedAt, UpdatedAt     time.Time
}

// Active reports whether the grant is not over.
func (g Grant) Active() bool { return !g.State.Final() }

// Errors of the domain. Ports return ErrNotFound and ErrConflict (the app's
// adapters map the store's errors to them).
var (
	ErrNotFound     = errors.New("access: not found")
	ErrConflict     = errors.New("access: the grant changed concurrently")
	ErrWrongState   = errors.New("access: the grant is not in a state that allows this")
	ErrSelfApproval = errors.New("access: nobody approves their own request")
	ErrNotApprover  = errors.New("access: not an approver of this scope")

	// ErrTicketNotFound is returned by Tickets.Ticket when Jira has no such
	// ticket (or the bot may not see it).
	ErrTicketNotFound = errors.New("access: no such Jira ticket")
	// ErrUnknownJiraUser is returned by Tickets.AccountByEmail when no Jira
	// user has that e-mail (or Jira hides it).
	ErrUnknownJiraUser = errors.New("access: no Jira user with that e-mail")
	// ErrIncidentNotFound is returned by OnCall.Incident for an unknown incident.
	ErrIncidentNotFound = errors.New("access: no such PagerDuty incident")
)

// UserError is a refusal meant for the person who asked: Msg says what was
// wrong and what is accepted. Field names the request field at fault
// ("scope", "ttl", "ticket", "incident", "reason"), for a modal's field-level
// error; empty when no single field is at fault. Audited is true when the
// service already wrote the refusal's audit event; Told is true when the
// person was already told through the grant's own messages (the request
// summary), so the caller need not reply again.
type UserError struct {
	Msg     string
	Field   string
	Audited bool
	Told    bool
}

func (e *UserError) Error() string { return e.Msg }

func userErr(field, format string, args ...any) *UserError {
	return &UserError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// IsUserError returns the *UserError in err's chain, if any.
func IsUserError(err error) (*UserError, bool) {
	var ue *UserError
	ok := errors.As(err, &ue)
	return ue, ok
}

// ---- Ports (implemented by adapters in internal/app) ----

// Tx is one store transaction: grant rows, audit events and owed messages
// commit together or not at all.
type Tx interface {
	GrantInsert(ctx context.Context, g Grant) error
	GrantGet(ctx context.Context, id string) (Grant, error)            // ErrNotFound
	GrantUpdate(ctx context.Context, g Grant, fromVersion int64) error // ErrConflict when the row moved on
	GrantsByState(ctx context.Context, states ...State) ([]Grant, error)
	GrantsByRequester(ctx context.Context, slackID string, states ...State) ([]Grant, error)
	// GrantsRequestedSince returns the creation times of a person's grants
	// created at or after since, oldest first (any state).
	GrantsRequestedSince(ctx context.Context, slackID string, since time.Time) ([]time.Time, error)
	Audit(ctx context.Context, e audit.Event) error
	Send(ctx context.Context, m outbox.Message) error // enqueue; never a credential
}

// Store runs fn in one transaction; fn's error rolls everything back and is
// returned as is. fn may be run more than once (retries on a busy database),
// so it must have no effect outside the transaction.
type Store interface {
	InTx(ctx context.Context, fn func(Tx) error) error
}

// Approval is one Jira Service Management approval of a ticket.
type Approval struct {
	Decision string // the approval's final decision: approved | declined | pending
	// Approvers are the people whose own decision was "approved".
	Approvers []JiraUser
	At        time.Time
}

// JiraUser names one Jira person by every identity Jira showed. AccountID is
// the Cloud accountId, or the username on Data Center; Email may be empty
// (Jira Cloud usually hides it).
type JiraUser struct {
	AccountID, Name, Email string
}

// StatusChange is one status transition from the ticket's changelog.
type StatusChange struct {
	To     string
	Author JiraUser
	At     time.Time
}

// TicketFacts is what the Jira verdict needs about a ticket.
type TicketFacts struct {
	Key, Project, Status, StatusCategory, URL string
	Owner, Scope, Justification               string
	Expiry                                    time.Time // zero when unset
	ServiceDesk                               bool      // Service Management answered; Approvals is the whole list
	Approvals                                 []Approval
	StatusChanges                             []StatusChange // oldest first
	Problems                                  []string       // values present but unreadable: the ticket is refused
}

// Tickets is Jira; nil when Jira is not configured.
type Tickets interface {
	// Ticket returns the facts the verdict needs. ErrTicketNotFound for an
	// unknown ticket; any other error means the check could not be made.
	Ticket(ctx context.Context, key string) (TicketFacts, error)
	// AccountByEmail returns the Jira identity (Cloud accountId, Data Center
	// username) with exactly that e-mail; ErrUnknownJiraUser when none.
	AccountByEmail(ctx context.Context, email string) (string, error)
	// Comment and Open are called by OpenTicket and by the app's outbox
	// deliverer, never inline in a request.
	Comment(ctx context.Context, key, body string) error
	Open(ctx context.Context, summary, body string) (key string, err error)
}

// Incident is what the incident check needs from PagerDuty.
type Incident struct {
	ID, Number, Title, Status, URL, ServiceID, PolicyID string
	AssigneeIDs                                         []string // PagerDuty user ids
	// InPolicyServices: the incident's service is one of the configured
	// escalation policies' services.
	InPolicyServices bool
}

// Open reports whether the incident is triggered or acknowledged.
func (i Incident) Open() bool { return i.Status == "triggered" || i.Status == "acknowledged" }

// OnCall is PagerDuty; nil when PagerDuty is not configured.
type OnCall interface {
	// OnCallNow reports whether the PagerDuty user with exactly that e-mail is
	// on call now on a configured escalation policy (within the configured
	// level). detail says on what (or why not); userID is their PagerDuty id
	// ("" when no such user). An error means the check could not be made.
	OnCallNow(ctx context.Context, email string) (onCall bool, detail string, userID string, err error)
	// Incident looks up an id, number or URL; ErrIncidentNotFound when unknown.
	Incident(ctx context.Context, ref string) (Incident, error)
}

// IssueRequest is a token to create, response-wrapped, through the token role.
type IssueRequest struct {
	Policies    []string
	TTL         time.Duration // the token's TTL and explicit max TTL
	Metadata    map[string]string
	DisplayName string
}

// Wrapped is a response-wrapped token just created. WrapToken is a
// credential: it goes into the one DM and nowhere else, and printing,
// logging or marshalling a Wrapped value shows it redacted.
type Wrapped struct {
	WrapToken     string
	WrapAccessor  string
	TokenAccessor string
	WrapExpires   time.Time
}

const redacted = "[redacted]"

func (w Wrapped) String() string {
	return fmt.Sprintf("{WrapToken:%s WrapAccessor:%s TokenAccessor:%s WrapExpires:%s}",
		redacted, w.WrapAccessor, w.TokenAccessor, w.WrapExpires.Format(time.RFC3339))
}

// GoString keeps the wrapping token out of %#v.
func (w Wrapped) GoString() string { return "access.Wrapped" + w.String() }

// Format keeps the wrapping token out of every fmt verb.
func (w Wrapped) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, w.GoString())
		return
	}
	fmt.Fprint(f, w.String())
}

// LogValue keeps the wrapping token out of slog.
func (w Wrapped) LogValue() slog.Value {
	return slog.GroupValue(slog.String("wrap_token", redacted), slog.String("wrap_accessor", w.WrapAccessor),
		slog.String("token_accessor", w.TokenAccessor), slog.Time("wrap_expires", w.WrapExpires))
}

// MarshalJSON keeps the wrapping token out of JSON.
func (w Wrapped) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"wrap_token":%q,"wrap_accessor":%q,"token_accessor":%q,"wrap_expires":%q}`,
		redacted, w.WrapAccessor, w.TokenAccessor, w.WrapExpires.Format(time.RFC3339Nano)), nil
}

// Vault is where grants are made and taken back.
type Vault interface {
	IssueWrapped(ctx context.Context, r IssueRequest) (Wrapped, error)
	RevokeAccessor(ctx context.Context, accessor string) error // already gone = nil
	AccessorAlive(ctx context.Context, accessor string) (bool, error)
	// JoinGroup creates group (per grant) with the policies and puts the
	// entity of the person with that e-mail in it (entity-group delivery).
	JoinGroup(ctx context.Context, group string, policies []string, email string, meta map[string]string) error
	DeleteGroup(ctx context.Context, group string) error // gone = nil
}

// Messenger sends a message at once, bypassing the outbox. Used only for the
// DM that carries a wrapping token.
type Messenger interface {
	SendNow(ctx context.Context, m outbox.Message) (ts string, err error)
}

// Directory tells who a Slack user is now (for rights checked at the moment
// of acting).
type Directory interface {
	Person(ctx context.Context, slackID string) (policy.Person, error)
}

// CardRef is the approval card a click came from.
type CardRef struct {
	Channel, TS string
}
