package access_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
)

// errVaultDown is what the app's adapter returns while Vault is unreachable.
var errVaultDown = fmt.Errorf("vault: create token with role secretbot: dial tcp 10.0.0.1:8200: connection refused: %w", access.ErrVaultUnavailable)

func TestDeliveryWaitsForVaultToldOnce(t *testing.T) {
	e := newEnv(t)
	g := e.approvedPayments()
	e.vault.SetErrs(errVaultDown, nil, nil)
	na, nm := len(e.store.Events()), len(e.store.Messages())
	if err := e.deliver(g.ID); err == nil {
		t.Fatal("deliver with Vault down succeeded: the outbox would not retry")
	}
	got := e.grant(g.ID)
	why, waiting := got.WaitingForVault()
	if got.State != access.StateApproved || !waiting || !strings.Contains(why, "connection refused") {
		t.Fatalf("grant %+v: want approved, waiting for Vault", got)
	}
	e.wantActions(na, access.ActDeliveryDelayed)
	ms := e.wantMessages(nm, "dm:UANA", "post:CSEC")
	if !strings.Contains(ms[0].Text, "*approved*; Vault is unreachable right now") || !strings.Contains(ms[0].Text, "as soon as it is back") {
		t.Errorf("requester told %q", ms[0].Text)
	}
	if !strings.Contains(ms[1].Text, "Delivery delayed") || !strings.Contains(ms[1].Text, g.ID) {
		t.Errorf("security notice %q", ms[1].Text)
	}

	// Every retry during the outage: nothing more said or recorded.
	for range 5 {
		e.clock.Advance(30 * time.Second)
		if err := e.deliver(g.ID); err == nil {
			t.Fatal("deliver succeeded with Vault down")
		}
	}
	e.wantActions(na, access.ActDeliveryDelayed)
	e.wantMessages(nm, "dm:UANA", "post:CSEC")
	if len(e.vault.Tokens()) != 0 || len(e.msgr.Sent()) != 0 {
		t.Fatal("a token was issued while Vault was down")
	}

	// Vault is back: exactly one token, the wait mark cleared.
	e.vault.SetErrs(nil, nil, nil)
	e.clock.Advance(30 * time.Second)
	if err := e.deliver(g.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.deliver(g.ID); err != nil { // a duplicate delivery message
		t.Fatal(err)
	}
	got = e.grant(g.ID)
	if _, waiting := got.WaitingForVault(); got.State != access.StateIssued || waiting || got.LastError != "" {
		t.Fatalf("grant %+v", got)
	}
	if len(e.vault.Tokens()) != 1 || len(e.msgr.Sent()) != 1 {
		t.Fatalf("%d tokens, %d DMs: want exactly one", len(e.vault.Tokens()), len(e.msgr.Sent()))
	}
}

func TestDeliveryRefusedByVaultSaysWhy(t *testing.T) {
	e := newEnv(t)
	g := e.mustRequest(accesstest.Ana, "platform-rw", "--ticket", "SEC-12", "--ttl", "3h")
	if err := e.decide(accesstest.Kim, g.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	e.vault.JoinErr = fmt.Errorf("vault: lookup entity: no Vault identity for ana@lumi.example on oidc/: they must have logged in to Vault once")
	nm := len(e.store.Messages())
	if err := e.deliver(g.ID); err == nil {
		t.Fatal("deliver succeeded")
	}
	ms := e.wantMessages(nm, "dm:UANA", "post:CSEC")
	if !strings.Contains(ms[0].Text, "Vault did not issue it: vault: lookup entity: no Vault identity") || strings.Contains(ms[0].Text, "unreachable") {
		t.Errorf("requester told %q", ms[0].Text)
	}
	// An interrupted delivery (shutdown) is not Vault's fault: nobody is told.
	e2 := newEnv(t)
	g2 := e2.approvedPayments()
	e2.vault.SetErrs(errVaultDown, nil, nil)
	ctx, cancel := context.WithCancel(e2.ctx)
	cancel()
	nm2 := len(e2.store.Messages())
	if err := e2.svc.Deliver(ctx, g2.ID); err == nil {
		t.Fatal("deliver succeeded")
	}
	if len(e2.store.Messages()) != nm2 {
		t.Fatalf("messages after an interrupted delivery: %v", kinds(e2.messagesSince(nm2)))
	}
}

func TestRevokePendingAnnouncedOnceThenDone(t *testing.T) {
	e := newEnv(t)
	g := e.issuedPayments()
	e.vault.SetErrs(nil, fmt.Errorf("vault: revoke accessor: HTTP 503: Vault is sealed: %w", access.ErrVaultUnavailable), nil)
	na, nm := len(e.store.Events()), len(e.store.Messages())
	ue, ok := access.IsUserError(e.revoke(g.ID, "USEC"))
	if !ok || !strings.Contains(ue.Msg, "could not be revoked yet") || !strings.Contains(ue.Msg, "revoke pending") {
		t.Fatalf("the revoker was not told: %v", ue)
	}
	got := e.grant(g.ID)
	if got.State != access.StateIssued || !got.RevokePending || got.EndReason != access.RevokedBy("USEC") {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(na, access.ActRevokeFailed)
	ms := e.wantMessages(nm, "post:CSEC")
	if !strings.Contains(ms[0].Text, "Revoke pending") || !strings.Contains(ms[0].Text, "Vault is sealed") {
		t.Errorf("security notice %q", ms[0].Text)
	}
	// Sweeps while Vault stays sealed: retried, not announced again.
	for range 3 {
		e.clock.Advance(2 * time.Second)
		if err := e.sweep(); err == nil {
			t.Fatal("sweep succeeded with Vault sealed")
		}
	}
	e.wantActions(na, access.ActRevokeFailed)
	e.wantMessages(nm, "post:CSEC")
	if e.vault.LiveTokens() != 1 {
		t.Fatal("the token died while Vault was sealed?")
	}
	// Vault is back: revoked, recorded, and the revoker told it is done.
	e.vault.SetErrs(nil, nil, nil)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	got = e.grant(g.ID)
	if got.State != access.StateRevoked || got.RevokePending || e.vault.LiveTokens() != 0 {
		t.Fatalf("grant %+v, %d live tokens", got, e.vault.LiveTokens())
	}
	e.wantActions(na, access.ActRevokeFailed, access.ActRevoked)
	ms = e.wantMessages(nm, "post:CSEC", "dm:UANA", "dm:USEC", "post:CSEC", "jira-comment:SEC-12")
	if !strings.Contains(ms[2].Text, "you asked for is done") {
		t.Errorf("revoker told %q", ms[2].Text)
	}
}

// While Vault is known to be out, other deliveries do not wait on it again
// for a moment (they share the outbox's delivery loop), yet are told.
func TestDeliveriesSkipVaultJustFoundOut(t *testing.T) {
	e := newEnv(t)
	g1 := e.approvedPayments()
	g2 := e.mustRequest(accesstest.Bob, "platform-ro", "--incident", "#1234", "--ttl", "1h")
	calls := 0
	e.vault.OnIssue = func() { calls++ }
	e.vault.SetErrs(errVaultDown, nil, nil)
	if err := e.deliver(g1.ID); err == nil || calls != 1 {
		t.Fatalf("first delivery: %v, %d Vault calls", err, calls)
	}
	nm := len(e.store.Messages())
	if err := e.deliver(g2.ID); err == nil || calls != 1 {
		t.Fatalf("second delivery within the gap: %v, %d Vault calls (want no new call)", err, calls)
	}
	if _, waiting := e.grant(g2.ID).WaitingForVault(); !waiting {
		t.Fatal("the second requester was not told")
	}
	e.wantMessages(nm, "dm:UBOB", "post:CSEC")
	// After the gap Vault is asked again, and once it answers deliveries go on.
	e.clock.Advance(11 * time.Second)
	e.vault.SetErrs(nil, nil, nil)
	if err := e.deliver(g2.ID); err != nil || calls != 2 {
		t.Fatalf("after the gap: %v, %d Vault calls", err, calls)
	}
	if err := e.deliver(g1.ID); err != nil || calls != 3 {
		t.Fatalf("Vault back: %v, %d Vault calls", err, calls)
	}
}
