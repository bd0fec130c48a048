package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
)

// writeOne appends an audit event and, in the same transaction, records its
// seq in meta and adds an outbox row: a consistent copy has all three agree.
func writeOne(ctx context.Context, db *DB, l *audit.Log, i int) error {
	return db.InTx(ctx, func(tx *Tx) error {
		r, err := l.Append(ctx, tx, audit.Event{Actor: "U0TEST", Action: "test.write", Outcome: audit.OK, Reason: fmt.Sprint("write ", i)})
		if err != nil {
			return err
		}
		if _, err := tx.OutboxAdd(ctx, OutboxMessage{Body: []byte(`{"kind":"post"}`), State: "pending", NextAttempt: t0, CreatedAt: t0}); err != nil {
			return err
		}
		return tx.MetaSet(ctx, "test.last_seq", strconv.FormatInt(r.Seq, 10))
	})
}

func TestBackupWhileWriting(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	l := audit.New(auditKey, time.Now)
	for i := range 20 {
		if err := writeOne(ctx, db, l, i); err != nil {
			t.Fatal(err)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	var writeErr error
	writerDone := make(chan struct{})
	wg.Go(func() {
		defer close(writerDone)
		for i := 20; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := writeOne(ctx, db, l, i); err != nil {
				writeErr = err
				return
			}
			writes.Add(1)
		}
	})

	dir := t.TempDir()
	var seqs []int64
	for n := range 3 {
		// Each copy starts after more writes went in, with the writer still going.
		before := writes.Load()
		for writes.Load() == before {
			select {
			case <-writerDone:
				t.Fatalf("the writer stopped: %v", writeErr)
			case <-time.After(time.Millisecond):
			}
		}
		dst := filepath.Join(dir, fmt.Sprintf("copy-%d.db", n))
		size, err := db.BackupTo(ctx, dst, false)
		if err != nil {
			t.Fatalf("backup %d: %v", n, err)
		}
		fi, err := os.Stat(dst)
		if err != nil || fi.Size() != size || size == 0 {
			t.Fatalf("backup %d: size %d, stat %v %v", n, size, fi, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("backup %d: mode %o, want 600", n, fi.Mode().Perm())
		}
		seqs = append(seqs, checkCopy(t, dst))
	}
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("a writer failed while backups ran: %v", writeErr)
	}
	t.Logf("%d writes during 3 backups; copies end at seqs %v", writes.Load(), seqs)
	if !slices.IsSorted(seqs) || seqs[0] == seqs[2] {
		t.Errorf("copies end at seqs %v: each should hold the writes made before it", seqs)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "copy-") || strings.Contains(e.Name(), "-wal") || strings.Contains(e.Name(), "-shm") {
			t.Errorf("left behind in the backup directory: %s", e.Name())
		}
	}
	if len(entries) != 3 {
		t.Errorf("%d files in the backup directory, want the 3 copies", len(entries))
	}
}

// checkCopy opens a copy, checks its integrity and that its audit log,
// meta and outbox agree (one transaction's worth each), and returns the
// copy's last audit seq.
func checkCopy(t *testing.T, path string) int64 {
	t.Helper()
	ctx := context.Background()
	cp, err := OpenCopy(ctx, path)
	if err != nil {
		t.Fatalf("open copy: %v", err)
	}
	defer cp.Close()
	if err := cp.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := audit.New(auditKey, time.Now).Verify(ctx, cp, nil)
	if err != nil {
		t.Fatalf("audit chain of the copy: %v", err)
	}
	var last string
	var outbox int64
	err = cp.sql.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'test.last_seq'").Scan(&last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		last = "0" // nothing written yet
	case err != nil:
		t.Fatal(err)
	}
	if err := cp.sql.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox").Scan(&outbox); err != nil {
		t.Fatal(err)
	}
	if last != strconv.FormatInt(res.Head.Seq, 10) || outbox != res.Events {
		t.Errorf("copy is not one snapshot: %d audit events (head %d), meta says %s, %d outbox rows",
			res.Events, res.Head.Seq, last, outbox)
	}
	if v, err := cp.SchemaVersion(ctx); err != nil || v != LatestSchemaVersion() {
		t.Errorf("copy schema version %d, %v; want %d", v, err, LatestSchemaVersion())
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Errorf("opening the copy created %s", path+suffix)
		}
	}
	return res.Head.Seq
}

func TestBackupRefusesExistingTarget(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	dst := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(dst, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := db.BackupTo(ctx, dst, false); !errors.Is(err, ErrExists) {
		t.Fatalf("backup onto an existing file: %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "precious" {
		t.Fatal("the existing file was changed")
	}
	if _, err := db.BackupTo(ctx, dst, true); err != nil {
		t.Fatalf("with overwrite: %v", err)
	}
	checkCopy(t, dst)
	entries, _ := os.ReadDir(filepath.Dir(dst))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if _, err := db.BackupTo(ctx, filepath.Join(t.TempDir(), "missing", "copy.db"), false); err == nil {
		t.Error("backup into a missing directory succeeded")
	}
}

func TestOpenCopyRefusesWhatIsNoBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.db")
	if err := os.WriteFile(text, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.db")
	if db, err := OpenReadOnly(ctx, other); err == nil {
		db.Close()
		t.Error("OpenReadOnly of a missing file succeeded")
	}
	if _, err := os.Stat(other); err == nil {
		t.Error("OpenReadOnly created the file")
	}
	for _, p := range []string{text, other, dir} {
		if db, err := OpenCopy(ctx, p); err == nil {
			db.Close()
			t.Errorf("OpenCopy(%s) succeeded", p)
		}
	}
}

func TestOpenReadOnlyReadsALiveDatabase(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	l := audit.New(auditKey, time.Now)
	appendN(t, db, l, 3)
	ro, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if res, err := l.Verify(ctx, ro, nil); err != nil || res.Events != 3 {
		t.Fatalf("verify through the read-only handle: %+v %v", res, err)
	}
	if _, err := ro.sql.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES ('x', 'y')"); err == nil {
		t.Error("a write through the read-only handle succeeded")
	}
}

func TestPruneBackupsKeepsNewestAndIgnoresForeignFiles(t *testing.T) {
	dir := t.TempDir()
	var ours []string
	for i := range 5 {
		ours = append(ours, BackupName(t0.Add(time.Duration(i)*time.Hour)))
	}
	foreign := []string{"secretbot.db", "secretbot.db-wal", "secretbot-20250301T090000Z.db.bak", "notes.txt",
		"secretbot-2025.db", "secretbot-20251301T000000Z.db", "my-secretbot-20200101T000000Z.db"}
	// Written in shuffled order: the names decide, not the file times.
	for _, n := range append([]string{ours[3], ours[0], ours[4], ours[1], ours[2]}, foreign...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, BackupName(t0.Add(-time.Hour))), 0o700); err != nil {
		t.Fatal(err)
	}
	if ours[0] != "secretbot-20250301T090000Z.db" {
		t.Fatalf("BackupName = %s", ours[0])
	}
	names, times, err := ScheduledBackups(dir)
	if err != nil || !slices.Equal(names, ours) || len(times) != 5 || !times[4].Equal(t0.Add(4*time.Hour)) {
		t.Fatalf("ScheduledBackups = %v %v %v", names, times, err)
	}
	removed, err := PruneBackups(dir, 3)
	if err != nil || !slices.Equal(removed, ours[:2]) {
		t.Fatalf("PruneBackups removed %v, %v; want %v", removed, err, ours[:2])
	}
	for _, n := range append(ours[2:], foreign...) {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s was removed", n)
		}
	}
	if removed, err := PruneBackups(dir, 3); err != nil || len(removed) != 0 {
		t.Errorf("second prune removed %v, %v", removed, err)
	}
	if _, err := PruneBackups(dir, 0); err == nil {
		t.Error("keep 0 accepted")
	}
}

func TestLockIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "secretbot.db")
	l, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(LockPath(path)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v", fi, err)
	}
	_, err = TryLock(path)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) {
		t.Fatalf("second lock: %v, want ErrLocked naming process %d", err, os.Getpid())
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := TryLock(path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if err := l2.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l2.Release(); err != nil {
		t.Errorf("a second release: %v", err)
	}
}

func TestLatestSchemaVersion(t *testing.T) {
	if LatestSchemaVersion() != latestMigration(t) || LatestSchemaVersion() < 1 {
		t.Fatalf("LatestSchemaVersion = %d", LatestSchemaVersion())
	}
}
