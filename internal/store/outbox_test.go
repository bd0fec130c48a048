package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
)

func addTest(t *testing.T, db *DB, m OutboxMessage) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	if err := db.InTx(ctx, func(tx *Tx) error {
		var err error
		id, err = tx.OutboxAdd(ctx, m)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

func dueIDs(t *testing.T, db *DB, now time.Time) []int64 {
	t.Helper()
	ms, err := db.OutboxDue(context.Background(), now, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestOutboxAddDedup(t *testing.T) {
	db, _ := openTest(t)
	body := []byte(`{"kind":"dm","target":"U1","text":"hi"}`)
	a := addTest(t, db, OutboxMessage{DedupKey: "grant-1-dm", Body: body, CreatedAt: t0})
	b := addTest(t, db, OutboxMessage{DedupKey: "grant-1-dm", Body: []byte(`{"other":true}`), CreatedAt: t0})
	if a != b {
		t.Fatalf("second add with same key got id %d, want %d", b, a)
	}
	m, _ := db.OutboxGet(context.Background(), a)
	if string(m.Body) != string(body) || m.DedupKey != "grant-1-dm" {
		t.Fatalf("dedup add changed the message: %+v", m)
	}
	// Without a key, every add is a new message.
	c := addTest(t, db, OutboxMessage{Body: body, CreatedAt: t0})
	d := addTest(t, db, OutboxMessage{Body: body, CreatedAt: t0})
	if c == d || c == a {
		t.Fatalf("keyless adds share ids: %d %d %d", a, c, d)
	}
}

func TestOutboxAddRefuses(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	tests := []struct {
		name string
		m    OutboxMessage
		is   error
	}{
		{"empty body", OutboxMessage{}, nil},
		{"token in body", OutboxMessage{Body: []byte(`{"text":"your token hvs.TESTabc"}`)}, audit.ErrCredential},
	}
	for _, tt := range tests {
		err := db.InTx(ctx, func(tx *Tx) error { _, err := tx.OutboxAdd(ctx, tt.m); return err })
		if err == nil || tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
	if ids := dueIDs(t, db, t0.Add(time.Hour)); len(ids) != 0 {
		t.Errorf("refused messages stored: %v", ids)
	}
}

func TestOutboxDueSentRetry(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	body := []byte(`{"kind":"post"}`)
	now := addTest(t, db, OutboxMessage{Body: body, CreatedAt: t0})                                     // zero NextAttempt: due at once
	later := addTest(t, db, OutboxMessage{Body: body, CreatedAt: t0, NextAttempt: t0.Add(time.Minute)}) //
	early := addTest(t, db, OutboxMessage{Body: body, CreatedAt: t0, NextAttempt: t0.Add(-time.Minute)})

	if got := dueIDs(t, db, t0); !equalIDs(got, early, now) {
		t.Fatalf("due at t0 = %v, want [%d %d] (earliest first)", got, early, now)
	}
	if got := dueIDs(t, db, t0.Add(time.Minute)); !equalIDs(got, early, now, later) {
		t.Fatalf("due at t0+1m = %v", got)
	}

	if err := db.OutboxSent(ctx, early, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.OutboxSent(ctx, early, t0); !errors.Is(err, ErrConflict) {
		t.Errorf("second sent: %v, want ErrConflict", err)
	}
	if err := db.OutboxRetry(ctx, now, t0.Add(5*time.Minute), "chat.postMessage: ratelimited Bearer xoxb-test-9", false); err != nil {
		t.Fatal(err)
	}
	m, _ := db.OutboxGet(ctx, now)
	if m.State != OutboxStatePending || m.Attempts != 1 || !m.NextAttempt.Equal(t0.Add(5*time.Minute)) ||
		m.LastError != "chat.postMessage: ratelimited [redacted]" {
		t.Errorf("after retry %+v", m)
	}
	if got := dueIDs(t, db, t0.Add(time.Minute)); !equalIDs(got, later) {
		t.Errorf("due after sent+retry = %v, want [%d]", got, later)
	}
	if err := db.OutboxRetry(ctx, later, t0, "channel_not_found", true); err != nil {
		t.Fatal(err)
	}
	if m, _ := db.OutboxGet(ctx, later); m.State != OutboxStateDead || m.Attempts != 1 {
		t.Errorf("dead message %+v", m)
	}
	if err := db.OutboxRetry(ctx, later, t0, "again", false); !errors.Is(err, ErrConflict) {
		t.Errorf("retry of dead message: %v, want ErrConflict", err)
	}
	if err := db.OutboxSent(ctx, 404, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("sent of missing message: %v, want ErrNotFound", err)
	}
	if got := dueIDs(t, db, t0.Add(time.Hour)); !equalIDs(got, now) {
		t.Errorf("due later = %v, want [%d]", got, now)
	}
	if n, err := db.OutboxPurge(ctx, t0.Add(time.Second)); err != nil || n != 2 {
		t.Errorf("purge removed %d (%v), want sent+dead", n, err)
	}
}

func equalIDs(got []int64, want ...int64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestOutboxDueLaneHeads(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	body := []byte(`{"kind":"post"}`)
	a1 := addTest(t, db, OutboxMessage{Lane: "ch:C1", Body: body, CreatedAt: t0})
	b1 := addTest(t, db, OutboxMessage{Lane: "url:x", Body: body, CreatedAt: t0})
	a2 := addTest(t, db, OutboxMessage{Lane: "ch:C1", Body: body, CreatedAt: t0})
	b2 := addTest(t, db, OutboxMessage{Lane: "url:x", Body: body, CreatedAt: t0})
	n1 := addTest(t, db, OutboxMessage{Body: body, CreatedAt: t0})
	n2 := addTest(t, db, OutboxMessage{Body: body, CreatedAt: t0})

	// One head per lane; laneless messages are each their own head.
	if got := dueIDs(t, db, t0); !equalIDs(got, a1, b1, n1, n2) {
		t.Fatalf("due = %v, want heads [%d %d %d %d]", got, a1, b1, n1, n2)
	}
	// A head told to wait (a Retry-After) holds back its lane only, even
	// though the lane's next message is due.
	if err := db.OutboxRetry(ctx, a1, t0.Add(time.Minute), "rate_limited", false); err != nil {
		t.Fatal(err)
	}
	if got := dueIDs(t, db, t0); !equalIDs(got, b1, n1, n2) {
		t.Fatalf("due with C1 waiting = %v, want [%d %d %d]", got, b1, n1, n2)
	}
	if got := dueIDs(t, db, t0.Add(time.Minute)); !equalIDs(got, b1, n1, n2, a1) {
		t.Fatalf("due once C1's wait ended = %v", got)
	}
	// Sent or dead, the head makes way for the next of its lane.
	if err := db.OutboxSent(ctx, b1, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.OutboxRetry(ctx, a1, t0, "channel_not_found", true); err != nil {
		t.Fatal(err)
	}
	if got := dueIDs(t, db, t0); !equalIDs(got, a2, b2, n1, n2) {
		t.Fatalf("due after b1 sent and a1 dead = %v, want [%d %d %d %d]", got, a2, b2, n1, n2)
	}
	if m, _ := db.OutboxGet(ctx, a2); m.Lane != "ch:C1" {
		t.Errorf("lane read back as %q", m.Lane)
	}
}
