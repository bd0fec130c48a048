package access_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
)

func TestRevokeByHolder(t *testing.T) {
	e := newEnv(t)
	g := e.issuedPayments()
	na, nm := len(e.store.Events()), len(e.store.Messages())
	e.clock.Advance(10 * time.Minute)
	if err := e.revoke(g.ID, "UANA"); err != nil {
		t.Fatal(err)
	}
	got := e.grant(g.ID)
	if got.State != access.StateRevoked || got.EndReason != access.EndDone || !got.EndedAt.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("grant %+v", got)
	}
	if e.vault.LiveTokens() != 0 {
		t.Fatal("token alive")
	}
	e.wantActions(na, access.ActRevoked)
	if ev := e.store.Events()[na]; ev.Actor != "UANA" || ev.Links["accessor"] != g.TokenAccessor || ev.Outcome != "ok" {
		t.Fatalf("event %+v", ev)
	}
	ms := e.wantMessages(nm, "dm:UANA", "post:CSEC", "jira-comment:SEC-12")
	if !strings.Contains(ms[0].Text, "has ended") || !strings.Contains(ms[2].Text, "ended (done)") {
		t.Fatalf("messages %q / %q", ms[0].Text, ms[2].Text)
	}
	// Again: already ended.
	if ue, ok := access.IsUserError(e.revoke(g.ID, "UANA")); !ok || !strings.Contains(ue.Msg, "already ended") {
		t.Fatal("second revoke")
	}
}

func TestRevokeRights(t *testing.T) {
	e := newEnv(t)
	g := e.issuedPayments()
	na := len(e.store.Events())
	ue, ok := access.IsUserError(e.revoke(g.ID, "UBOB"))
	if !ok || !ue.Audited || !strings.Contains(ue.Msg, "Only the holder") {
		t.Fatalf("bob: %v", ue)
	}
	e.wantActions(na, access.ActRevokeRefused)
	if e.grant(g.ID).State != access.StateIssued {
		t.Fatal("bob revoked it")
	}
	e.dir.Err = errors.New("slack: users.info: 500")
	if ue, ok := access.IsUserError(e.revoke(g.ID, "USEC")); !ok || !strings.Contains(ue.Msg, "nothing was revoked") {
		t.Fatal("directory down")
	}
	e.dir.Err = nil
	if err := e.revoke(g.ID, "USEC"); err != nil {
		t.Fatal(err)
	}
	if got := e.grant(g.ID); got.EndReason != access.RevokedBy("USEC") || got.State != access.StateRevoked {
		t.Fatalf("grant %+v", got)
	}
	// An approver of the scope may revoke too.
	e2 := newEnv(t)
	g2 := e2.issuedPayments()
	if err := e2.revoke(strings.ToLower(g2.ID), "UKIM"); err != nil {
		t.Fatal(err)
	}
	if got := e2.grant(g2.ID); got.EndReason != "revoked-by:UKIM" {
		t.Fatalf("grant %+v", got)
	}
}

func TestRevokePendingCancels(t *testing.T) {
	e := newEnv(t)
	g := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
	if err := e.revoke(g.ID, "UANA"); err != nil {
		t.Fatal(err)
	}
	if got := e.grant(g.ID); got.State != access.StateRevoked {
		t.Fatalf("state %s", got.State)
	}
	if ue, ok := access.IsUserError(e.decide(accesstest.Lee, g.ID, true, "")); !ok || !strings.Contains(ue.Msg, "cancelled") {
		t.Fatalf("decide after cancel: %v", ue)
	}
}

func TestRevokeFailureStaysVisibleAndIsRetried(t *testing.T) {
	e := newEnv(t)
	g := e.issuedPayments()
	na := len(e.store.Events())
	e.vault.SetErrs(nil, errors.New("vault: 503 Service Unavailable"), nil)
	err := e.revoke(g.ID, "UANA")
	ue, ok := access.IsUserError(err)
	if !ok || !strings.Contains(ue.Msg, "revoke pending") || !strings.Contains(ue.Msg, "503") {
		t.Fatalf("err = %v", err)
	}
	got := e.grant(g.ID)
	if got.State != access.StateIssued || !got.RevokePending || got.EndReason != access.EndDone || !strings.Contains(got.LastError, "503") {
		t.Fatalf("grant %+v", got)
	}
	mine, _ := e.svc.Grants(e.ctx, accesstest.Ana)
	if len(mine) != 1 || !mine[0].RevokePending {
		t.Fatalf("grants %+v", mine)
	}
	// Sweep retries; failing again records no second event.
	if err := e.sweep(); err == nil {
		t.Fatal("sweep hid the failure")
	}
	e.wantActions(na, access.ActRevokeFailed)
	e.vault.SetErrs(nil, nil, nil)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	got = e.grant(g.ID)
	if got.State != access.StateRevoked || got.RevokePending || got.EndReason != access.EndDone || e.vault.LiveTokens() != 0 {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(na, access.ActRevokeFailed, access.ActRevoked)
}

func TestRevokeUnconfirmedIsPending(t *testing.T) {
	e := newEnv(t)
	g := e.issuedPayments()
	e.vault.SetErrs(nil, nil, errors.New("vault: lookup-accessor timed out"))
	if _, ok := access.IsUserError(e.revoke(g.ID, "USEC")); !ok {
		t.Fatal("an unconfirmed revoke passed")
	}
	if got := e.grant(g.ID); !got.RevokePending || !strings.Contains(got.LastError, "confirming the revoke") {
		t.Fatalf("grant %+v", got)
	}
}
