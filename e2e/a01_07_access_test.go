package e2e

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakejira"
	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

// Access requests, issue 3: A01–A07, the Jira-gated, approved path.

// ticketExpiry is a ticket expiry far enough away not to cap a grant.
func ticketExpiry() time.Time { return time.Now().AddDate(0, 0, 30) }

// approvedRequest has Alice request payments-ro with an approved ticket and
// returns the grant id and its approval card.
func approvedRequest(t *testing.T, w *world, key, ttl, reason string) (string, fakeslack.Message) {
	t.Helper()
	w.AddApprovedTicket(key, harness.Alice, jiraScope, ticketExpiry())
	text := "request " + jiraScope + " --ttl " + ttl + " --ticket " + key
	if reason != "" {
		text += ` --reason "` + reason + `"`
	}
	r := w.outcome(w.ask(harness.Alice, text))
	if !strings.Contains(r.Text, sayWaiting) {
		t.Fatalf("the request did not reach an approver:\n%s", r.Text)
	}
	id := grantID(t, r.Text)
	return id, w.card(id)
}

// cardDecided waits for the card at m's place to be edited, and returns it.
func (w *world) cardDecided(m fakeslack.Message, word string) fakeslack.Message {
	w.t.Helper()
	got, err := w.Slack.WaitMessage(func(x fakeslack.Message) bool {
		return x.Channel == m.Channel && x.TS == m.TS && x.Edits > 0 && strings.Contains(x.Text, word)
	}, wait)
	if err != nil {
		cur, _ := w.Slack.Message(m.Channel, m.TS)
		w.t.Fatalf("the card was not updated to say %q: %v\n%s", word, err, cur.Text)
	}
	return got
}

func TestA01_JiraGatedWrappedTokenApprovedAndUnwrapped(t *testing.T) {
	w := startA(t, "A01", harness.Options{EditConfig: withPaymentsRO})
	id, card := approvedRequest(t, w, "SEC-101", "2h", "reconcile the ledger")

	// The card: requester, scope, TTL, reason, the evidence with its link,
	// Approve and Deny.
	mustContain(t, "the approval card", card.Text+string(card.Blocks), "<@"+harness.Alice.Slack+">", "`"+jiraScope+"`",
		"2h", "reconcile the ledger", "SEC-101", "*Jira ticket* passed", w.Jira.URL)
	if ids := fakeslack.ActionIDs(card.Blocks); !slices.Equal(ids, []string{"grant_approve", "grant_deny"}) {
		t.Errorf("card buttons %v, want Approve and Deny", ids)
	}
	if g := w.grant(id); g.State != "pending" {
		t.Fatalf("grant state %s before any decision, want pending", g.State)
	}

	// Sam, the Security Lead (an approver of the scope), approves.
	w.click(harness.Sam, card, "grant_approve")
	decided := w.cardDecided(card, "Approved")
	mustContain(t, "the decided card", decided.Text, "*Approved* by <@"+harness.Sam.Slack+">", " UTC")
	if ids := fakeslack.ActionIDs(decided.Blocks); len(ids) != 0 {
		t.Errorf("the decided card still has buttons %v", ids)
	}

	// The DM: wrapping token, the exact unwrap line, expiry, I'm done.
	d := w.tokenDM(harness.Alice, id)
	if d.addr != w.Getenv("VAULT_ADDR") {
		t.Errorf("the unwrap line names VAULT_ADDR=%s, the bot's Vault is %s", d.addr, w.Getenv("VAULT_ADDR"))
	}
	mustContain(t, "the token DM", d.msg.Text, "It ends at", " UTC")
	if !slices.Contains(fakeslack.ActionIDs(d.msg.Blocks), "grant_done") {
		t.Errorf("the token DM has no I'm done button: %v", fakeslack.ActionIDs(d.msg.Blocks))
	}

	// The unwrapped token is the grant's.
	tok := w.unwrap(d.wrapToken)
	info := w.lookupSelf(tok)
	checkGrantToken(t, info, "platform-ro", 2*time.Hour, map[string]string{"grant": id, "user": harness.Alice.Slack,
		"email": harness.Alice.Email, "scope": jiraScope, "ticket": "SEC-101"}, harness.Alice.Name)
	g := w.grant(id)
	if g.State != "issued" || g.TokenAccessor != info.Accessor || g.Approver != harness.Sam.Slack {
		t.Errorf("stored grant %+v: want issued, accessor %s, approver %s", g, info.Accessor, harness.Sam.Slack)
	}
	if n := len(w.grantTokens(id)); n != 1 || w.issuedTokens() != 1 {
		t.Errorf("%d live tokens for the grant and %d wrapped tokens issued, want 1 and 1", n, w.issuedTokens())
	}
	// The decision is recorded on the ticket and the issue in the security channel.
	if _, err := w.Jira.WaitComment("SEC-101", func(c fakejira.Comment) bool {
		return strings.Contains(c.Body, id) && strings.Contains(c.Body, "approved by "+harness.Sam.Slack)
	}, wait); err != nil {
		t.Errorf("no approval comment on SEC-101: %v", err)
	}
	if _, err := w.Slack.WaitMessage(func(m fakeslack.Message) bool {
		return fakeslack.InChannel(harness.SecurityChannel)(m) && strings.Contains(m.Text, "*Issued*") && strings.Contains(m.Text, id)
	}, wait); err != nil {
		t.Errorf("no issue notice in the security channel: %v", err)
	}
	w.waitEvent("grant.issued", id)
}

func TestA02_TicketNotApprovedRefused(t *testing.T) {
	w := startA(t, "A02", harness.Options{EditConfig: withPaymentsRO})
	w.addTicket("SEC-102", harness.Alice, jiraScope, "Waiting for approval")
	w.Jira.SetApprovals("SEC-102", fakejira.Approval{Name: "Security Lead approval", FinalDecision: "pending",
		Approvers: []fakejira.Approver{{User: fakejira.User{AccountID: harness.Sam.Jira, Name: harness.Sam.Name}, Decision: "pending"}}})

	r := w.outcome(w.ask(harness.Alice, "request "+jiraScope+" --ttl 1h --ticket SEC-102"))
	mustContain(t, "the refusal", r.Text, sayRefused, "SEC-102", "no Service Management approval by a Security Lead", "Nothing was granted")
	id := grantID(t, r.Text)
	// The card would have been queued before the outcome: none was.
	if cs := w.cards(id); len(cs) != 0 {
		t.Errorf("an approval card was posted for a refused request: %s", cs[0].Text)
	}
	if g := w.grant(id); g.State != "failed" || g.TokenAccessor != "" {
		t.Errorf("stored grant %+v, want failed without an accessor", g)
	}
	w.waitEvent("grant.refused", id)
	w.settled()
	if n := w.issuedTokens(); n != 0 || len(w.tokenDMs()) != 0 {
		t.Errorf("%d tokens issued, %d token DMs, for a refused request", n, len(w.tokenDMs()))
	}
}

func TestA03_TicketApprovedByRequesterRefused(t *testing.T) {
	w := startA(t, "A03", harness.Options{EditConfig: withPaymentsRO})
	// Sam is the Security Lead, and approved his own request.
	w.AddApprovedTicket("SEC-103", harness.Sam, jiraScope, ticketExpiry())

	r := w.outcome(w.ask(harness.Sam, "request "+jiraScope+" --ttl 1h --ticket SEC-103"))
	mustContain(t, "the refusal", r.Text, sayRefused, "approved by the requester themself")
	id := grantID(t, r.Text)
	if cs := w.cards(id); len(cs) != 0 {
		t.Errorf("an approval card was posted for a self-approved ticket: %s", cs[0].Text)
	}
	if g := w.grant(id); g.State != "failed" {
		t.Errorf("stored grant state %s, want failed", g.State)
	}
	w.settled()
	if n := w.issuedTokens(); n != 0 {
		t.Errorf("%d tokens issued for a self-approved ticket", n)
	}
}

// unchanged asserts a pending grant and its card are as they were.
func unchanged(t *testing.T, w *world, id string, card fakeslack.Message) {
	t.Helper()
	w.settled()
	if g := w.grant(id); g.State != "pending" || g.Approver != "" {
		t.Errorf("the grant changed: %+v", g)
	}
	cur, _ := w.Slack.Message(card.Channel, card.TS)
	if cur.Edits != 0 || !slices.Equal(fakeslack.ActionIDs(cur.Blocks), []string{"grant_approve", "grant_deny"}) {
		t.Errorf("the card changed (%d edits): %s", cur.Edits, cur.Text)
	}
	if n := len(w.eventsOf("grant.approved", id)); n != 0 {
		t.Errorf("%d approval events", n)
	}
	if dms := w.dmTexts(harness.Alice); len(dms) != 0 {
		t.Errorf("the requester got DMs: %q", dms)
	}
	if n := w.issuedTokens(); n != 0 {
		t.Errorf("%d tokens issued", n)
	}
}

func TestA04_RequesterCannotApproveOwnRequest(t *testing.T) {
	w := startA(t, "A04", harness.Options{EditConfig: withPaymentsRO})
	id, card := approvedRequest(t, w, "SEC-104", "1h", "")

	// Alice is an approver of the scope, but it is her request.
	w.click(harness.Alice, card, "grant_approve")
	m := w.ephemeralTo(harness.Alice, "You asked for")
	mustContain(t, "the refusal", m.Text, id, "someone else")
	if m.Channel != harness.SecurityChannel {
		t.Errorf("refusal posted in %s, want the card's channel %s", m.Channel, harness.SecurityChannel)
	}
	if es := w.eventsOf("grant.decide_refused", id); len(es) != 1 || es[0].actor != harness.Alice.Slack {
		t.Errorf("refusal audit events %+v, want one by Alice", es)
	}
	unchanged(t, w, id, card)
}

func TestA05_NonApproverCannotApprove(t *testing.T) {
	w := startA(t, "A05", harness.Options{EditConfig: withPaymentsRO})
	id, card := approvedRequest(t, w, "SEC-105", "1h", "")

	// Eve is a plain member; Carol an SRE: neither approves payments-ro.
	for _, p := range []harness.Person{harness.Eve, harness.Carol} {
		w.click(p, card, "grant_approve")
		m := w.ephemeralTo(p, "Only the approvers")
		mustContain(t, "the refusal to "+p.Name, m.Text, "`"+jiraScope+"`", "`"+harness.PlatformSecurityGroup+"`")
	}
	if n := len(w.eventsOf("grant.decide_refused", id)); n != 2 {
		t.Errorf("%d refusal audit events, want 2", n)
	}
	unchanged(t, w, id, card)
}

func TestA06_SimultaneousApprovalsAndRedeliveryOneDecision(t *testing.T) {
	w := startA(t, "A06", harness.Options{EditConfig: withPaymentsRO})
	id, card := approvedRequest(t, w, "SEC-106", "1h", "")

	// Bob and Sam press Approve at the same moment; Bob's click is
	// redelivered, as Slack does when an ack is late.
	var envs [2]string
	var wg sync.WaitGroup
	for i, p := range []harness.Person{harness.Bob, harness.Sam} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			env, _, err := w.Slack.ClickButton(p.Slack, card, "grant_approve")
			if err != nil {
				t.Error(err)
			}
			envs[i] = env
		}()
	}
	wg.Wait()
	if err := w.Slack.Redeliver(envs[0]); err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		if _, _, err := w.Slack.WaitAck(env, wait); err != nil {
			t.Fatalf("click %s not acked: %v", env, err)
		}
	}
	d := w.tokenDM(harness.Alice, id)
	// The slower approver is told who decided.
	loser, err := w.Slack.WaitMessage(func(m fakeslack.Message) bool {
		return m.Ephemeral && strings.Contains(m.Text, "already approved by")
	}, wait)
	if err != nil {
		t.Fatalf("the second approver was not told the request was already decided: %v", err)
	}
	w.settled()

	approved := w.eventsOf("grant.approved", id)
	if len(approved) != 1 {
		t.Fatalf("%d approval events, want 1", len(approved))
	}
	winner := approved[0].actor
	if loser.User == winner || (loser.User != harness.Bob.Slack && loser.User != harness.Sam.Slack) {
		t.Errorf("approved by %s, refusal shown to %s", winner, loser.User)
	}
	mustContain(t, "the refusal", loser.Text, "<@"+winner+">")
	if n := len(w.eventsOf("grant.decide_refused", id)); n != 1 {
		t.Errorf("%d refused decisions, want 1 (the redelivery changes nothing)", n)
	}
	if g := w.grant(id); g.Approver != winner || g.State != "issued" {
		t.Errorf("stored grant %+v, want issued, approved by %s", g, winner)
	}
	decided := w.cardDecided(card, "Approved")
	mustContain(t, "the card", decided.Text, "*Approved* by <@"+winner+">")
	if n := len(w.tokenDMs()); n != 1 {
		t.Errorf("%d token DMs, want 1", n)
	}
	if n, live := w.issuedTokens(), len(w.grantTokens(id)); n != 1 || live != 1 {
		t.Errorf("%d tokens issued and %d live for the grant, want 1 and 1", n, live)
	}
	tok := w.unwrap(d.wrapToken)
	checkGrantToken(t, w.lookupSelf(tok), "platform-ro", time.Hour, map[string]string{"grant": id, "user": harness.Alice.Slack,
		"email": harness.Alice.Email, "scope": jiraScope, "ticket": "SEC-106"}, harness.Alice.Name)
}

func TestA07_DenyWithReason(t *testing.T) {
	w := startA(t, "A07", harness.Options{EditConfig: withPaymentsRO})
	id, card := approvedRequest(t, w, "SEC-107", "1h", "")

	w.click(harness.Bob, card, "grant_deny")
	v, err := w.Slack.WaitView(func(v fakeslack.View) bool {
		return v.CallbackID == "grant_deny_modal" && v.User == harness.Bob.Slack
	}, wait)
	if err != nil {
		t.Fatalf("Deny opened no modal for the reason: %v", err)
	}
	const reason = "the ticket names the whole platform; narrow it to the ledger"
	env := w.Slack.SubmitView(harness.Bob.Slack, v, map[string]map[string]string{"deny_reason": {"deny_reason": reason}})
	if ack, _, err := w.Slack.WaitAck(env, wait); err != nil {
		t.Fatal(err)
	} else if strings.Contains(string(ack), "errors") {
		t.Fatalf("the deny modal was refused: %s", ack)
	}

	dm := w.dm(harness.Alice, "*denied*")
	mustContain(t, "the requester's DM", dm.Text, id, "<@"+harness.Bob.Slack+">", reason)
	if _, err := w.Jira.WaitComment("SEC-107", func(c fakejira.Comment) bool {
		return strings.Contains(c.Body, "denied by "+harness.Bob.Slack) && strings.Contains(c.Body, reason)
	}, wait); err != nil {
		t.Errorf("no denial comment on SEC-107: %v", err)
	}
	decided := w.cardDecided(card, "Denied")
	mustContain(t, "the card", decided.Text, "*Denied* by <@"+harness.Bob.Slack+">", reason)
	if ids := fakeslack.ActionIDs(decided.Blocks); len(ids) != 0 {
		t.Errorf("the denied card still has buttons %v", ids)
	}
	w.settled()
	if g := w.grant(id); g.State != "denied" {
		t.Errorf("grant state %s, want denied", g.State)
	}
	if n := w.issuedTokens(); n != 0 || len(w.tokenDMs()) != 0 {
		t.Errorf("%d tokens issued for a denied request", n)
	}
	w.waitEvent("grant.denied", id)
}
