package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
)

// Outbox message states.
const (
	OutboxStatePending = "pending"
	OutboxStateSent    = "sent"
	OutboxStateDead    = "dead"
)

// OutboxMessage is a message the bot owes someone. Never holds a credential.
type OutboxMessage struct {
	ID       int64
	DedupKey string // optional; unique when set (a second add with the same key is a no-op)
	// Lane orders delivery: pending messages of one lane go out in id order,
	// each only once those before it are sent or dead. "" is a lane of its own.
	Lane        string
	Body        []byte    // an internal/outbox.Message, JSON (store does not decode it)
	State       string    // pending | sent | dead
	Attempts    int       // delivery attempts so far
	NextAttempt time.Time // zero on add: CreatedAt (due at once)
	LastError   string
	CreatedAt   time.Time
}

const outboxColumns = "id, dedup_key, lane, body, state, attempts, next_attempt, last_error, created_at"

func scanOutbox(row interface{ Scan(...any) error }) (OutboxMessage, error) {
	var m OutboxMessage
	var dedup sql.NullString
	var next, created int64
	err := row.Scan(&m.ID, &dedup, &m.Lane, &m.Body, &m.State, &m.Attempts, &next, &m.LastError, &created)
	m.DedupKey, m.NextAttempt, m.CreatedAt = dedup.String, fromNanos(next), fromNanos(created)
	return m, err
}

// OutboxAdd stores m as pending in the caller's transaction, so the message
// commits with the state change that caused it. m's ID, State, Attempts and
// LastError are ignored; a zero CreatedAt means now, a zero NextAttempt
// means CreatedAt. With a DedupKey already present it changes nothing and
// returns the existing id. A body that looks like it holds a token is
// refused (audit.ErrCredential).
func (tx *Tx) OutboxAdd(ctx context.Context, m OutboxMessage) (id int64, err error) {
	if len(m.Body) == 0 {
		return 0, errors.New("store: outbox add: empty body")
	}
	if audit.LooksLikeCredential(string(m.Body)) {
		return 0, fmt.Errorf("store: outbox add: %w", audit.ErrCredential)
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now()
	}
	if m.NextAttempt.IsZero() {
		m.NextAttempt = m.CreatedAt
	}
	dedup := sql.NullString{String: m.DedupKey, Valid: m.DedupKey != ""}
	tx.wrote(opOutboxAdd)
	err = tx.queryRow(ctx, `INSERT INTO outbox
		(dedup_key, lane, body, state, attempts, next_attempt, last_error, created_at)
		VALUES (?, ?, ?, 'pending', 0, ?, '', ?)
		ON CONFLICT (dedup_key) DO NOTHING RETURNING id`,
		dedup, m.Lane, m.Body, nanos(m.NextAttempt), nanos(m.CreatedAt)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) && dedup.Valid {
		err = tx.tx.QueryRowContext(ctx, "SELECT id FROM outbox WHERE dedup_key = ?", m.DedupKey).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("store: outbox add: %w", err)
	}
	return id, nil
}

const outboxDueQuery = "SELECT " + outboxColumns + ` FROM outbox o
	WHERE o.state = 'pending' AND o.next_attempt <= ?
	AND (o.lane = '' OR NOT EXISTS (SELECT 1 FROM outbox p
		WHERE p.lane = o.lane AND p.state = 'pending' AND p.id < o.id))
	ORDER BY o.next_attempt, o.id LIMIT ?`

// OutboxDue lists the heads of the lanes that are due: for each lane, its
// oldest pending message (lowest id), when its next attempt is at or before
// now. A lane whose head waits (a Retry-After, a back-off) yields nothing,
// even when later messages of the lane were due: they keep their order.
// Messages without a lane are each their own head. Earliest first, at most
// limit (100 when limit <= 0).
func (db *DB) OutboxDue(ctx context.Context, now time.Time, limit int) ([]OutboxMessage, error) {
	if limit <= 0 {
		limit = 100
	}
	stmt, err := db.prepared(ctx, outboxDueQuery)
	if err != nil {
		return nil, fmt.Errorf("store: outbox due: %w", err)
	}
	rows, err := stmt.QueryContext(ctx, nanos(now), limit)
	if err != nil {
		return nil, fmt.Errorf("store: outbox due: %w", err)
	}
	defer rows.Close()
	var ms []OutboxMessage
	for rows.Next() {
		m, err := scanOutbox(rows)
		if err != nil {
			return nil, fmt.Errorf("store: outbox due: %w", err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: outbox due: %w", err)
	}
	return ms, nil
}

// OutboxGet reads one message; ErrNotFound when absent.
func (db *DB) OutboxGet(ctx context.Context, id int64) (OutboxMessage, error) {
	m, err := scanOutbox(db.sql.QueryRowContext(ctx, "SELECT "+outboxColumns+" FROM outbox WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return OutboxMessage{}, fmt.Errorf("%w: outbox %d", ErrNotFound, id)
	}
	if err != nil {
		return OutboxMessage{}, fmt.Errorf("store: outbox get: %w", err)
	}
	return m, nil
}

// OutboxRetry records a failed attempt: the message is tried again at next,
// or given up (state dead) when dead is true. errText is kept with tokens
// masked. Returns ErrConflict when it is no longer pending, ErrNotFound when
// absent.
func (db *DB) OutboxRetry(ctx context.Context, id int64, next time.Time, errText string, dead bool) error {
	state := OutboxStatePending
	if dead {
		state = OutboxStateDead
	}
	return db.outboxUpdate(ctx, "outbox retry", opOutboxRetry, id,
		"UPDATE outbox SET state = ?, attempts = attempts + 1, next_attempt = ?, last_error = ? WHERE id = ? AND state = 'pending'",
		state, nanos(next), errorText(errText), id)
}

func (db *DB) outboxUpdate(ctx context.Context, what string, o op, id int64, query string, args ...any) error {
	err := db.InTx(ctx, func(tx *Tx) error {
		tx.wrote(o)
		res, err := tx.tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		return changedOne(ctx, tx, res, "outbox", id, ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// OutboxPurge deletes sent and dead messages created before before and
// returns how many it deleted.
func (db *DB) OutboxPurge(ctx context.Context, before time.Time) (int64, error) {
	n, err := db.execCount(ctx, opNone, "DELETE FROM outbox WHERE state IN ('sent', 'dead') AND created_at < ?", nanos(before))
	if err != nil {
		return 0, fmt.Errorf("store: outbox purge: %w", err)
	}
	return n, nil
}
