package app

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/store"
)

const testAuditKey = "audit-test-key-0123456789abcdef0123456789"

// backupWorld is a configuration file naming a database with n audit
// events, and the environment the CLI runs with.
type backupWorld struct {
	dir, config, db string
	env             func(string) string
}

func newBackupWorld(t *testing.T, n int) *backupWorld {
	t.Helper()
	w := &backupWorld{dir: t.TempDir()}
	w.db = filepath.Join(w.dir, "data", "secretbot.db")
	w.config = filepath.Join(w.dir, "secretbot.yaml")
	if err := os.WriteFile(w.config, []byte("storage:\n  path: "+w.db+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SECRETBOT_CONFIG": w.config, "SECRETBOT_AUDIT_KEY": testAuditKey}
	w.env = func(k string) string { return env[k] }
	w.append(t, n)
	return w
}

// append adds n audit events to the database.
func (w *backupWorld) append(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, w.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := audit.New([]byte(testAuditKey), time.Now)
	for i := range n {
		err := db.InTx(ctx, func(tx *store.Tx) error {
			_, err := l.Append(ctx, tx, audit.Event{Actor: "U0TEST", Action: "test.event", Outcome: audit.OK, Reason: fmt.Sprint(i)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (w *backupWorld) run(args ...string) (string, int) {
	var out, errOut bytes.Buffer
	err := Run(context.Background(), args, w.env, &out, &errOut)
	return out.String() + errOut.String(), ExitCode(err)
}

// events counts the audit events in the database at path.
func events(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM audit_events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBackupAndRestoreUsage(t *testing.T) {
	w := newBackupWorld(t, 0)
	for _, tt := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"backup", "--help"}, ExitOK, "Usage: secretbot backup [flags] PATH"},
		{[]string{"restore", "-h"}, ExitOK, "Usage: secretbot restore [flags] PATH"},
		{[]string{"help"}, ExitOK, "secretbot restore"},
		{[]string{"backup"}, ExitUsage, "usage: secretbot backup"},
		{[]string{"backup", "a.db", "b.db"}, ExitUsage, "flags before PATH"},
		{[]string{"backup", "a.db", "--force"}, ExitUsage, "flags before PATH"},
		{[]string{"backup", "--frobnicate", "a.db"}, ExitUsage, "frobnicate"},
		{[]string{"restore"}, ExitUsage, "usage: secretbot restore"},
		{[]string{"restore", "--force", "a.db"}, ExitUsage, "force"},
		{[]string{"backup", "--config", filepath.Join(w.dir, "missing.yaml"), "a.db"}, ExitUsage, "not found"},
	} {
		out, code := w.run(tt.args...)
		if code != tt.code || !strings.Contains(out, tt.out) {
			t.Errorf("%v: exit %d, want %d, and output with %q:\n%s", tt.args, code, tt.code, tt.out, out)
		}
	}
	noKey := func(k string) string {
		if k == "SECRETBOT_AUDIT_KEY" {
			return ""
		}
		return w.env(k)
	}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"backup", filepath.Join(w.dir, "x.db")}, noKey, &out, &out); ExitCode(err) != ExitUsage ||
		!strings.Contains(out.String(), "SECRETBOT_AUDIT_KEY") {
		t.Errorf("backup without the audit key: exit %d: %s", ExitCode(err), out.String())
	}
}

func TestBackupCommand(t *testing.T) {
	w := newBackupWorld(t, 5)
	dst := filepath.Join(w.dir, "backups", "one.db")
	if out, code := w.run("backup", dst); code != ExitFailure || !strings.Contains(out, "backups") {
		t.Errorf("backup into a missing directory: exit %d: %s", code, out)
	}
	if err := os.Mkdir(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	out, code := w.run("backup", dst)
	t.Logf("backup (exit %d):\n%s", code, out)
	if code != ExitOK || !strings.Contains(out, dst) || !strings.Contains(out, "5 audit events") ||
		!regexp.MustCompile(`last audit event \(seq:hash\) 5:[0-9a-f]{64}`).MatchString(out) || !strings.Contains(out, "integrity ok") {
		t.Fatalf("backup: exit %d:\n%s", code, out)
	}
	if strings.Contains(out, testAuditKey) {
		t.Fatal("the audit key was printed")
	}
	if events(t, dst) != 5 {
		t.Errorf("the copy holds %d events, want 5", events(t, dst))
	}
	w.append(t, 2)
	if out, code := w.run("backup", dst); code != ExitFailure || !strings.Contains(out, "--force") {
		t.Errorf("backup onto an existing file: exit %d, want 1 and a hint at --force:\n%s", code, out)
	}
	if events(t, dst) != 5 {
		t.Error("the existing backup was changed without --force")
	}
	if out, code := w.run("backup", "--force", dst); code != ExitOK || !strings.Contains(out, "7 audit events") {
		t.Errorf("backup --force: exit %d:\n%s", code, out)
	}

	// Never onto the database itself (--force would replace it under the bot).
	link := filepath.Join(w.dir, "link.db")
	if err := os.Symlink(w.db, link); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{w.db, w.db + "-wal", link, filepath.Join(w.dir, "data", "..", "data", "secretbot.db")} {
		if out, code := w.run("backup", "--force", target); code != ExitUsage || !strings.Contains(out, "the database's own file") {
			t.Errorf("backup --force onto %s: exit %d, want 2 and a refusal:\n%s", target, code, out)
		}
	}
	if events(t, w.db) != 7 {
		t.Fatal("the database changed")
	}
	if out, code := w.run("backup", "--force", filepath.Dir(dst)); code != ExitUsage || !strings.Contains(out, "is a directory") {
		t.Errorf("backup onto a directory: exit %d:\n%s", code, out)
	}

	// A database whose audit chain is broken still gets its copy, kept as
	// evidence, and the command fails naming the broken event.
	raw, err := sql.Open("sqlite", "file:"+w.db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("UPDATE audit_events SET reason = 'edited' WHERE seq = 3"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	bad := filepath.Join(w.dir, "backups", "bad.db")
	if out, code := w.run("backup", bad); code != ExitFailure || !strings.Contains(out, "event 3") {
		t.Errorf("backup of a tampered log: exit %d, want 1 naming event 3:\n%s", code, out)
	}
	if _, err := os.Stat(bad); err != nil {
		t.Errorf("the copy of a tampered log was not kept: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 2 {
		t.Errorf("backup directory holds %d entries, want the good copy and the evidence copy", len(entries))
	}
}

func TestRestoreCommand(t *testing.T) {
	w := newBackupWorld(t, 4)
	backup := filepath.Join(w.dir, "b.db")
	if out, code := w.run("backup", backup); code != ExitOK {
		t.Fatalf("backup: %d %s", code, out)
	}
	w.append(t, 3) // the live database moves on: 7 events

	// Refused while something (a running bot) holds the lock.
	lock, err := store.TryLock(w.db)
	if err != nil {
		t.Fatal(err)
	}
	out, code := w.run("restore", backup)
	if code != ExitFailure || !strings.Contains(out, "refusing to restore while secretbot runs") || !strings.Contains(out, "stop the bot") {
		t.Errorf("restore under a lock: exit %d, want 1 and a clear refusal:\n%s", code, out)
	}
	if events(t, w.db) != 7 {
		t.Fatal("the database changed while the restore was refused")
	}
	if err := lock.Release(); err != nil {
		t.Fatal(err)
	}

	// Refused: not a backup.
	notDB := filepath.Join(w.dir, "notes.db")
	if err := os.WriteFile(notDB, bytes.Repeat([]byte("notes "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(w.dir, "tampered.db")
	if err := store.CopyFile(backup, tampered); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+tampered)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("DELETE FROM audit_events WHERE seq = 2"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	newer := filepath.Join(w.dir, "newer.db")
	if err := store.CopyFile(backup, newer); err != nil {
		t.Fatal(err)
	}
	raw, err = sql.Open("sqlite", "file:"+newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	for _, c := range []struct{ path, says string }{
		{filepath.Join(w.dir, "missing.db"), "no such file"},
		{notDB, "not a database"},
		{tampered, "event 2 is missing"},
		{newer, "schema version 999"},
		{w.db, "is the database itself"},
	} {
		out, code := w.run("restore", c.path)
		if code != ExitFailure || !strings.Contains(out, c.says) {
			t.Errorf("restore %s: exit %d, want 1 saying %q:\n%s", filepath.Base(c.path), code, c.says, out)
		}
	}
	if events(t, w.db) != 7 {
		t.Fatal("a refused restore changed the database")
	}
	if entries, _ := os.ReadDir(filepath.Dir(w.db)); slices.ContainsFunc(entries, func(e os.DirEntry) bool {
		return strings.Contains(e.Name(), "before-restore") || strings.Contains(e.Name(), "restoring")
	}) {
		t.Errorf("a refused restore left files: %v", entries)
	}

	out, code = w.run("restore", backup)
	t.Logf("restore (exit %d):\n%s", code, out)
	if code != ExitOK || !strings.Contains(out, "4 audit events") || !strings.Contains(out, "audit verify --checkpoint") {
		t.Fatalf("restore: exit %d:\n%s", code, out)
	}
	if events(t, w.db) != 4 {
		t.Errorf("restored database holds %d events, want the backup's 4", events(t, w.db))
	}
	asides, _ := filepath.Glob(w.db + ".before-restore-*")
	var main string
	for _, a := range asides {
		if !strings.HasSuffix(a, "-wal") && !strings.HasSuffix(a, "-shm") {
			main = a
		}
	}
	if main == "" || !strings.Contains(out, main) {
		t.Fatalf("the previous database was not kept aside (found %v):\n%s", asides, out)
	}
	if events(t, main) != 7 {
		t.Errorf("the database kept aside holds %d events, want 7", events(t, main))
	}
	if fi, err := os.Stat(w.db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("restored file: %v %v", fi, err)
	}
	// The restored log verifies, and the checkpoint of the later log shows
	// it is older (truncated).
	if out, code := w.run("audit", "verify"); code != ExitOK || !strings.Contains(out, "4 events") {
		t.Errorf("audit verify after restore: exit %d:\n%s", code, out)
	}
}

func TestScheduledBackupsKeepNewestAndReportFailuresOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "data", "secretbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	backups := filepath.Join(dir, "backups")
	cfg := &config.Config{
		Slack:  config.Slack{SecurityChannel: "C0SEC"},
		Backup: config.Backup{Dir: backups, Every: config.Duration(time.Hour), Keep: 2},
		Creds:  config.Credentials{AuditKey: testAuditKey},
	}
	now := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	woken := 0
	b := newBackupper(db, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), newAppMetrics(),
		func() time.Time { return now }, func() { woken++ })
	if d := b.untilDue(); d != 0 {
		t.Errorf("first backup due in %v, want now", d)
	}
	if err := os.MkdirAll(backups, 0o700); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(backups, "secretbot-manual.db")
	if err := os.WriteFile(foreign, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b.once(ctx)
		now = now.Add(time.Hour)
	}
	names, _, _ := store.ScheduledBackups(backups)
	if want := []string{"secretbot-20261129T150000Z.db", "secretbot-20261129T160000Z.db"}; !slices.Equal(names, want) {
		t.Errorf("kept %v, want %v", names, want)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Error("a file the bot did not write was deleted")
	}
	if d := b.untilDue(); d != 0 {
		t.Errorf("due in %v an hour after the last backup, want now", d)
	}
	now = now.Add(-30 * time.Minute)
	if d := b.untilDue(); d != 30*time.Minute {
		t.Errorf("due in %v half an hour early, want 30m", d)
	}
	now = now.Add(30 * time.Minute)

	// Failures: counted each time, reported once per streak.
	if err := os.RemoveAll(backups); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(backups, nil, 0o600); err != nil { // a file where the directory should be
		t.Fatal(err)
	}
	for range 3 {
		b.once(ctx)
		if d := b.untilDue(); d != time.Hour {
			t.Errorf("a failed backup is retried in %v, want every (1h)", d)
		}
		now = now.Add(time.Hour)
	}
	if got := b.total.Value("failed"); got != 3 {
		t.Errorf("failures counted %v, want 3", got)
	}
	if got := b.total.Value("ok"); got != 3 {
		t.Errorf("successes counted %v, want 3", got)
	}
	os.Remove(backups)
	b.once(ctx)
	// Every message owed, in order (OutboxDue would show only the channel's first).
	var texts []string
	for id := int64(1); ; id++ {
		m, err := db.OutboxGet(ctx, id)
		if err != nil {
			break
		}
		texts = append(texts, string(m.Body))
	}
	if len(texts) != 2 || !strings.Contains(texts[0], "backup of the secretbot database failed") ||
		!strings.Contains(texts[0], "C0SEC") || !strings.Contains(texts[1], "work again") {
		t.Errorf("security channel notices: %q, want one failure and one recovery", texts)
	}
	if woken != 2 {
		t.Errorf("the outbox was woken %d times, want 2", woken)
	}
}
