package access_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/policy"
)

func TestDecideApprove(t *testing.T) {
	e := newEnv(t)
	g := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12", "--ttl", "2h")
	na, nm := len(e.store.Events()), len(e.store.Messages())
	e.clock.Advance(5 * 60e9)
	if err := e.decide(accesstest.Lee, strings.ToLower(g.ID), true, ""); err != nil {
		t.Fatal(err)
	}
	got := e.grant(g.ID)
	if got.State != access.StateApproved || got.Approver != "ULEE" || !got.DecidedAt.Equal(t0.Add(5*60e9)) ||
		got.CardChannel != "CAPPROVALS" || got.CardTS != "1700.000100" {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(na, access.ActApproved)
	ms := e.wantMessages(nm, "update:CAPPROVALS", "dm:UANA", "jira-comment:SEC-12", "deliver-grant:"+g.ID)
	if ms[0].TS != "1700.000100" || strings.Contains(string(ms[0].Blocks), "grant_approve") ||
		!strings.Contains(ms[0].Text, "Approved* by <@ULEE> at 2025-03-03 09:05 UTC") {
		t.Errorf("card update: %+v", ms[0])
	}
	if !strings.Contains(ms[2].Text, "approved by ULEE") || !strings.Contains(ms[2].Text, g.ID) {
		t.Errorf("jira comment %q", ms[2].Text)
	}
	// A second click, by anyone, changes nothing and says who decided.
	err := e.decide(accesstest.Kim, g.ID, false, "too late")
	ue, ok := access.IsUserError(err)
	if !ok || !strings.Contains(ue.Msg, "already approved by <@ULEE> at 2025-03-03 09:05 UTC") {
		t.Fatalf("second click: %v", err)
	}
	if e.grant(g.ID).Version != got.Version {
		t.Fatal("the second click changed the grant")
	}
	e.wantActions(na, access.ActApproved, access.ActDecideRefused)
}

func TestDecideDeny(t *testing.T) {
	e := newEnv(t)
	g := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
	if err := e.decide(accesstest.Lee, g.ID, false, ""); err == nil || !strings.Contains(err.Error(), "give a reason") {
		t.Fatalf("deny without a reason: %v", err)
	}
	if ue, _ := access.IsUserError(e.decide(accesstest.Lee, g.ID, false, "bad\x00reason")); ue == nil || ue.Field != "reason" {
		t.Fatal("a control character in a deny reason was accepted")
	}
	na, nm := len(e.store.Events()), len(e.store.Messages())
	if err := e.decide(accesstest.Lee, g.ID, false, "use the <read-only> scope"); err != nil {
		t.Fatal(err)
	}
	got := e.grant(g.ID)
	if got.State != access.StateDenied || got.DenyReason != "use the <read-only> scope" {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(na, access.ActDenied)
	ms := e.wantMessages(nm, "update:CAPPROVALS", "dm:UANA", "jira-comment:SEC-12")
	if !strings.Contains(ms[1].Text, "denied") || !strings.Contains(ms[1].Text, "&lt;read-only&gt;") {
		t.Errorf("DM %q", ms[1].Text)
	}
	if !strings.Contains(ms[2].Text, "Reason: use the <read-only> scope") {
		t.Errorf("jira comment %q", ms[2].Text)
	}
	if ev := e.store.Events()[na]; ev.Reason != "use the <read-only> scope" || ev.Actor != "ULEE" {
		t.Errorf("event %+v", ev)
	}
	if err := e.deliver(g.ID); err != nil || len(e.vault.Tokens()) != 0 {
		t.Fatalf("a denied grant was delivered: %v", err)
	}
}

func TestDecideRefusals(t *testing.T) {
	tests := []struct {
		name string
		who  policy.Person
		want string
	}{
		{"the requester", accesstest.Ana, "You asked for"},
		{"not an approver", accesstest.Bob, "Only the approvers of `payments-rw` may decide"},
		{"a guest in the approvers' group", policy.Person{SlackID: "UG", Guest: true, Groups: []string{"security-leads"}}, "Guest accounts cannot"},
		{"a deactivated approver", policy.Person{SlackID: "ULEE", Deleted: true, Groups: []string{"security-leads"}}, "deactivated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			g := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
			na, nm := len(e.store.Events()), len(e.store.Messages())
			err := e.decide(tt.who, g.ID, true, "")
			ue, ok := access.IsUserError(err)
			if !ok || !ue.Audited || !strings.Contains(ue.Msg, tt.want) {
				t.Fatalf("err = %v", err)
			}
			if got := e.grant(g.ID); got.State != access.StatePending || got.Version != g.Version {
				t.Fatalf("grant changed: %+v", got)
			}
			e.wantActions(na, access.ActDecideRefused)
			e.wantMessages(nm)
			if ev := e.store.Events()[na]; ev.Outcome != "refused" || ev.Actor != tt.who.SlackID {
				t.Fatalf("event %+v", ev)
			}
		})
	}
	e := newEnv(t)
	if ue, ok := access.IsUserError(e.decide(accesstest.Lee, "GZZZZZZZZ", true, "")); !ok || !strings.Contains(ue.Msg, "no grant") {
		t.Fatal("unknown grant")
	}
	if ue, ok := access.IsUserError(e.decide(accesstest.Lee, "<@U1>", true, "")); !ok || !strings.Contains(ue.Msg, "not a grant id") {
		t.Fatal("malformed id")
	}
}

func TestDecideAfterTicketExpiredFails(t *testing.T) {
	e := newEnv(t)
	g := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
	e.clock.Advance(8 * 24 * 60 * 60e9)
	nm := len(e.store.Messages())
	err := e.decide(accesstest.Lee, g.ID, true, "")
	if ue, ok := access.IsUserError(err); !ok || !strings.Contains(ue.Msg, "expired") {
		t.Fatalf("err = %v", err)
	}
	if got := e.grant(g.ID); got.State != access.StateFailed {
		t.Fatalf("state %s", got.State)
	}
	e.wantMessages(nm, "update:CAPPROVALS", "dm:UANA", "jira-comment:SEC-12")
}

// Two approvers click at the same moment (and one click is redelivered):
// exactly one decision, one delivery queued.
func TestDecideConcurrentClicksOneWins(t *testing.T) {
	for round := range 20 {
		e := newEnv(t)
		g := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
		clickers := []struct {
			p       policy.Person
			approve bool
		}{{accesstest.Lee, true}, {accesstest.Kim, true}, {accesstest.Lee, true}, {accesstest.Kim, false}}
		errs := make([]error, len(clickers))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, c := range clickers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = e.svc.Decide(e.ctx, c.p, g.ID, c.approve, "no thanks", access.CardRef{Channel: "CAPPROVALS", TS: "1.2"})
			}()
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
				continue
			}
			if ue, ok := access.IsUserError(err); !ok || !strings.Contains(ue.Msg, "already") {
				t.Fatalf("round %d: loser got %v", round, err)
			}
		}
		decisions := 0
		for _, a := range e.store.Actions() {
			if a == access.ActApproved || a == access.ActDenied {
				decisions++
			}
		}
		got := e.grant(g.ID)
		if won != 1 || decisions != 1 || (got.State != access.StateApproved && got.State != access.StateDenied) {
			t.Fatalf("round %d: %d winners, %d decisions, state %s", round, won, decisions, got.State)
		}
		wantDeliveries := 0
		if got.State == access.StateApproved {
			wantDeliveries = 1
		}
		if n := len(e.store.MessagesOf("deliver-grant")); n != wantDeliveries {
			t.Fatalf("round %d: %d deliveries queued", round, n)
		}
	}
}

// The requester's eligibility is checked again when an approver clicks: a
// requester who lost it since asking makes the request fail (nothing is
// granted, the requester and the card are told); a lookup that cannot be
// made refuses the click and changes nothing.
func TestDecideRequesterNoLongerEligible(t *testing.T) {
	e := newEnv(t)
	g := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
	e.dir.Err = errors.New("users.info: timeout")
	err := e.decide(accesstest.Lee, g.ID, true, "")
	if ue, ok := access.IsUserError(err); !ok || !strings.Contains(ue.Msg, "could not confirm with Slack that <@UANA> may still have") {
		t.Fatalf("lookup failure: %v", err)
	}
	if e.grant(g.ID).State != access.StatePending {
		t.Fatal("a failed lookup changed the grant")
	}
	e.dir.Err = nil
	moved := accesstest.Ana
	moved.Email = "ana@elsewhere.example" // payments-rw names Ana by e-mail
	e.dir.Set(moved)
	na, nm := len(e.store.Events()), len(e.store.Messages())
	err = e.decide(accesstest.Lee, g.ID, true, "")
	if ue, ok := access.IsUserError(err); !ok || !strings.Contains(ue.Msg, "is no longer eligible for payments-rw") {
		t.Fatalf("err = %v", err)
	}
	if got := e.grant(g.ID); got.State != access.StateFailed {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(na, access.ActFailed)
	e.wantMessages(nm, "update:CAPPROVALS", "dm:UANA", "jira-comment:SEC-12")
}

// A click on the card of a request that ended before anyone decided
// changes nothing but the card, which is brought up to its outcome; only
// the refusal is audited.
func TestDecideStaleCardOfEndedRequest(t *testing.T) {
	e := newEnv(t)
	g := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
	if err := e.revoke(g.ID, accesstest.Ana.SlackID); err != nil {
		t.Fatal(err)
	}
	ended := e.grant(g.ID)
	na, nm := len(e.store.Events()), len(e.store.Messages())
	err := e.decide(accesstest.Lee, g.ID, true, "")
	if ue, ok := access.IsUserError(err); !ok || !strings.Contains(ue.Msg, "was cancelled") || !strings.Contains(ue.Msg, "nothing to decide") {
		t.Fatalf("err = %v", err)
	}
	if got := e.grant(g.ID); got.Version != ended.Version || got.State != ended.State {
		t.Fatalf("the stale click changed the grant: %+v", got)
	}
	e.wantActions(na, access.ActDecideRefused)
	ms := e.wantMessages(nm, "update:CAPPROVALS")
	if strings.Contains(string(ms[0].Blocks), "grant_approve") || !strings.Contains(ms[0].Text, "*Ended*") {
		t.Errorf("card update %+v", ms[0])
	}
	// Once the card shows the outcome, another click leaves it alone.
	withCard := e.grant(g.ID)
	withCard.CardChannel, withCard.CardTS = "CAPPROVALS", "1700.000100"
	e.store.Put(withCard)
	nm = len(e.store.Messages())
	_ = e.decide(accesstest.Kim, g.ID, true, "")
	e.wantMessages(nm)
}
