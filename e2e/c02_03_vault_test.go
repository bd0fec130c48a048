package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

// Reliability, issue 5: C02 (Vault down or sealed) and C03 (the drift
// reconciler and its full scan).

// vaultBack bounds how long after Vault's return a waiting grant is issued
// or a pending revoke done: the deliver-grant retry is capped at 30s, plus
// slack for a slow machine.
const vaultBack = 60 * time.Second

// securityMessage waits for a security-channel message holding every sub.
func (w *world) securityMessage(subs ...string) fakeslack.Message {
	w.t.Helper()
	m, err := w.Slack.WaitMessage(func(m fakeslack.Message) bool {
		if !fakeslack.InChannel(harness.SecurityChannel)(m) {
			return false
		}
		for _, s := range subs {
			if !strings.Contains(m.Text, s) {
				return false
			}
		}
		return true
	}, wait)
	if err != nil {
		w.t.Fatalf("no security-channel message with %q: %v", subs, err)
	}
	return m
}

// dmsWith counts the DMs to who holding every sub.
func (w *world) dmsWith(who harness.Person, subs ...string) int {
	n := 0
	for _, m := range w.Slack.Messages() {
		if !fakeslack.InChannel(who.Slack)(m) {
			continue
		}
		all := true
		for _, s := range subs {
			all = all && strings.Contains(m.Text, s)
		}
		if all {
			n++
		}
	}
	return n
}

// deliveryAttempts reads how often the outbox tried to deliver grant id.
func (w *world) deliveryAttempts(id string) int {
	w.t.Helper()
	var n int
	err := openDB(w.t, w.DBPath).QueryRow(`SELECT COALESCE(MAX(attempts), 0) FROM outbox
		WHERE CAST(body AS TEXT) LIKE ? AND CAST(body AS TEXT) LIKE ?`,
		`%"deliver-grant"%`, `%"`+id+`"%`).Scan(&n)
	if err != nil {
		w.t.Fatalf("read the outbox: %v", err)
	}
	return n
}

// waitsForVault checks that approved grant id waits for Vault: its
// requester told once (however many retries), approved, no token anywhere,
// and `grants` saying so. sealed: Vault itself cannot be asked for tokens
// (issuedOnce counts them once it is back).
func (w *world) waitsForVault(who harness.Person, id string, sealed bool) {
	w.t.Helper()
	t := w.t
	w.dm(who, id, "*approved*", "Vault is unreachable right now", "as soon as it is back")
	if !until(vaultBack, func() bool { return w.deliveryAttempts(id) >= 3 }) {
		t.Fatalf("grant %s: the delivery was not retried (attempts %d)", id, w.deliveryAttempts(id))
	}
	if n := w.dmsWith(who, id, "Vault is unreachable"); n != 1 {
		t.Errorf("the requester was told %d times that Vault is unreachable, want once", n)
	}
	g := w.grant(id)
	if g.State != "approved" || !strings.HasPrefix(g.LastError, "waiting for Vault: ") || g.TokenAccessor != "" {
		t.Errorf("grant %+v: want approved, waiting for Vault, no accessor", g)
	}
	if !sealed && len(w.grantTokens(id)) != 0 {
		t.Errorf("tokens exist for %s while Vault was out", id)
	}
	for _, m := range w.tokenDMs() {
		if strings.Contains(m.Text, id) {
			t.Errorf("a token DM for %s went out while Vault was out", id)
		}
	}
	list := w.responseWith(w.ask(who, "grants"), "waiting for Vault, retrying")
	mustContain(t, "grants", list.Text, id+"` <@"+who.Slack+">")
	w.securityMessage("Delivery delayed", id)
}

// issuedOnce waits for grant id's token DM after Vault's return, unwraps it
// and checks exactly one token was made for it.
func (w *world) issuedOnce(who harness.Person, id string) (token, accessor string) {
	w.t.Helper()
	t := w.t
	m, err := w.Slack.WaitMessage(func(m fakeslack.Message) bool {
		return fakeslack.InChannel(who.Slack)(m) && strings.Contains(m.Text, id) && strings.Contains(m.Text, "vault unwrap")
	}, vaultBack)
	if err != nil {
		t.Fatalf("grant %s: no token DM within %v of Vault's return (attempts %d): %+v", id, vaultBack, w.deliveryAttempts(id), w.grant(id))
	}
	sm := unwrapRe.FindStringSubmatch(m.Text)
	if sm == nil {
		t.Fatalf("the DM has no unwrap line:\n%s", m.Text)
	}
	token = w.unwrap(sm[2])
	info := w.lookupSelf(token)
	g := w.waitGrant(id, wait, "delivered", func(g grantRow) bool { return g.State == "issued" && !g.DeliveredAt.IsZero() })
	if g.TokenAccessor != info.Accessor || g.LastError != "" {
		t.Errorf("grant %+v: want the unwrapped token's accessor %s and no error", g, info.Accessor)
	}
	if accs := w.grantTokens(id); len(accs) != 1 {
		t.Errorf("%d tokens for %s, want exactly 1", len(accs), id)
	}
	n := 0
	for _, m := range w.tokenDMs() {
		if strings.Contains(m.Text, id) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d token DMs for %s, want 1", n, id)
	}
	return token, info.Accessor
}

func TestC02_VaultDownThenUp(t *testing.T) {
	w := startA(t, "C02", harness.Options{EditConfig: withPaymentsRO})

	// 1. Vault unreachable (connections refused) when Sam approves.
	id1, card := approvedRequest(t, w, "SEC-201", "2h", "ledger check")
	w.Vault.Stop()
	w.click(harness.Sam, card, "grant_approve")
	w.cardDecided(card, "Approved")
	w.waitsForVault(harness.Alice, id1, false)
	if err := w.Vault.Resume(); err != nil {
		t.Fatal(err)
	}
	tok1, acc1 := w.issuedOnce(harness.Alice, id1)
	if w.issuedTokens() != 1 {
		t.Errorf("Vault handed the bot %d wrapped tokens, want 1", w.issuedTokens())
	}

	// 2. Vault sealed (every call answers 503) when an on-call request is
	// approved automatically.
	w.Vault.Seal(t)
	r := w.outcome(w.ask(harness.Carol, "request platform-ro --ttl 2h --incident "+harness.OpenIncident+` --reason "sealed vault drill"`))
	if !strings.Contains(r.Text, sayAutoOK) {
		t.Fatalf("the on-call request was not approved automatically:\n%s", r.Text)
	}
	id2 := grantID(t, r.Text)
	w.waitsForVault(harness.Carol, id2, true)
	w.Vault.Unseal(t)
	w.issuedOnce(harness.Carol, id2)
	if w.issuedTokens() != 2 {
		t.Errorf("Vault handed the bot %d wrapped tokens, want 2", w.issuedTokens())
	}

	// 3. A revoke while Vault is unreachable: pending, said so, visible, and
	// done once Vault is back.
	w.Vault.Stop()
	said := w.responseWith(w.ask(harness.Alice, "revoke "+id1), "could not be revoked yet")
	mustContain(t, "the revoke's answer", said.Text, id1, "revoke pending", "retried until it succeeds")
	g := w.waitGrant(id1, wait, "revoke pending", func(g grantRow) bool { return g.RevokePending })
	if g.State != "issued" || g.EndReason != "done" { // the holder's own revoke
		t.Errorf("grant %+v: want issued, revoke pending, reason done", g)
	}
	if !w.accessorAlive(acc1) {
		t.Error("the token died while Vault was unreachable?")
	}
	list := w.responseWith(w.ask(harness.Alice, "grants"), "revoke pending, retrying")
	mustContain(t, "grants", list.Text, id1+"` <@"+harness.Alice.Slack+">")
	w.securityMessage("Revoke pending", id1)
	w.Slack.OpenHome(harness.Alice.Slack)
	if !until(wait, func() bool {
		v, ok := w.Slack.HomeView(harness.Alice.Slack)
		return ok && strings.Contains(string(v.Blocks), id1) && strings.Contains(string(v.Blocks), "revoke pending")
	}) {
		v, _ := w.Slack.HomeView(harness.Alice.Slack)
		t.Errorf("App Home does not show the pending revoke of %s: %s", id1, v.Blocks)
	}
	w.waitEvent("grant.revoke_failed", id1)
	if err := w.Vault.Resume(); err != nil {
		t.Fatal(err)
	}
	g = w.waitGrant(id1, vaultBack, "revoked", func(g grantRow) bool { return g.State == "revoked" })
	if g.RevokePending || g.EndReason != "done" {
		t.Errorf("grant %+v", g)
	}
	if w.accessorAlive(acc1) || w.tokenAlive(tok1) {
		t.Error("the token is alive after the pending revoke completed")
	}
	w.waitEvent("grant.revoked", id1)
	w.dm(harness.Alice, id1, "has ended")
}

// withReconcile runs the reconciler every 5s (the shortest accepted), with
// the full scan.
func withReconcile(doc map[string]any) {
	doc["vault"].(map[string]any)["reconcile"] = map[string]any{"every": "5s", "full_scan": true}
}

func TestC03_ReconcilerRevokesUnknownTokens(t *testing.T) {
	w := startA(t, "C03", harness.Options{AppRole: true, NoRun: true, EditConfig: func(doc map[string]any) {
		withPaymentsRO(doc)
		withReconcile(doc)
	}})
	// The operator turns the full scan on as deploy/vault/README.md says,
	// before the bot logs in.
	w.Vault.ApplyREADMEBlock(t, "full-scan")
	out, _, code := w.RunCLI("check")
	if code != 0 || !strings.Contains(out, "vault.reconcile.full_scan: the token may list auth/token/accessors (sudo)") {
		t.Errorf("secretbot check (exit %d) does not confirm the full scan's permission:\n%s", code, out)
	}
	w.StartBot()
	if err := w.WaitReady(); err != nil {
		t.Fatal(err)
	}

	// Two live grants.
	liveID, d := onCallGrant(t, w, "2h")
	liveTok := w.unwrap(d.wrapToken)
	goneID, card := approvedRequest(t, w, "SEC-301", "2h", "drift drill")
	w.click(harness.Sam, card, "grant_approve")
	goneTok := w.unwrap(w.tokenDM(harness.Alice, goneID).wrapToken)
	goneAcc := w.lookupSelf(goneTok).Accessor

	// 1. Someone revokes a grant's token behind the bot's back.
	if err := w.Vault.Root.Auth().Token().RevokeAccessor(goneAcc); err != nil {
		t.Fatal(err)
	}
	g := w.waitGrant(goneID, 3*wait, "marked revoked", func(g grantRow) bool { return g.State == "revoked" })
	if g.EndReason != "gone-from-vault" {
		t.Errorf("end reason %q, want gone-from-vault", g.EndReason)
	}
	if e := w.waitEvent("grant.gone_from_vault", goneID); e.actor != "secretbot" || !strings.Contains(e.links, goneAcc) {
		t.Errorf("audit event %+v", e)
	}
	w.securityMessage("Vault drift", goneID)
	w.dm(harness.Alice, goneID, "has ended", "Vault no longer had it")

	// 2. Someone mints a token through the bot's role without a grant.
	sec, err := w.Vault.Root.Auth().Token().CreateWithRole(&api.TokenCreateRequest{
		Policies: []string{"platform-ro"}, TTL: "1h", Metadata: map[string]string{"note": "made by hand"},
	}, "secretbot")
	if err != nil {
		t.Fatal(err)
	}
	strayTok, strayAcc := sec.Auth.ClientToken, sec.Auth.Accessor
	w.addToken(strayTok)
	if !until(3*wait, func() bool { return !w.accessorAlive(strayAcc) }) {
		t.Fatalf("the token minted without a grant is alive %v later", 3*wait)
	}
	alert := w.securityMessage("Vault full scan", strayAcc)
	mustContain(t, "the full-scan alert", alert.Text, "`secretbot`", "no grant")
	if strings.Contains(alert.Text, strayTok) {
		t.Error("the alert names the token itself")
	}
	if e := w.waitEvent("vault.unknown_token_revoked", ""); !strings.Contains(e.links, strayAcc) {
		t.Errorf("audit event %+v", e)
	}

	// 3. The live grant and its token were never touched, through several
	// passes (one revoked the stray token after it was minted).
	if !w.tokenAlive(liveTok) {
		t.Error("the live grant's token was revoked")
	}
	if g := w.grant(liveID); g.State != "issued" || g.EndReason != "" {
		t.Errorf("the live grant changed: %+v", g)
	}
	if n := len(w.eventsOf("grant.gone_from_vault", "")); n != 1 {
		t.Errorf("%d grants marked gone, want 1", n)
	}
}
