package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func openTest(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "secretbot.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", p, got, want)
		}
	}
	pragmas := map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000", "synchronous": "2"}
	for name, want := range pragmas {
		var got string
		if err := db.sql.QueryRowContext(ctx, "PRAGMA "+name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", name, got, want)
		}
	}
	if v, err := db.SchemaVersion(ctx); err != nil || v != latestMigration(t) {
		t.Errorf("schema version %d, %v", v, err)
	}
}

func TestOpenTightensLooseFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loose.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o, want 600", fi.Mode().Perm())
	}
}

func TestOpenRejectsNonFilePaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if db, err := Open(context.Background(), p); err == nil {
			db.Close()
			t.Errorf("Open(%q) accepted", p)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	if _, err := db.sql.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(ctx, path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("err = %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "999") || !strings.Contains(err.Error(), fmt.Sprint("knows up to ", latestMigration(t))) {
		t.Errorf("error does not say which versions: %v", err)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	inID, _, err := db.InboxPut(ctx, InboxEntry{DedupKey: "env-1", EnvelopeID: "env-1", Type: "slash_commands", Payload: []byte(`{"a":1}`), ReceivedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	var outID int64
	if err := db.InTx(ctx, func(tx *Tx) error {
		if err := tx.MetaSet(ctx, "sweep", "42"); err != nil {
			return err
		}
		outID, err = tx.OutboxAdd(ctx, OutboxMessage{Body: []byte(`{"kind":"dm"}`), CreatedAt: t0})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db2, err := Open(ctx, path) // migrations already applied: a no-op
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	e, err := db2.InboxGet(ctx, inID)
	if err != nil || string(e.Payload) != `{"a":1}` || !e.ReceivedAt.Equal(t0) || e.State != InboxStatePending {
		t.Fatalf("inbox after reopen: %+v %v", e, err)
	}
	m, err := db2.OutboxGet(ctx, outID)
	if err != nil || m.State != OutboxStatePending || !m.CreatedAt.Equal(t0) {
		t.Fatalf("outbox after reopen: %+v %v", m, err)
	}
	if err := db2.InTx(ctx, func(tx *Tx) error {
		v, ok, err := tx.MetaGet(ctx, "sweep")
		if err != nil || !ok || v != "42" {
			t.Errorf("meta after reopen: %q %v %v", v, ok, err)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestInTxRollsBackOnError(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := db.InTx(ctx, func(tx *Tx) error {
		if err := tx.MetaSet(ctx, "k", "v"); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("err = %v, want fn's error unchanged", err)
	}
	_ = db.InTx(ctx, func(tx *Tx) error {
		if _, ok, _ := tx.MetaGet(ctx, "k"); ok {
			t.Error("write survived rollback")
		}
		return nil
	})
}

func TestInTxRetries(t *testing.T) {
	db, _ := openTest(t)
	calls := 0
	err := db.InTx(context.Background(), func(tx *Tx) error {
		calls++
		if calls < 3 {
			return ErrSeqTaken
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want success on the 3rd", err, calls)
	}
	calls = 0
	err = db.InTx(context.Background(), func(tx *Tx) error { calls++; return ErrSeqTaken })
	if !errors.Is(err, ErrSeqTaken) || calls != maxTxAttempts {
		t.Fatalf("err %v after %d calls, want ErrSeqTaken after %d", err, calls, maxTxAttempts)
	}
}

// TestBusyIsRecognised holds the write lock and checks that another
// connection's failure to take it is classified as retryable.
func TestBusyIsRecognised(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	other, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	held := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- db.InTx(ctx, func(*Tx) error { close(held); <-release; return nil })
	}()
	<-held
	_, err = other.BeginTx(ctx, nil)
	close(release)
	if err == nil || !isBusy(err) || !retryable(err) {
		t.Fatalf("err = %v, want SQLITE_BUSY", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func latestMigration(t *testing.T) int {
	t.Helper()
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		t.Fatalf("migrations: %v", err)
	}
	return ms[len(ms)-1].version
}
