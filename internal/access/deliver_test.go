package access_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/config"
)

func TestDeliverWrappedToken(t *testing.T) {
	e := newEnv(t)
	g := e.approvedPayments()
	na, nm := len(e.store.Events()), len(e.store.Messages())
	if err := e.deliver(g.ID); err != nil {
		t.Fatal(err)
	}
	toks := e.vault.Tokens()
	if len(toks) != 1 {
		t.Fatalf("%d tokens", len(toks))
	}
	req := toks[0].Request
	if req.TTL != 2*time.Hour || strings.Join(req.Policies, ",") != "payments-rw,payments-audit" ||
		req.DisplayName != "secretbot-ana" || req.Metadata["grant"] != g.ID || req.Metadata["user"] != "UANA" ||
		req.Metadata["email"] != "ana@lumi.example" || req.Metadata["scope"] != "payments-rw" || req.Metadata["ticket"] != "SEC-12" {
		t.Fatalf("issue request %+v", req)
	}
	got := e.grant(g.ID)
	if got.State != access.StateIssued || got.TokenAccessor != toks[0].Accessor || got.WrapAccessor != toks[0].WrapAccessor ||
		!got.IssuedAt.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(2*time.Hour)) || !got.DeliveredAt.Equal(t0) ||
		!got.WrapExpires.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(na, access.ActIssued, access.ActDelivered)
	ms := e.wantMessages(nm, "post:CSEC", "jira-comment:SEC-12")
	if !strings.Contains(ms[0].Text, "Issued") || !strings.Contains(ms[0].Text, toks[0].Accessor) {
		t.Errorf("notice %q", ms[0].Text)
	}
	// The one DM, sent directly, with the token and the unwrap line.
	sent := e.msgr.Sent()
	if len(sent) != 1 || sent[0].Kind != "dm" || sent[0].Target != "UANA" {
		t.Fatalf("sent %+v", sent)
	}
	line := "VAULT_ADDR=" + accesstest.VaultAddr + " vault unwrap " + toks[0].WrapToken
	if !strings.Contains(sent[0].Text, line) || !strings.Contains(string(sent[0].Blocks), line) ||
		!strings.Contains(string(sent[0].Blocks), `"action_id":"grant_done"`) || !strings.Contains(sent[0].Text, "2025-03-03 11:00 UTC") {
		t.Fatalf("DM %+v", sent[0])
	}
	// A redelivered "deliver grant" message issues nothing more.
	if err := e.deliver(g.ID); err != nil || len(e.vault.Tokens()) != 1 || len(e.msgr.Sent()) != 1 {
		t.Fatalf("second deliver: %v, %d tokens", err, len(e.vault.Tokens()))
	}
}

func TestDeliverTTLCappedByTicket(t *testing.T) {
	e := newEnv(t)
	g := e.approvedPayments()
	e.clock.Set(t0.Add(7*24*time.Hour - time.Hour)) // the ticket ends in an hour
	if err := e.deliver(g.ID); err != nil {
		t.Fatal(err)
	}
	if ttl := e.vault.Tokens()[0].Request.TTL; ttl != time.Hour {
		t.Fatalf("ttl %s, want 1h (the ticket's expiry)", ttl)
	}
	got := e.grant(g.ID)
	if !got.ExpiresAt.Equal(got.NotAfter) {
		t.Fatalf("expires %s, not after %s", got.ExpiresAt, got.NotAfter)
	}
	e.clock.Advance(time.Hour)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if got := e.grant(g.ID); got.State != access.StateExpired || got.EndReason != access.EndTicketExpired {
		t.Fatalf("grant %+v", got)
	}
	// Too close to the ticket's end: failed, not issued.
	e2 := newEnv(t)
	g2 := e2.approvedPayments()
	e2.clock.Set(t0.Add(7*24*time.Hour - 30*time.Second))
	if err := e2.deliver(g2.ID); err != nil {
		t.Fatal(err)
	}
	if got := e2.grant(g2.ID); got.State != access.StateFailed || len(e2.vault.Tokens()) != 0 {
		t.Fatalf("grant %+v", got)
	}
}

func TestDeliverDMFailureRevokesAndRetries(t *testing.T) {
	e := newEnv(t)
	g := e.approvedPayments()
	na := len(e.store.Events())
	e.msgr.SetErr(errors.New("slack: chat.postMessage: ratelimited"))
	err := e.deliver(g.ID)
	if err == nil || !strings.Contains(err.Error(), "token was revoked") {
		t.Fatalf("err = %v", err)
	}
	if _, ok := access.IsUserError(err); ok {
		t.Fatal("a delivery failure is not the user's")
	}
	if e.vault.LiveTokens() != 0 || len(e.vault.Tokens()) != 1 {
		t.Fatalf("the undelivered token lives: %+v", e.vault.Tokens())
	}
	got := e.grant(g.ID)
	if got.State != access.StateApproved || got.TokenAccessor != "" {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(na, access.ActIssued, access.ActUndelivered)
	// The retry issues a fresh token and delivers it.
	e.msgr.SetErr(nil)
	if err := e.deliver(g.ID); err != nil {
		t.Fatal(err)
	}
	toks := e.vault.Tokens()
	if len(toks) != 2 || e.vault.LiveTokens() != 1 || e.grant(g.ID).TokenAccessor != toks[1].Accessor {
		t.Fatalf("tokens %+v", toks)
	}
	if sent := e.msgr.Sent(); len(sent) != 1 || !strings.Contains(sent[0].Text, toks[1].WrapToken) {
		t.Fatalf("sent %+v", sent)
	}
}

func TestDeliverDMFailureAndRevokeFailure(t *testing.T) {
	e := newEnv(t)
	g := e.approvedPayments()
	e.msgr.SetErr(errors.New("slack down"))
	e.vault.SetErrs(nil, errors.New("vault: 503"), nil)
	if err := e.deliver(g.ID); err == nil {
		t.Fatal("no error")
	}
	got := e.grant(g.ID)
	if got.State != access.StateIssued || !got.RevokePending || got.EndReason != access.EndUndelivered || !strings.Contains(got.LastError, "503") {
		t.Fatalf("grant %+v", got)
	}
	// Sweep retries the revoke and puts the grant back to approved.
	e.vault.SetErrs(nil, nil, nil)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if got := e.grant(g.ID); got.State != access.StateApproved || e.vault.LiveTokens() != 0 {
		t.Fatalf("after sweep: %+v", got)
	}
	e.msgr.SetErr(nil)
	if err := e.deliver(g.ID); err != nil {
		t.Fatal(err)
	}
	if e.vault.LiveTokens() != 1 || len(e.msgr.Sent()) != 1 {
		t.Fatalf("live %d sent %d", e.vault.LiveTokens(), len(e.msgr.Sent()))
	}
}

// A crash between recording the token and sending the DM: after restart the
// deliverer retries; the unconfirmed token is revoked, a fresh one delivered.
func TestDeliverAfterCrashBeforeDM(t *testing.T) {
	e := newEnv(t)
	g := e.approvedPayments()
	w, _ := e.vault.IssueWrapped(e.ctx, access.IssueRequest{TTL: time.Hour})
	issued, _ := g.Issued(w, "", t0)
	e.store.Put(issued)
	err := e.deliver(g.ID)
	if err == nil || !strings.Contains(err.Error(), "in progress") {
		t.Fatalf("within the lease: %v", err)
	}
	e.clock.Advance(3 * time.Minute)
	if err := e.deliver(g.ID); err != nil {
		t.Fatal(err)
	}
	toks := e.vault.Tokens()
	if len(toks) != 2 || toks[0].Alive || !toks[1].Alive || len(e.msgr.Sent()) != 1 {
		t.Fatalf("tokens %+v sent %d", toks, len(e.msgr.Sent()))
	}
}

// vault.delivery_lease sets how long an unconfirmed delivery is waited for.
func TestDeliverLeaseFromConfig(t *testing.T) {
	e := newEnv(t)
	e.svc.Config.Vault.DeliveryLease = config.Duration(5 * time.Second)
	g := e.approvedPayments()
	w, _ := e.vault.IssueWrapped(e.ctx, access.IssueRequest{TTL: time.Hour})
	issued, _ := g.Issued(w, "", t0)
	e.store.Put(issued)
	e.clock.Set(t0.Add(4 * time.Second))
	if err := e.deliver(g.ID); err == nil || !strings.Contains(err.Error(), "in progress") {
		t.Fatalf("within the 5s lease: %v", err)
	}
	e.clock.Set(t0.Add(6 * time.Second))
	if err := e.deliver(g.ID); err != nil {
		t.Fatalf("after the 5s lease: %v", err)
	}
	if toks := e.vault.Tokens(); len(toks) != 2 || toks[0].Alive || !toks[1].Alive || len(e.msgr.Sent()) != 1 {
		t.Fatalf("tokens %+v sent %d", toks, len(e.msgr.Sent()))
	}
}

func TestDeliverIssueErrorKeepsApproved(t *testing.T) {
	e := newEnv(t)
	g := e.approvedPayments()
	e.vault.SetErrs(errors.New("vault: 500 on auth/token/create/secretbot"), nil, nil)
	if err := e.deliver(g.ID); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("err = %v", err)
	}
	if got := e.grant(g.ID); got.State != access.StateApproved {
		t.Fatalf("state %s", got.State)
	}
}

// A grant revoked while its token is being made: the fresh token is revoked
// and nothing is delivered.
func TestDeliverRacesRevoke(t *testing.T) {
	e := newEnv(t)
	g := e.approvedPayments()
	e.vault.OnIssue = func() {
		e.vault.OnIssue = nil
		if err := e.svc.Revoke(e.ctx, g.ID, "UANA", "changed my mind"); err != nil {
			t.Error(err)
		}
	}
	if err := e.deliver(g.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.grant(g.ID); got.State != access.StateRevoked || got.EndReason != access.EndDone {
		t.Fatalf("grant %+v", got)
	}
	if e.vault.LiveTokens() != 0 || len(e.msgr.Sent()) != 0 {
		t.Fatalf("live tokens %d, DMs %d", e.vault.LiveTokens(), len(e.msgr.Sent()))
	}
}

func TestDeliverEntityGroup(t *testing.T) {
	e := newEnv(t)
	g := e.mustRequest(accesstest.Ana, "platform-rw", "--ticket", "SEC-12", "--ttl", "3h")
	if err := e.decide(accesstest.Kim, g.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	na, nm := len(e.store.Events()), len(e.store.Messages())
	if err := e.deliver(g.ID); err != nil {
		t.Fatal(err)
	}
	groups := e.vault.Groups()
	grp, ok := groups["secretbot-"+g.ID]
	if !ok || grp.Email != "ana@lumi.example" || strings.Join(grp.Policies, ",") != "platform-rw" || grp.Meta["grant"] != g.ID {
		t.Fatalf("groups %+v", groups)
	}
	got := e.grant(g.ID)
	if got.State != access.StateIssued || got.VaultGroup != "secretbot-"+g.ID || got.TokenAccessor != "" || got.DeliveredAt.IsZero() ||
		!got.ExpiresAt.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("grant %+v", got)
	}
	if len(e.vault.Tokens()) != 0 || len(e.msgr.Sent()) != 0 {
		t.Fatal("a token or a direct DM for entity-group delivery")
	}
	e.wantActions(na, access.ActIssued, access.ActDelivered)
	ms := e.wantMessages(nm, "post:CSEC", "jira-comment:SEC-12", "dm:UANA")
	if !strings.Contains(ms[2].Text, "own MFA") || !strings.Contains(string(ms[2].Blocks), "grant_done") {
		t.Fatalf("DM %q", ms[2].Text)
	}
	// Revoke removes the group.
	if err := e.revoke(g.ID, "UANA"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.vault.Groups()["secretbot-"+g.ID]; ok {
		t.Fatal("group still there")
	}
}

func TestDeliverDryRun(t *testing.T) {
	e := newEnv(t)
	e.svc.DryRun = true
	e.svc.Vault = nil // no Vault writes: there is no Vault at all
	g := e.approvedPayments()
	nm := len(e.store.Messages())
	if err := e.deliver(g.ID); err != nil {
		t.Fatal(err)
	}
	got := e.grant(g.ID)
	if got.State != access.StateIssued || got.TokenAccessor != access.AccessorDryRun || got.DeliveredAt.IsZero() {
		t.Fatalf("grant %+v", got)
	}
	ms := e.wantMessages(nm, "post:CSEC", "jira-comment:SEC-12", "dm:UANA")
	if !strings.Contains(ms[2].Text, "Dry run") || !strings.Contains(ms[2].Text, "would have been issued") {
		t.Fatalf("DM %q", ms[2].Text)
	}
	if len(e.msgr.Sent()) != 0 {
		t.Fatal("dry run sent a direct DM")
	}
	// Expiry and revoke need no Vault either.
	e.clock.Advance(3 * time.Hour)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if got := e.grant(g.ID); got.State != access.StateExpired {
		t.Fatalf("state %s", got.State)
	}
}

func TestDeliverUnknownOrFinishedGrant(t *testing.T) {
	e := newEnv(t)
	if err := e.deliver("GNOTTHERE"); err != nil {
		t.Fatal(err)
	}
	g := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
	if err := e.deliver(g.ID); err != nil || len(e.vault.Tokens()) != 0 {
		t.Fatalf("a pending grant was delivered: %v", err)
	}
}

// A token issued and never delivered (the delivery message given up) is
// taken back by Sweep.
func TestSweepTakesBackAbandonedDelivery(t *testing.T) {
	e := newEnv(t)
	g := e.approvedPayments()
	w, _ := e.vault.IssueWrapped(e.ctx, access.IssueRequest{TTL: time.Hour})
	issued, _ := g.Issued(w, "", t0)
	e.store.Put(issued)
	e.clock.Advance(5 * time.Minute)
	if err := e.sweep(); err != nil || e.vault.LiveTokens() != 1 {
		t.Fatalf("taken back too early: %v", err)
	}
	e.clock.Advance(6 * time.Minute)
	na := len(e.store.Events())
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if got := e.grant(g.ID); got.State != access.StateApproved || e.vault.LiveTokens() != 0 {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(na, access.ActUndelivered)
}
