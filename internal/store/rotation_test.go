package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/rotation"
)

var rt0 = time.Date(2025, 3, 1, 9, 0, 0, 123456789, time.UTC)

func testSecret(name, path string) rotation.Secret {
	return rotation.Secret{Name: name, Environment: "prod", OwnerTeam: "payments", OwnerContact: "UPAM", Mount: "kv", Path: path,
		Interval: 90 * 24 * time.Hour, Generate: rotation.Generate{Length: 32, Alphabet: "A-Za-z0-9"},
		Source: rotation.SourceConfig, Version: 1, CreatedAt: rt0, UpdatedAt: rt0}
}

func testRotation(id, secret string, state rotation.State, started time.Time) rotation.Rotation {
	return rotation.Rotation{ID: id, Secret: secret, Operator: "USEC", Ticket: "SEC-100", State: state, FromVersion: 1,
		ToVersion: 2, StartedAt: started, UpdatedAt: started, Version: 1}
}

func TestSecretRoundTripAndCAS(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	s := testSecret("payments-db", "payments/db")
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.SecretInsert(ctx, s) }); err != nil {
		t.Fatal(err)
	}
	// Same name, or same mount and path: conflict.
	for _, dup := range []rotation.Secret{testSecret("payments-db", "other/path"), testSecret("other-name", "payments/db")} {
		err := db.InTx(ctx, func(tx *Tx) error { return tx.SecretInsert(ctx, dup) })
		if !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate %s: %v", dup.Name, err)
		}
	}
	full := s
	full.Version, full.Provided, full.Generate = 2, true, rotation.Generate{}
	full.LastRotatedAt, full.LastOperator, full.LastTicket, full.LastVersion = rt0.Add(time.Hour), "USEC", "SEC-1", 7
	full.Source, full.UpdatedAt = rotation.SourceRegistered, rt0.Add(time.Hour)
	var got rotation.Secret
	err := db.InTx(ctx, func(tx *Tx) error {
		if err := tx.SecretUpdate(ctx, full, 1); err != nil {
			return err
		}
		var err error
		got, err = tx.SecretGet(ctx, s.Name)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, full) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, full)
	}
	// A stale compare-and-set changes nothing.
	stale := full
	stale.Version, stale.OwnerTeam = 3, "thieves"
	err = db.InTx(ctx, func(tx *Tx) error { return tx.SecretUpdate(ctx, stale, 1) })
	if !errors.Is(err, ErrConflict) {
		t.Errorf("stale update: %v", err)
	}
	err = db.InTx(ctx, func(tx *Tx) error { return tx.SecretUpdate(ctx, testSecretV("ghost", 2), 1) })
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	err = db.InTx(ctx, func(tx *Tx) error { return tx.SecretUpdate(ctx, full, 2) })
	if err == nil {
		t.Error("update without a newer version accepted")
	}
	_ = db.InTx(ctx, func(tx *Tx) error { got, err = tx.SecretGet(ctx, s.Name); return err })
	if got.OwnerTeam != "payments" || got.Version != 2 {
		t.Errorf("overwritten: %+v", got)
	}
	if err := db.InTx(ctx, func(tx *Tx) error { _, err := tx.SecretGet(ctx, "nope"); return err }); !errors.Is(err, ErrNotFound) {
		t.Errorf("get missing: %v", err)
	}
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.SecretInsert(ctx, testSecret("b-secret", "b")) }); err != nil {
		t.Fatal(err)
	}
	var list []rotation.Secret
	_ = db.InTx(ctx, func(tx *Tx) error { list, err = tx.SecretList(ctx); return err })
	if len(list) != 2 || list[0].Name != "b-secret" || list[1].Name != "payments-db" {
		t.Errorf("list: %+v", list)
	}
}

func testSecretV(name string, v int64) rotation.Secret {
	s := testSecret(name, name)
	s.Version = v
	return s
}

func TestRotationRoundTripAndCAS(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	r := testRotation("RAAAAAAA1", "payments-db", rotation.StateStaging, rt0)
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.RotationInsert(ctx, r) }); err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.RotationInsert(ctx, r) }); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate id: %v", err)
	}
	full := r
	full.Version, full.State, full.Incident, full.Commander, full.Emergency = 2, rotation.StateCompleted, "PABC123", "UIKE", true
	full.ThreadChannel, full.ThreadTS, full.StagingBy, full.StagingAt = "CSEC", "1700.1", "URAE", rt0.Add(time.Minute)
	full.ProductionBy, full.ProductionAt, full.RolledBackBy, full.RollbackVersion = "USEC", rt0.Add(2*time.Minute), "", 0
	full.Flagged, full.Reminders, full.LastError = true, 3, "vault down"
	full.CompletedAt, full.UpdatedAt = rt0.Add(2*time.Minute), rt0.Add(2*time.Minute)
	var got rotation.Rotation
	err := db.InTx(ctx, func(tx *Tx) error {
		if err := tx.RotationUpdate(ctx, full, 1); err != nil {
			return err
		}
		var err error
		got, err = tx.RotationGet(ctx, r.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, full) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, full)
	}
	stale := full
	stale.Version = 3
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.RotationUpdate(ctx, stale, 1) }); !errors.Is(err, ErrConflict) {
		t.Errorf("stale: %v", err)
	}
	missing := testRotation("RZZZZZZZZ", "x", rotation.StateStaging, rt0)
	missing.Version = 2
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.RotationUpdate(ctx, missing, 1) }); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	if err := db.InTx(ctx, func(tx *Tx) error { _, err := tx.RotationGet(ctx, "RNOPE0000"); return err }); !errors.Is(err, ErrNotFound) {
		t.Errorf("get missing: %v", err)
	}
	// By state, oldest first.
	for i, st := range []rotation.State{rotation.StateProduction, rotation.StateStaging, rotation.StateFailed} {
		r := testRotation("RBBBBBBB"+string(rune('1'+i)), "s", st, rt0.Add(time.Duration(-i)*time.Hour))
		if err := db.InTx(ctx, func(tx *Tx) error { return tx.RotationInsert(ctx, r) }); err != nil {
			t.Fatal(err)
		}
	}
	var active, all []rotation.Rotation
	err = db.InTx(ctx, func(tx *Tx) error {
		var err error
		if active, err = tx.RotationsByState(ctx, rotation.ActiveStates...); err != nil {
			return err
		}
		all, err = tx.RotationsByState(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 2 || active[0].ID != "RBBBBBBB2" || active[1].ID != "RBBBBBBB1" || len(all) != 4 {
		t.Errorf("by state: %v / %d", active, len(all))
	}
	// A state the schema does not know is refused by the database.
	bad := testRotation("RCCCCCCC1", "s", "exploded", rt0)
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.RotationInsert(ctx, bad) }); err == nil {
		t.Error("unknown state stored")
	}
}

func TestJournalRows(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	entries := []rotation.JournalEntry{
		{ID: "JAAAAAAA1", Kind: rotation.KindRestoreTest, Outcome: "passed", Notes: "restored", Author: "USEC", At: rt0},
		{ID: "JAAAAAAA2", Kind: rotation.KindPostIncident, Notes: "leak", Author: "USEC", Rotation: "RAAAAAAA1", At: rt0.Add(time.Hour),
			Fields: map[string]string{"cause": "gist", "blast_radius": "payments"}},
		{ID: "JAAAAAAA3", Kind: rotation.KindRestoreTest, Outcome: "failed", Notes: "old", Author: "URAE", At: rt0.Add(2 * time.Hour)},
	}
	for _, e := range entries {
		if err := db.InTx(ctx, func(tx *Tx) error { return tx.JournalAdd(ctx, e) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.JournalAdd(ctx, entries[0]) }); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate: %v", err)
	}
	var all, tests, one []rotation.JournalEntry
	err := db.InTx(ctx, func(tx *Tx) error {
		var err error
		if all, err = tx.JournalList(ctx, "", 0); err != nil {
			return err
		}
		if tests, err = tx.JournalList(ctx, rotation.KindRestoreTest, 0); err != nil {
			return err
		}
		one, err = tx.JournalList(ctx, "", 1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].ID != "JAAAAAAA3" || !reflect.DeepEqual(all[1], entries[1]) {
		t.Errorf("all: %+v", all)
	}
	if len(tests) != 2 || tests[0].ID != "JAAAAAAA3" || tests[1].ID != "JAAAAAAA1" {
		t.Errorf("restore tests: %+v", tests)
	}
	if len(one) != 1 || one[0].ID != "JAAAAAAA3" {
		t.Errorf("limit: %+v", one)
	}
}

func TestRotationRowsRefuseCredentials(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	token := "hvs.CAESIJ" + "abcdefghijklmnopqrstuvwxyz012345"
	s := testSecret("payments-db", "payments/db")
	s.LastTicket = token
	r := testRotation("RAAAAAAA1", "payments-db", rotation.StateStaging, rt0)
	r.LastError = "failed with " + token
	j := rotation.JournalEntry{ID: "JAAAAAAA1", Kind: rotation.KindRestoreTest, Author: "USEC", Notes: token, At: rt0}
	for name, fn := range map[string]func(*Tx) error{
		"secret":   func(tx *Tx) error { return tx.SecretInsert(ctx, s) },
		"rotation": func(tx *Tx) error { return tx.RotationInsert(ctx, r) },
		"journal":  func(tx *Tx) error { return tx.JournalAdd(ctx, j) },
	} {
		if err := db.InTx(ctx, fn); !errors.Is(err, audit.ErrCredential) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
