package access_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
)

func TestRequestJiraScopeReachesTheApprovers(t *testing.T) {
	e := newEnv(t)
	g := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12", "--ttl", "2h", "--reason", "rotate <!channel> key")
	if g.State != access.StatePending || g.Requester != "UANA" || g.TTL != 2*time.Hour || g.Version < 2 {
		t.Fatalf("grant %+v", g)
	}
	if len(g.Evidence) != 1 || g.Evidence[0].Status != access.EvidenceOK || !g.NotAfter.Equal(t0.Add(7*24*time.Hour)) {
		t.Fatalf("evidence %+v not after %s", g.Evidence, g.NotAfter)
	}
	e.wantActions(0, access.ActRequested, access.ActChecksPassed)
	ms := e.wantMessages(0, "respond:"+responseURL, "post:CAPPROVALS", "respond:"+responseURL)
	if ms[0].ReplaceOriginal || !ms[2].ReplaceOriginal {
		t.Errorf("first summary must be new, later ones replace it: %+v", ms)
	}
	if !strings.Contains(ms[0].Text, "checking") || !strings.Contains(ms[2].Text, "Waiting for an approver") {
		t.Errorf("summaries: %q / %q", ms[0].Text, ms[2].Text)
	}
	card := blocksText(ms[1])
	for _, w := range []string{`"action_id":"grant_approve"`, `"action_id":"grant_deny"`, `"value":"` + g.ID + `"`,
		`"style":"primary"`, `"style":"danger"`, "approved by Lee Lead", "https://jira.lumi.example/browse/SEC-12", "UANA", "2h"} {
		if !strings.Contains(card, w) {
			t.Errorf("card lacks %s: %s", w, card)
		}
	}
	// User text is escaped everywhere.
	for _, m := range e.store.Messages() {
		if strings.Contains(m.Text, "<!channel>") || strings.Contains(string(m.Blocks), "<!channel>") {
			t.Errorf("unescaped user text in %s", m.Kind)
		}
	}
	if n := len(e.jira.Comments()); n != 0 {
		t.Errorf("comments written inline: %d", n)
	}
}

func TestRequestChecksRunInParallel(t *testing.T) {
	e := newEnv(t)
	e.pd.Delay = 300 * time.Millisecond
	start := time.Now()
	g := e.mustRequest(accesstest.Bob, "platform-ro", "--incident", "PABC123")
	if el := time.Since(start); el > 550*time.Millisecond {
		t.Fatalf("two 300ms checks took %s: not in parallel", el)
	}
	if g.State != access.StateApproved || g.Approver != access.AutoApprover {
		t.Fatalf("grant %+v", g)
	}
	e.wantActions(0, access.ActRequested, access.ActApproved)
	// Summary, one intermediate update, the outcome; then delivery is queued.
	e.wantMessages(0, "respond:"+responseURL, "respond:"+responseURL, "deliver-grant:"+g.ID, "respond:"+responseURL)
}

func TestRequestPagerDutyDownRefuses(t *testing.T) {
	e := newEnv(t)
	e.pd.SetErr(errors.New("pagerduty: GET /oncalls: 503 Service Unavailable after 3 attempts"))
	g, err := e.request(accesstest.Bob, "platform-ro", "--incident", "PABC123")
	ue, ok := access.IsUserError(err)
	if !ok || !ue.Audited || !ue.Told || !strings.Contains(ue.Msg, "PagerDuty could not be checked") || !strings.Contains(ue.Msg, "503") {
		t.Fatalf("err = %#v", err)
	}
	if g.State != access.StateFailed || !strings.Contains(g.LastError, "PagerDuty could not be checked") {
		t.Fatalf("grant %+v", g)
	}
	for _, ev := range g.Evidence {
		if ev.Status != access.EvidenceError {
			t.Errorf("evidence %+v, want error", ev)
		}
	}
	e.wantActions(0, access.ActRequested, access.ActRefused)
	ms := e.wantMessages(0, "respond:"+responseURL, "respond:"+responseURL, "respond:"+responseURL)
	if !strings.Contains(ms[2].Text, "Refused") || !strings.Contains(ms[2].Text, "PagerDuty could not be checked") {
		t.Fatalf("outcome %q", ms[2].Text)
	}
	if len(e.vault.Tokens()) != 0 {
		t.Fatal("a token was issued on doubt")
	}
}

func TestRequestRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*env)
		who   string
		args  []string
		want  []string
	}{
		{"not on call", nil, "ana", []string{"platform-ro", "--incident", "PABC123"},
			[]string{"PagerDuty on-call check failed", "not on call now"}},
		{"incident resolved", func(e *env) {
			e.pd.SetIncident(access.Incident{ID: "PRES1", Status: "resolved"}, "PRES1")
		}, "bob", []string{"platform-ro", "--incident", "PRES1"}, []string{"PRES1 is resolved"}},
		{"incident unknown", nil, "bob", []string{"platform-ro", "--incident", "PNOPE1"}, []string{"no PagerDuty incident PNOPE1"}},
		{"incident elsewhere, not assigned", func(e *env) {
			e.pd.SetIncident(access.Incident{ID: "POTHER", Status: "acknowledged", AssigneeIDs: []string{"PSOMEONE"}}, "POTHER")
		}, "bob", []string{"platform-ro", "--incident", "POTHER"}, []string{"neither on a service of the configured escalation policies nor assigned to you"}},
		{"PagerDuty times out", func(e *env) {
			e.pd.Delay = 2 * time.Second
			e.svc.CheckTimeout = 50 * time.Millisecond
		}, "bob", []string{"platform-ro", "--incident", "PABC123"}, []string{"could not be made", "no answer within 50ms"}},
		{"ticket unknown", nil, "ana", []string{"payments-rw", "--ticket", "SEC-404"}, []string{"SEC-404 does not exist"}},
		{"Jira down", func(e *env) {
			e.jira.SetTicketErr("SEC-12", errors.New("jira: get ticket SEC-12: 500 Internal Server Error"))
		}, "ana", []string{"payments-rw", "--ticket", "SEC-12"}, []string{"Jira ticket check could not be made", "Jira could not be checked", "500"}},
		{"requester unknown to Jira", func(e *env) { e.jira.SetAccount("ana@lumi.example", "") }, "ana",
			[]string{"payments-rw", "--ticket", "SEC-12"}, []string{"could not be identified"}},
		{"Jira user search fails", func(e *env) { e.jira.AccountErr = errors.New("jira: 429 after retries") }, "ana",
			[]string{"payments-rw", "--ticket", "SEC-12"}, []string{"Jira could not be checked (finding your Jira account)"}},
		{"ticket approved by the requester", func(e *env) {
			f := approvedTicket()
			f.Key, f.Scope = "SEC-13", "payments-rw"
			f.Approvals[0].Approvers = []access.JiraUser{jAna}
			e.jira.SetTicket(f)
		}, "ana", []string{"payments-rw", "--ticket", "SEC-13"}, []string{"approved by the requester themself"}},
		{"Jira not configured", func(e *env) { e.svc.Tickets = nil }, "ana", []string{"payments-rw", "--ticket", "SEC-12"},
			[]string{"Jira is not configured"}},
		{"PagerDuty not configured", func(e *env) { e.svc.OnCall = nil }, "bob", []string{"platform-ro", "--incident", "PABC123"},
			[]string{"PagerDuty is not configured"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			p := accesstest.Ana
			if tt.who == "bob" {
				p = accesstest.Bob
			}
			g, err := e.request(p, tt.args...)
			ue, ok := access.IsUserError(err)
			if !ok || !ue.Told {
				t.Fatalf("err = %v, want a told *UserError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(ue.Msg, w) {
					t.Errorf("%q lacks %q", ue.Msg, w)
				}
			}
			if g.State != access.StateFailed {
				t.Fatalf("state %s", g.State)
			}
			e.wantActions(0, access.ActRequested, access.ActRefused)
			if len(e.store.MessagesOf(outbox.Post)) != 0 || len(e.store.MessagesOf(outbox.DeliverGrant)) != 0 {
				t.Fatal("a card or a delivery for a refused request")
			}
			if ev := e.store.Events()[1]; ev.Outcome != "refused" || ev.Links["grant"] != g.ID {
				t.Fatalf("refusal event %+v", ev)
			}
		})
	}
}

func TestRequestRefusedBeforeStoringIsAudited(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.Request(e.ctx, accesstest.Bob, access.RequestArgs{Scope: "payments-rw", Ticket: "SEC-12"}, responseURL)
	ue, ok := access.IsUserError(err)
	if !ok || !ue.Audited || ue.Told || !strings.Contains(ue.Msg, "You may request: platform-ro") {
		t.Fatalf("err = %#v", err)
	}
	if len(e.store.Grants()) != 0 || len(e.store.Messages()) != 0 {
		t.Fatal("something was stored for a refused request")
	}
	e.wantActions(0, access.ActRequestRefused)
	if ev := e.store.Events()[0]; ev.Actor != "UBOB" || ev.Outcome != "refused" || ev.Scope != "payments-rw" {
		t.Fatalf("event %+v", ev)
	}
	// Over-long TTL passed straight in (not through ParseRequest) is refused too.
	_, err = e.svc.Request(e.ctx, accesstest.Bob, access.RequestArgs{Scope: "platform-ro", Incident: "PABC123", TTL: 5 * time.Hour}, responseURL)
	if ue, ok := access.IsUserError(err); !ok || !strings.Contains(ue.Msg, "at most 4h") {
		t.Fatalf("err = %v", err)
	}
}

func TestRequestDuplicateRefused(t *testing.T) {
	e := newEnv(t)
	first := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
	_, err := e.request(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
	ue, ok := access.IsUserError(err)
	if !ok || !strings.Contains(ue.Msg, "you already have `"+first.ID+"`") {
		t.Fatalf("err = %v", err)
	}
	if len(e.store.Grants()) != 1 {
		t.Fatal("a second grant was stored")
	}
}

func TestRequestWithoutResponseURLUsesDMs(t *testing.T) {
	e := newEnv(t)
	a, _ := access.ParseRequest([]string{"payments-rw", "--ticket", "SEC-12"}, e.svc.Config, accesstest.Ana)
	if _, err := e.svc.Request(e.ctx, accesstest.Ana, a, ""); err != nil {
		t.Fatal(err)
	}
	e.wantMessages(0, "dm:UANA", "post:CAPPROVALS", "dm:UANA")
}

func TestStaleChecksFailOnSweep(t *testing.T) {
	e := newEnv(t)
	g := access.Grant{ID: "GSTALE001", Requester: "UBOB", Email: "bob@lumi.example", Scope: "platform-ro", TTL: time.Hour,
		Incident: "PABC123", State: access.StatePending, Version: 1,
		Evidence:  []access.Evidence{{Kind: "oncall", Status: "ok"}, {Kind: "incident", Status: "checking"}},
		CreatedAt: t0, UpdatedAt: t0}
	e.store.Put(g)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if e.grant(g.ID).State != access.StatePending {
		t.Fatal("fresh checks were failed")
	}
	e.clock.Advance(6 * time.Minute)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if got := e.grant(g.ID); got.State != access.StateFailed || !strings.Contains(got.LastError, "interrupted") {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(0, access.ActFailed)
	e.wantMessages(0, "dm:UBOB")
}

// A crash right after the last check result is stored must not leave a
// request whose checks are done but whose card was never queued: nothing
// would ever ask an approver, and the requester could not ask again. The
// last result and the conclusion (card, refusal or approval) commit
// together.
func TestRequestLastCheckAndConclusionCommitTogether(t *testing.T) {
	e := newEnv(t)
	var n int
	e.store.FailTx = func() error {
		n++
		if n > 2 { // the insert, then the last (only) check result: then the "crash"
			return errors.New("killed")
		}
		return nil
	}
	_, _ = e.request(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
	gs := e.store.Grants()
	if len(gs) != 1 {
		t.Fatalf("%d grants stored", len(gs))
	}
	for _, ev := range gs[0].Evidence {
		if ev.Status == access.EvidenceChecking {
			t.Fatalf("the check result was not stored: %+v", gs[0].Evidence)
		}
	}
	carded := false
	for _, m := range e.store.Messages() {
		carded = carded || m.Kind == outbox.Post && strings.Contains(blocksText(m), `"action_id":"grant_approve"`)
	}
	if !carded {
		t.Fatalf("the checks are done (%+v) but no approval card is owed", gs[0].Evidence)
	}
}

// The request limit counts the grants stored in the window, whatever became
// of them, per person; the refusal names the limit and when to try again.
func TestRequestRateLimit(t *testing.T) {
	e := newEnv(t)
	e.svc.Config.Limits = config.Limits{RequestsPerUser: 2, Window: config.Duration(time.Minute)}
	for range 2 {
		g := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
		if err := e.revoke(g.ID, accesstest.Ana.SlackID); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(10 * time.Second)
	}
	before := len(e.store.Events())
	_, err := e.request(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
	ue, ok := access.IsUserError(err)
	if !ok || !ue.Audited || !strings.Contains(ue.Msg, "the limit is 2 per 1m per person. Try again in 40s (after ") {
		t.Fatalf("err = %v", err)
	}
	if n := len(e.store.Grants()); n != 2 {
		t.Fatalf("%d grants stored", n)
	}
	e.wantActions(before, access.ActRateLimited)
	// Others are not affected.
	e.mustRequest(accesstest.Bob, "platform-ro", "--incident", "PABC123")
	// Once the first request leaves the window, one more fits.
	e.clock.Advance(41 * time.Second)
	e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
}
