package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/secretbot/secretbot/handlers"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/logging"
	"github.com/secretbot/secretbot/internal/metrics"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/store"
)

// backupReport describes a checked copy of the database.
type backupReport struct {
	Path   string
	Size   int64
	Schema int
	Events int64
	Head   audit.Checkpoint
}

func (r backupReport) String() string {
	head := "none (empty log)"
	if r.Head.Seq > 0 {
		head = r.Head.String()
	}
	return fmt.Sprintf("%s: %d bytes, schema version %d, %d audit events, last audit event (seq:hash) %s",
		r.Path, r.Size, r.Schema, r.Events, head)
}

// checkBackup opens the copy at path read-only and checks that SQLite finds
// it intact, that its schema is one this secretbot can run, and that its
// audit chain verifies under key.
func checkBackup(ctx context.Context, path string, key []byte) (backupReport, error) {
	rep := backupReport{Path: path}
	fi, err := os.Stat(path)
	if err != nil {
		return rep, err
	}
	rep.Size = fi.Size()
	db, err := store.OpenCopy(ctx, path)
	if err != nil {
		return rep, err
	}
	defer db.Close()
	if err := db.IntegrityCheck(ctx); err != nil {
		return rep, err
	}
	if rep.Schema, err = db.SchemaVersion(ctx); err != nil {
		return rep, err
	}
	if latest := store.LatestSchemaVersion(); rep.Schema < 1 || rep.Schema > latest {
		return rep, fmt.Errorf("schema version %d: this secretbot runs versions 1 to %d", rep.Schema, latest)
	}
	res, err := audit.New(key, time.Now).Verify(ctx, db, nil)
	if err != nil {
		return rep, fmt.Errorf("%w: %w", errChainBroken, err)
	}
	rep.Events, rep.Head = res.Events, res.Head
	return rep, nil
}

// errChainBroken marks a copy whose audit log does not verify.
var errChainBroken = errors.New("the audit log in the copy does not verify")

// writeBackup copies the database to dst and checks the copy. A copy SQLite
// finds damaged, or of a schema this binary cannot run, is deleted (restore
// would refuse it anyway). A copy whose audit chain does not verify is kept
// and reported: the live log is the same, so refusing the copy would only
// leave the newest records without any backup, and the copy is evidence.
func writeBackup(ctx context.Context, db *store.DB, dst string, force bool, key []byte) (backupReport, error) {
	if _, err := db.BackupTo(ctx, dst, force); err != nil {
		if errors.Is(err, store.ErrExists) {
			return backupReport{}, fmt.Errorf("%s exists; choose a new name, or pass --force to replace it", dst)
		}
		return backupReport{}, err
	}
	rep, err := checkBackup(ctx, dst, key)
	if errors.Is(err, errChainBroken) {
		return rep, fmt.Errorf("the copy was written to %s and kept as evidence, but %w; "+
			"the live log is broken the same way: run `secretbot audit verify` and treat it as an incident", dst, err)
	}
	if err != nil {
		os.Remove(dst)
		return rep, fmt.Errorf("the copy failed its check and was deleted: %w", err)
	}
	return rep, nil
}

// pathFlags is flags for a subcommand that takes one PATH after its flags.
func pathFlags(name, summary string, getenv func(string) string, out io.Writer) (*flag.FlagSet, *string) {
	fs, path := flags(name, summary, getenv, out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: secretbot %s [flags] PATH\n\n%s.\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs, path
}

// runBackup is `secretbot backup PATH`: a checked copy of the live database,
// taken while the bot keeps running. It needs what `audit verify` needs.
func runBackup(ctx context.Context, configPath, dst string, force bool, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.LoadForAudit(configPath, getenv)
	if err != nil {
		return err
	}
	if err := backupTarget(dst, cfg.Storage.Path); err != nil {
		return err
	}
	db, err := store.OpenReadOnly(ctx, cfg.Storage.Path)
	if err != nil {
		return fmt.Errorf("no database to back up at %s (storage.path): %w", cfg.Storage.Path, err)
	}
	defer db.Close()
	rep, err := writeBackup(ctx, db, dst, force, []byte(cfg.Creds.AuditKey))
	if err != nil {
		return fmt.Errorf("backup of %s: %w", cfg.Storage.Path, err)
	}
	out := logging.NewRedactor(cfg.Creds.AuditKey).Writer(stdout)
	fmt.Fprintf(out, "backup written and checked (integrity ok, audit chain ok)\n  %s\n", rep)
	return nil
}

// backupTarget refuses a target that is a directory or one of the
// database's own files: with --force, the copy would replace the live
// database under the running bot.
func backupTarget(dst, dbPath string) error {
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		return &usageError{fmt.Sprintf("%s is a directory; give the backup's file name, e.g. %s", dst,
			filepath.Join(dst, store.BackupName(time.Now())))}
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			return filepath.Clean(p)
		}
		return a
	}
	target := abs(dst)
	for _, own := range []string{dbPath, dbPath + "-wal", dbPath + "-shm", store.LockPath(dbPath)} {
		same := target == abs(own)
		if a, err := os.Stat(dst); err == nil {
			if b, err := os.Stat(own); err == nil && os.SameFile(a, b) {
				same = true
			}
		}
		if same {
			return &usageError{fmt.Sprintf("%s is the database's own file (storage.path %s); back up to another file", dst, dbPath)}
		}
	}
	return nil
}

// runRestore is `secretbot restore PATH`: it puts a checked backup in place
// of the database, keeping the current one aside. It holds the database's
// lock throughout, so it is refused while the bot runs.
func runRestore(ctx context.Context, configPath, src string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.LoadForAudit(configPath, getenv)
	if err != nil {
		return err
	}
	dbPath := cfg.Storage.Path
	lock, err := store.TryLock(dbPath)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("refusing to restore while secretbot runs on the database: %w; stop the bot first", err)
	}
	if err != nil {
		return err
	}
	defer lock.Release()

	srcInfo, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if dbInfo, err := os.Stat(dbPath); err == nil && os.SameFile(srcInfo, dbInfo) {
		return fmt.Errorf("%s is the database itself (storage.path), not a backup of it", src)
	}
	if fi, err := os.Stat(src + "-wal"); err == nil && fi.Size() > 0 {
		return fmt.Errorf("%s has a write-ahead log (%s-wal) beside it: it is a database in use, not a backup; take one with `secretbot backup`", src, src)
	}

	// The check runs on the copy that goes in place, not on src, so what is
	// restored is exactly what was checked.
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return err
	}
	staged := filepath.Join(filepath.Dir(dbPath), fmt.Sprintf(".%s.restoring-%d", filepath.Base(dbPath), os.Getpid()))
	os.Remove(staged) // a leftover of an interrupted restore by this pid; never a live file
	if err := store.CopyFile(src, staged); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer os.Remove(staged) // gone after the rename below; removes it on any failure before
	rep, err := checkBackup(ctx, staged, []byte(cfg.Creds.AuditKey))
	if err != nil {
		return fmt.Errorf("refusing to restore %s: %w", src, err)
	}
	rep.Path = src

	aside, moved, err := moveAside(dbPath, time.Now())
	if err != nil {
		return err
	}
	if err := os.Rename(staged, dbPath); err != nil {
		return fmt.Errorf("put the backup in place (the previous database is at %s): %w", aside, err)
	}
	if d, err := os.Open(filepath.Dir(dbPath)); err == nil {
		_ = d.Sync()
		d.Close()
	}

	out := logging.NewRedactor(cfg.Creds.AuditKey).Writer(stdout)
	if len(moved) > 0 {
		fmt.Fprintf(out, "moved the previous database aside:\n  %s\n", strings.Join(moved, "\n  "))
	} else {
		fmt.Fprintf(out, "there was no database at %s\n", dbPath)
	}
	fmt.Fprintf(out, "restored %s from\n  %s\n", dbPath, rep)
	fmt.Fprintf(out, "Check it against the newest audit checkpoint posted in the security channel:\n"+
		"  secretbot audit verify --checkpoint SEQ:HASH\n"+
		"A checkpoint past seq %d reports the log as truncated: the events after the backup are not in it"+
		" (they are in the database moved aside).\n", rep.Head.Seq)
	return nil
}

// moveAside renames the database and its -wal and -shm files to
// <db>.before-restore-<UTC time>[-wal|-shm], so SQLite still opens the set
// as it was. It returns the new database name and every new name.
func moveAside(dbPath string, now time.Time) (string, []string, error) {
	aside := dbPath + ".before-restore-" + now.UTC().Format("20060102T150405Z")
	var moved []string
	for _, suffix := range []string{"", "-wal", "-shm"} {
		from, to := dbPath+suffix, aside+suffix
		if _, err := os.Lstat(from); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if _, err := os.Lstat(to); err == nil {
			return "", moved, fmt.Errorf("%s already exists; try again in a second", to)
		}
		if err := os.Rename(from, to); err != nil {
			return "", moved, fmt.Errorf("move %s aside (already moved: %v): %w", from, moved, err)
		}
		moved = append(moved, to)
	}
	return aside, moved, nil
}

// backupper takes the scheduled backups of a running bot.
type backupper struct {
	db      *store.DB
	cfg     config.Backup
	key     []byte
	channel string
	log     *slog.Logger
	now     func() time.Time
	total   *metrics.CounterVec
	wake    func()

	lastTry time.Time
	failing bool // a failure was reported and no backup succeeded since
}

func newBackupper(db *store.DB, cfg *config.Config, log *slog.Logger, m *appMetrics, now func() time.Time, wake func()) *backupper {
	return &backupper{
		db: db, cfg: cfg.Backup, key: []byte(cfg.Creds.AuditKey), channel: cfg.Slack.SecurityChannel,
		log: log.With("component", "backup"), now: now, wake: wake,
		total: m.reg.Counter("secretbot_backups_total", "Scheduled backups of the database, by result (ok, failed).", "result"),
	}
}

// run takes a backup whenever one is due until ctx ends.
func (b *backupper) run(ctx context.Context) {
	b.log.Info("scheduled backups on", "dir", b.cfg.Dir, "every", b.cfg.Every.D().String(), "keep", b.cfg.Keep)
	for {
		t := time.NewTimer(b.untilDue())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		b.once(ctx)
	}
}

// untilDue is the wait before the next backup: every after the newest
// backup in the directory (so a restart does not take one more) and after
// the last attempt (so a failing one is retried every, not in a loop).
func (b *backupper) untilDue() time.Duration {
	next := b.lastTry
	if _, times, err := store.ScheduledBackups(b.cfg.Dir); err == nil && len(times) > 0 && times[len(times)-1].After(next) {
		next = times[len(times)-1]
	}
	if next.IsZero() {
		return 0
	}
	return max(0, next.Add(b.cfg.Every.D()).Sub(b.now()))
}

// once takes one backup, checks it and prunes old ones.
func (b *backupper) once(ctx context.Context) {
	at := b.now()
	b.lastTry = at
	rep, err := b.take(ctx, at)
	if err != nil {
		if ctx.Err() != nil {
			return // stopping: not a backup failure
		}
		b.total.Inc("failed")
		b.log.Error("scheduled backup failed", "err", err)
		if !b.failing {
			b.failing = b.notify(ctx, fmt.Sprintf(":warning: The scheduled backup of the secretbot database failed: %s\n"+
				"Backups in `%s` are not being updated. Retrying every %s; this channel hears again when one succeeds.",
				handlers.Escape(err.Error()), handlers.Escape(b.cfg.Dir), b.cfg.Every.D()))
		}
		return
	}
	b.total.Inc("ok")
	b.log.Info("scheduled backup written", "path", rep.Path, "bytes", rep.Size, "audit_events", rep.Events,
		"audit_head", rep.Head.String())
	if b.failing {
		b.failing = false
		_ = b.notify(ctx, fmt.Sprintf(":white_check_mark: Scheduled backups of the secretbot database work again: `%s`.",
			handlers.Escape(filepath.Base(rep.Path))))
	}
	removed, err := store.PruneBackups(b.cfg.Dir, b.cfg.Keep)
	for _, name := range removed {
		b.log.Info("old backup deleted", "path", filepath.Join(b.cfg.Dir, name), "keep", b.cfg.Keep)
	}
	if err != nil {
		b.log.Error("deleting old backups failed", "err", err)
	}
}

func (b *backupper) take(ctx context.Context, at time.Time) (backupReport, error) {
	if err := os.MkdirAll(b.cfg.Dir, 0o700); err != nil {
		return backupReport{}, err
	}
	return writeBackup(ctx, b.db, filepath.Join(b.cfg.Dir, store.BackupName(at)), false, b.key)
}

// notify posts to the security channel through the outbox, so the notice
// survives a Slack outage like any other. It reports whether the notice was
// queued (a failure notice that was not is tried again on the next failure).
func (b *backupper) notify(ctx context.Context, text string) bool {
	err := b.db.InTx(ctx, func(tx *store.Tx) error {
		return enqueue(ctx, tx, outbox.Message{Kind: outbox.Post, Target: b.channel, Text: text}, b.now())
	})
	if err != nil {
		b.log.Error("could not queue the backup notice for the security channel", "err", err)
		return false
	}
	b.wake()
	return true
}
