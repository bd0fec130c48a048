package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakejira"
	"github.com/secretbot/secretbot/e2e/fakepd"
	"github.com/secretbot/secretbot/e2e/harness"
	"github.com/secretbot/secretbot/e2e/internal/fault"
)

// Access requests, issue 3: A08–A12, on-call access bound to an incident,
// fail-closed checks and limits.

// pollInterval is the harness's pagerduty.incident_poll_interval.
const pollInterval = 2 * time.Second

// sweepPeriod is how often the bot runs its sweep (internal/app.sweepEvery):
// a resolved incident is seen at the first poll after it resolved, and the
// poll runs inside a sweep.
const sweepPeriod = 2 * time.Second

// onCallGrant has Carol, on call, request platform-ro for the open
// incident, and returns the grant id and the DM that delivered it.
func onCallGrant(t *testing.T, w *world, ttl string) (string, wrapped) {
	t.Helper()
	r := w.outcome(w.ask(harness.Carol, "request platform-ro --ttl "+ttl+" --incident "+harness.OpenIncident+` --reason "platform-api 5xx"`))
	if !strings.Contains(r.Text, sayAutoOK) {
		t.Fatalf("the on-call request was not approved automatically:\n%s", r.Text)
	}
	mustContain(t, "the outcome", r.Text, "*PagerDuty on-call* passed", "*PagerDuty incident* passed")
	id := grantID(t, r.Text)
	return id, w.tokenDM(harness.Carol, id)
}

func TestA08_OnCallIncidentTokenRevokedWhenIncidentResolves(t *testing.T) {
	w := startA(t, "A08", harness.Options{})
	id, d := onCallGrant(t, w, "2h")
	tok := w.unwrap(d.wrapToken)
	checkGrantToken(t, w.lookupSelf(tok), "platform-ro", 2*time.Hour, map[string]string{"grant": id,
		"user": harness.Carol.Slack, "email": harness.Carol.Email, "scope": "platform-ro", "incident": harness.OpenIncident},
		harness.Carol.Name)
	if cs := w.cards(id); len(cs) != 0 {
		t.Errorf("an approval card was posted for a scope PagerDuty approves: %s", cs[0].Text)
	}

	// The bot opened a Jira ticket recording the grant and its incident.
	var key string
	if !until(wait, func() bool {
		for _, c := range w.Jira.CreatedIssues() {
			if strings.Contains(fmt.Sprint(c.Fields), id) {
				key = c.Key
				mustContain(t, "the opened ticket", fmt.Sprint(c.Fields), harness.OpenIncident, "platform-ro", harness.Carol.Email)
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no Jira ticket was opened for %s: created %+v", id, w.Jira.CreatedIssues())
	}
	if g := w.waitGrant(id, wait, "linked to its ticket", func(g grantRow) bool { return g.Ticket == key }); g.State != "issued" {
		t.Fatalf("grant %+v, want issued", g)
	}

	// The incident resolves: the token is revoked by the next poll.
	resolved := time.Now()
	if !w.PD.ResolveIncident(harness.OpenIncident) {
		t.Fatal("no incident to resolve")
	}
	if !until(wait, func() bool { return !w.tokenAlive(tok) }) {
		t.Fatalf("the token still works %v after its incident resolved", wait)
	}
	took := time.Since(resolved)
	// One poll interval, plus the sweep period the poll runs in, plus the
	// revoke itself.
	if limit := pollInterval + sweepPeriod + time.Second; took > limit {
		t.Errorf("revoked %v after the incident resolved, more than one poll interval (%v) allows (%v)", took, pollInterval, limit)
	}
	t.Logf("revoked %v after the incident resolved", took.Round(10*time.Millisecond))
	if _, err := w.Vault.Client(t, tok).Auth().Token().LookupSelf(); err == nil {
		t.Error("lookup-self with the revoked token still works")
	}
	g := w.waitGrant(id, wait, "revoked", func(g grantRow) bool { return g.State == "revoked" })
	if g.EndReason != "incident-resolved" {
		t.Errorf("end reason %q, want incident-resolved", g.EndReason)
	}
	w.dm(harness.Carol, id, "has ended", "the incident resolved")
	if _, err := w.Jira.WaitComment(key, func(c fakejira.Comment) bool {
		return strings.Contains(c.Body, id) && strings.Contains(c.Body, "incident-resolved")
	}, wait); err != nil {
		t.Errorf("the ticket %s does not record the end: %v (comments %+v)", key, err, w.Jira.Comments(key))
	}
	w.waitEvent("grant.revoked", id)
}

// refusedOnCall has who request platform-ro for incident and checks it is
// refused, with no token and nothing delivered.
func refusedOnCall(t *testing.T, w *world, who harness.Person, incident string, wants ...string) {
	t.Helper()
	r := w.outcome(w.ask(who, "request platform-ro --ttl 1h --incident "+incident))
	mustContain(t, "the answer to "+who.Name, r.Text, append([]string{sayRefused, "Nothing was granted"}, wants...)...)
	id := grantID(t, r.Text)
	if g := w.grant(id); g.State != "failed" || g.TokenAccessor != "" {
		t.Errorf("stored grant %+v, want failed without an accessor", g)
	}
	w.settled()
	if n := w.issuedTokens(); n != 0 || len(w.tokenDMs()) != 0 {
		t.Errorf("%d tokens issued after a refusal", n)
	}
}

func TestA09_SRENotOnCallRefused(t *testing.T) {
	w := startA(t, "A09", harness.Options{})
	// Dave is an SRE with a PagerDuty user, but not on call.
	refusedOnCall(t, w, harness.Dave, harness.OpenIncident, "*PagerDuty on-call* failed", "you are not on call now")
}

func TestA10_IncidentResolvedOrUnknownRefused(t *testing.T) {
	w := startA(t, "A10", harness.Options{})
	w.PD.AddIncident(fakepd.Incident{ID: "PINC0002", Title: "db failover", Status: fakepd.Resolved,
		ServiceID: harness.PlatformService, PolicyID: harness.EscalationPolicy, Assignees: []string{harness.Carol.PD}})
	t.Run("resolved", func(t *testing.T) {
		refusedOnCall(t, w, harness.Carol, "PINC0002", "*PagerDuty incident* failed", "is resolved, not triggered or acknowledged")
	})
	t.Run("unknown", func(t *testing.T) {
		refusedOnCall(t, w, harness.Carol, "PNOSUCH9", "*PagerDuty incident* failed", "no PagerDuty incident PNOSUCH9")
	})
}

func TestA11_OutagesFailClosedAndRetryAfter429(t *testing.T) {
	w := startA(t, "A11", harness.Options{EditConfig: withPaymentsRO})

	t.Run("PagerDuty down", func(t *testing.T) {
		w.PD.SetFailure("/", 500)
		defer w.PD.SetFailure("/", 0)
		refusedOnCall(t, w, harness.Carol, harness.OpenIncident, "could not be checked", "PagerDuty")
	})

	t.Run("Jira 500", func(t *testing.T) {
		w.AddApprovedTicket("SEC-111", harness.Alice, jiraScope, ticketExpiry())
		w.Jira.SetFailure("/rest/api/2/issue/SEC-111", 500)
		defer w.Jira.SetFailure("/rest/api/2/issue/SEC-111", 0)
		r := w.outcome(w.ask(harness.Alice, "request "+jiraScope+" --ttl 1h --ticket SEC-111"))
		mustContain(t, "the refusal", r.Text, sayRefused, "the Jira ticket check could not be made", "SEC-111", "Nothing was granted")
		id := grantID(t, r.Text)
		if cs := w.cards(id); len(cs) != 0 {
			t.Errorf("a card was posted although Jira could not be checked")
		}
		w.settled()
		if n := w.issuedTokens(); n != 0 {
			t.Errorf("%d tokens issued on doubt", n)
		}
	})

	t.Run("Jira 429 then OK", func(t *testing.T) {
		w.AddApprovedTicket("SEC-112", harness.Bob, jiraScope, ticketExpiry())
		w.Jira.SetFault("/rest/api/2/issue/SEC-112", fault.Fault{Status: 429, RetryAfter: "1", Times: 1})
		r := w.outcome(w.ask(harness.Bob, "request "+jiraScope+" --ttl 1h --ticket SEC-112"))
		mustContain(t, "the outcome", r.Text, sayWaiting, "*Jira ticket* passed")
		id := grantID(t, r.Text)
		if n := len(w.Jira.CallsTo("/rest/api/2/issue/SEC-112")); n < 2 {
			t.Errorf("%d reads of SEC-112: the 429 was not retried", n)
		}
		w.click(harness.Sam, w.card(id), "grant_approve")
		d := w.tokenDM(harness.Bob, id)
		checkGrantToken(t, w.lookupSelf(w.unwrap(d.wrapToken)), "platform-ro", time.Hour, map[string]string{"grant": id,
			"user": harness.Bob.Slack, "email": harness.Bob.Email, "scope": jiraScope, "ticket": "SEC-112"}, harness.Bob.Name)
	})
	w.settled()
	if n := w.issuedTokens(); n != 1 {
		t.Errorf("%d tokens issued, want only the one granted after the retry", n)
	}
}

func TestA12_TTLOverMaximumRefused(t *testing.T) {
	w := startA(t, "A12", harness.Options{EditConfig: withPaymentsRO})
	for _, c := range []struct {
		who        harness.Person
		text, want string
	}{
		{harness.Carol, "request platform-ro --ttl 5h --incident " + harness.OpenIncident, "at most 4h"},
		{harness.Alice, "request " + jiraScope + " --ttl 1d --ticket SEC-120", "at most 8h"},
	} {
		r := answer(t, w.Harness, w.ask(c.who, c.text))
		if r.ResponseType != "ephemeral" {
			t.Errorf("%s: response_type %q, want ephemeral", c.text, r.ResponseType)
		}
		mustContain(t, "the refusal of "+c.text, r.Text, "over the maximum", c.want)
	}
	w.settled()
	if gs := w.grants(); len(gs) != 0 {
		t.Errorf("refused requests were stored: %+v", gs)
	}
	if n := w.issuedTokens(); n != 0 || len(w.cards("")) != 0 {
		t.Errorf("%d tokens issued, %d cards posted", n, len(w.cards("")))
	}
	for _, e := range w.events() {
		if e.outcome != "refused" {
			t.Errorf("audit event %s (%s) is not a refusal", e.action, e.outcome)
		}
	}
	if n := len(w.events()); n != 2 {
		t.Errorf("%d audit events, want the 2 refusals", n)
	}
	if n := len(w.PD.Calls()) + len(w.Jira.Calls()); n != 0 {
		t.Errorf("%d calls to PagerDuty and Jira for requests refused on their face", n)
	}
}
