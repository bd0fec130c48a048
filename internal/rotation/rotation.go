// Package rotation is secretbot's secret-rotation domain: the inventory
// registry of secrets (owner, KV v2 path, interval, last rotation, due
// date), provisioning, the rotation workflow (new KV version written with
// check-and-set, staging and production verified in a Slack thread, the
// previous version destroyed, the evidence commented on Jira), emergency
// rotations, exposure reports and the journal.
//
// Like internal/access it depends only on the standard library and the
// domain packages (config, policy, audit, outbox, access for the shared
// Jira/PagerDuty facts). Outside systems are reached through the small ports
// declared here (Store/Tx, KV, Tickets, Incidents, People, Directory,
// Grants, Messenger); internal/app adapts the real integrations to them.
//
// Rules the package keeps:
//   - Only rotation.rotators (Platform Security) may register, provision,
//     rotate, confirm or roll back, their rights read from Slack (Directory)
//     at the moment of acting.
//   - Every state change is a compare-and-set on the row's Version, in one
//     transaction with its audit event and the messages it owes (Tx.Send).
//   - A secret value (generated or provided) exists only in memory on its
//     way to KV.Write: it is never stored, audited, logged, put in an error,
//     enqueued or echoed.
//   - A KV write is a check-and-set against the version the bot read: a
//     concurrent writer is detected and reported, never overwritten.
package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

// Where a registry entry came from.
const (
	SourceConfig     = "config"     // inventory.secrets in the file
	SourceRegistered = "registered" // /secrets register or /secrets provision
)

// Generate says how the bot makes a new value: Length characters drawn
// uniformly with crypto/rand from Alphabet (ranges allowed, "A-Za-z0-9").
type Generate struct {
	Length   int
	Alphabet string
}

// Secret is one entry of the inventory registry. It never holds a value.
type Secret struct {
	Name         string // ^[a-z][a-z0-9-]{1,60}$
	Environment  string
	OwnerTeam    string
	OwnerContact string // Slack member id
	Mount, Path  string // KV v2 mount and the path under it
	Interval     time.Duration
	Generate     Generate // zero when Provided
	Provided     bool     // the value is made by a provider and pasted into a modal

	LastRotatedAt time.Time // zero: never rotated by the bot
	LastOperator  string    // Slack member id
	LastTicket    string
	LastVersion   int // KV version current after the last rotation (or provisioning)

	Source               string // SourceConfig | SourceRegistered
	Version              int64  // bumped by every change (compare-and-set)
	CreatedAt, UpdatedAt time.Time
}

// Due is when the secret must next be rotated: the last rotation (or, never
// rotated, its registration) plus its interval.
func (s Secret) Due() time.Time {
	base := s.LastRotatedAt
	if base.IsZero() {
		base = s.CreatedAt
	}
	return base.Add(s.Interval)
}

// Overdue reports whether the due date has passed at now.
func (s Secret) Overdue(now time.Time) bool { return !now.Before(s.Due()) }

// DueSoon reports whether the secret falls due within window of now (and is
// not overdue yet).
func (s Secret) DueSoon(now time.Time, window time.Duration) bool {
	return !s.Overdue(now) && now.Add(window).After(s.Due())
}

// State is where a rotation is.
type State string

// Rotation states. staging (new version written, waiting for "staging
// verified") -> production (waiting for "production verified") ->
// completed; or rolled-back (the previous value is current again) | failed.
// completed, rolled-back and failed are final.
const (
	StateStaging    State = "staging"
	StateProduction State = "production"
	StateCompleted  State = "completed"
	StateRolledBack State = "rolled-back"
	StateFailed     State = "failed"
)

// ActiveStates are the states of a rollout in progress.
var ActiveStates = []State{StateStaging, StateProduction}

// Final reports whether s is a final state.
func (s State) Final() bool {
	return s == StateCompleted || s == StateRolledBack || s == StateFailed
}

// Stages people confirm.
const (
	StageStaging    = "staging"
	StageProduction = "production"
)

// Rotation is one rotation of a secret and everything that happened to it.
// It never holds the value.
type Rotation struct {
	ID                      string // "R" + 8 Crockford base32 characters
	Secret                  string
	Operator                string // Slack member id of who started it
	Ticket                  string
	Incident                string // PagerDuty incident id (emergencies)
	Commander               string // Slack member id of the incident's assignee ("" when unknown)
	Emergency               bool
	State                   State
	FromVersion, ToVersion  int // KV versions: the one replaced, the one written
	ThreadChannel, ThreadTS string
	StagingBy               string
	StagingAt               time.Time
	ProductionBy            string
	ProductionAt            time.Time
	RolledBackBy            string
	RollbackVersion         int    // the KV version written by Roll back
	Flagged                 bool   // unconfirmed past confirm_within
	Reminders               int    // reminders posted so far
	LastError               string // never a value
	StartedAt, CompletedAt  time.Time
	Version                 int64 // bumped by every change (compare-and-set)
	UpdatedAt               time.Time
}

// Active reports whether the rollout is in progress.
func (r Rotation) Active() bool { return !r.State.Final() }

// Journal kinds.
const (
	KindRestoreTest  = "restore-test"
	KindReview       = "review"
	KindPostIncident = "post-incident"
)

// JournalKinds are the kinds of journal entry, in the order people see them.
var JournalKinds = []string{KindRestoreTest, KindReview, KindPostIncident}

// JournalEntry is one record of the playbook's journal: a restore test, an
// access review, a post-incident review.
type JournalEntry struct {
	ID       string // "J" + 8 Crockford base32 characters
	Kind     string // KindRestoreTest | KindReview | KindPostIncident
	Outcome  string // restore tests: passed | failed; otherwise free
	Notes    string
	Author   string // Slack member id, or "secretbot"
	Rotation string // the rotation a post-incident review is about
	At       time.Time
	Fields   map[string]string // e.g. cause, blast_radius, follow_ups
}

// Errors of the domain. Ports return ErrNotFound and ErrConflict (the app's
// adapters map the store's errors to them); KV.Write returns ErrCASMismatch.
var (
	ErrNotFound   = errors.New("rotation: not found")
	ErrConflict   = errors.New("rotation: the row changed concurrently")
	ErrWrongState = errors.New("rotation: the rotation is not in a state that allows this")
	// ErrCASMismatch is returned by KV.Write when the secret's current
	// version is not the cas given: someone else wrote it.
	ErrCASMismatch = errors.New("rotation: the secret's KV version moved on (check-and-set mismatch)")
	// ErrKVNotFound may be returned by KV.Read for a version that is gone
	// (destroyed or deleted).
	ErrKVNotFound = errors.New("rotation: no such KV version")
)

// UserError is a refusal meant for the person who asked; it is
// access.UserError (Msg says what was wrong and what is accepted; Field
// names the form field at fault: "secret", "ticket", "incident", "value",
// "name", "path", ...).
type UserError = access.UserError

func userErr(field, format string, args ...any) *UserError {
	return &UserError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// IsUserError returns the *UserError in err's chain, if any.
func IsUserError(err error) (*UserError, bool) { return access.IsUserError(err) }

// ---- Ports (implemented by adapters in internal/app) ----

// Tx is one store transaction: registry, rotation and journal rows, meta
// values, audit events and owed messages commit together or not at all.
type Tx interface {
	SecretInsert(ctx context.Context, s Secret) error                    // ErrConflict when the name exists
	SecretGet(ctx context.Context, name string) (Secret, error)          // ErrNotFound
	SecretList(ctx context.Context) ([]Secret, error)                    // by name
	SecretUpdate(ctx context.Context, s Secret, fromVersion int64) error // ErrConflict when the row moved on; ErrNotFound
	RotationInsert(ctx context.Context, r Rotation) error                // ErrConflict when the id exists
	RotationGet(ctx context.Context, id string) (Rotation, error)        // ErrNotFound
	RotationUpdate(ctx context.Context, r Rotation, fromVersion int64) error
	// RotationsByState lists rotations in any of states (all when none),
	// oldest first.
	RotationsByState(ctx context.Context, states ...State) ([]Rotation, error)
	JournalAdd(ctx context.Context, e JournalEntry) error // ErrConflict when the id exists
	// JournalList lists entries of kind ("" for every kind), newest first,
	// at most limit (0: no limit).
	JournalList(ctx context.Context, kind string, limit int) ([]JournalEntry, error)
	// MetaGet reads a meta value (dedup keys, cursors); ok=false when absent.
	MetaGet(ctx context.Context, key string) (value string, ok bool, err error)
	MetaSet(ctx context.Context, key, value string) error
	Audit(ctx context.Context, e audit.Event) error
	Send(ctx context.Context, m outbox.Message) error // enqueue; never a value
}

// Store runs fn in one transaction; fn's error rolls everything back and is
// returned as is. fn may be run more than once, so it must have no effect
// outside the transaction.
type Store interface {
	InTx(ctx context.Context, fn func(Tx) error) error
}

// KV is Vault's KV v2 engine. Values pass through it and nowhere else.
type KV interface {
	// Current returns the secret's current version; 0 when it does not exist.
	Current(ctx context.Context, mount, path string) (version int, err error)
	// Write writes value as a new version if the current version is cas (0:
	// the secret must not exist); ErrCASMismatch otherwise.
	Write(ctx context.Context, mount, path string, value map[string]string, cas int) (version int, err error)
	// Read returns one version's data (for Roll back); ErrKVNotFound when gone.
	Read(ctx context.Context, mount, path string, version int) (map[string]string, error)
	Destroy(ctx context.Context, mount, path string, version int) error
	SoftDelete(ctx context.Context, mount, path string, version int) error
	// PatchMetadata merges custom into the secret's custom_metadata.
	PatchMetadata(ctx context.Context, mount, path string, custom map[string]string) error
	// Metadata returns custom_metadata and the current version (drift check);
	// ErrKVNotFound when the secret does not exist.
	Metadata(ctx context.Context, mount, path string) (custom map[string]string, currentVersion int, err error)
}

// Tickets is the part of Jira rotation needs; nil when Jira is not
// configured. Comments go through the outbox (kind outbox.JiraComment).
type Tickets interface {
	// Ticket: access.ErrTicketNotFound for an unknown ticket.
	Ticket(ctx context.Context, key string) (access.TicketFacts, error)
	// AccountByEmail: access.ErrUnknownJiraUser when no Jira user has it.
	AccountByEmail(ctx context.Context, email string) (string, error)
}

// Incidents is PagerDuty's incidents; nil when PagerDuty is not configured.
type Incidents interface {
	// Incident looks up an id, number or URL; access.ErrIncidentNotFound when unknown.
	Incident(ctx context.Context, ref string) (access.Incident, error)
}

// People finds the incident commander's Slack id.
type People interface {
	// SlackIDByEmail returns the Slack member with exactly that e-mail.
	SlackIDByEmail(ctx context.Context, email string) (string, error)
	// PDUserEmail returns a PagerDuty user's e-mail.
	PDUserEmail(ctx context.Context, pdUserID string) (string, error)
}

// Directory tells who a Slack user is now (rights are checked at the
// moment of acting).
type Directory interface {
	Person(ctx context.Context, slackID string) (policy.Person, error)
}

// Grants reads the access grants issued since t (every state).
type Grants interface {
	GrantsSince(ctx context.Context, t time.Time) ([]access.Grant, error)
}

// Messenger sends a message at once, bypassing the outbox, and returns its
// ts: used only to post a rotation's thread root (kind ThreadKind).
type Messenger interface {
	SendNow(ctx context.Context, m outbox.Message) (ts string, err error)
}

// Outbox kinds this package enqueues besides Slack messages.
const (
	// ThreadKind: Target is a rotation id; the app's deliverer calls
	// Service.PostThread, which posts the rollout thread's root (with the
	// Staging verified / Production verified / Roll back buttons) through
	// Messenger and records its channel and ts on the rotation.
	ThreadKind = "rotation-thread"
)

// Block Kit action ids of the rollout buttons; each button's value is the
// rotation id.
const (
	ActionStaging    = "rotation_staging"
	ActionProduction = "rotation_production"
	ActionRollback   = "rotation_rollback"
	// ActionReview opens the post-incident review modal (value: rotation id).
	ActionReview = "rotation_review"
)
