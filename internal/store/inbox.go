package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Inbox entry states.
const (
	InboxStatePending = "pending"
	InboxStateWorking = "working"
	InboxStateDone    = "done"
	InboxStateFailed  = "failed"
)

// InboxEntry is one Socket Mode envelope: stored before it is acked, then
// worked from the inbox, so a crash after the ack loses nothing.
type InboxEntry struct {
	ID         int64
	DedupKey   string // envelope_id, or "event:"+event_id for Events API
	EnvelopeID string
	Type       string // slash_commands | interactive | events_api
	Payload    []byte // JSON, already stripped of Slack's verification token by the caller
	ReceivedAt time.Time
	State      string // pending | working | done | failed
	Attempts   int    // claims so far
	// LeaseUntil: while working, the worker's lease; given to InboxPutBatch,
	// the entry is stored claimed (see there).
	LeaseUntil time.Time
	LastError  string // set by InboxFinish
}

const inboxColumns = "id, dedup_key, envelope_id, type, payload, received_at, state, attempts, lease_until, last_error"

func scanInbox(row interface{ Scan(...any) error }) (InboxEntry, error) {
	var e InboxEntry
	var received, lease int64
	err := row.Scan(&e.ID, &e.DedupKey, &e.EnvelopeID, &e.Type, &e.Payload, &received, &e.State, &e.Attempts, &lease, &e.LastError)
	e.ReceivedAt, e.LeaseUntil = fromNanos(received), fromNanos(lease)
	return e, err
}

// InboxPut stores e as InboxPutBatch does (e's ID, State and Attempts are
// ignored; a zero ReceivedAt means now). inserted=false (and no error) when
// DedupKey is already present: id is then the existing entry's.
func (db *DB) InboxPut(ctx context.Context, e InboxEntry) (id int64, inserted bool, err error) {
	res, err := db.InboxPutBatch(ctx, []InboxEntry{e})
	if err != nil {
		return 0, false, err
	}
	return res[0].ID, res[0].Inserted, nil
}

// InboxPutResult is the outcome of storing one entry of a batch.
type InboxPutResult struct {
	ID       int64
	Inserted bool // false: the dedup key was already there (ID is that entry's)
}

// InboxPutBatch stores entries, all in one transaction: one commit, so one
// sync to disk, however many envelopes arrived together (group commit).
// The write goes before queued ordinary transactions: an ack waits for it.
// Either every entry is stored or, on error, none.
//
// An entry is stored pending, or, when its LeaseUntil is set, already
// claimed: working, one attempt, leased until then. That is the claim a
// worker would otherwise commit on its own (InboxClaim), made in the commit
// the ack waits for anyway, for an entry the caller hands straight to a
// worker: one sync less per envelope on the path every ack queues behind.
func (db *DB) InboxPutBatch(ctx context.Context, entries []InboxEntry) ([]InboxPutResult, error) {
	for _, e := range entries {
		if e.DedupKey == "" {
			return nil, errors.New("store: inbox entry without a dedup key")
		}
	}
	out := make([]InboxPutResult, len(entries))
	err := db.inTx(ctx, true, func(tx *Tx) error {
		tx.wrote(opInboxPut)
		for i, e := range entries {
			if e.ReceivedAt.IsZero() {
				e.ReceivedAt = time.Now()
			}
			if e.Payload == nil {
				e.Payload = []byte{}
			}
			state, attempts, lease := InboxStatePending, 0, int64(0)
			if !e.LeaseUntil.IsZero() {
				state, attempts, lease = InboxStateWorking, 1, nanos(e.LeaseUntil)
			}
			var id int64
			err := tx.queryRow(ctx, `INSERT INTO inbox
			(dedup_key, envelope_id, type, payload, received_at, state, attempts, lease_until, last_error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, '')
			ON CONFLICT (dedup_key) DO NOTHING RETURNING id`,
				e.DedupKey, e.EnvelopeID, e.Type, e.Payload, nanos(e.ReceivedAt), state, attempts, lease).Scan(&id)
			inserted := err == nil
			if errors.Is(err, sql.ErrNoRows) {
				err = tx.tx.QueryRowContext(ctx, "SELECT id FROM inbox WHERE dedup_key = ?", e.DedupKey).Scan(&id)
			}
			if err != nil {
				return err
			}
			out[i] = InboxPutResult{ID: id, Inserted: inserted}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: inbox put: %w", err)
	}
	return out, nil
}

// InboxClaim moves entry id from pending (or working with a lease that ended
// at or before now) to working, leased until leaseUntil, and counts the
// attempt. Returns ErrNotClaimed when another worker holds it or it is
// finished, ErrNotFound when there is no such entry.
func (db *DB) InboxClaim(ctx context.Context, id int64, now, leaseUntil time.Time) (InboxEntry, error) {
	if !leaseUntil.After(now) {
		return InboxEntry{}, errors.New("store: inbox claim: lease must end after now")
	}
	var e InboxEntry
	err := db.InTx(ctx, func(tx *Tx) error {
		tx.wrote(opInboxClaim)
		var err error
		e, err = scanInbox(tx.tx.QueryRowContext(ctx, `UPDATE inbox
			SET state = 'working', attempts = attempts + 1, lease_until = ?
			WHERE id = ? AND (state = 'pending' OR (state = 'working' AND lease_until <= ?))
			RETURNING `+inboxColumns,
			nanos(leaseUntil), id, nanos(now)))
		if errors.Is(err, sql.ErrNoRows) {
			return notFoundOr(ctx, tx.tx, "inbox", id, ErrNotClaimed)
		}
		return err
	})
	if err != nil {
		return InboxEntry{}, fmt.Errorf("store: inbox claim: %w", err)
	}
	return e, nil
}

// InboxRenew moves the lease of a working entry from lease (as its worker
// holds it) to until: compare-and-set, so it fails with ErrNotClaimed when
// the lease has changed hands (it ended and the entry was claimed again) or
// the entry is no longer working; ErrNotFound when absent.
func (db *DB) InboxRenew(ctx context.Context, id int64, lease, until time.Time) error {
	err := db.InTx(ctx, func(tx *Tx) error {
		tx.wrote(opInboxClaim)
		res, err := tx.tx.ExecContext(ctx, `UPDATE inbox SET lease_until = ?
			WHERE id = ? AND state = 'working' AND lease_until = ?`, nanos(until), id, nanos(lease))
		if err != nil {
			return err
		}
		return changedOne(ctx, tx, res, "inbox", id, ErrNotClaimed)
	})
	if err != nil {
		return fmt.Errorf("store: inbox renew: %w", err)
	}
	return nil
}

// InboxReleaseLeases ends the lease of every working entry, so each can be
// claimed at once, and returns how many there were. Only for a process
// that holds the database's lock (TryLock) and has not started its
// workers: then every lease is a dead process's, and its entries (acked,
// perhaps half done) need not wait for the lease to run out. Replicas
// sharing one store could not do this: their leases would need an owner.
func (db *DB) InboxReleaseLeases(ctx context.Context) (int64, error) {
	n, err := db.execCount(ctx, opInboxClaim, "UPDATE inbox SET lease_until = 0 WHERE state = 'working' AND lease_until > 0")
	if err != nil {
		return 0, fmt.Errorf("store: inbox release leases: %w", err)
	}
	return n, nil
}

// InboxPending lists ids of entries pending, or working with a lease ended at
// or before now (their worker died), oldest first, at most limit (100 when
// limit <= 0).
func (db *DB) InboxPending(ctx context.Context, now time.Time, limit int) ([]int64, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.sql.QueryContext(ctx, `SELECT id FROM inbox
		WHERE state = 'pending' OR (state = 'working' AND lease_until <= ?)
		ORDER BY id LIMIT ?`, nanos(now), limit)
	if err != nil {
		return nil, fmt.Errorf("store: inbox pending: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: inbox pending: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: inbox pending: %w", err)
	}
	return ids, nil
}

// InboxGet reads one entry; ErrNotFound when absent.
func (db *DB) InboxGet(ctx context.Context, id int64) (InboxEntry, error) {
	e, err := scanInbox(db.sql.QueryRowContext(ctx, "SELECT "+inboxColumns+" FROM inbox WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return InboxEntry{}, fmt.Errorf("%w: inbox %d", ErrNotFound, id)
	}
	if err != nil {
		return InboxEntry{}, fmt.Errorf("store: inbox get: %w", err)
	}
	return e, nil
}

// InboxFinish moves a working entry to state: done, failed, or pending (to
// hand it back at once, e.g. on shutdown). errText is kept with tokens
// masked. Returns ErrNotClaimed when the entry is not working, ErrNotFound
// when absent.
func (tx *Tx) InboxFinish(ctx context.Context, id int64, state string, errText string) error {
	switch state {
	case InboxStateDone, InboxStateFailed, InboxStatePending:
	default:
		return fmt.Errorf("store: inbox finish: state %q (accepted: done, failed, pending)", state)
	}
	tx.wrote(opInboxFinish)
	res, err := tx.exec(ctx, `UPDATE inbox SET state = ?, lease_until = 0, last_error = ?
		WHERE id = ? AND state = 'working'`, state, errorText(errText), id)
	if err != nil {
		return fmt.Errorf("store: inbox finish: %w", err)
	}
	if err := changedOne(ctx, tx, res, "inbox", id, ErrNotClaimed); err != nil {
		return fmt.Errorf("store: inbox finish: %w", err)
	}
	return nil
}

// InboxPurge deletes finished entries received before before, once Slack
// can no longer redeliver them, and returns how many it deleted.
func (db *DB) InboxPurge(ctx context.Context, before time.Time) (int64, error) {
	n, err := db.execCount(ctx, opNone, "DELETE FROM inbox WHERE state IN ('done', 'failed') AND received_at < ?", nanos(before))
	if err != nil {
		return 0, fmt.Errorf("store: inbox purge: %w", err)
	}
	return n, nil
}
