package store

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
)

func testGrant(id, requester string, state access.State, created time.Time) access.Grant {
	return access.Grant{
		ID: id, Requester: requester, RequesterName: "ana", Email: "ana@lumi.example", Scope: "platform-ro",
		TTL: 2 * time.Hour, Ticket: "SEC-12", Incident: "PABC123", Reason: "fix the <db> & co",
		State: state, Version: 1,
		Evidence: []access.Evidence{{Kind: "jira", Status: "ok", Detail: "approved by Lee", Link: "https://jira/SEC-12"},
			{Kind: "oncall", Status: "checking"}},
		Delivery: "wrapped-token", ResponseURL: "https://hooks.slack.com/commands/T1/2/3",
		NotAfter: created.Add(24 * time.Hour), CreatedAt: created, UpdatedAt: created,
	}
}

func TestGrantRoundTrip(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	now := time.Date(2025, 3, 1, 9, 0, 0, 123456789, time.UTC)
	g := testGrant("GABCDEFGH", "U1", access.StatePending, now)
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.GrantInsert(ctx, g) }); err != nil {
		t.Fatal(err)
	}
	// Every field survives, including times to the nanosecond and evidence.
	full := g
	full.Version = 2
	full.State = access.StateIssued
	full.Approver, full.DenyReason, full.DecidedAt = "U2", "", now.Add(time.Minute)
	full.TokenAccessor, full.WrapAccessor, full.VaultGroup = "acc1", "wacc1", ""
	full.WrapExpires, full.WrapStatus = now.Add(10*time.Minute), access.WrapUnused
	full.IssuedAt, full.ExpiresAt, full.DeliveredAt = now.Add(2*time.Minute), now.Add(2*time.Hour), now.Add(3*time.Minute)
	full.EndedAt, full.EndReason, full.RevokePending, full.LastError = now.Add(time.Hour), "expired", true, "vault down"
	full.CardChannel, full.CardTS, full.UpdatedAt = "C1", "1700.1", now.Add(time.Hour)
	var got access.Grant
	err := db.InTx(ctx, func(tx *Tx) error {
		if err := tx.GrantUpdate(ctx, full, 1); err != nil {
			return err
		}
		var err error
		got, err = tx.GrantGet(ctx, g.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, full) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, full)
	}
}

func TestGrantCAS(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	now := time.Now().UTC()
	g := testGrant("GCAS00001", "U1", access.StatePending, now)
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.GrantInsert(ctx, g) }); err != nil {
		t.Fatal(err)
	}
	err := db.InTx(ctx, func(tx *Tx) error { return tx.GrantInsert(ctx, g) })
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second insert: %v, want ErrConflict", err)
	}
	next := g
	next.Version, next.State = 2, access.StateApproved
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.GrantUpdate(ctx, next, 1) }); err != nil {
		t.Fatal(err)
	}
	// A writer still at version 1 loses.
	stale := g
	stale.Version, stale.State = 2, access.StateDenied
	err = db.InTx(ctx, func(tx *Tx) error { return tx.GrantUpdate(ctx, stale, 1) })
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	// Not newer: refused.
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.GrantUpdate(ctx, next, 2) }); err == nil {
		t.Fatal("update without a newer version was accepted")
	}
	missing := next
	missing.ID, missing.Version = "GNOPE0000", 3
	err = db.InTx(ctx, func(tx *Tx) error { return tx.GrantUpdate(ctx, missing, 2) })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing grant: %v, want ErrNotFound", err)
	}
	err = db.InTx(ctx, func(tx *Tx) error { _, err := tx.GrantGet(ctx, "GNOPE0000"); return err })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a missing grant: %v, want ErrNotFound", err)
	}
}

func TestGrantConcurrentCASOneWins(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	g := testGrant("GRACE0001", "U1", access.StatePending, time.Now())
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.GrantInsert(ctx, g) }); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.InTx(ctx, func(tx *Tx) error {
				next := g // every writer read version 1 before the race
				next.Version, next.State, next.Approver = 2, access.StateApproved, "U"+string(rune('A'+i))
				return tx.GrantUpdate(ctx, next, 1)
			})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrConflict):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won, want exactly 1", won)
	}
}

func TestGrantListsAndCredentialGuard(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	base := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	grants := []access.Grant{
		testGrant("G00000003", "U1", access.StateIssued, base.Add(3*time.Minute)),
		testGrant("G00000001", "U1", access.StatePending, base.Add(time.Minute)),
		testGrant("G00000002", "U2", access.StateIssued, base.Add(2*time.Minute)),
		testGrant("G00000004", "U1", access.StateExpired, base.Add(4*time.Minute)),
	}
	err := db.InTx(ctx, func(tx *Tx) error {
		for _, g := range grants {
			if err := tx.GrantInsert(ctx, g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(gs []access.Grant) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.ID)
		}
		return out
	}
	err = db.InTx(ctx, func(tx *Tx) error {
		issued, err := tx.GrantsByState(ctx, access.StateIssued)
		if err != nil {
			return err
		}
		if got := ids(issued); !reflect.DeepEqual(got, []string{"G00000002", "G00000003"}) {
			t.Errorf("issued = %v", got)
		}
		active, err := tx.GrantsByRequester(ctx, "U1", access.ActiveStates...)
		if err != nil {
			return err
		}
		if got := ids(active); !reflect.DeepEqual(got, []string{"G00000001", "G00000003"}) {
			t.Errorf("U1 active = %v", got)
		}
		all, err := tx.GrantsByState(ctx)
		if err != nil {
			return err
		}
		if len(all) != 4 {
			t.Errorf("all = %v", ids(all))
		}
		mine, err := tx.GrantsByRequester(ctx, "U1")
		if err != nil {
			return err
		}
		if len(mine) != 3 {
			t.Errorf("U1 all = %v", ids(mine))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A token never reaches a row, whatever the caller does.
	bad := testGrant("G0000000X", "U1", access.StatePending, base)
	bad.Reason = "here hvs.CAESIabcdefghijklmnopqrstuvwxyz"
	err = db.InTx(ctx, func(tx *Tx) error { return tx.GrantInsert(ctx, bad) })
	if !errors.Is(err, audit.ErrCredential) {
		t.Fatalf("insert with a token: %v, want audit.ErrCredential", err)
	}
	up := grants[1]
	up.Version = 2
	up.Evidence = []access.Evidence{{Kind: "jira", Status: "ok", Detail: "xoxb-1234-abcd"}}
	err = db.InTx(ctx, func(tx *Tx) error { return tx.GrantUpdate(ctx, up, 1) })
	if !errors.Is(err, audit.ErrCredential) {
		t.Fatalf("update with a token: %v, want audit.ErrCredential", err)
	}
	// last_error is masked rather than refused (it comes from outside).
	up = grants[1]
	up.Version, up.LastError = 2, "vault said hvs.CAESIabcdefghijklmnopqrstuvwxyz"
	var got access.Grant
	err = db.InTx(ctx, func(tx *Tx) error {
		if err := tx.GrantUpdate(ctx, up, 1); err != nil {
			return err
		}
		var err error
		got, err = tx.GrantGet(ctx, up.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if audit.LooksLikeCredential(got.LastError) {
		t.Fatalf("last_error kept a token: %q", got.LastError)
	}
}
