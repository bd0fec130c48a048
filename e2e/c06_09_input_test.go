package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakejira"
	"github.com/secretbot/secretbot/e2e/fakepd"
	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

// Hostile input and authorization at the moment of action, issue 5:
// C06–C09.

// hostile is text that would ping a channel, spoof a link, mention a user
// and a channel, and smuggle an entity, were it echoed unescaped.
const hostile = "<!channel> please <http://evil.example|click> <@U0LEAD> <#C0EVIL> <!here> &amp;"

// hostileRaw are the sequences of hostile that must never reach Slack as is.
var hostileRaw = []string{"<!channel>", "<!here>", "<http://evil.example", "<@U0LEAD", "<#C0EVIL", "<!subteam"}

// hostileShown is how the start of hostile reads once escaped.
const hostileShown = "&lt;!channel&gt; please &lt;http://evil.example|click&gt; &lt;@U0LEAD&gt;"

// jsonStrings returns every string in a JSON document (Block Kit blocks as
// the bot sent them: encoding/json writes < as \u003c, so the raw bytes
// cannot be searched), joined by newlines.
func jsonStrings(raw []byte) string {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return ""
	}
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			b.WriteString(x)
			b.WriteByte('\n')
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return b.String()
}

// slackTexts is everything the bot said in Slack, texts and blocks decoded:
// messages (with their edits' final form), responses and views.
func (w *world) slackTexts() map[string]string {
	out := map[string]string{}
	for i, m := range w.Slack.Messages() {
		out[fmt.Sprintf("message %d (%s)", i, m.Channel)] = m.Text + "\n" + jsonStrings(m.Blocks)
	}
	for i, r := range w.Slack.Responses("") {
		out[fmt.Sprintf("response %d", i)] = r.Text + "\n" + jsonStrings(r.Blocks) + jsonStrings(r.Raw)
	}
	for i, v := range w.Slack.Views() {
		raw, _ := json.Marshal(v.Raw)
		out[fmt.Sprintf("view %d (%s)", i, v.CallbackID)] = jsonStrings(v.Blocks) + jsonStrings(raw)
	}
	for i, c := range w.Slack.Calls() {
		if c.Method == "chat.postMessage" || c.Method == "chat.update" || c.Method == "chat.postEphemeral" {
			body, _ := json.Marshal(c.JSON)
			form, _ := json.Marshal(c.Form)
			out[fmt.Sprintf("call %d (%s)", i, c.Method)] = jsonStrings(body) + jsonStrings(form)
		}
	}
	return out
}

func TestC06_MentionsAndLinksEscaped(t *testing.T) {
	w := startA(t, "C06", harness.Options{EditConfig: withPaymentsRO})

	// A ticket whose summary, description and justification are hostile,
	// approved by the Security Lead.
	const key = "SEC-601"
	alice := fakejira.User{AccountID: harness.Alice.Jira, Name: harness.Alice.Name, DisplayName: hostile, Email: harness.Alice.Email}
	sam := fakejira.User{AccountID: harness.Sam.Jira, Name: harness.Sam.Name, DisplayName: harness.Sam.Name, Email: harness.Sam.Email}
	w.Jira.AddIssue(fakejira.Issue{Key: key, Summary: hostile, Description: hostile, Reporter: alice,
		Fields: map[string]any{harness.FieldOwner: harness.Alice.Email, harness.FieldScope: jiraScope,
			harness.FieldJustification: hostile, harness.FieldExpiry: ticketExpiry().Format("2006-01-02")}})
	at := time.Now().Add(-10 * time.Minute)
	w.Jira.Transition(key, "Approved", "done", sam, at)
	w.Jira.SetApprovals(key, fakejira.Approval{Name: "Security Lead approval", FinalDecision: "approved", Completed: at,
		Approvers: []fakejira.Approver{{User: sam, Decision: "approved"}}})

	// 1. A request whose reason is hostile reaches the approvers' card.
	r := w.outcome(w.ask(harness.Alice, "request "+jiraScope+" --ttl 1h --ticket "+key+" --reason \""+hostile+"\""))
	if !strings.Contains(r.Text, sayWaiting) {
		t.Fatalf("the request did not reach an approver:\n%s", r.Text)
	}
	mustContain(t, "the requester's summary", r.Text, hostileShown)
	id := grantID(t, r.Text)
	card := w.card(id)
	mustContain(t, "the approval card", card.Text, "Reason: "+hostileShown)
	mustContain(t, "the approval card's blocks", jsonStrings(card.Blocks), "Reason: "+hostileShown)

	// 2. Denied with a hostile reason, typed into the deny form.
	w.click(harness.Bob, card, "grant_deny")
	v, err := w.Slack.WaitView(func(v fakeslack.View) bool {
		return v.CallbackID == "grant_deny_modal" && v.User == harness.Bob.Slack
	}, wait)
	if err != nil {
		t.Fatalf("Deny opened no modal: %v", err)
	}
	env := w.Slack.SubmitView(harness.Bob.Slack, v, map[string]map[string]string{"deny_reason": {"deny_reason": "no: " + hostile}})
	if _, _, err := w.Slack.WaitAck(env, wait); err != nil {
		t.Fatal(err)
	}
	dm := w.dm(harness.Alice, "*denied*")
	mustContain(t, "the denial DM", dm.Text, "Reason: no: "+hostileShown)
	decided := w.cardDecided(card, "Denied")
	mustContain(t, "the denied card", decided.Text+jsonStrings(decided.Blocks), "no: "+hostileShown)

	// 3. A ticket whose scope field is hostile is refused, the field echoed
	// in the refusal.
	w.Jira.AddIssue(fakejira.Issue{Key: "SEC-602", Summary: hostile, Reporter: alice,
		Fields: map[string]any{harness.FieldOwner: harness.Alice.Email, harness.FieldScope: hostile,
			harness.FieldJustification: hostile, harness.FieldExpiry: ticketExpiry().Format("2006-01-02")}})
	w.Jira.Transition("SEC-602", "Approved", "done", sam, at)
	r = w.outcome(w.ask(harness.Alice, "request "+jiraScope+" --ticket sec-602"))
	mustContain(t, "the refusal", r.Text, sayRefused, "scope field says", "&lt;!channel&gt; please")

	// 4. A PagerDuty incident whose title is hostile, named in the evidence.
	inc := w.PD.AddIncident(fakepd.Incident{Title: hostile, ServiceID: harness.PlatformService,
		PolicyID: harness.EscalationPolicy, Assignees: []string{harness.Carol.PD}})
	r = w.outcome(w.ask(harness.Carol, "request platform-ro --ttl 30m --incident "+inc.ID+" --reason \""+hostile+"\""))
	mustContain(t, "the incident request's summary", r.Text+jsonStrings(r.Blocks), hostileShown)

	// 5. An unknown subcommand and a bad flag echo what was typed, escaped.
	r = answer(t, w.Harness, w.ask(harness.Eve, hostile))
	mustContain(t, "the unknown-subcommand answer", r.Text, "&lt;!channel&gt;")
	w.settled()

	// Nowhere did the bot say any of it unescaped, in text or in blocks.
	n := 0
	for where, text := range w.slackTexts() {
		for _, bad := range hostileRaw {
			if strings.Contains(text, bad) {
				t.Errorf("%s carries %q unescaped:\n%s", where, bad, text)
			}
		}
		if strings.Contains(text, "&lt;!channel&gt;") {
			n++
		}
	}
	if n < 6 {
		t.Errorf("the escaped text shows in %d places, want the summary, card, DM, refusal, evidence and answer", n)
	}
}

func TestC07_RateLimit(t *testing.T) {
	const window = 12 * time.Second
	w := startA(t, "C07", harness.Options{EditConfig: func(doc map[string]any) {
		doc["limits"] = map[string]any{"requests_per_user": 2, "commands_per_user": 50, "window": "12s"}
	}})
	// Dave (an SRE, not on call) asks twice: each request is stored and
	// refused by the evidence, and counts.
	ask := func(who harness.Person) fakeslack.Response {
		return w.responseWith(w.ask(who, "request platform-ro --ttl 30m --incident "+harness.OpenIncident),
			sayRefused, sayWaiting, sayAutoOK, "the limit is")
	}
	start := time.Now()
	for i := range 2 {
		if r := ask(harness.Dave); !strings.Contains(r.Text, sayRefused) || strings.Contains(r.Text, "the limit is") {
			t.Fatalf("request %d: want a refusal by the evidence, got:\n%s", i+1, r.Text)
		}
	}
	// The third within the window is refused by the limit, saying what it
	// is and when to try again; nothing is stored.
	r := ask(harness.Dave)
	if time.Since(start) < window {
		mustContain(t, "the limited answer", r.Text, "You have made 2 access requests in the last 12s: the limit is 2 per 12s per person. Try again in ", " UTC)")
		if got := len(w.grants()); got != 2 {
			t.Errorf("%d grants stored, want 2", got)
		}
		if ev := w.waitEvent("grant.rate_limited", ""); ev.actor != harness.Dave.Slack {
			t.Errorf("rate-limit event by %q", ev.actor)
		}
	} else {
		t.Logf("the machine is slow: the window passed before the third request (%v)", time.Since(start))
	}
	// Carol is not affected.
	if r := w.outcome(w.ask(harness.Carol, "request platform-ro --ttl 30m --incident "+harness.OpenIncident)); !strings.Contains(r.Text, sayAutoOK) {
		t.Errorf("Carol's request:\n%s", r.Text)
	}
	// After the window Dave may ask again.
	time.Sleep(time.Until(start.Add(window + time.Second)))
	if r := ask(harness.Dave); strings.Contains(r.Text, "the limit is") || !strings.Contains(r.Text, sayRefused) {
		t.Errorf("after the window Dave's request: %s", r.Text)
	}
}

func TestC08_RightsCheckedAtClickTime(t *testing.T) {
	w := startA(t, "C08", harness.Options{EditConfig: withPaymentsRO})
	// Two requests by Alice while Alice, Bob and Sam are Platform Security
	// (eligible for and approvers of both scopes).
	id1, card1 := approvedRequest(t, w, "SEC-801", "1h", "ledger")
	w.AddApprovedTicket("SEC-802", harness.Alice, "platform-rw", ticketExpiry())
	r := w.outcome(w.ask(harness.Alice, "request platform-rw --ttl 1h --ticket SEC-802"))
	if !strings.Contains(r.Text, sayWaiting) {
		t.Fatalf("the second request did not reach an approver:\n%s", r.Text)
	}
	id2 := grantID(t, r.Text)
	card2 := w.card(id2)

	// Bob leaves Platform Security; his click a moment later is refused
	// and changes nothing.
	w.Slack.SetGroupMembers(harness.PlatformSecurityGroup, harness.Alice.Slack, harness.Sam.Slack)
	w.click(harness.Bob, card1, "grant_approve")
	refusal := w.ephemeralTo(harness.Bob, "may decide")
	mustContain(t, "Bob's refusal", refusal.Text, "Only the approvers of `"+jiraScope+"` may decide")
	w.waitEvent("grant.decide_refused", id1)
	if g := w.grant(id1); g.State != "pending" || g.Approver != "" {
		t.Fatalf("Bob's click changed the grant: %+v", g)
	}
	if cur, _ := w.Slack.Message(card1.Channel, card1.TS); cur.Edits != 0 {
		t.Errorf("the card changed after a refused click:\n%s", cur.Text)
	}
	// Sam, still an approver, approves.
	w.click(harness.Sam, card1, "grant_approve")
	w.cardDecided(card1, "Approved")
	if g := w.waitGrant(id1, wait, "approved by Sam", func(g grantRow) bool { return g.Approver == harness.Sam.Slack }); g.State == "pending" {
		t.Fatalf("grant %+v", g)
	}
	if n := len(w.eventsOf("grant.approved", id1)); n != 1 {
		t.Errorf("%d approval events, want 1", n)
	}

	// Alice leaves Platform Security: her pending request is no longer
	// one she may have. Sam's approval fails it, closed, saying why.
	w.Slack.SetGroupMembers(harness.PlatformSecurityGroup, harness.Sam.Slack)
	w.click(harness.Sam, card2, "grant_approve")
	mustContain(t, "Sam's answer", w.ephemeralTo(harness.Sam, "cannot be approved").Text, "no longer eligible for platform-rw", "Nothing was granted")
	w.cardDecided(card2, "Failed")
	w.dm(harness.Alice, id2, "*failed*", "no longer eligible")
	if g := w.grant(id2); g.State != "failed" || g.TokenAccessor != "" || g.VaultGroup != "" {
		t.Errorf("grant %+v: want failed, nothing issued", g)
	}
	if n := len(w.eventsOf("grant.approved", id2)); n != 0 {
		t.Errorf("%d approval events for the ineligible requester's grant", n)
	}
}

func TestC09_StaleButton(t *testing.T) {
	w := startA(t, "C09", harness.Options{EditConfig: withPaymentsRO})

	// Decided: Sam approves; Bob then presses Approve on the card as he
	// still sees it.
	id1, card1 := approvedRequest(t, w, "SEC-901", "1h", "")
	w.click(harness.Sam, card1, "grant_approve")
	decided := w.cardDecided(card1, "Approved")
	w.waitGrant(id1, wait, "issued", func(g grantRow) bool { return g.State == "issued" })
	version := w.cardVersion(card1)
	w.click(harness.Bob, card1, "grant_approve")
	mustContain(t, "Bob's answer", w.ephemeralTo(harness.Bob, "already approved").Text,
		id1, "was already approved by <@"+harness.Sam.Slack+">")
	w.waitEvent("grant.decide_refused", id1)
	w.settled()
	if n := len(w.eventsOf("grant.approved", id1)); n != 1 {
		t.Errorf("%d approval events, want 1", n)
	}
	if g := w.grant(id1); g.Approver != harness.Sam.Slack || g.State != "issued" {
		t.Errorf("grant %+v after the stale click", g)
	}
	if cur, _ := w.Slack.Message(card1.Channel, card1.TS); w.cardVersion(card1) != version || !strings.Contains(cur.Text, "*Approved* by <@"+harness.Sam.Slack+">") {
		t.Errorf("the card changed after the stale click:\n%s\nwas:\n%s", cur.Text, decided.Text)
	}
	if n := w.issuedTokens(); n != 1 {
		t.Errorf("%d tokens issued, want 1", n)
	}

	// Ended before anyone clicked: Alice withdraws her request; Sam's
	// click then says so, changes nothing, and the card loses its buttons.
	w.AddApprovedTicket("SEC-902", harness.Alice, "platform-rw", ticketExpiry())
	r := w.outcome(w.ask(harness.Alice, "request platform-rw --ttl 1h --ticket SEC-902"))
	id2 := grantID(t, r.Text)
	card2 := w.card(id2)
	mustContain(t, "the withdrawal", answer(t, w.Harness, w.ask(harness.Alice, "revoke "+id2)).Text, id2)
	w.waitGrant(id2, wait, "withdrawn", func(g grantRow) bool { return g.State == "revoked" })
	w.click(harness.Sam, card2, "grant_approve")
	mustContain(t, "Sam's answer", w.ephemeralTo(harness.Sam, "nothing to decide").Text, id2, "cancelled")
	ended := w.cardDecided(card2, "Ended")
	if ids := fakeslack.ActionIDs(ended.Blocks); len(ids) != 0 {
		t.Errorf("the ended card still has buttons %v", ids)
	}
	w.settled()
	if n := len(w.eventsOf("grant.approved", id2)); n != 0 {
		t.Errorf("%d approval events for a withdrawn request", n)
	}
	if g := w.grant(id2); g.State != "revoked" || g.Approver != "" {
		t.Errorf("grant %+v after the stale click", g)
	}
}

// A request nobody decides within limits.request_open_for expires; a click
// on its card afterwards changes nothing but says so.
func TestC09_StaleButtonExpired(t *testing.T) {
	w := startA(t, "C09-expired", harness.Options{EditConfig: func(doc map[string]any) {
		withPaymentsRO(doc)
		doc["limits"] = map[string]any{"request_open_for": "3s"}
	}})
	id, card := approvedRequest(t, w, "SEC-903", "1h", "")
	w.waitGrant(id, wait, "expired", func(g grantRow) bool { return g.State == "expired" })
	w.dm(harness.Alice, id, "expired", "no approver decided within 3s")
	w.waitEvent("grant.expired", id)
	w.click(harness.Sam, card, "grant_approve")
	mustContain(t, "Sam's answer", w.ephemeralTo(harness.Sam, "nothing to decide").Text, id, "expired before anyone decided")
	ended := w.cardDecided(card, "Ended")
	if ids := fakeslack.ActionIDs(ended.Blocks); len(ids) != 0 {
		t.Errorf("the expired card still has buttons %v", ids)
	}
	w.settled()
	if n := len(w.eventsOf("grant.approved", id)); n != 0 {
		t.Errorf("%d approval events for an expired request", n)
	}
	if g := w.grant(id); g.State != "expired" || g.Approver != "" || g.TokenAccessor != "" {
		t.Errorf("grant %+v after the late click", g)
	}
}

// cardVersion counts the edits of the message m stands for.
func (w *world) cardVersion(m fakeslack.Message) int {
	cur, _ := w.Slack.Message(m.Channel, m.TS)
	return cur.Edits
}
