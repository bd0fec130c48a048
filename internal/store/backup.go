package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ErrExists: a backup's target file is already there and overwriting was
// not asked for.
var ErrExists = errors.New("store: file exists")

// BackupTo writes a consistent copy of the database to dst while others
// keep writing, and returns the copy's size. The copy is made in a
// temporary file (mode 0600) in dst's directory, flushed to disk and then
// moved into place, so dst is never a partial file. An existing dst is
// refused with ErrExists unless overwrite is set.
//
// The copy is made with VACUUM INTO: it reads the whole database inside one
// read transaction, so under WAL it is a snapshot as of its start while
// writers go on undisturbed, and it works through database/sql. The
// driver's backup API is consistent only when run in one step (copied in
// steps, it starts over whenever another connection writes in between),
// needs the driver's raw connection, and copies free pages too: pages that
// may still hold deleted rows. VACUUM INTO writes live rows only.
func (db *DB) BackupTo(ctx context.Context, dst string, overwrite bool) (int64, error) {
	if !overwrite {
		if _, err := os.Lstat(dst); err == nil {
			return 0, fmt.Errorf("%w: %s", ErrExists, dst)
		}
	}
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, ".secretbot-backup-*.tmp")
	if err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	placed := false
	defer func() {
		if !placed {
			os.Remove(tmpPath)
		}
	}()
	// VACUUM INTO accepts an existing file only when it is empty, as this one is.
	if _, err := db.sql.ExecContext(ctx, "VACUUM INTO ?", tmpPath); err != nil {
		return 0, fmt.Errorf("store: backup %s: %w", db.path, err)
	}
	// SQLite does not sync what VACUUM INTO wrote.
	if err := syncFile(tmpPath); err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	if err := place(tmpPath, dst, overwrite); err != nil {
		return 0, err
	}
	placed = true
	if err := syncDir(dir); err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return 0, fmt.Errorf("store: backup: %w", err)
	}
	return fi.Size(), nil
}

// place moves tmp to dst. Without overwrite, a hard link is the atomic
// "create only if absent"; where the file system has no hard links, a
// check then rename is the next best thing.
func place(tmp, dst string, overwrite bool) error {
	if overwrite {
		if err := os.Rename(tmp, dst); err != nil {
			return fmt.Errorf("store: backup: %w", err)
		}
		return nil
	}
	err := os.Link(tmp, dst)
	switch {
	case err == nil:
		os.Remove(tmp)
		return nil
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%w: %s", ErrExists, dst)
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%w: %s", ErrExists, dst)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// CopyFile copies the file src to dst (which must not exist) through a
// temporary file in dst's directory: mode 0600, synced, then renamed, so
// dst is either absent or complete.
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".secretbot-copy-*.tmp")
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, in)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = place(tmp.Name(), dst, false)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// OpenReadOnly opens an existing database for reading only: nothing is
// created or migrated, and the bot may be writing it at the same time
// (`secretbot backup` copies a live database this way).
func OpenReadOnly(ctx context.Context, path string) (*DB, error) {
	return openExisting(ctx, path, "mode=ro&_pragma=busy_timeout(5000)")
}

// OpenCopy opens a backup copy for checking. The file is taken as
// immutable, which is what a copy nobody writes is: SQLite then takes no
// locks and creates no -wal or -shm file next to it, and reads exactly the
// bytes of the file (a -wal beside it is ignored).
func OpenCopy(ctx context.Context, path string) (*DB, error) {
	return openExisting(ctx, path, "mode=ro&immutable=1")
}

func openExisting(ctx context.Context, path, params string) (*DB, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("store: %s is not a regular file", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// A URI, so that a path holding ? or # is still only a path.
	uri := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String() + "?" + params
	sqldb, err := sql.Open("sqlite", uri)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	sqldb.SetMaxOpenConns(2)
	db := &DB{sql: sqldb, path: path}
	var tables int
	err = sqldb.QueryRowContext(ctx,
		"SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('schema_migrations', 'audit_events')").Scan(&tables)
	if err == nil && tables != 2 {
		err = errors.New("not a secretbot database (no schema_migrations and audit_events tables)")
	}
	if err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return db, nil
}

// IntegrityCheck runs PRAGMA integrity_check and returns an error listing
// the first problems it found.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	rows, err := db.sql.QueryContext(ctx, "PRAGMA integrity_check(10)")
	if err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("store: integrity check: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	if len(msgs) == 1 && msgs[0] == "ok" {
		return nil
	}
	return fmt.Errorf("store: integrity check of %s failed: %s", db.path, strings.Join(msgs, "; "))
}

// LatestSchemaVersion is the newest schema version this secretbot knows.
func LatestSchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		return 0 // the embedded migrations are checked by the tests; Open reports the error
	}
	return ms[len(ms)-1].version
}

// Scheduled backups are named secretbot-YYYYMMDDTHHMMSSZ.db (UTC), so that
// names sort by time and retention never touches a file it did not write.
const backupTimeLayout = "20060102T150405Z"

var reBackupName = regexp.MustCompile(`^secretbot-\d{8}T\d{6}Z\.db$`)

// BackupName is the file name of a scheduled backup taken at t.
func BackupName(t time.Time) string {
	return "secretbot-" + t.UTC().Format(backupTimeLayout) + ".db"
}

// ScheduledBackups lists the scheduled backups in dir (names only, oldest
// first) and the time of each, read from its name. Other files are left out.
func ScheduledBackups(dir string) ([]string, []time.Time, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && reBackupName.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names) // the layout sorts chronologically
	times := make([]time.Time, 0, len(names))
	kept := names[:0]
	for _, n := range names {
		t, err := time.Parse(backupTimeLayout, strings.TrimSuffix(strings.TrimPrefix(n, "secretbot-"), ".db"))
		if err != nil { // matches the pattern but is no date (e.g. month 13): not ours
			continue
		}
		kept = append(kept, n)
		times = append(times, t)
	}
	return kept, times, nil
}

// PruneBackups deletes the oldest scheduled backups in dir so that the
// newest keep remain, and returns the names it deleted. Files that are not
// scheduled backups are never touched.
func PruneBackups(dir string, keep int) ([]string, error) {
	if keep < 1 {
		return nil, fmt.Errorf("store: prune backups: keep %d, at least 1", keep)
	}
	names, _, err := ScheduledBackups(dir)
	if err != nil {
		return nil, fmt.Errorf("store: prune backups: %w", err)
	}
	var removed []string
	for len(names) > keep {
		if err := os.Remove(filepath.Join(dir, names[0])); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("store: prune backups: %w", err)
		}
		removed = append(removed, names[0])
		names = names[1:]
	}
	return removed, nil
}
