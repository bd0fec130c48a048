package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

// A16: the real binary, stopped between approval and issue, and killed
// with a token issued but not yet delivered; both grants fall due while it
// is down. After the restart: exactly one token delivered, the undelivered
// one revoked, the overdue grants revoked.
//
// The timeline (about 75 s: the grants are of the shortest TTL, one minute,
// and the test waits for them to fall due while the bot is down):
//
//	run 1  Alice requests payments-ro (1m); the card is posted; SIGTERM.
//	run 2  crash point inbox.finished: Bob's Approve is stored and decided,
//	       then SIGKILL, before any of what the decision owes is delivered
//	       (chat.update is held back so delivery cannot get ahead).
//	run 3  the approval is delivered: one token DM. Carol then asks for
//	       platform-ro (1m) while chat.postMessage hangs: the token is
//	       issued, its DM in flight; SIGKILL.
//	down   both grants' expiry passes.
//	run 4  both are revoked on start; no token is issued again.
func TestA16_StoppedBetweenApprovalAndIssueAndDuringExpiry(t *testing.T) {
	w := startA(t, "A16", harness.Options{NoRun: true, EditConfig: withPaymentsRO})
	h := w.Harness
	keep := func(name string, p *proc) { w.addText("binary "+name+" output", p.out.String()) }

	// Run 1: the request, up to its approval card.
	run1 := startBinary(t, h, nil)
	run1.waitReady(t, h)
	w.AddApprovedTicket("SEC-116", harness.Alice, jiraScope, ticketExpiry())
	r := w.outcome(w.ask(harness.Alice, "request "+jiraScope+" --ttl 1m --ticket SEC-116"))
	if !strings.Contains(r.Text, sayWaiting) {
		t.Fatalf("the request did not reach an approver:\n%s", r.Text)
	}
	pid := grantID(t, r.Text)
	card := w.card(pid)
	w.settled()
	if err := run1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, sig := run1.wait(t, wait); code != 0 {
		t.Fatalf("run 1 exited %d (signal %v) after SIGTERM", code, sig)
	}
	keep("run 1", run1)

	// Run 2: killed right after the approval is stored.
	w.Slack.SetDelay("chat.update", 5*time.Second)
	run2 := startBinary(t, h, map[string]string{"SECRETBOT_CRASH_AT": "inbox.finished"})
	run2.waitReady(t, h)
	w.click(harness.Bob, card, "grant_approve")
	if _, sig := run2.wait(t, wait); sig != syscall.SIGKILL || !strings.Contains(run2.out.String(), "crashpoint inbox.finished reached") {
		t.Fatalf("run 2 did not die at inbox.finished (signal %v):\n%s", sig, run2.out.String())
	}
	keep("run 2", run2)
	w.Slack.SetDelay("chat.update", 0)
	if g := w.grant(pid); g.State != "approved" || g.TokenAccessor != "" || g.Approver != harness.Bob.Slack {
		t.Fatalf("after the crash the grant is %+v, want approved by Bob and not issued", g)
	}
	if n := w.issuedTokens(); n != 0 {
		t.Fatalf("%d tokens issued before the crash: the crash was not between approval and issue", n)
	}

	// Run 3: the approval is delivered, once.
	run3 := startBinary(t, h, nil)
	run3.waitReady(t, h)
	d := w.tokenDM(harness.Alice, pid)
	tok := w.unwrap(d.wrapToken)
	checkGrantToken(t, w.lookupSelf(tok), "platform-ro", minTTL, map[string]string{"grant": pid, "user": harness.Alice.Slack,
		"email": harness.Alice.Email, "scope": jiraScope, "ticket": "SEC-116"}, harness.Alice.Name)
	w.settled()
	if n, live := w.issuedTokens(), len(w.grantTokens(pid)); n != 1 || live != 1 {
		t.Fatalf("after the restart %d tokens were issued and %d are live for %s, want exactly 1", n, live, pid)
	}
	if cs := w.cards(pid); len(cs) != 1 || !strings.Contains(cs[0].Text, "*Approved* by <@"+harness.Bob.Slack+">") {
		t.Errorf("the card does not show the approval made before the crash: %+v", cs)
	}

	// Carol's token is issued; its DM hangs; the bot is killed.
	w.Slack.SetDelay("chat.postMessage", time.Minute)
	// (The outcome message queues behind the hanging DM: the grant id is
	// read from the first summary.)
	r = w.responseWith(w.ask(harness.Carol, "request platform-ro --ttl 1m --incident "+harness.OpenIncident), sayCardHead)
	cid := grantID(t, r.Text)
	c := w.waitGrant(cid, wait, "issued", func(g grantRow) bool { return g.State == "issued" })
	if _, err := w.Slack.WaitCall("chat.postMessage", func(call fakeslack.Call) bool {
		return strings.Contains(call.Param("text"), cid) && strings.Contains(call.Param("text"), "vault unwrap")
	}, wait); err != nil {
		t.Fatalf("the token DM for %s was never attempted: %v", cid, err)
	}
	_ = run3.cmd.Process.Kill()
	if _, sig := run3.wait(t, wait); sig != syscall.SIGKILL {
		t.Fatalf("run 3 was not killed (signal %v)", sig)
	}
	keep("run 3", run3)
	w.Slack.SetDelay("chat.postMessage", 0)
	c = w.grant(cid)
	if !c.DeliveredAt.IsZero() || !w.accessorAlive(c.TokenAccessor) || !w.accessorAlive(c.WrapAccessor) {
		t.Fatalf("Carol's grant should be issued, undelivered, its tokens alive: %+v", c)
	}
	for _, m := range w.tokenDMs() {
		if strings.Contains(m.Text, cid) {
			t.Fatalf("Carol's token DM was delivered after all: the bot was killed too late")
		}
	}

	// Down while both fall due.
	p := w.grant(pid)
	due := p.ExpiresAt
	if c.ExpiresAt.After(due) {
		due = c.ExpiresAt
	}
	t.Logf("waiting %v, down, for both grants to fall due", time.Until(due).Round(time.Second))
	if !until(time.Until(due)+wait, func() bool { return time.Now().After(due.Add(time.Second)) }) {
		t.Fatal("the grants never fell due")
	}

	// Run 4: revoked on start.
	started := time.Now()
	run4 := startBinary(t, h, nil)
	run4.waitReady(t, h)
	for _, id := range []string{pid, cid} {
		g := w.waitGrant(id, wait, "expired", func(g grantRow) bool { return g.State == "expired" })
		if g.EndReason != "expired" || g.EndedAt.Before(started) {
			t.Errorf("grant %s: %+v, want expired on restart", id, g)
		}
		if took := g.EndedAt.Sub(started); took > 10*time.Second {
			t.Errorf("grant %s was revoked %v after the restart, not on start", id, took)
		}
		w.waitEvent("grant.expired", id)
		if live := w.grantTokens(id); len(live) != 0 {
			t.Errorf("grant %s still has live tokens %v", id, live)
		}
	}
	if w.tokenAlive(tok) {
		t.Error("the overdue grant's token still works")
	}
	// The undelivered token's wrapping token lives 10 minutes in Vault: only
	// the bot's revoke ends it this early.
	if w.accessorAlive(c.WrapAccessor) || w.accessorAlive(c.TokenAccessor) {
		t.Error("the undelivered token (or its wrapping token) was not revoked")
	}
	w.dm(harness.Alice, pid, "has ended: expired")
	w.settled()
	if n := w.issuedTokens(); n != 2 {
		t.Errorf("%d tokens issued in all, want 2 (Alice's, delivered once, and Carol's undelivered one, never re-issued)", n)
	}
	if dms := w.tokenDMs(); len(dms) != 1 {
		t.Errorf("%d token DMs, want exactly 1", len(dms))
	}
	if err := run4.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, sig := run4.wait(t, wait); code != 0 {
		t.Errorf("run 4 exited %d (signal %v) after SIGTERM", code, sig)
	}
	keep("run 4", run4)
}
