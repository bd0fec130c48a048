// Package store is secretbot's persistence: the durable inbox, the outbox,
// the audit rows and small meta values, in an embedded SQLite database
// (modernc.org/sqlite, pure Go).
//
// The queries stay portable (they would run on PostgreSQL after rebinding
// "?" placeholders): no INSERT OR IGNORE/REPLACE, ON CONFLICT and RETURNING
// only, times as INTEGER unix nanoseconds. Every state change is a
// compare-and-set on the row (UPDATE ... WHERE id = ? AND state = ?), so
// several replicas could one day share one database.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/secretbot/secretbot/internal/audit"
)

// Errors callers tell apart.
var (
	// ErrNotFound: no row with that id.
	ErrNotFound = errors.New("store: not found")
	// ErrNotClaimed: the inbox entry is held by another worker (unexpired
	// lease), already finished, or (for InboxFinish) not claimed at all.
	ErrNotClaimed = errors.New("store: inbox entry not claimed")
	// ErrConflict: the row was not in the state the change expected (another
	// worker or replica changed it first).
	ErrConflict = errors.New("store: row changed concurrently")
	// ErrSeqTaken: an audit event with that seq exists (a concurrent
	// appender won). InTx retries the whole transaction on it.
	ErrSeqTaken = errors.New("store: audit sequence already taken")
	// ErrSchemaTooNew: the database was migrated by a newer secretbot.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this secretbot")
)

// DSN parameters, applied by the driver to every new connection.
// _txlock=immediate makes every read-write transaction BEGIN IMMEDIATE: it
// takes the write lock up front, so two transactions that read then write
// cannot deadlock on the lock upgrade (which busy_timeout cannot resolve).
// synchronous FULL because an envelope is acked once its insert commits.
// wal_autocheckpoint(0): checkpoints run in the background (walcheckpoint.go).
const dsnParams = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
	"&_pragma=synchronous(FULL)&_pragma=wal_autocheckpoint(0)&_txlock=immediate"

const (
	maxOpenConns  = 8
	maxTxAttempts = 5
	maxErrorText  = 2000 // bytes of an error message kept in a row
)

// DB is an open store.
type DB struct {
	sql   *sql.DB
	path  string
	gate  writeGate // one write transaction at a time, from this process
	ckpt  *checkpointer
	marks sentMarks // outbox "sent" marks waiting for a transaction to ride on
	stmts stmts     // hot statements, parsed once
}

// Tx is a write transaction (see DB.InTx).
type Tx struct {
	tx *sql.Tx
	db *DB
	op op // the main write so far, naming the commit's crash points
}

var (
	_ audit.Tx      = (*Tx)(nil)
	_ audit.Scanner = (*DB)(nil)
)

// Open opens (creating if needed) the database at path and migrates it. A
// new file gets mode 0600 and a new parent directory 0700; an existing file
// readable by others is tightened to 0600. Returns an error wrapping
// ErrSchemaTooNew when the database comes from a newer secretbot.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		return nil, fmt.Errorf("store: %q: storage.path must be a plain file path", path)
	}
	if err := prepareFile(path); err != nil {
		return nil, err
	}
	sqldb, err := sql.Open("sqlite", path+"?"+dsnParams)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	sqldb.SetMaxOpenConns(maxOpenConns)
	// Kept open, all of them: database/sql keeps 2 idle by default and
	// closes the rest after use, and a new SQLite connection runs the DSN's
	// pragmas, reads the schema and prepares its statements again, which
	// under load landed on whatever transaction (an ack's) needed it.
	sqldb.SetMaxIdleConns(maxOpenConns)
	db := &DB{sql: sqldb, path: path}
	db.marks.flush = db.flushMarks
	if err := db.checkPragmas(ctx); err != nil {
		sqldb.Close()
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		sqldb.Close()
		return nil, err
	}
	db.ckpt = startCheckpointer(sqldb, checkpointEvery)
	return db, nil
}

// prepareFile creates the parent directory (0700) and the file (0600)
// before SQLite does, so the database never exists with looser permissions.
// SQLite gives its -wal and -shm files the database file's mode.
func prepareFile(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("store: create directory: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: create database file: %w", err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return fmt.Errorf("store: stat database file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("store: restrict database file to 0600: %w", err)
		}
	}
	return nil
}

// checkPragmas fails when WAL could not be enabled (e.g. a file system
// without shared memory), rather than running with different locking.
func (db *DB) checkPragmas(ctx context.Context) error {
	var mode string
	if err := db.sql.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("store: open %s: %w", db.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("store: open %s: journal mode is %q, WAL is required", db.path, mode)
	}
	return nil
}

// Close closes the database.
func (db *DB) Close() error {
	db.closeMarks()
	db.ckpt.stop()
	db.closeStmts()
	return db.sql.Close() // the last connection to close checkpoints what is left
}

// Ping checks the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.sql.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// InTx runs fn in a write transaction and commits when it returns nil. The
// whole transaction (fn included) is retried a few times when the database
// is busy or an audit seq was taken, so fn must not have effects outside the
// transaction. fn must not call DB methods that write (they would wait for
// the write lock fn holds, then fail). fn's own error is returned as is.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	return db.inTx(ctx, false, fn)
}

// inTx is InTx; urgent transactions (an envelope's insert, which its ack
// waits for) are admitted to the write gate before all others.
func (db *DB) inTx(ctx context.Context, urgent bool, fn func(tx *Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.tryTx(ctx, urgent, fn)
		if err == nil || attempt == maxTxAttempts || !retryable(err) {
			return err
		}
		// Jittered backoff so retrying writers do not collide again.
		wait := time.Duration(10<<attempt)*time.Millisecond + rand.N(10*time.Millisecond)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (db *DB) tryTx(ctx context.Context, urgent bool, fn func(tx *Tx) error) (err error) {
	held, err := db.gate.enter(ctx, urgent)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if held {
		defer db.gate.leave()
	}
	stx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			stx.Rollback()
			panic(p)
		}
		if err != nil {
			stx.Rollback()
		}
	}()
	tx := &Tx{tx: stx, db: db}
	if err = fn(tx); err != nil {
		return err
	}
	var marks []*sentMark
	if !urgent {
		marks = db.rideMarks(ctx, tx)
	}
	commitPoint(tx.op, false)
	if err = stx.Commit(); err != nil {
		db.marks.putBack(marks)
		return fmt.Errorf("store: commit: %w", err)
	}
	finishMarks(marks)
	commitPoint(tx.op, true)
	return nil
}

func retryable(err error) bool {
	return errors.Is(err, ErrSeqTaken) || isBusy(err)
}

func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) &&
		(se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE)
}

// nanos stores t as unix nanoseconds; the zero time is 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// errorText prepares an error message for a row: tokens masked, length
// bounded, valid UTF-8.
func errorText(s string) string {
	s = audit.Redact(s)
	if len(s) > maxErrorText {
		s = s[:maxErrorText]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// changedOne reads the result of a compare-and-set on one row of table:
// nil when it changed the row, else ErrNotFound or other (see notFoundOr).
func changedOne(ctx context.Context, tx *Tx, res sql.Result, table string, id int64, other error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFoundOr(ctx, tx.tx, table, id, other)
	}
	return nil
}

// execCount runs one statement in a write transaction of its own, its
// commit named by o, and returns how many rows it changed.
func (db *DB) execCount(ctx context.Context, o op, query string, args ...any) (int64, error) {
	var n int64
	err := db.InTx(ctx, func(tx *Tx) error {
		tx.wrote(o)
		res, err := tx.tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// notFoundOr tells a missing row (ErrNotFound) from one in another state
// (other), for a compare-and-set that changed nothing.
func notFoundOr(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, table string, id int64, other error) error {
	var n int
	if err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE id = ?", id).Scan(&n); err != nil {
		return fmt.Errorf("store: %s %d: %w", table, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s %d", ErrNotFound, table, id)
	}
	return fmt.Errorf("%w: %s %d", other, table, id)
}
