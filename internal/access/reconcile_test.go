package access_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
)

func (e *env) reconciler(full bool) *access.Reconciler {
	return &access.Reconciler{Service: e.svc, Vault: e.vault, FullScan: full}
}

func (e *env) reconcile(full bool) (access.ReconcileReport, error) {
	rep, err := e.reconciler(full).Reconcile(e.ctx)
	return rep, e.keep(err)
}

func TestReconcileEndsGrantGoneFromVault(t *testing.T) {
	e := newEnv(t)
	gone := e.issuedPayments()
	live := e.issuedRO()
	e.vault.Forget(gone.TokenAccessor) // revoked behind the bot's back
	na, nm := len(e.store.Events()), len(e.store.Messages())
	e.clock.Advance(time.Minute)
	rep, err := e.reconcile(false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != 2 || !slices.Equal(rep.Gone, []string{gone.ID}) || rep.Unknown != 0 {
		t.Fatalf("report %+v", rep)
	}
	got := e.grant(gone.ID)
	if got.State != access.StateRevoked || got.EndReason != access.EndGone || !got.EndedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("gone grant %+v", got)
	}
	if g := e.grant(live.ID); g.State != access.StateIssued || g.Version != live.Version {
		t.Fatalf("the live grant was touched: %+v", g)
	}
	e.wantActions(na, access.ActGone)
	if ev := e.store.Events()[na]; ev.Actor != "secretbot" || ev.Links["accessor"] != gone.TokenAccessor || !strings.Contains(ev.Reason, "no token with accessor") {
		t.Errorf("event %+v", ev)
	}
	ms := e.wantMessages(nm, "dm:UANA", "post:CSEC", "jira-comment:SEC-12")
	if !strings.Contains(ms[0].Text, "Vault no longer had it") || !strings.Contains(ms[1].Text, "Vault drift") || !strings.Contains(ms[1].Text, gone.ID) {
		t.Errorf("messages %q / %q", ms[0].Text, ms[1].Text)
	}
	// A second pass finds nothing more.
	if rep, err := e.reconcile(false); err != nil || len(rep.Gone) != 0 || rep.Checked != 1 {
		t.Fatalf("second pass %+v %v", rep, err)
	}
}

func TestReconcileEntityGroupGoneOrEmptied(t *testing.T) {
	e := newEnv(t)
	g := e.mustRequest(accesstest.Ana, "platform-rw", "--ticket", "SEC-12", "--ttl", "3h")
	if err := e.decide(accesstest.Kim, g.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.deliver(g.ID); err != nil {
		t.Fatal(err)
	}
	if rep, err := e.reconcile(false); err != nil || rep.Checked != 1 || len(rep.Gone) != 0 {
		t.Fatalf("group intact: %+v %v", rep, err)
	}
	e.vault.RemoveGroup("secretbot-" + g.ID)
	rep, err := e.reconcile(false)
	if err != nil || len(rep.Gone) != 1 {
		t.Fatalf("group deleted: %+v %v", rep, err)
	}
	if got := e.grant(g.ID); got.State != access.StateRevoked || got.EndReason != access.EndGone {
		t.Fatalf("grant %+v", got)
	}
}

func TestReconcileNeverConcludesFromErrorsOrInFlightGrants(t *testing.T) {
	e := newEnv(t)
	a := e.issuedPayments()
	e.vault.Forget(a.TokenAccessor)

	// Vault unreachable: unknown, nothing marked, nothing said.
	e.vault.SetErrs(nil, nil, fmt.Errorf("dial tcp: connection refused: %w", access.ErrVaultUnavailable))
	na, nm := len(e.store.Events()), len(e.store.Messages())
	rep, err := e.reconcile(false)
	if err == nil || rep.Unknown != 1 || len(rep.Gone) != 0 {
		t.Fatalf("report %+v, err %v: want unknown", rep, err)
	}
	if g := e.grant(a.ID); g.State != access.StateIssued || g.Version != a.Version {
		t.Fatalf("grant marked from an error: %+v", g)
	}
	if len(e.store.Events()) != na || len(e.store.Messages()) != nm {
		t.Fatal("something was recorded from an error")
	}
	e.vault.SetErrs(nil, nil, nil)

	// Issued but not yet delivered (the issue window), or with a revoke
	// pending: left to Deliver and Sweep even when Vault has no token.
	b := e.mustRequest(accesstest.Bob, "platform-ro", "--incident", "#1234", "--ttl", "1h")
	e.msgr.SetErr(errors.New("slack: 500"))
	e.vault.RevokeErr = errors.New("vault: 503")
	_ = e.deliver(b.ID) // issued; DM failed; the revoke of its token failed too
	e.msgr.SetErr(nil)
	e.vault.RevokeErr = nil
	pending := e.grant(b.ID)
	if pending.State != access.StateIssued || !pending.RevokePending {
		t.Fatalf("setup: %+v", pending)
	}
	e.vault.Forget(pending.TokenAccessor)
	rep, err = e.reconcile(false)
	if err != nil || rep.Checked != 1 || !slices.Equal(rep.Gone, []string{a.ID}) {
		t.Fatalf("report %+v %v: want only %s checked and gone", rep, err, a.ID)
	}
	if g := e.grant(b.ID); g.Version != pending.Version {
		t.Fatalf("the grant in delivery was touched: %+v", g)
	}

	// A grant about to expire whose token Vault already let go (its TTL
	// counted from a moment earlier): an expiry for Sweep, not drift.
	e2 := newEnv(t)
	c := e2.issuedRO() // 1h
	e2.vault.Forget(c.TokenAccessor)
	e2.clock.Set(c.ExpiresAt.Add(-30 * time.Second))
	if rep, err := e2.reconcile(false); err != nil || rep.Checked != 0 || len(rep.Gone) != 0 {
		t.Fatalf("near expiry: %+v %v", rep, err)
	}
	if g := e2.grant(c.ID); g.State != access.StateIssued || g.Version != c.Version {
		t.Fatalf("grant %+v: want it left to Sweep", g)
	}
}

func TestFullScanRevokesTokensWithoutLiveGrant(t *testing.T) {
	e := newEnv(t)
	live := e.issuedPayments()
	ended := e.issuedRO()
	if err := e.revoke(ended.ID, "UBOB"); err != nil {
		t.Fatal(err)
	}
	approved := e.mustRequest(accesstest.Bob, "platform-ro", "--incident", "#1234", "--ttl", "1h")
	if approved.State != access.StateApproved {
		t.Fatalf("setup: %+v", approved)
	}
	now := e.clock.Now()
	// Tokens of the bot's role the store cannot account for.
	e.vault.AddToken("accforeign", "secretbot", nil, now.Add(-time.Hour))                                        // no grant at all
	e.vault.AddToken("accunknown", "secretbot", map[string]string{"grant": "GZZZZZZZZ"}, now.Add(-time.Hour))    // a grant never stored
	e.vault.AddToken("accended", "secretbot", map[string]string{"grant": ended.ID}, now.Add(-time.Hour))         // an ended grant's
	e.vault.AddToken("accother", "secretbot", map[string]string{"grant": live.ID}, now.Add(-time.Hour))          // a live grant, another token
	e.vault.AddToken("accinflight", "secretbot", map[string]string{"grant": approved.ID}, now.Add(-time.Second)) // being issued now
	e.vault.AddToken("accotherrole", "ops", nil, now.Add(-time.Hour))                                            // not the bot's role
	na, nm := len(e.store.Events()), len(e.store.Messages())

	rep, err := e.reconcile(true)
	if err != nil {
		t.Fatal(err)
	}
	var revoked []string
	for _, r := range rep.Revoked {
		revoked = append(revoked, r.Accessor)
	}
	slices.Sort(revoked)
	if want := []string{"accended", "accforeign", "accother", "accunknown"}; !slices.Equal(revoked, want) {
		t.Fatalf("revoked %v, want %v (report %+v)", revoked, want, rep)
	}
	if rep.Scanned != 6 { // the live grant's token, the four above, the one in flight
		t.Errorf("scanned %d", rep.Scanned)
	}
	for _, acc := range []string{live.TokenAccessor, "accinflight", "accotherrole"} {
		if alive, _ := e.vault.AccessorAlive(e.ctx, acc); !alive {
			t.Errorf("%s was revoked", acc)
		}
	}
	if g := e.grant(live.ID); g.State != access.StateIssued || g.Version != live.Version {
		t.Errorf("the live grant was touched: %+v", g)
	}
	acts := e.actionsSince(na)
	if len(acts) != 4 || acts[0] != access.ActUnknownTokenRevoked {
		t.Errorf("audit %v", acts)
	}
	ms := e.wantMessages(nm, "post:CSEC")
	for _, want := range []string{"revoked 4 token(s)", "`secretbot`", "`accforeign` (no grant)", "`accunknown` (grant `GZZZZZZZZ`): its grant GZZZZZZZZ is unknown",
		"`accended` (grant `" + ended.ID + "`): its grant " + ended.ID + " is revoked", "holds another token"} {
		if !strings.Contains(ms[0].Text, want) {
			t.Errorf("alert lacks %q:\n%s", want, ms[0].Text)
		}
	}

	// The token in flight, still unrecorded after the delivery lease, goes too.
	e.clock.Advance(3 * time.Minute)
	rep, err = e.reconcile(true)
	if err != nil || len(rep.Revoked) != 1 || rep.Revoked[0].Accessor != "accinflight" {
		t.Fatalf("second scan %+v %v", rep, err)
	}
	// Nothing left to revoke: no alert.
	nm = len(e.store.Messages())
	if rep, err := e.reconcile(true); err != nil || len(rep.Revoked) != 0 || len(e.store.Messages()) != nm {
		t.Fatalf("third scan %+v %v", rep, err)
	}
}

func TestFullScanFailsClosed(t *testing.T) {
	e := newEnv(t)
	e.vault.AddToken("accforeign", "secretbot", nil, t0.Add(-time.Hour))
	e.vault.SetDriftErr(fmt.Errorf("HTTP 403: permission denied"))
	rep, err := e.reconcile(true)
	if err == nil || !strings.Contains(err.Error(), "listing token accessors") || len(rep.Revoked) != 0 {
		t.Fatalf("report %+v, err %v", rep, err)
	}
	if alive, _ := e.vault.AccessorAlive(e.ctx, "accforeign"); !alive {
		t.Fatal("revoked although the scan could not run")
	}
	// Dry run: nothing revoked.
	e.vault.SetDriftErr(nil)
	e.svc.DryRun = true
	if rep, err := e.reconcile(true); err != nil || len(rep.Revoked) != 0 {
		t.Fatalf("dry run %+v %v", rep, err)
	}
	if alive, _ := e.vault.AccessorAlive(e.ctx, "accforeign"); !alive {
		t.Fatal("revoked in a dry run")
	}
}
