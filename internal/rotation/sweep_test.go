package rotation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/rotation"
)

func reminders(e *env) int { return len(posts(e, ":bell: Reminder")) }

func TestSweepRemindsOncePerSlotAndFlagsWithoutCompleting(t *testing.T) {
	e := newEnv(t)
	r := e.mustStart(sec, "payments-db", "SEC-100", "")
	if err := e.svc.PostThread(e.ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	sweep := func() {
		t.Helper()
		if err := e.svc.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	sweep()
	if reminders(e) != 0 {
		t.Fatal("reminded at once")
	}
	e.clock.Advance(4*time.Hour + time.Minute)
	sweep()
	sweep()
	if reminders(e) != 1 {
		t.Fatalf("%d reminders after 4h", reminders(e))
	}
	m := posts(e, ":bell: Reminder")[0]
	got, _ := e.store.Rotation(r.ID)
	if m.Thread != got.ThreadTS || !strings.Contains(m.Text, "<@USEC>") {
		t.Errorf("reminder: %+v", m)
	}
	// A restart (a new Service over the same store) does not repeat it.
	again := *e.svc
	if err := again.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	if reminders(e) != 1 {
		t.Fatal("reminder repeated after a restart")
	}
	// Down for 15h: one catch-up reminder, not one per missed slot; then
	// past confirm_within (24h): flagged once, never completed.
	e.clock.Advance(20 * time.Hour)
	sweep()
	sweep()
	if reminders(e) != 2 {
		t.Errorf("%d reminders after downtime", reminders(e))
	}
	got, _ = e.store.Rotation(r.ID)
	if !got.Flagged || got.State != rotation.StateStaging || got.Reminders != 2 {
		t.Fatalf("after the deadline: %+v", got)
	}
	if n := len(posts(e, "unconfirmed past its deadline")); n != 1 || countAction(e, rotation.ActFlagged) != 1 {
		t.Errorf("%d flag notices", n)
	}
	e.clock.Advance(48 * time.Hour)
	sweep()
	if countAction(e, rotation.ActFlagged) != 1 {
		t.Error("flagged twice")
	}
	if got, _ := e.store.Rotation(r.ID); got.State != rotation.StateStaging {
		t.Errorf("completed on its own: %s", got.State)
	}
	aw, _ := e.svc.Awaiting(e.ctx)
	if len(aw) != 1 || aw[0].ID != r.ID {
		t.Errorf("awaiting: %+v", aw)
	}
	// Confirmed: reminders stop.
	e.mustConfirm(sec, r.ID, "staging")
	e.mustConfirm(sec, r.ID, "production")
	before := reminders(e)
	e.clock.Advance(8 * time.Hour)
	sweep()
	if reminders(e) != before {
		t.Error("reminded after completion")
	}
}

func TestSweepEmergencyCadence(t *testing.T) {
	e := newEnv(t)
	r, err := e.emergency("PABC123", "")
	if err != nil {
		t.Fatal(err)
	}
	for range 4 { // 4 × 31m: 4 reminders; past 2h: flagged
		e.clock.Advance(31 * time.Minute)
		if err := e.svc.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := e.store.Rotation(r.ID)
	if reminders(e) != 4 || !got.Flagged {
		t.Errorf("%d reminders, flagged %v", reminders(e), got.Flagged)
	}
	confirmBy, every := e.svc.Deadlines(got)
	if !confirmBy.Equal(got.StartedAt.Add(2*time.Hour)) || every != 30*time.Minute {
		t.Errorf("deadlines %s %s", confirmBy, every)
	}
}

func TestSweepFailsInterruptedRotation(t *testing.T) {
	e := newEnv(t)
	// A crash between the record and the KV write left this behind.
	e.store.PutSecret(mustSecret(e, "payments-db"))
	r := rotation.Rotation{ID: rotation.NewRotationID(), Secret: "payments-db", Operator: sec.SlackID, Ticket: "SEC-100",
		State: rotation.StateStaging, FromVersion: 1, StartedAt: t0, UpdatedAt: t0, Version: 1}
	if err := e.store.InTx(e.ctx, func(tx rotation.Tx) error { return tx.RotationInsert(e.ctx, r) }); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.store.Rotation(r.ID); got.State != rotation.StateStaging {
		t.Fatal("failed too early")
	}
	e.clock.Advance(3 * time.Minute)
	if err := e.svc.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := e.store.Rotation(r.ID)
	if got.State != rotation.StateFailed || !strings.Contains(got.LastError, "nothing was written") {
		t.Errorf("%+v", got)
	}
	// The secret can be rotated again.
	e.mustStart(sec, "payments-db", "SEC-100", "")
}

func mustSecret(e *env, name string) rotation.Secret {
	s, ok := e.store.Secret(name)
	if !ok {
		e.t.Fatalf("no secret %s", name)
	}
	return s
}
