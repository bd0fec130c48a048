package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/secretbot/secretbot/handlers"
	"github.com/secretbot/secretbot/internal/store"
)

func handoffInbox(t *testing.T, depth int) (*inbox, *store.DB) {
	t.Helper()
	db, err := store.Open(context.Background(), t.TempDir()+"/bot.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	in := newInbox(depth)
	in.db, in.log, in.metrics, in.now = db, slog.New(slog.NewTextHandler(io.Discard, nil)), newAppMetrics(), time.Now
	in.handlers, in.handlerTimeout = &handlers.Handlers{}, time.Minute
	return in, db
}

func commands(ids ...string) []envelope {
	out := make([]envelope, len(ids))
	for i, id := range ids {
		out[i] = envelope{Type: "slash_commands", EnvelopeID: id, Payload: json.RawMessage(`{"command":"/secrets","text":"help"}`)}
	}
	return out
}

// Entries the workers have room for are stored claimed and handed over
// with their claim; the rest are stored pending for the poller. A place is
// taken only by an entry actually stored, and a send never blocks.
func TestAcceptClaimsWhatWorkersHaveRoomFor(t *testing.T) {
	in, db := handoffInbox(t, 2)
	ctx := context.Background()
	got := in.accept(ctx, commands("e1", "e2", "e3"))
	for i, a := range got {
		if a.err != nil || a.after == nil {
			t.Fatalf("envelope %d: %+v", i, a)
		}
		a.after() // would block forever if a place were not held
	}
	if len(in.queue) != 2 || len(in.places) != 2 {
		t.Fatalf("queue %d, places %d; want the 2 the workers have room for", len(in.queue), len(in.places))
	}
	for range 2 {
		w := <-in.queue
		<-in.places
		e, err := db.InboxGet(ctx, w.id)
		if w.entry == nil || err != nil || e.State != store.InboxStateWorking || e.Attempts != 1 || !e.LeaseUntil.Equal(w.entry.LeaseUntil) {
			t.Fatalf("handed %+v, stored %+v (%v): want claimed on arrival", w.entry, e, err)
		}
		if claimed, err := in.claim(ctx, w, time.Now()); err != nil || claimed.ID != w.id {
			t.Errorf("claim of a fresh hand-over: %+v (%v)", claimed, err)
		}
	}
	ids, err := db.InboxPending(ctx, time.Now(), 10)
	if err != nil || len(ids) != 1 {
		t.Fatalf("pending %v (%v), want only the third", ids, err)
	}
	if e, _ := db.InboxGet(ctx, ids[0]); e.EnvelopeID != "e3" || e.State != store.InboxStatePending {
		t.Errorf("third entry %+v, want e3 pending", e)
	}

	// A redelivery stores nothing and keeps no place.
	for i, a := range in.accept(ctx, commands("e1")) {
		if a.err != nil || a.after != nil {
			t.Fatalf("redelivery %d: %+v", i, a)
		}
	}
	if len(in.places) != 0 {
		t.Errorf("a redelivery kept %d places", len(in.places))
	}
}

// An entry that waited for a worker until its lease could end mid-way is
// renewed first; if the lease changed hands meanwhile the worker leaves it.
func TestClaimRenewsALeaseRunningOut(t *testing.T) {
	in, db := handoffInbox(t, 1)
	ctx := context.Background()
	in.accept(ctx, commands("e1"))[0].after()
	w := <-in.queue
	<-in.places
	later := w.entry.LeaseUntil.Add(-in.handlerTimeout) // less than a handler's time left
	e, err := in.claim(ctx, w, later)
	if err != nil || !e.LeaseUntil.Equal(later.Add(in.lease())) {
		t.Fatalf("claim near the lease's end: %+v (%v), want renewed", e, err)
	}
	if stored, _ := db.InboxGet(ctx, w.id); !stored.LeaseUntil.Equal(e.LeaseUntil) || stored.Attempts != 1 {
		t.Errorf("stored %+v after renew", stored)
	}
	// The original lease is gone: a second hand-over of it is refused.
	if _, err := in.claim(ctx, w, later); err == nil {
		t.Error("a stale hand-over was claimed again")
	}
}

// start releases what a previous run left claimed, before any worker runs:
// the poller offers it at once, and it is claimed again (a second attempt).
func TestStartResumesEntriesOfADeadRun(t *testing.T) {
	in, db := handoffInbox(t, 4)
	in.accept(context.Background(), commands("e1"))[0].after() // claimed; this run dies here

	next := newInbox(4) // the next run, on the same database; no workers, to see what the poller offers
	next.db, next.log, next.metrics, next.now, next.handlerTimeout = db, in.log, in.metrics, time.Now, time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); next.wait(5 * time.Second) }()
	if err := next.start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-next.queue:
		<-next.places
		e, err := next.claim(ctx, w, time.Now())
		if w.entry != nil || err != nil || e.EnvelopeID != "e1" || e.Attempts != 2 {
			t.Fatalf("offered %+v, claimed %+v (%v): want e1 from storage, second attempt", w, e, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the entry left claimed by the dead run was not offered at once")
	}
}
