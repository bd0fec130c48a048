package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/secretbot/secretbot/integrations/pagerduty"
	slackint "github.com/secretbot/secretbot/integrations/slack"
	"github.com/secretbot/secretbot/integrations/vault"
	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/rotation"
	"github.com/secretbot/secretbot/internal/schedule"
	"github.com/secretbot/secretbot/internal/store"
)

// rotationStore runs rotation transactions on the ledger.
type rotationStore struct{ ledger }

func (s rotationStore) InTx(ctx context.Context, fn func(rotation.Tx) error) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error { return fn(rotationTx{Tx: tx, txBase: s.base(tx)}) })
}

// rotationTx is a store transaction seen by the rotation domain; the store's
// own errors become the domain's.
type rotationTx struct {
	*store.Tx
	txBase
}

func rotationErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", rotation.ErrNotFound, err)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: %w", rotation.ErrConflict, err)
	}
	return err
}

func (t rotationTx) SecretInsert(ctx context.Context, s rotation.Secret) error {
	return rotationErr(t.Tx.SecretInsert(ctx, s))
}

func (t rotationTx) SecretGet(ctx context.Context, name string) (rotation.Secret, error) {
	s, err := t.Tx.SecretGet(ctx, name)
	return s, rotationErr(err)
}

func (t rotationTx) SecretUpdate(ctx context.Context, s rotation.Secret, from int64) error {
	return rotationErr(t.Tx.SecretUpdate(ctx, s, from))
}

func (t rotationTx) RotationInsert(ctx context.Context, r rotation.Rotation) error {
	return rotationErr(t.Tx.RotationInsert(ctx, r))
}

func (t rotationTx) RotationGet(ctx context.Context, id string) (rotation.Rotation, error) {
	r, err := t.Tx.RotationGet(ctx, id)
	return r, rotationErr(err)
}

func (t rotationTx) RotationUpdate(ctx context.Context, r rotation.Rotation, from int64) error {
	return rotationErr(t.Tx.RotationUpdate(ctx, r, from))
}

func (t rotationTx) JournalAdd(ctx context.Context, e rotation.JournalEntry) error {
	return rotationErr(t.Tx.JournalAdd(ctx, e))
}

// kvStore adapts Vault's KV v2 to the rotation domain.
type kvStore struct{ *vault.Client }

func kvErr(err error) error {
	switch {
	case errors.Is(err, vault.ErrCASMismatch):
		return fmt.Errorf("%w: %w", rotation.ErrCASMismatch, err)
	case errors.Is(err, vault.ErrNotFound):
		return fmt.Errorf("%w: %w", rotation.ErrKVNotFound, err)
	}
	return err
}

func (k kvStore) Write(ctx context.Context, mount, path string, value map[string]string, cas int) (int, error) {
	v, err := k.Client.Write(ctx, mount, path, value, cas)
	return v, kvErr(err)
}

func (k kvStore) Read(ctx context.Context, mount, path string, version int) (map[string]string, error) {
	v, err := k.Client.Read(ctx, mount, path, version)
	return v, kvErr(err)
}

func (k kvStore) Metadata(ctx context.Context, mount, path string) (map[string]string, int, error) {
	m, v, err := k.Client.Metadata(ctx, mount, path)
	return m, v, kvErr(err)
}

// people finds an incident commander's Slack id.
type people struct {
	sl *slackint.Client
	pd *pagerduty.Client // nil without PagerDuty
}

func (p people) SlackIDByEmail(ctx context.Context, email string) (string, error) {
	return p.sl.SlackIDByEmail(ctx, email)
}

func (p people) PDUserEmail(ctx context.Context, id string) (string, error) {
	if p.pd == nil {
		return "", errors.New("pagerduty is not configured")
	}
	return p.pd.UserEmail(ctx, id)
}

// grantsReader reads grants for exposure reports and the access review.
type grantsReader struct{ st accessStore }

func (g grantsReader) all(ctx context.Context, states ...access.State) ([]access.Grant, error) {
	var out []access.Grant
	err := g.st.InTx(ctx, func(tx access.Tx) error {
		var err error
		out, err = tx.GrantsByState(ctx, states...)
		return err
	})
	return out, err
}

func (g grantsReader) GrantsSince(ctx context.Context, t time.Time) ([]access.Grant, error) {
	gs, err := g.all(ctx, access.StateIssued, access.StateExpired, access.StateRevoked)
	if err != nil {
		return nil, err
	}
	var out []access.Grant
	for _, gr := range gs {
		// Live at some point since t: issued, and not ended before t.
		if !gr.IssuedAt.IsZero() && (gr.EndedAt.IsZero() || !gr.EndedAt.Before(t)) {
			out = append(out, gr)
		}
	}
	return out, nil
}

func (g grantsReader) Active(ctx context.Context) ([]access.Grant, error) {
	return g.all(ctx, access.ActiveStates...)
}

func (g grantsReader) Since(ctx context.Context, t time.Time) ([]access.Grant, error) {
	gs, err := g.all(ctx, access.StateIssued, access.StateExpired, access.StateRevoked)
	if err != nil {
		return nil, err
	}
	var out []access.Grant
	for _, gr := range gs {
		if !gr.IssuedAt.Before(t) {
			out = append(out, gr)
		}
	}
	return out, nil
}

// scheduleStore runs the scheduler's transactions on the ledger.
type scheduleStore struct{ ledger }

func (s scheduleStore) InTx(ctx context.Context, fn func(schedule.Tx) error) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error { return fn(scheduleTx{s.base(tx)}) })
}

// scheduleTx sends with a dedup key (its Send shadows the base one).
type scheduleTx struct{ txBase }

func (t scheduleTx) MetaGet(ctx context.Context, key string) (string, bool, error) {
	return t.tx.MetaGet(ctx, key)
}

func (t scheduleTx) MetaCAS(ctx context.Context, key, old, value string) (bool, error) {
	return t.tx.MetaCAS(ctx, key, old, value)
}

func (t scheduleTx) Send(ctx context.Context, m outbox.Message, dedupKey string) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	now := t.now()
	_, err = t.tx.OutboxAdd(ctx, store.OutboxMessage{DedupKey: dedupKey, Lane: laneOf(m), Body: b, State: "pending", NextAttempt: now, CreatedAt: now})
	return err
}

func (t scheduleTx) JournalAdd(ctx context.Context, kind, outcome, notes, author string, fields map[string]string) error {
	return t.tx.JournalAdd(ctx, rotation.JournalEntry{ID: rotation.NewJournalID(), Kind: kind, Outcome: outcome,
		Notes: notes, Author: author, At: t.now(), Fields: fields})
}

// inventoryView gives the scheduler the registry's due dates.
type inventoryView struct{ svc *rotation.Service }

func (v inventoryView) Secrets(ctx context.Context) ([]schedule.Secret, error) {
	items, err := v.svc.Inventory(ctx, rotation.Filter{})
	if err != nil {
		return nil, err
	}
	out := make([]schedule.Secret, 0, len(items))
	for _, it := range items {
		out = append(out, schedule.Secret{Name: it.Name, Environment: it.Environment, OwnerTeam: it.OwnerTeam,
			OwnerContact: it.OwnerContact, Due: it.Due})
	}
	return out, nil
}
