package handlers

import (
	"context"
	"encoding/json"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/policy"
)

// Access is the just-in-time access service (internal/access.Service).
// Refusals are *access.UserError; any other error is internal.
type Access interface {
	Request(ctx context.Context, p policy.Person, a access.RequestArgs, responseURL string) (access.Grant, error)
	Decide(ctx context.Context, clicker policy.Person, grantID string, approve bool, reason string, card access.CardRef) error
	Revoke(ctx context.Context, grantID, by, why string) error
	Grants(ctx context.Context, p policy.Person) ([]access.Grant, error)
	Explain(ctx context.Context, asker, target policy.Person, scope string) (string, error)
}

// Views opens modals. A trigger id lives three seconds and works once, so
// a modal is opened at once, never through the outbox.
type Views interface {
	OpenView(ctx context.Context, triggerID string, view json.RawMessage) error
	PublishHome(ctx context.Context, userID string, view json.RawMessage) error
}

// AuditLog reads the access log for `/secrets audit`.
type AuditLog interface {
	// AuditSince returns up to limit events at or after since, newest first,
	// by actor when actor is not empty.
	AuditSince(ctx context.Context, since time.Time, actor string, limit int) ([]audit.Record, error)
}
