package store

import (
	"context"
	"database/sql"
	"sync"
)

// stmts holds the statements of the hot paths (an envelope's insert and
// finish, the outbox's add, due and sent, the audit append), each parsed
// once per connection instead of on every call: SQL parsing was a fifth of
// the bot's CPU under load, and the insert an ack waits for paid it too.
// Only fixed query texts are kept, so the set stays small.
type stmts struct {
	m sync.Map // query -> *sql.Stmt
}

// prepared returns query prepared on db (database/sql then prepares it once
// on each connection that runs it).
func (db *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := db.stmts.m.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.sql.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.stmts.m.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

func (db *DB) closeStmts() {
	db.stmts.m.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		db.stmts.m.Delete(k)
		return true
	})
}

// exec runs a fixed, hot statement in tx, prepared once (see stmts).
func (tx *Tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := tx.db.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return tx.tx.StmtContext(ctx, s).ExecContext(ctx, args...)
}

// queryRow runs a fixed, hot query in tx, prepared once (see stmts).
func (tx *Tx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := tx.db.prepared(ctx, query)
	if err != nil {
		// A *sql.Row carrying err: the same query unprepared fails the same way.
		return tx.tx.QueryRowContext(ctx, query, args...)
	}
	return tx.tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
}
