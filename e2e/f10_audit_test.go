package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
	"github.com/secretbot/secretbot/internal/audit"
)

var checkpointRef = regexp.MustCompile(`--checkpoint (\d+):([0-9a-f]{64})`)

func TestF10_AuditChainDetectsTampering(t *testing.T) {
	h := harness.Start(t, harness.Options{})
	// Six audit events: answers and refusals.
	for _, c := range []struct {
		who  harness.Person
		text string
	}{
		{harness.Alice, "whoami"}, {harness.Bob, "whoami"}, {harness.Eve, "frobnicate"},
		{harness.Carol, "whoami"}, {harness.Zed, "whoami"}, {harness.Dave, "rotate everything"},
	} {
		_, url := command(t, h, c.who, c.text)
		answer(t, h, url)
	}
	if err := h.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("stop: %v", err)
	}

	// The checkpoint the bot posted to the security channel at shutdown.
	msg, err := h.Slack.WaitMessage(func(m fakeslack.Message) bool {
		return fakeslack.InChannel(harness.SecurityChannel)(m) && strings.Contains(m.Text, "(shutdown)") &&
			checkpointRef.MatchString(m.Text)
	}, wait)
	if err != nil {
		t.Fatalf("no shutdown checkpoint in %s: %v", harness.SecurityChannel, err)
	}
	ref := checkpointRef.FindStringSubmatch(msg.Text)
	checkpoint := ref[1] + ":" + ref[2]
	cpSeq, _ := strconv.Atoi(ref[1])

	events := readEvents(t, openDB(t, h.DBPath))
	if len(events) < 6 {
		t.Fatalf("%d audit events, want at least 6", len(events))
	}
	if last := events[len(events)-1]; int(last.seq) != cpSeq || last.hash != ref[2] {
		t.Fatalf("checkpoint %s is not the head of the log (%d:%s)", checkpoint, last.seq, last.hash)
	}
	middle := events[len(events)/2].seq

	verify := func(t *testing.T, config string, args ...string) (string, int) {
		t.Helper()
		out, errOut, code := h.RunCLI(append([]string{"audit", "verify", "--config", config}, args...)...)
		t.Logf("audit verify %s (exit %d): %s%s", strings.Join(args, " "), code, out, errOut)
		return out + errOut, code
	}
	// tampered copies the database, changes the copy and returns a
	// configuration pointing at it; the bot's own database is never touched.
	tampered := func(t *testing.T, change func(db *sql.DB)) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "copy.db")
		copyDB(t, h.DBPath, path)
		db := openDB(t, path)
		if change != nil {
			change(db)
		}
		db.Close()
		return configWithDB(t, h, path)
	}
	exec := func(t *testing.T, db *sql.DB, q string, args ...any) {
		t.Helper()
		res, err := db.Exec(q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			t.Fatalf("%s changed nothing", q)
		}
	}
	names := func(t *testing.T, out string, seq int64, words ...string) {
		t.Helper()
		if !regexp.MustCompile(fmt.Sprintf(`\bevent %d\b`, seq)).MatchString(out) {
			t.Errorf("output does not name event %d: %s", seq, out)
		}
		for _, w := range words {
			if !strings.Contains(out, w) {
				t.Errorf("output does not say %q: %s", w, out)
			}
		}
	}

	t.Run("intact", func(t *testing.T) {
		out, code := verify(t, h.ConfigPath)
		if code != 0 || !strings.Contains(out, "OK") || !strings.Contains(out, fmt.Sprintf("%d events", len(events))) {
			t.Errorf("exit %d, want 0 and OK with %d events: %s", code, len(events), out)
		}
		if out, code := verify(t, h.ConfigPath, "--checkpoint", checkpoint); code != 0 || !strings.Contains(out, "OK") {
			t.Errorf("with the checkpoint: exit %d, want 0 and OK: %s", code, out)
		}
		if out, code := verify(t, tampered(t, nil), "--checkpoint", checkpoint); code != 0 || !strings.Contains(out, "OK") {
			t.Errorf("an untouched copy: exit %d, want 0 and OK: %s", code, out)
		}
	})

	t.Run("edited event", func(t *testing.T) {
		cfg := tampered(t, func(db *sql.DB) {
			exec(t, db, `UPDATE audit_events SET reason = 'approved by the security lead' WHERE seq = ?`, middle)
		})
		out, code := verify(t, cfg)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		names(t, out, middle, "altered")
	})

	t.Run("deleted event", func(t *testing.T) {
		cfg := tampered(t, func(db *sql.DB) {
			exec(t, db, `DELETE FROM audit_events WHERE seq = ?`, middle)
		})
		out, code := verify(t, cfg)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		names(t, out, middle, "missing")
	})

	t.Run("re-hashed with another key", func(t *testing.T) {
		otherKey := "not-the-audit-key-" + strings.Repeat("0123456789abcdef", 2)
		cfg := tampered(t, func(db *sql.DB) {
			// Edit an event, then recompute the whole chain, as someone with
			// database access but without SECRETBOT_AUDIT_KEY would.
			exec(t, db, `UPDATE audit_events SET outcome = 'ok', reason = '' WHERE seq = ?`, middle)
			rehash(t, db, otherKey)
		})
		out, code := verify(t, cfg)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		names(t, out, 1, "re-hashed")

		// The forged chain is consistent in itself: only the key tells.
		key := h.Getenv("SECRETBOT_AUDIT_KEY")
		h.SetEnv("SECRETBOT_AUDIT_KEY", otherKey)
		out, code = verify(t, cfg)
		h.SetEnv("SECRETBOT_AUDIT_KEY", key)
		if code != 0 {
			t.Errorf("the re-hashed chain does not verify under the key it was made with (exit %d): %s", code, out)
		}
	})

	t.Run("truncated tail", func(t *testing.T) {
		cfg := tampered(t, func(db *sql.DB) {
			exec(t, db, `DELETE FROM audit_events WHERE seq >= ?`, cpSeq-1)
		})
		out, code := verify(t, cfg)
		if code != 0 || !strings.Contains(out, "OK") {
			t.Errorf("without the checkpoint a clean cut still chains: exit %d, want 0: %s", code, out)
		}
		out, code = verify(t, cfg, "--checkpoint", checkpoint)
		if code != 1 {
			t.Errorf("with the checkpoint: exit %d, want 1", code)
		}
		if !strings.Contains(out, "truncated") || !strings.Contains(out, strconv.Itoa(cpSeq)) {
			t.Errorf("output does not say the log was truncated before %d: %s", cpSeq, out)
		}
	})
}

// storedEvent is one audit_events row.
type storedEvent struct {
	seq                                           int64
	timeNS                                        int64
	actor, action, scope, secret, outcome, reason string
	links, prevHash, hash                         string
}

func readEvents(t *testing.T, db *sql.DB) []storedEvent {
	t.Helper()
	rows, err := db.Query(`SELECT seq, time_ns, actor, action, scope, secret, outcome, reason, links, prev_hash, hash
		FROM audit_events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedEvent
	for rows.Next() {
		var e storedEvent
		if err := rows.Scan(&e.seq, &e.timeNS, &e.actor, &e.action, &e.scope, &e.secret, &e.outcome, &e.reason,
			&e.links, &e.prevHash, &e.hash); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// rehash recomputes every event's prev_hash and hash with key, using the
// bot's own audit package, so the chain links perfectly under that key.
func rehash(t *testing.T, db *sql.DB, key string) {
	t.Helper()
	prev := ""
	for _, e := range readEvents(t, db) {
		var links map[string]string
		if err := json.Unmarshal([]byte(e.links), &links); err != nil {
			t.Fatal(err)
		}
		at := time.Unix(0, e.timeNS)
		tx := &captureTx{head: e.seq - 1, prev: prev}
		r, err := audit.New([]byte(key), func() time.Time { return at }).Append(context.Background(), tx, audit.Event{
			Actor: e.actor, Action: e.action, Scope: e.scope, Secret: e.secret,
			Outcome: e.outcome, Reason: e.reason, Links: links,
		})
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != e.seq {
			t.Fatalf("re-hash produced seq %d for %d", r.Seq, e.seq)
		}
		if _, err := db.Exec(`UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?`, r.PrevHash, r.Hash, e.seq); err != nil {
			t.Fatal(err)
		}
		prev = r.Hash
	}
}

// captureTx hands audit.Log.Append a head and keeps what it would insert.
type captureTx struct {
	head int64
	prev string
}

func (c *captureTx) AuditHead(context.Context) (int64, string, error) { return c.head, c.prev, nil }
func (c *captureTx) AuditInsert(context.Context, audit.Record) error  { return nil }
