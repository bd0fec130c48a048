package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// sentAsync marks id sent on its own goroutine; the channel gives the
// result once the mark is committed.
func sentAsync(db *DB, id int64) <-chan error {
	done := make(chan error, 1)
	go func() { done <- db.OutboxSent(context.Background(), id, t0) }()
	return done
}

// waitQueued waits until n marks wait for a transaction.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		db.marks.mu.Lock()
		got := len(db.marks.pending)
		db.marks.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d marks queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func state(t *testing.T, db *DB, id int64) string {
	t.Helper()
	m, err := db.OutboxGet(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m.State
}

// A sent mark rides on the next ordinary transaction, not on an inbox
// insert (an ack waits for that one), and OutboxSent returns only once it
// is committed.
func TestSentMarkRidesOnTheNextTransaction(t *testing.T) {
	db, _ := openTest(t)
	db.marks.delay = time.Hour // never flushed alone in this test
	ctx := context.Background()
	a := addTest(t, db, OutboxMessage{Lane: "l", Body: []byte(`{"text":"a"}`)})
	b := addTest(t, db, OutboxMessage{Lane: "l", Body: []byte(`{"text":"b"}`)})
	done := sentAsync(db, a)
	waitQueued(t, db, 1)

	putTest(t, db, "env-1") // urgent: carries no mark
	select {
	case err := <-done:
		t.Fatalf("OutboxSent returned (%v) before any transaction carried its mark", err)
	case <-time.After(20 * time.Millisecond):
	}
	if s := state(t, db, a); s != OutboxStatePending {
		t.Fatalf("state %s before the mark was committed", s)
	}

	if err := db.InTx(ctx, func(tx *Tx) error { return tx.MetaSet(ctx, "k", "v") }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the mark was not committed with the next transaction")
	}
	if s := state(t, db, a); s != OutboxStateSent {
		t.Errorf("state %s, want sent", s)
	}
	if ids := dueIDs(t, db, time.Now().Add(time.Hour)); len(ids) != 1 || ids[0] != b {
		t.Errorf("due after the mark: %v, want the lane's next message %d", ids, b)
	}
}

// A transaction that fails takes no mark with it; the mark waits for the
// next one.
func TestSentMarkSurvivesAFailedTransaction(t *testing.T) {
	db, _ := openTest(t)
	db.marks.delay = time.Hour
	ctx := context.Background()
	a := addTest(t, db, OutboxMessage{Body: []byte(`{"text":"a"}`)})
	done := sentAsync(db, a)
	waitQueued(t, db, 1)
	boom := errors.New("boom")
	if err := db.InTx(ctx, func(tx *Tx) error { return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	waitQueued(t, db, 1)
	if err := db.InTx(ctx, func(tx *Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || state(t, db, a) != OutboxStateSent {
		t.Fatalf("after the next transaction: %v, state %s", err, state(t, db, a))
	}
}

// With nothing else committing, a mark is committed alone, soon; a mark
// for a message no longer pending, or absent, says so.
func TestSentMarkFlushedAlone(t *testing.T) {
	db, _ := openTest(t)
	db.marks.delay = 5 * time.Millisecond
	a := addTest(t, db, OutboxMessage{Body: []byte(`{"text":"a"}`)})
	start := time.Now()
	if err := db.OutboxSent(context.Background(), a, t0); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second || state(t, db, a) != OutboxStateSent {
		t.Fatalf("flushed after %v, state %s", d, state(t, db, a))
	}
	if err := db.OutboxSent(context.Background(), a, t0); !errors.Is(err, ErrConflict) {
		t.Errorf("second mark: %v, want ErrConflict", err)
	}
	if err := db.OutboxSent(context.Background(), 404, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("mark of a missing message: %v, want ErrNotFound", err)
	}
}

// Close commits the marks still waiting, then refuses new ones.
func TestCloseCommitsWaitingMarks(t *testing.T) {
	db, path := openTest(t)
	db.marks.delay = time.Hour
	a := addTest(t, db, OutboxMessage{Body: []byte(`{"text":"a"}`)})
	done := sentAsync(db, a)
	waitQueued(t, db, 1)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiting mark at close: %v", err)
	}
	if err := db.OutboxSent(context.Background(), a, t0); !errors.Is(err, errClosed) {
		t.Errorf("mark after close: %v, want errClosed", err)
	}
	db2, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if s := state(t, db2, a); s != OutboxStateSent {
		t.Errorf("after reopening: %s, want sent", s)
	}
}
