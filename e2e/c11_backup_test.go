package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

// backupHead reads "last audit event (seq:hash) SEQ:HASH" from backup or restore output.
var backupHead = regexp.MustCompile(`(\d+) audit events, last audit event \(seq:hash\) (\d+):([0-9a-f]{64})`)

// TestC11_BackupWhileRunningAndRestore: `secretbot backup` copies the live
// database while commands keep arriving; `restore` is refused while the bot
// runs (so is a second `run`); after a stop, restore brings the backup back
// with the old database kept aside, the bot starts on it with the backup's
// state, the audit chain verifies, and the checkpoint posted at shutdown
// shows the restored log is older. Scheduled backups keep the newest N.
func TestC11_BackupWhileRunningAndRestore(t *testing.T) {
	scheduled := t.TempDir()
	// An operator's own files in the backup directory are never pruned.
	foreign := []string{"secretbot-before-upgrade.db", "secretbot-20200101T000000Z.db.gpg"}
	for _, n := range foreign {
		if err := os.WriteFile(filepath.Join(scheduled, n), []byte("not the bot's"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const keep = 2
	h := harness.Start(t, harness.Options{EditConfig: func(doc map[string]any) {
		doc["backup"] = map[string]any{"dir": scheduled, "every": "1s", "keep": keep}
	}})

	// State before the backup: Dave asks who he is (an audit event).
	_, url := command(t, h, harness.Dave, "whoami")
	answer(t, h, url)

	// Commands keep arriving while the backup is taken.
	var sent atomic.Int64
	stop := make(chan struct{})
	var loop sync.WaitGroup
	var loopErr error
	loop.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			env, url := h.Slack.SendSlashCommand(harness.Eve.Slack, "whoami")
			if _, _, err := h.Slack.WaitAck(env, wait); err != nil {
				loopErr = fmt.Errorf("no ack: %w", err)
				return
			}
			if _, err := h.Slack.WaitResponse(url, wait, nil); err != nil {
				loopErr = fmt.Errorf("no answer: %w", err)
				return
			}
			sent.Add(1)
		}
	})
	waitSent := func(n int64) {
		t.Helper()
		if !until(wait, func() bool { return sent.Load() >= n }) {
			close(stop)
			loop.Wait()
			t.Fatalf("only %d commands answered while backing up (%v)", sent.Load(), loopErr)
		}
	}
	waitSent(2)
	backupPath := filepath.Join(t.TempDir(), "manual.db")
	out, errOut, code := h.RunCLI("backup", backupPath)
	t.Logf("backup (exit %d):\n%s%s", code, out, errOut)
	atBackup := sent.Load()
	waitSent(atBackup + 2)
	close(stop)
	loop.Wait()
	if loopErr != nil {
		t.Fatalf("a command during the backup: %v", loopErr)
	}
	if code != 0 || !strings.Contains(out, "integrity ok, audit chain ok") {
		t.Fatalf("backup while running: exit %d, want 0:\n%s%s", code, out, errOut)
	}
	m := backupHead.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("backup output does not give the audit head:\n%s", out)
	}
	backupEvents, _ := strconv.Atoi(m[1])
	backupSeq, _ := strconv.ParseInt(m[2], 10, 64)
	backupHash := m[3]
	t.Logf("%d commands answered during the run, %d before the backup returned; the copy holds %d events",
		sent.Load(), atBackup, backupEvents)

	// The copy is a prefix of the live log: the same events, hash for hash.
	copied := readEvents(t, openDB(t, backupPath))
	if len(copied) != backupEvents || copied[len(copied)-1].seq != backupSeq || copied[len(copied)-1].hash != backupHash {
		t.Fatalf("the copy holds %d events, the output said %d ending %d:%s", len(copied), backupEvents, backupSeq, backupHash)
	}
	// Carol's command comes after the backup: it must not survive the restore.
	_, url = command(t, h, harness.Carol, "whoami")
	answer(t, h, url)
	live := readEvents(t, openDB(t, h.DBPath))
	if len(live) <= len(copied) {
		t.Fatalf("the live log (%d events) did not move on after the backup (%d)", len(live), len(copied))
	}
	for i, e := range copied {
		if live[i].hash != e.hash {
			t.Fatalf("event %d differs between the copy and the live log", e.seq)
		}
	}
	if out, errOut, code := h.RunCLI("backup", backupPath); code != 1 || !strings.Contains(errOut, "--force") {
		t.Errorf("a second backup onto the same file: exit %d, want 1 and a hint at --force:\n%s%s", code, out, errOut)
	}

	// Refused while the bot runs: restore, and a second bot on the database.
	if out, errOut, code := h.RunCLI("restore", backupPath); code != 1 || !strings.Contains(errOut, "refusing to restore while secretbot runs") {
		t.Errorf("restore while running: exit %d, want 1 and a refusal:\n%s%s", code, out, errOut)
	}
	if out, errOut, code := h.RunCLI("run"); code != 1 || !strings.Contains(errOut, "another secretbot runs on this database") {
		t.Errorf("a second run on the same database: exit %d, want 1 and a refusal:\n%s%s", code, out, errOut)
	}

	// Scheduled backups: taken while running, the newest `keep` kept.
	var names []string
	if !until(3*wait, func() bool {
		ok, _ := metricSeries(h, `secretbot_backups_total{result="ok"}`)
		names = scheduledBackups(t, scheduled)
		return ok >= keep+2 && len(names) == keep
	}) {
		ok, _ := metricSeries(h, `secretbot_backups_total{result="ok"}`)
		t.Fatalf("scheduled backups: %v ok, files %v; want at least %d taken and %d kept", ok, names, keep+2, keep)
	}
	if failed, _ := metricSeries(h, `secretbot_backups_total{result="failed"}`); failed != 0 {
		t.Errorf("%v scheduled backups failed", failed)
	}
	for _, n := range foreign {
		if _, err := os.Stat(filepath.Join(scheduled, n)); err != nil {
			t.Errorf("%s (not the bot's) was deleted: %v", n, err)
		}
	}
	t.Logf("scheduled backups kept: %v", names)

	// Stop; the bot posts its shutdown checkpoint, past the backup's head.
	if err := h.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("stop: %v", err)
	}
	msg, err := h.Slack.WaitMessage(func(m fakeslack.Message) bool {
		return fakeslack.InChannel(harness.SecurityChannel)(m) && strings.Contains(m.Text, "(shutdown)") &&
			checkpointRef.MatchString(m.Text)
	}, wait)
	if err != nil {
		t.Fatalf("no shutdown checkpoint: %v", err)
	}
	ref := checkpointRef.FindStringSubmatch(msg.Text)
	shutdownCP := ref[1] + ":" + ref[2]
	beforeRestore := readEvents(t, openDB(t, h.DBPath))

	out, errOut, code = h.RunCLI("restore", backupPath)
	t.Logf("restore (exit %d):\n%s%s", code, out, errOut)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d audit events", backupEvents)) {
		t.Fatalf("restore: exit %d, want 0:\n%s%s", code, out, errOut)
	}
	asides, _ := filepath.Glob(h.DBPath + ".before-restore-*")
	i := slices.IndexFunc(asides, func(p string) bool { return !strings.HasSuffix(p, "-wal") && !strings.HasSuffix(p, "-shm") })
	if i < 0 || !strings.Contains(out, asides[i]) {
		t.Fatalf("the previous database was not kept aside: %v", asides)
	}
	if kept := readEvents(t, openDB(t, asides[i])); len(kept) != len(beforeRestore) {
		t.Errorf("the database kept aside holds %d events, the stopped bot had %d", len(kept), len(beforeRestore))
	}

	// The restored log verifies; the shutdown checkpoint shows it is older.
	verify := func(args ...string) (string, int) {
		out, errOut, code := h.RunCLI(append([]string{"audit", "verify"}, args...)...)
		t.Logf("audit verify %s (exit %d): %s%s", strings.Join(args, " "), code, out, errOut)
		return out + errOut, code
	}
	if out, code := verify(); code != 0 || !strings.Contains(out, fmt.Sprintf("%d events, head %d:%s", backupEvents, backupSeq, backupHash)) {
		t.Errorf("audit verify of the restored log: exit %d:\n%s", code, out)
	}
	if out, code := verify("--checkpoint", shutdownCP); code != 1 || !strings.Contains(out, "truncated") {
		t.Errorf("audit verify against the checkpoint posted after the backup: exit %d, want 1 and truncated:\n%s", code, out)
	}

	// The bot starts on the restored database, with the backup's state.
	h.StartBot()
	if err := h.WaitReady(); err != nil {
		t.Fatal(err)
	}
	auditOf := func(who harness.Person) string {
		_, url := command(t, h, harness.Alice, "audit --user <@"+who.Slack+"> --since 1d")
		r := answer(t, h, url)
		return r.Text + string(r.Blocks)
	}
	if text := auditOf(harness.Dave); !strings.Contains(text, "whoami") {
		t.Errorf("Dave's command before the backup is not in the restored log:\n%s", text)
	}
	if text := auditOf(harness.Carol); !strings.Contains(text, "No events") {
		t.Errorf("Carol's command after the backup is in the restored log:\n%s", text)
	}
	after := readEvents(t, openDB(t, h.DBPath))
	if len(after) <= len(copied) || after[len(copied)-1].hash != backupHash {
		t.Errorf("the restored log does not continue from the backup's head (%d events)", len(after))
	}
	if out, code := verify(); code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("audit verify after the restart: exit %d:\n%s", code, out)
	}
}

// scheduledBackups lists the bot's backup files in dir.
func scheduledBackups(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^secretbot-\d{8}T\d{6}Z\.db$`)
	var out []string
	for _, e := range entries {
		if re.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// metricSeries reads one series (name with its labels) from /metrics;
// ok is false until it is exported.
func metricSeries(h *harness.Harness, series string) (float64, bool) {
	resp, err := http.Get("http://" + h.OpsAddr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}
