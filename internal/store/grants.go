package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
)

// Grants: the rows behind internal/access. The app adapts *Tx to access.Tx
// (mapping ErrNotFound and ErrConflict to access's errors).

const grantColumns = `id, requester, requester_name, email, scope, ttl_ns, ticket, incident, reason,
	state, version, evidence, approver, deny_reason, decided_at, delivery, token_accessor, wrap_accessor,
	vault_group, wrap_expires, wrap_status, issued_at, expires_at, delivered_at, ended_at, end_reason,
	revoke_pending, last_error, response_url, card_channel, card_ts, not_after, created_at, updated_at`

const grantColumnCount = 34

func grantValues(g access.Grant) ([]any, error) {
	ev := g.Evidence
	if ev == nil {
		ev = []access.Evidence{}
	}
	evJSON, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	pending := 0
	if g.RevokePending {
		pending = 1
	}
	return []any{g.ID, g.Requester, g.RequesterName, g.Email, g.Scope, int64(g.TTL), g.Ticket, g.Incident, g.Reason,
		string(g.State), g.Version, string(evJSON), g.Approver, g.DenyReason, nanos(g.DecidedAt), g.Delivery,
		g.TokenAccessor, g.WrapAccessor, g.VaultGroup, nanos(g.WrapExpires), g.WrapStatus, nanos(g.IssuedAt),
		nanos(g.ExpiresAt), nanos(g.DeliveredAt), nanos(g.EndedAt), g.EndReason, pending, errorText(g.LastError),
		g.ResponseURL, g.CardChannel, g.CardTS, nanos(g.NotAfter), nanos(g.CreatedAt), nanos(g.UpdatedAt)}, nil
}

func scanGrant(row interface{ Scan(...any) error }) (access.Grant, error) {
	var (
		g                                                        access.Grant
		ttl                                                      int64
		state, evJSON                                            string
		decided, wrapExp, issued, expires, delivered, ended, nab int64
		created, updated                                         int64
		pending                                                  int
	)
	err := row.Scan(&g.ID, &g.Requester, &g.RequesterName, &g.Email, &g.Scope, &ttl, &g.Ticket, &g.Incident, &g.Reason,
		&state, &g.Version, &evJSON, &g.Approver, &g.DenyReason, &decided, &g.Delivery,
		&g.TokenAccessor, &g.WrapAccessor, &g.VaultGroup, &wrapExp, &g.WrapStatus, &issued,
		&expires, &delivered, &ended, &g.EndReason, &pending, &g.LastError,
		&g.ResponseURL, &g.CardChannel, &g.CardTS, &nab, &created, &updated)
	if err != nil {
		return access.Grant{}, err
	}
	if err := json.Unmarshal([]byte(evJSON), &g.Evidence); err != nil {
		return access.Grant{}, fmt.Errorf("grant %s: evidence: %w", g.ID, err)
	}
	if len(g.Evidence) == 0 {
		g.Evidence = nil
	}
	g.TTL, g.State, g.RevokePending = time.Duration(ttl), access.State(state), pending != 0
	g.DecidedAt, g.WrapExpires, g.IssuedAt = fromNanos(decided), fromNanos(wrapExp), fromNanos(issued)
	g.ExpiresAt, g.DeliveredAt, g.EndedAt = fromNanos(expires), fromNanos(delivered), fromNanos(ended)
	g.NotAfter, g.CreatedAt, g.UpdatedAt = fromNanos(nab), fromNanos(created), fromNanos(updated)
	return g, nil
}

// checkGrant refuses a row that could not be right: no id, or text shaped
// like a credential (defence in depth: access never puts one there).
func checkGrant(g access.Grant) error {
	if g.ID == "" || g.Requester == "" || g.Scope == "" || g.State == "" {
		return errors.New("grant needs id, requester, scope and state")
	}
	text := []string{g.ID, g.Requester, g.RequesterName, g.Email, g.Scope, g.Ticket, g.Incident, g.Reason,
		g.Approver, g.DenyReason, g.TokenAccessor, g.WrapAccessor, g.VaultGroup, g.EndReason, g.ResponseURL}
	for _, e := range g.Evidence {
		text = append(text, e.Detail, e.Link)
	}
	if audit.LooksLikeCredential(strings.Join(text, "\n")) {
		return audit.ErrCredential
	}
	return nil
}

// GrantInsert stores a new grant. A second grant with the same id fails.
func (tx *Tx) GrantInsert(ctx context.Context, g access.Grant) error {
	if err := checkGrant(g); err != nil {
		return fmt.Errorf("store: grant insert: %w", err)
	}
	vals, err := grantValues(g)
	if err != nil {
		return fmt.Errorf("store: grant insert %s: %w", g.ID, err)
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", grantColumnCount), ", ")
	tx.wrote(opGrantInsert)
	if _, err := tx.tx.ExecContext(ctx, "INSERT INTO grants ("+grantColumns+") VALUES ("+ph+")", vals...); err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("store: grant insert %s: %w", g.ID, ErrConflict)
		}
		return fmt.Errorf("store: grant insert %s: %w", g.ID, err)
	}
	return nil
}

// GrantGet reads one grant; ErrNotFound when absent.
func (tx *Tx) GrantGet(ctx context.Context, id string) (access.Grant, error) {
	g, err := scanGrant(tx.tx.QueryRowContext(ctx, "SELECT "+grantColumns+" FROM grants WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return access.Grant{}, fmt.Errorf("%w: grant %s", ErrNotFound, id)
	}
	if err != nil {
		return access.Grant{}, fmt.Errorf("store: grant get: %w", err)
	}
	return g, nil
}

// GrantUpdate writes g over the row only if the row is still at
// fromVersion (compare-and-set); g.Version must be newer. ErrConflict when
// the row moved on, ErrNotFound when absent.
func (tx *Tx) GrantUpdate(ctx context.Context, g access.Grant, fromVersion int64) error {
	if g.Version <= fromVersion {
		return fmt.Errorf("store: grant update %s: version %d must be newer than %d", g.ID, g.Version, fromVersion)
	}
	if err := checkGrant(g); err != nil {
		return fmt.Errorf("store: grant update: %w", err)
	}
	vals, err := grantValues(g)
	if err != nil {
		return fmt.Errorf("store: grant update %s: %w", g.ID, err)
	}
	cols := strings.Split(grantColumns, ",")
	set := make([]string, 0, len(cols)-1)
	for _, c := range cols[1:] { // every column but id
		set = append(set, strings.TrimSpace(c)+" = ?")
	}
	args := append(vals[1:], g.ID, fromVersion)
	tx.wrote(opGrantUpdate)
	res, err := tx.tx.ExecContext(ctx, "UPDATE grants SET "+strings.Join(set, ", ")+" WHERE id = ? AND version = ?", args...)
	if err != nil {
		return fmt.Errorf("store: grant update %s: %w", g.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: grant update %s: %w", g.ID, err)
	}
	if n == 0 {
		var count int
		if err := tx.tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM grants WHERE id = ?", g.ID).Scan(&count); err != nil {
			return fmt.Errorf("store: grant update %s: %w", g.ID, err)
		}
		if count == 0 {
			return fmt.Errorf("%w: grant %s", ErrNotFound, g.ID)
		}
		return fmt.Errorf("%w: grant %s is no longer at version %d", ErrConflict, g.ID, fromVersion)
	}
	return nil
}

// GrantsByState lists grants in any of states (all grants when none is
// given), oldest first.
func (tx *Tx) GrantsByState(ctx context.Context, states ...access.State) ([]access.Grant, error) {
	where, args := stateFilter(states)
	if where != "" {
		where = " WHERE " + where
	}
	return tx.grantQuery(ctx, "grants by state", where, args)
}

// GrantsByRequester lists a person's grants in any of states (all when none
// is given), oldest first.
func (tx *Tx) GrantsByRequester(ctx context.Context, slackID string, states ...access.State) ([]access.Grant, error) {
	where, args := stateFilter(states)
	if where != "" {
		where = " AND " + where
	}
	return tx.grantQuery(ctx, "grants by requester", " WHERE requester = ?"+where, append([]any{slackID}, args...))
}

// GrantsRequestedSince returns when each of a person's grants created at or
// after since was created, oldest first, whatever became of them: what the
// per-person request limit counts.
func (tx *Tx) GrantsRequestedSince(ctx context.Context, slackID string, since time.Time) ([]time.Time, error) {
	rows, err := tx.tx.QueryContext(ctx, "SELECT created_at FROM grants WHERE requester = ? AND created_at >= ? ORDER BY created_at",
		slackID, since.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: grants requested since: %w", err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var ns int64
		if err := rows.Scan(&ns); err != nil {
			return nil, fmt.Errorf("store: grants requested since: %w", err)
		}
		out = append(out, time.Unix(0, ns))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: grants requested since: %w", err)
	}
	return out, nil
}

func stateFilter(states []access.State) (string, []any) {
	if len(states) == 0 {
		return "", nil
	}
	args := make([]any, len(states))
	for i, s := range states {
		args[i] = string(s)
	}
	return "state IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(states)), ", ") + ")", args
}

func (tx *Tx) grantQuery(ctx context.Context, what, where string, args []any) ([]access.Grant, error) {
	rows, err := tx.tx.QueryContext(ctx, "SELECT "+grantColumns+" FROM grants"+where+" ORDER BY created_at, id", args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	var gs []access.Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
		gs = append(gs, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return gs, nil
}
