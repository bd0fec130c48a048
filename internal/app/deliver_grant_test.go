package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/store"
)

// failingGrants fails every delivery, as when Vault is down.
type failingGrants struct{ calls int }

func (f *failingGrants) Deliver(context.Context, string) error {
	f.calls++
	return errors.New("access: issue GTEST0001: vault unavailable")
}
func (f *failingGrants) OpenTicket(context.Context, string) error { return nil }

// A grant waiting for Vault is retried at least every grantRetryCap, however
// many attempts failed (other messages back off up to five minutes), and
// never given up.
func TestDeliverGrantRetryIsCapped(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	body, _ := outbox.Message{Kind: outbox.DeliverGrant, Target: "GTEST0001"}.Marshal()
	var id int64
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		id, err = tx.OutboxAdd(ctx, store.OutboxMessage{Body: body, CreatedAt: now})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	grants := &failingGrants{}
	d := newDeliverer(db, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), newAppMetrics(), func() time.Time { return now })
	d.grants = grants
	var waits []time.Duration
	for range 12 {
		d.flush(ctx)
		row, err := db.OutboxGet(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if row.State != "pending" {
			t.Fatalf("after %d attempts the delivery is %s, want pending", row.Attempts, row.State)
		}
		waits = append(waits, row.NextAttempt.Sub(now))
		now = row.NextAttempt
	}
	if grants.calls != 12 {
		t.Fatalf("%d attempts, want 12", grants.calls)
	}
	if waits[0] != time.Second || waits[len(waits)-1] != grantRetryCap {
		t.Errorf("waits %v: want growing from 1s and capped at %v", waits, grantRetryCap)
	}
	for _, w := range waits {
		if w > grantRetryCap {
			t.Errorf("a wait of %v exceeds the cap %v", w, grantRetryCap)
		}
	}
}
