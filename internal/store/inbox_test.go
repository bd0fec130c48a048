package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func putTest(t *testing.T, db *DB, key string) int64 {
	t.Helper()
	id, inserted, err := db.InboxPut(context.Background(), InboxEntry{
		DedupKey: key, EnvelopeID: key, Type: "slash_commands", Payload: []byte(`{}`), ReceivedAt: t0,
	})
	if err != nil || !inserted {
		t.Fatalf("put %s: %v inserted=%v", key, err, inserted)
	}
	return id
}

func TestInboxDedup(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	id := putTest(t, db, "env-1")
	again, inserted, err := db.InboxPut(ctx, InboxEntry{DedupKey: "env-1", EnvelopeID: "env-1b", Type: "interactive", Payload: []byte(`{"x":1}`)})
	if err != nil || inserted || again != id {
		t.Fatalf("second put: id %d inserted %v err %v, want id %d not inserted", again, inserted, err, id)
	}
	e, _ := db.InboxGet(ctx, id)
	if e.EnvelopeID != "env-1" || e.Type != "slash_commands" {
		t.Fatalf("redelivery changed the entry: %+v", e)
	}
	if other := putTest(t, db, "event:Ev1"); other == id {
		t.Fatal("different keys share an id")
	}
	if _, _, err := db.InboxPut(ctx, InboxEntry{}); err == nil {
		t.Fatal("entry without dedup key accepted")
	}
}

func TestInboxClaim(t *testing.T) {
	lease := t0.Add(time.Minute)
	tests := []struct {
		name    string
		prepare func(t *testing.T, db *DB, id int64)
		now     time.Time
		wantErr error
	}{
		{"pending", func(*testing.T, *DB, int64) {}, t0, nil},
		{"held by another worker", func(t *testing.T, db *DB, id int64) { claim(t, db, id, t0, lease) }, t0.Add(30 * time.Second), ErrNotClaimed},
		{"lease expired", func(t *testing.T, db *DB, id int64) { claim(t, db, id, t0, lease) }, lease, nil},
		{"done", func(t *testing.T, db *DB, id int64) { claim(t, db, id, t0, lease); finish(t, db, id, InboxStateDone) }, lease.Add(time.Hour), ErrNotClaimed},
		{"failed", func(t *testing.T, db *DB, id int64) { claim(t, db, id, t0, lease); finish(t, db, id, InboxStateFailed) }, lease.Add(time.Hour), ErrNotClaimed},
		{"handed back", func(t *testing.T, db *DB, id int64) {
			claim(t, db, id, t0, lease)
			finish(t, db, id, InboxStatePending)
		}, t0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t)
			id := putTest(t, db, "env")
			tt.prepare(t, db, id)
			e, err := db.InboxClaim(context.Background(), id, tt.now, tt.now.Add(time.Minute))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (e.State != InboxStateWorking || !e.LeaseUntil.Equal(tt.now.Add(time.Minute)) || e.ID != id || e.Attempts < 1) {
				t.Fatalf("claimed entry %+v", e)
			}
		})
	}
	db, _ := openTest(t)
	if _, err := db.InboxClaim(context.Background(), 404, t0, lease); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim of missing entry: %v", err)
	}
}

func claim(t *testing.T, db *DB, id int64, now, lease time.Time) {
	t.Helper()
	if _, err := db.InboxClaim(context.Background(), id, now, lease); err != nil {
		t.Fatal(err)
	}
}

func finish(t *testing.T, db *DB, id int64, state string) {
	t.Helper()
	ctx := context.Background()
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.InboxFinish(ctx, id, state, "") }); err != nil {
		t.Fatal(err)
	}
}

func TestInboxConcurrentClaimers(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	const entries, claimers = 10, 4
	for i := range entries {
		id := putTest(t, db, fmt.Sprint("env-", i))
		var wins, lost int
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range claimers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := db.InboxClaim(ctx, id, t0, t0.Add(time.Minute))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, ErrNotClaimed):
					lost++
				default:
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 || lost != claimers-1 {
			t.Fatalf("entry %d: %d claims won, %d lost; want exactly one winner", id, wins, lost)
		}
	}
}

func TestInboxPendingAndFinish(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	ids := make([]int64, 5)
	for i := range ids {
		ids[i] = putTest(t, db, fmt.Sprint("env-", i))
	}
	lease := t0.Add(time.Minute)
	claim(t, db, ids[0], t0, lease) // working, lease running
	claim(t, db, ids[1], t0, lease)
	finish(t, db, ids[1], InboxStateDone)
	claim(t, db, ids[2], t0, lease)
	finish(t, db, ids[2], InboxStateFailed)

	pending := func(now time.Time, limit int) []int64 {
		got, err := db.InboxPending(ctx, now, limit)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := pending(t0, 10), []int64{ids[3], ids[4]}; !slices.Equal(got, want) {
		t.Errorf("pending during lease = %v, want %v", got, want)
	}
	if got, want := pending(lease, 10), []int64{ids[0], ids[3], ids[4]}; !slices.Equal(got, want) {
		t.Errorf("pending after lease = %v, want %v (oldest first)", got, want)
	}
	if got := pending(lease, 2); !slices.Equal(got, []int64{ids[0], ids[3]}) {
		t.Errorf("limit 2 = %v", got)
	}

	err := db.InTx(ctx, func(tx *Tx) error { return tx.InboxFinish(ctx, ids[3], InboxStateDone, "") })
	if !errors.Is(err, ErrNotClaimed) {
		t.Errorf("finish of unclaimed entry: %v, want ErrNotClaimed", err)
	}
	err = db.InTx(ctx, func(tx *Tx) error { return tx.InboxFinish(ctx, ids[0], "bogus", "") })
	if err == nil {
		t.Error("finish with unknown state accepted")
	}
	err = db.InTx(ctx, func(tx *Tx) error {
		return tx.InboxFinish(ctx, ids[0], InboxStateFailed, "slack said invalid_auth for xoxb-test-123")
	})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := db.InboxGet(ctx, ids[0])
	if e.State != InboxStateFailed || e.LastError != "slack said invalid_auth for [redacted]" || !e.LeaseUntil.IsZero() {
		t.Errorf("finished entry %+v", e)
	}

	n, err := db.InboxPurge(ctx, t0.Add(time.Second))
	if err != nil || n != 3 {
		t.Errorf("purge removed %d (%v), want the 3 finished", n, err)
	}
	if got := pending(lease, 10); !slices.Equal(got, []int64{ids[3], ids[4]}) {
		t.Errorf("after purge pending = %v", got)
	}
}

func TestInboxPutBatch(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	old := putTest(t, db, "env-old")
	entry := func(key string) InboxEntry {
		return InboxEntry{DedupKey: key, EnvelopeID: key, Type: "slash_commands", Payload: []byte(`{}`), ReceivedAt: t0}
	}
	// A new entry, a redelivery of a stored one, and one redelivered within the batch.
	res, err := db.InboxPutBatch(ctx, []InboxEntry{entry("env-a"), entry("env-old"), entry("env-b"), entry("env-a")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 || !res[0].Inserted || res[1].Inserted || res[1].ID != old || !res[2].Inserted ||
		res[3].Inserted || res[3].ID != res[0].ID || res[0].ID == res[2].ID {
		t.Fatalf("results %+v (old id %d)", res, old)
	}
	// All or nothing: a bad entry stores none of the batch.
	if _, err := db.InboxPutBatch(ctx, []InboxEntry{entry("env-c"), {}}); err == nil {
		t.Fatal("a batch with an entry without dedup key was accepted")
	}
	ids, err := db.InboxPending(ctx, time.Now(), 100)
	if err != nil || len(ids) != 3 {
		t.Fatalf("pending %v (%v), want env-old, env-a and env-b", ids, err)
	}
}

// An entry stored with a lease is claimed on arrival: working, one
// attempt, not offered to the poller until the lease ends; a redelivery of
// it changes nothing.
func TestInboxPutClaimed(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	lease := t0.Add(time.Minute)
	e := InboxEntry{DedupKey: "env-a", EnvelopeID: "env-a", Type: "slash_commands", Payload: []byte(`{}`), ReceivedAt: t0, LeaseUntil: lease}
	res, err := db.InboxPutBatch(ctx, []InboxEntry{e, e})
	if err != nil || !res[0].Inserted || res[1].Inserted {
		t.Fatalf("put %+v (%v)", res, err)
	}
	got, err := db.InboxGet(ctx, res[0].ID)
	if err != nil || got.State != InboxStateWorking || got.Attempts != 1 || !got.LeaseUntil.Equal(lease) {
		t.Fatalf("stored %+v (%v), want working, 1 attempt, leased until %v", got, err, lease)
	}
	if ids, _ := db.InboxPending(ctx, t0.Add(time.Second), 10); len(ids) != 0 {
		t.Errorf("pending while leased: %v", ids)
	}
	if ids, _ := db.InboxPending(ctx, lease, 10); !slices.Equal(ids, []int64{res[0].ID}) {
		t.Errorf("pending once the lease ended: %v", ids)
	}
	if _, err := db.InboxClaim(ctx, res[0].ID, t0.Add(time.Second), t0.Add(2*time.Minute)); !errors.Is(err, ErrNotClaimed) {
		t.Errorf("claim of an entry leased on arrival: %v, want ErrNotClaimed", err)
	}
}

// A lease moves only from the value its holder knows (compare-and-set).
func TestInboxRenew(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	lease := t0.Add(time.Minute)
	res, err := db.InboxPutBatch(ctx, []InboxEntry{{DedupKey: "env-a", EnvelopeID: "env-a", Type: "slash_commands", ReceivedAt: t0, LeaseUntil: lease}})
	if err != nil {
		t.Fatal(err)
	}
	id, later := res[0].ID, t0.Add(5*time.Minute)
	if err := db.InboxRenew(ctx, id, t0.Add(30*time.Second), later); !errors.Is(err, ErrNotClaimed) {
		t.Errorf("renew from a lease not held: %v, want ErrNotClaimed", err)
	}
	if err := db.InboxRenew(ctx, id, lease, later); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.InboxGet(ctx, id); !got.LeaseUntil.Equal(later) || got.Attempts != 1 {
		t.Errorf("after renew %+v, want leased until %v, still 1 attempt", got, later)
	}
	if err := db.InboxRenew(ctx, id, lease, later.Add(time.Minute)); !errors.Is(err, ErrNotClaimed) {
		t.Errorf("second renew from the old lease: %v, want ErrNotClaimed", err)
	}
	finish(t, db, id, InboxStateDone)
	if err := db.InboxRenew(ctx, id, later, later.Add(time.Minute)); !errors.Is(err, ErrNotClaimed) {
		t.Errorf("renew of a finished entry: %v, want ErrNotClaimed", err)
	}
	if err := db.InboxRenew(ctx, 404, lease, later); !errors.Is(err, ErrNotFound) {
		t.Errorf("renew of a missing entry: %v, want ErrNotFound", err)
	}
}

// At start every lease is a dead process's: released, its entries are
// pending work at once, their attempts kept; finished ones stay finished.
func TestInboxReleaseLeases(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	far := time.Now().Add(time.Hour)
	entry := func(key string, lease time.Time) InboxEntry {
		return InboxEntry{DedupKey: key, EnvelopeID: key, Type: "slash_commands", ReceivedAt: t0, LeaseUntil: lease}
	}
	res, err := db.InboxPutBatch(ctx, []InboxEntry{entry("claimed", far), entry("pending", time.Time{}), entry("done", far)})
	if err != nil {
		t.Fatal(err)
	}
	finish(t, db, res[2].ID, InboxStateDone)
	n, err := db.InboxReleaseLeases(ctx)
	if err != nil || n != 1 {
		t.Fatalf("released %d (%v), want 1", n, err)
	}
	ids, _ := db.InboxPending(ctx, time.Now(), 10)
	if !slices.Equal(ids, []int64{res[0].ID, res[1].ID}) {
		t.Errorf("pending after release = %v, want the claimed and the pending entry", ids)
	}
	e, err := db.InboxClaim(ctx, res[0].ID, time.Now(), far)
	if err != nil || e.Attempts != 2 {
		t.Errorf("claim after release: %+v (%v), want a second attempt", e, err)
	}
	if got, _ := db.InboxGet(ctx, res[2].ID); got.State != InboxStateDone {
		t.Errorf("finished entry became %s", got.State)
	}
}
