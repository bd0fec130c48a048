package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

// Access requests, issue 3: A13–A15 and A17 (A16, the crash scenario, is in
// a16_crash_test.go): taking access back, and bad input.

// minTTL is the shortest grant the bot accepts (internal/access.MinTTL):
// A13 waits for a grant of this length to expire.
const minTTL = time.Minute

func TestA13_ExpiryRevokes(t *testing.T) {
	w := startA(t, "A13", harness.Options{})
	id, d := onCallGrant(t, w, "1m")
	tok := w.unwrap(d.wrapToken)
	checkGrantToken(t, w.lookupSelf(tok), "platform-ro", minTTL, map[string]string{"grant": id,
		"user": harness.Carol.Slack, "email": harness.Carol.Email, "scope": "platform-ro", "incident": harness.OpenIncident},
		harness.Carol.Name)
	issued := w.grant(id)
	if issued.State != "issued" || issued.ExpiresAt.IsZero() {
		t.Fatalf("grant %+v, want issued with an expiry", issued)
	}

	g := w.waitGrant(id, minTTL+wait, "expired", func(g grantRow) bool { return g.State == "expired" })
	if g.EndReason != "expired" {
		t.Errorf("end reason %q, want expired", g.EndReason)
	}
	if g.EndedAt.Before(issued.ExpiresAt) {
		t.Errorf("ended at %v, before its expiry %v", g.EndedAt, issued.ExpiresAt)
	}
	if late := g.EndedAt.Sub(issued.ExpiresAt); late > sweepPeriod+2*time.Second {
		t.Errorf("ended %v after its expiry", late)
	}
	if w.tokenAlive(tok) || w.accessorAlive(g.TokenAccessor) {
		t.Error("the token is still alive after the grant expired")
	}
	e := w.waitEvent("grant.expired", id)
	if e.actor != "secretbot" || e.outcome != "ok" {
		t.Errorf("expiry audit event %+v", e)
	}
	w.dm(harness.Carol, id, "has ended: expired")
	if _, err := w.Slack.WaitMessage(func(m fakeslack.Message) bool {
		return fakeslack.InChannel(harness.SecurityChannel)(m) && strings.Contains(m.Text, "*Ended*") && strings.Contains(m.Text, id)
	}, wait); err != nil {
		t.Errorf("no end notice in the security channel: %v", err)
	}
}

func TestA14_ImDoneRevokesAtOnce(t *testing.T) {
	w := startA(t, "A14", harness.Options{})
	id, d := onCallGrant(t, w, "2h")
	tok := w.unwrap(d.wrapToken)
	if !w.tokenAlive(tok) {
		t.Fatal("the token is not alive before I'm done")
	}

	pressed := time.Now()
	w.click(harness.Carol, d.msg, "grant_done")
	if !until(wait, func() bool { return !w.tokenAlive(tok) }) {
		t.Fatalf("the token still works %v after I'm done", wait)
	}
	// At once: the click's own handling revokes, no sweep or poll involved.
	if took := time.Since(pressed); took > 3*time.Second {
		t.Errorf("revoked %v after I'm done", took)
	}
	g := w.waitGrant(id, wait, "revoked", func(g grantRow) bool { return g.State == "revoked" })
	if g.EndReason != "done" || w.accessorAlive(g.TokenAccessor) {
		t.Errorf("grant %+v: want revoked, reason done, accessor gone", g)
	}
	if e := w.waitEvent("grant.revoked", id); e.actor != harness.Carol.Slack {
		t.Errorf("revoke audited as %s, want Carol", e.actor)
	}
	w.dm(harness.Carol, id, "has ended: the holder was done")
}

func TestA15_WrapNeverUnwrappedRevokedAtWrapExpiry(t *testing.T) {
	const wrapTTL = 20 * time.Second
	w := startA(t, "A15", harness.Options{EditConfig: withWrapTTL("20s")})
	id, d := onCallGrant(t, w, "2h")
	issued := w.grant(id)
	if !w.accessorAlive(issued.TokenAccessor) {
		t.Fatal("the grant's token is not alive after delivery")
	}
	if got := issued.WrapExpires.Sub(issued.IssuedAt); got < wrapTTL-2*time.Second || got > wrapTTL+2*time.Second {
		t.Errorf("wrap expires %v after issue, want vault.wrap_ttl %v", got, wrapTTL)
	}

	// Carol never unwraps it.
	g := w.waitGrant(id, wrapTTL+wait, "revoked", func(g grantRow) bool { return g.State == "revoked" })
	if g.EndReason != "wrap-unused" {
		t.Errorf("end reason %q, want wrap-unused", g.EndReason)
	}
	if g.EndedAt.Before(issued.WrapExpires) {
		t.Errorf("revoked at %v, before the wrap expired at %v", g.EndedAt, issued.WrapExpires)
	}
	if late := g.EndedAt.Sub(issued.WrapExpires); late > sweepPeriod+2*time.Second {
		t.Errorf("revoked %v after the wrap expired", late)
	}
	if w.accessorAlive(g.TokenAccessor) {
		t.Error("the grant's token is still alive")
	}
	if _, err := w.Vault.Client(t, "").Logical().Unwrap(d.wrapToken); err == nil {
		t.Error("the wrapping token can still be unwrapped")
	}
	w.dm(harness.Carol, id, "has ended", "was not unwrapped before it expired")
	w.waitEvent("grant.revoked", id)
}

func TestA17_BadInputClearRefusalsNothingStored(t *testing.T) {
	w := startA(t, "A17", harness.Options{})
	cases := []struct {
		name  string
		who   harness.Person
		text  string
		wants []string
	}{
		{"unknown scope", harness.Alice, "request payments-rw --ttl 1h",
			[]string{"`payments-rw` is not a scope you may request", "You may request: platform-rw"}},
		{"malformed ticket key", harness.Alice, "request platform-rw --ticket sec_12x",
			[]string{"`SEC_12X` is not a ticket key of the SEC project", "SEC-123"}},
		{"5,000-character reason", harness.Alice, `request platform-rw --ticket SEC-1 --reason "` + strings.Repeat("a", 5000) + `"`,
			[]string{"5000 characters long", "at most 500"}},
		{"control characters", harness.Carol, "request platform-ro --incident " + harness.OpenIncident + " --reason \"restart\x1b[2J now\"",
			[]string{"control or invisible formatting character", "U+001B"}},
		{"bidirectional override", harness.Carol, "request platform-ro --incident " + harness.OpenIncident + " --reason \"fix \u202eoriginal\"",
			[]string{"control or invisible formatting character", "U+202E"}},
		{"guest", harness.Gus, "request platform-ro --incident " + harness.OpenIncident, []string{"Guest accounts cannot use secretbot"}},
		{"deleted user", harness.Zed, "request platform-ro --incident " + harness.OpenIncident, []string{"deactivated"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := answer(t, w.Harness, w.ask(c.who, c.text))
			if r.ResponseType != "ephemeral" {
				t.Errorf("response_type %q, want ephemeral", r.ResponseType)
			}
			mustContain(t, "the refusal", r.Text, c.wants...)
			if len(r.Text) > 600 {
				t.Errorf("the refusal is %d characters long (it repeats the input?)", len(r.Text))
			}
		})
	}
	w.settled()
	if gs := w.grants(); len(gs) != 0 {
		t.Errorf("refused requests were stored: %+v", gs)
	}
	events := w.events()
	if len(events) != len(cases) {
		t.Errorf("%d audit events for %d refusals", len(events), len(cases))
	}
	for _, e := range events {
		if e.outcome != "refused" {
			t.Errorf("audit event %s (%s): not a refusal", e.action, e.outcome)
		}
	}
	for _, m := range w.Slack.Messages() {
		if !m.Ephemeral && m.Channel != harness.SecurityChannel {
			t.Errorf("a refusal was posted publicly in %s: %s", m.Channel, m.Text)
		}
	}
	if n := w.issuedTokens(); n != 0 {
		t.Errorf("%d tokens issued", n)
	}
	if n := len(w.PD.Calls()) + len(w.Jira.Calls()); n != 0 {
		t.Errorf("%d calls to PagerDuty and Jira for requests refused on their face", n)
	}
}
