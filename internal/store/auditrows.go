package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
)

// AuditHead returns the last event's seq and hash (0, "" when empty).
func (tx *Tx) AuditHead(ctx context.Context) (seq int64, hash string, err error) {
	err = tx.tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("store: audit head: %w", err)
	}
	return seq, hash, nil
}

// AuditInsert stores r as is (hashing is internal/audit's job). Returns
// ErrSeqTaken when r.Seq exists.
func (tx *Tx) AuditInsert(ctx context.Context, r audit.Record) error {
	if r.Seq < 1 {
		return fmt.Errorf("store: audit insert: seq %d", r.Seq)
	}
	links := []byte("{}")
	if len(r.Links) > 0 {
		var err error
		if links, err = json.Marshal(r.Links); err != nil { // keys come out sorted
			return fmt.Errorf("store: audit insert: %w", err)
		}
	}
	tx.wrote(opAuditAppend)
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO audit_events
		(seq, time_ns, actor, action, scope, secret, outcome, reason, links, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Seq, r.Time.UnixNano(), r.Actor, r.Action, r.Scope, r.Secret, r.Outcome, r.Reason,
		string(links), r.PrevHash, r.Hash)
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: %d", ErrSeqTaken, r.Seq)
	}
	if err != nil {
		return fmt.Errorf("store: audit insert: %w", err)
	}
	return nil
}

// AuditScan calls fn for each event with seq >= fromSeq in seq order, from
// one consistent snapshot; it stops at fn's first error and returns it.
func (db *DB) AuditScan(ctx context.Context, fromSeq int64, fn func(audit.Record) error) error {
	stx, err := db.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: audit scan: %w", err)
	}
	defer stx.Rollback()
	rows, err := stx.QueryContext(ctx, `SELECT seq, time_ns, actor, action, scope, secret, outcome, reason, links, prev_hash, hash
		FROM audit_events WHERE seq >= ? ORDER BY seq`, fromSeq)
	if err != nil {
		return fmt.Errorf("store: audit scan: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r audit.Record
		var ts int64
		var links string
		if err := rows.Scan(&r.Seq, &ts, &r.Actor, &r.Action, &r.Scope, &r.Secret, &r.Outcome, &r.Reason,
			&links, &r.PrevHash, &r.Hash); err != nil {
			return fmt.Errorf("store: audit scan: %w", err)
		}
		r.Time = time.Unix(0, ts).UTC()
		if err := json.Unmarshal([]byte(links), &r.Links); err != nil {
			// A row edited into invalid JSON must still reach Verify (which
			// reports it as altered) rather than stop the scan.
			r.Links = map[string]string{"unreadable links": links}
		}
		if len(r.Links) == 0 {
			r.Links = nil
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: audit scan: %w", err)
	}
	return nil
}
