package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/secretbot/secretbot/internal/audit"
)

// AuditHead returns the last event's seq and hash (0, "" when empty).
func (tx *Tx) AuditHead(ctx context.Context) (seq int64, hash string, err error) {
	err = tx.queryRow(ctx, "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").Scan(&seq, &hash)
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
	_, err := tx.exec(ctx, `INSERT INTO audit_events
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

// auditColumns are a Record's columns, in scanAudit's order.
const auditColumns = "seq, time_ns, actor, action, scope, secret, outcome, reason, links, prev_hash, hash"

// AuditRecent returns the newest events (highest seq first), at most limit,
// whose time is at or after since and, when actor is not empty, whose actor
// is actor. It reads the events of the window at most (indexes on time and
// on actor and time), never the whole log.
func (db *DB) AuditRecent(ctx context.Context, since time.Time, actor string, limit int) ([]audit.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	q, args := auditRecentQuery(since, actor, limit)
	rows, err := db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: audit recent: %w", err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("store: audit recent: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: audit recent: %w", err)
	}
	return out, nil
}

// auditRecentQuery is AuditRecent's query and its arguments.
func auditRecentQuery(since time.Time, actor string, limit int) (string, []any) {
	from := int64(math.MinInt64) // UnixNano is undefined before 1678
	if since.After(time.Unix(0, math.MinInt64)) {
		from = since.UnixNano()
	}
	// The inner query reads only an index (time_ns, or actor and time_ns,
	// both holding seq): the events of the window, never the whole log.
	// The outer one fetches the rows it picked. "-seq" keeps SQLite from
	// walking the whole table in seq order instead (which reads everything
	// when the window holds fewer than limit events).
	inner := "SELECT seq FROM audit_events WHERE time_ns >= ?"
	args := []any{from}
	if actor != "" {
		inner += " AND actor = ?"
		args = append(args, actor)
	}
	inner += " ORDER BY -seq LIMIT ?"
	return "SELECT " + auditColumns + " FROM audit_events WHERE seq IN (" + inner + ") ORDER BY seq DESC", append(args, limit)
}

func scanAudit(rows *sql.Rows) (audit.Record, error) {
	var r audit.Record
	var ts int64
	var links string
	if err := rows.Scan(&r.Seq, &ts, &r.Actor, &r.Action, &r.Scope, &r.Secret, &r.Outcome, &r.Reason,
		&links, &r.PrevHash, &r.Hash); err != nil {
		return audit.Record{}, err
	}
	r.Time = time.Unix(0, ts).UTC()
	r.Links = decodeLinks(links)
	return r, nil
}

// AuditScan calls fn for each event with seq >= fromSeq in seq order, from
// one consistent snapshot; it stops at fn's first error and returns it.
func (db *DB) AuditScan(ctx context.Context, fromSeq int64, fn func(audit.Record) error) error {
	stx, err := db.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: audit scan: %w", err)
	}
	defer stx.Rollback()
	rows, err := stx.QueryContext(ctx, "SELECT "+auditColumns+" FROM audit_events WHERE seq >= ? ORDER BY seq", fromSeq)
	if err != nil {
		return fmt.Errorf("store: audit scan: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return fmt.Errorf("store: audit scan: %w", err)
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

// decodeLinks reads an event's links column. Almost every value is what
// AuditInsert wrote: a flat JSON object of plain strings, read here without
// encoding/json (whose reflection was a quarter of `audit verify`'s time).
// Anything else (escapes, white space, invalid UTF-8: an edited row) goes
// through encoding/json, so the result is always what json.Unmarshal gives.
// A row edited into invalid JSON must still reach Verify (which reports it
// as altered) rather than stop the scan. No links is nil.
func decodeLinks(s string) map[string]string {
	if s == "{}" {
		return nil
	}
	if m, ok := plainLinks(s); ok {
		return m
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return map[string]string{"unreadable links": s}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// plainLinks parses {"k":"v",...} whose strings hold no escape, control
// character, quote or invalid UTF-8; ok is false for anything else.
func plainLinks(s string) (map[string]string, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, false
	}
	m := make(map[string]string, 4)
	rest := s[1 : len(s)-1]
	for {
		k, after, ok := plainString(rest)
		if !ok || len(after) == 0 || after[0] != ':' {
			return nil, false
		}
		v, after, ok := plainString(after[1:])
		if !ok {
			return nil, false
		}
		m[k] = v
		if after == "" {
			return m, true
		}
		if after[0] != ',' {
			return nil, false
		}
		rest = after[1:]
	}
}

// plainString reads a JSON string at the start of s that needs no decoding.
func plainString(s string) (str, rest string, ok bool) {
	if len(s) < 2 || s[0] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	str = s[1 : 1+end]
	for i := 0; i < len(str); i++ {
		if c := str[i]; c < 0x20 || c == '\\' {
			return "", "", false
		}
	}
	if !utf8.ValidString(str) {
		return "", "", false
	}
	return str, s[2+end:], true
}
