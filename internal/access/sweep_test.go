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

func TestSweepExpiry(t *testing.T) {
	e := newEnv(t)
	g := e.issuedPayments()
	e.vault.Unwrap(g.WrapAccessor)
	e.clock.Advance(9*time.Minute + 30*time.Second) // the last minute of the wrap: seen used
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(t0.Add(2*time.Hour - time.Second))
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if e.grant(g.ID).State != access.StateIssued {
		t.Fatal("ended early")
	}
	na, nm := len(e.store.Events()), len(e.store.Messages())
	e.clock.Advance(time.Second)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	got := e.grant(g.ID)
	if got.State != access.StateExpired || got.EndReason != access.EndExpired || e.vault.LiveTokens() != 0 {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(na, access.ActExpired)
	if ev := e.store.Events()[na]; ev.Actor != "secretbot" {
		t.Fatalf("event %+v", ev)
	}
	e.wantMessages(nm, "dm:UANA", "post:CSEC", "jira-comment:SEC-12")
	// Nothing more on the next sweep.
	if err := e.sweep(); err != nil || len(e.store.Events()) != na+1 {
		t.Fatalf("second sweep: %v", err)
	}
}

// Revocations that fell due while the bot was down happen on the first sweep.
func TestSweepOverdueAtStart(t *testing.T) {
	e := newEnv(t)
	a := e.issuedPayments()
	b := e.issuedRO()
	e.clock.Advance(48 * time.Hour)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a.ID, b.ID} {
		if got := e.grant(id); got.State != access.StateExpired {
			t.Fatalf("%s: %s", id, got.State)
		}
	}
	if e.vault.LiveTokens() != 0 {
		t.Fatal("a token lives")
	}
}

func TestSweepWrapUnused(t *testing.T) {
	e := newEnv(t)
	g := e.issuedPayments()
	e.clock.Advance(8 * time.Minute) // 2m before the wrap expires: not looked at yet
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if got := e.grant(g.ID); got.WrapStatus != access.WrapUnknown {
		t.Fatalf("looked up too early: %+v", got)
	}
	e.clock.Advance(90 * time.Second) // 30s before
	na := len(e.store.Events())
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if got := e.grant(g.ID); got.WrapStatus != access.WrapUnused || got.State != access.StateIssued {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(na)
	e.clock.Advance(30 * time.Second) // the wrap expires
	nm := len(e.store.Messages())
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	got := e.grant(g.ID)
	if got.State != access.StateRevoked || got.EndReason != access.EndWrapUnused || e.vault.LiveTokens() != 0 {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(na, access.ActRevoked)
	ms := e.wantMessages(nm, "dm:UANA", "post:CSEC", "jira-comment:SEC-12")
	if !strings.Contains(ms[0].Text, "not unwrapped") {
		t.Fatalf("DM %q", ms[0].Text)
	}
}

func TestSweepWrapUsed(t *testing.T) {
	e := newEnv(t)
	g := e.issuedPayments()
	e.vault.Unwrap(g.WrapAccessor)
	e.clock.Advance(9*time.Minute + 30*time.Second)
	na := len(e.store.Events())
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	e.wantActions(na, access.ActUnwrapped)
	e.clock.Advance(5 * time.Minute)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if got := e.grant(g.ID); got.State != access.StateIssued || got.WrapStatus != access.WrapUsed {
		t.Fatalf("grant %+v", got)
	}
	if e.vault.LiveTokens() != 1 {
		t.Fatal("the unwrapped token was revoked")
	}
}

// The bot was down for the whole last minute of the wrap: nobody saw it
// used, so the grant is revoked (fail closed).
func TestSweepWrapNeverLookedUpFailsClosed(t *testing.T) {
	e := newEnv(t)
	g := e.issuedPayments()
	e.clock.Advance(11 * time.Minute)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if got := e.grant(g.ID); got.State != access.StateRevoked || got.EndReason != access.EndWrapUnused {
		t.Fatalf("grant %+v", got)
	}
}

func TestSweepIncidentResolved(t *testing.T) {
	e := newEnv(t)
	g := e.issuedRO()
	if g.Incident != "PABC123" {
		t.Fatalf("incident recorded as %q, want the id", g.Incident)
	}
	e.vault.Unwrap(g.WrapAccessor)
	if err := e.sweep(); err != nil { // first poll: open
		t.Fatal(err)
	}
	calls := e.pd.Calls()
	e.pd.SetIncident(access.Incident{ID: "PABC123", Status: "resolved"}, "PABC123")
	e.clock.Advance(30 * time.Second)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if e.pd.Calls() != calls || e.grant(g.ID).State != access.StateIssued {
		t.Fatal("polled before the interval")
	}
	na, nm := len(e.store.Events()), len(e.store.Messages())
	e.clock.Advance(30 * time.Second)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	got := e.grant(g.ID)
	if got.State != access.StateRevoked || got.EndReason != access.EndIncidentResolved || e.vault.LiveTokens() != 0 {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(na, access.ActRevoked)
	// platform-ro needs no ticket: its record is a ticket the bot opens.
	e.wantMessages(nm, "dm:UBOB", "post:CSEC")
}

func TestSweepIncidentPollErrorKeepsGrant(t *testing.T) {
	e := newEnv(t)
	g := e.issuedRO()
	e.vault.Unwrap(g.WrapAccessor)
	e.pd.SetErr(errors.New("pagerduty: 502"))
	if err := e.sweep(); err == nil {
		t.Fatal("poll error hidden")
	}
	if e.grant(g.ID).State != access.StateIssued {
		t.Fatal("revoked on a PagerDuty error")
	}
	e.pd.SetErr(nil)
	e.pd.SetIncidentErr("PABC123", access.ErrIncidentNotFound)
	e.clock.Advance(time.Minute)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	if got := e.grant(g.ID); got.EndReason != access.EndIncidentResolved {
		t.Fatalf("a vanished incident kept its grant: %+v", got)
	}
}

func TestOpenTicketForBreakGlass(t *testing.T) {
	e := newEnv(t)
	g := e.issuedRO()
	opens := e.store.MessagesOf("jira-open")
	if len(opens) != 1 || opens[0].Target != g.ID {
		t.Fatalf("jira-open %+v", opens)
	}
	na := len(e.store.Events())
	if err := e.svc.OpenTicket(e.ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	tk := e.jira.OpenedTickets()
	if len(tk) != 1 || !strings.Contains(tk[0].Summary, g.ID) || !strings.Contains(tk[0].Body, "Incident: PABC123") ||
		!strings.Contains(tk[0].Body, "issued as a response-wrapped Vault token") {
		t.Fatalf("opened %+v", tk)
	}
	if got := e.grant(g.ID); got.Ticket != tk[0].Key {
		t.Fatalf("ticket %q", got.Ticket)
	}
	e.wantActions(na, access.ActTicketOpened)
	// Idempotent.
	if err := e.svc.OpenTicket(e.ctx, g.ID); err != nil || len(e.jira.OpenedTickets()) != 1 {
		t.Fatal("opened twice")
	}
	// Its end is a comment on that ticket.
	nm := len(e.store.Messages())
	if err := e.revoke(g.ID, "UBOB"); err != nil {
		t.Fatal(err)
	}
	e.wantMessages(nm, "dm:UBOB", "post:CSEC", "jira-comment:"+tk[0].Key)
}

func TestOpenTicketAfterTheGrantEnded(t *testing.T) {
	e := newEnv(t)
	g := e.issuedRO()
	if err := e.revoke(g.ID, "UBOB"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.OpenTicket(e.ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if tk := e.jira.OpenedTickets(); len(tk) != 1 || !strings.Contains(tk[0].Body, "ended (done)") {
		t.Fatalf("opened %+v", tk)
	}
}

func TestGrantsAndExplain(t *testing.T) {
	e := newEnv(t)
	a := e.issuedPayments()
	e.clock.Advance(time.Minute)
	b := e.issuedRO()
	ids := func(gs []access.Grant) string {
		var s []string
		for _, g := range gs {
			s = append(s, g.ID)
		}
		return strings.Join(s, ",")
	}
	mine, _ := e.svc.Grants(e.ctx, accesstest.Bob)
	if ids(mine) != b.ID {
		t.Fatalf("bob sees %s", ids(mine))
	}
	all, _ := e.svc.Grants(e.ctx, accesstest.Sec)
	if ids(all) != a.ID+","+b.ID {
		t.Fatalf("security sees %s", ids(all))
	}
	lee, _ := e.svc.Grants(e.ctx, accesstest.Lee) // approves payments-rw (group) and platform-ro (group)
	if ids(lee) != a.ID+","+b.ID {
		t.Fatalf("lee sees %s", ids(lee))
	}

	out, err := e.svc.Explain(e.ctx, accesstest.Bob, accesstest.Bob, "platform-ro")
	if err != nil || !strings.Contains(out, "on call now") || !strings.Contains(out, "Would pass now*: yes, given an open incident") {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	out, err = e.svc.Explain(e.ctx, accesstest.Lee, accesstest.Ana, "platform-ro")
	if err != nil || !strings.Contains(out, "not on call now") || !strings.Contains(out, "Would pass now*: no") {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	out, err = e.svc.Explain(e.ctx, accesstest.Sec, accesstest.Bob, "payments-rw")
	if err != nil || !strings.Contains(out, "Not eligible") || !strings.Contains(out, "--ticket SEC-123") {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	if _, err := e.svc.Explain(e.ctx, accesstest.Bob, accesstest.Ana, "platform-ro"); err == nil {
		t.Fatal("bob explained someone else")
	}
	if _, err := e.svc.Explain(e.ctx, accesstest.Bob, accesstest.Bob, "nope"); err == nil {
		t.Fatal("unknown scope")
	}
	e.pd.SetErr(errors.New("pagerduty down"))
	out, _ = e.svc.Explain(e.ctx, accesstest.Bob, accesstest.Bob, "platform-ro")
	if !strings.Contains(out, "PagerDuty could not be checked") || !strings.Contains(out, "Would pass now*: no") {
		t.Fatalf("explain with PD down:\n%s", out)
	}
}

// A request nobody decided within limits.request_open_for expires: the
// requester is told, and a later click only says so.
func TestSweepExpiresUndecidedRequests(t *testing.T) {
	e := newEnv(t)
	e.svc.Config.Limits.RequestOpenFor = config.Duration(time.Hour)
	g := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12")
	e.clock.Advance(59 * time.Minute)
	if err := e.sweep(); err != nil || e.grant(g.ID).State != access.StatePending {
		t.Fatalf("expired early: %v %+v", err, e.grant(g.ID))
	}
	na, nm := len(e.store.Events()), len(e.store.Messages())
	e.clock.Advance(2 * time.Minute)
	if err := e.sweep(); err != nil {
		t.Fatal(err)
	}
	got := e.grant(g.ID)
	if got.State != access.StateExpired || got.EndReason != access.EndExpired || got.Approver != "" {
		t.Fatalf("grant %+v", got)
	}
	e.wantActions(na, access.ActExpired)
	ms := e.wantMessages(nm, "dm:UANA")
	if !strings.Contains(ms[0].Text, "expired: no approver decided within 1h") {
		t.Errorf("DM %q", ms[0].Text)
	}
	err := e.decide(accesstest.Lee, g.ID, true, "")
	if ue, ok := access.IsUserError(err); !ok || !strings.Contains(ue.Msg, "expired before anyone decided (no approver decided within 1h)") {
		t.Fatalf("late click: %v", err)
	}
	if e.grant(g.ID).Version != got.Version {
		t.Fatal("the late click changed the grant")
	}
}
