package access_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

const responseURL = "https://hooks.slack.com/commands/T1/111/abc"

// env is a Service over fakes of every port.
type env struct {
	t   *testing.T
	ctx context.Context

	svc   *access.Service
	store *accesstest.Store
	jira  *accesstest.Tickets
	pd    *accesstest.OnCall
	vault *accesstest.Vault
	msgr  *accesstest.Messenger
	dir   *accesstest.Directory
	clock *accesstest.Clock
	errs  []error // every error the service returned, scanned for tokens
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), store: accesstest.NewStore(), jira: accesstest.NewTickets(),
		pd: accesstest.NewOnCall(), vault: accesstest.NewVault(), msgr: &accesstest.Messenger{},
		dir:   accesstest.NewDirectory(accesstest.Ana, accesstest.Lee, accesstest.Kim, accesstest.Bob, accesstest.Sec, accesstest.Gus),
		clock: accesstest.NewClock(t0)}
	e.vault.Now = e.clock.Now
	e.svc = &access.Service{Config: accesstest.Lumi(), Store: e.store, Tickets: e.jira, OnCall: e.pd, Vault: e.vault,
		Messenger: e.msgr, Directory: e.dir, Now: e.clock.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		CheckTimeout: 2 * time.Second}
	// Jira: SEC-12 approved by Lee for payments-rw and platform-rw.
	f := approvedTicket()
	f.Scope = "payments-rw, platform-rw"
	e.jira.SetTicket(f)
	e.jira.SetAccount("ana@lumi.example", accesstest.JiraAna)
	e.jira.SetAccount("lee@lumi.example", accesstest.JiraLee)
	e.jira.SetAccount("bob@lumi.example", accesstest.JiraBob)
	// PagerDuty: Bob on call, incident PABC123 open on a policy service.
	e.pd.SetPerson("bob@lumi.example", accesstest.OnCallAnswer{OnCall: true, Detail: "Platform primary (level 1)", UserID: "PBOB"})
	e.pd.SetPerson("ana@lumi.example", accesstest.OnCallAnswer{OnCall: false, Detail: "not on any configured schedule", UserID: "PANA"})
	e.pd.SetIncident(access.Incident{ID: "PABC123", Number: "1234", Title: "db down", Status: "triggered",
		URL: "https://lumi.pagerduty.com/incidents/PABC123", InPolicyServices: true}, "PABC123", "#1234")
	t.Cleanup(func() { e.assertNoToken() })
	return e
}

func (e *env) keep(err error) error {
	if err != nil {
		e.errs = append(e.errs, err)
	}
	return err
}

// request runs a request of scope by p with args (ParseRequest syntax).
func (e *env) request(p policy.Person, args ...string) (access.Grant, error) {
	e.t.Helper()
	a, err := access.ParseRequest(args, e.svc.Config, p)
	if err != nil {
		return access.Grant{}, err
	}
	g, err := e.svc.Request(e.ctx, p, a, responseURL)
	return g, e.keep(err)
}

func (e *env) mustRequest(p policy.Person, args ...string) access.Grant {
	e.t.Helper()
	g, err := e.request(p, args...)
	if err != nil {
		e.t.Fatalf("request %v: %v", args, err)
	}
	return g
}

func (e *env) grant(id string) access.Grant {
	e.t.Helper()
	g, ok := e.store.Grant(id)
	if !ok {
		e.t.Fatalf("no grant %s", id)
	}
	return g
}

func (e *env) decide(p policy.Person, id string, approve bool, reason string) error {
	return e.keep(e.svc.Decide(e.ctx, p, id, approve, reason, access.CardRef{Channel: "CAPPROVALS", TS: "1700.000100"}))
}

func (e *env) deliver(id string) error { return e.keep(e.svc.Deliver(e.ctx, id)) }
func (e *env) sweep() error            { return e.keep(e.svc.Sweep(e.ctx)) }
func (e *env) revoke(id, by string) error {
	return e.keep(e.svc.Revoke(e.ctx, id, by, ""))
}

// approvedPayments is a payments-rw grant for Ana, approved by Lee.
func (e *env) approvedPayments() access.Grant {
	e.t.Helper()
	g := e.mustRequest(accesstest.Ana, "payments-rw", "--ticket", "SEC-12", "--ttl", "2h", "--reason", "rotate <the> key")
	if err := e.decide(accesstest.Lee, g.ID, true, ""); err != nil {
		e.t.Fatal(err)
	}
	return e.grant(g.ID)
}

// issuedPayments is a delivered payments-rw grant.
func (e *env) issuedPayments() access.Grant {
	e.t.Helper()
	g := e.approvedPayments()
	if err := e.deliver(g.ID); err != nil {
		e.t.Fatal(err)
	}
	return e.grant(g.ID)
}

// issuedRO is Bob's delivered platform-ro grant (auto-approved).
func (e *env) issuedRO() access.Grant {
	e.t.Helper()
	g := e.mustRequest(accesstest.Bob, "platform-ro", "--incident", "#1234", "--ttl", "1h")
	if g.State != access.StateApproved {
		e.t.Fatalf("platform-ro not auto-approved: %+v", g)
	}
	if err := e.deliver(g.ID); err != nil {
		e.t.Fatal(err)
	}
	return e.grant(g.ID)
}

// actionsSince returns the audit actions after the first n.
func (e *env) actionsSince(n int) []string { return e.store.Actions()[n:] }

func (e *env) wantActions(from int, want ...string) {
	e.t.Helper()
	if got := e.actionsSince(from); !slices.Equal(got, want) {
		e.t.Fatalf("audit actions %v, want %v", got, want)
	}
}

// messagesSince returns the outbox messages after the first n.
func (e *env) messagesSince(n int) []outbox.Message { return e.store.Messages()[n:] }

func kinds(ms []outbox.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Kind+":"+m.Target)
	}
	return out
}

func (e *env) wantMessages(from int, want ...string) []outbox.Message {
	e.t.Helper()
	ms := e.messagesSince(from)
	if got := kinds(ms); !slices.Equal(got, want) {
		e.t.Fatalf("messages %v, want %v", got, want)
	}
	return ms
}

// assertNoToken scans everything but the Messenger's DMs for a wrapping
// token: rows, audit events, outbox messages, errors.
func (e *env) assertNoToken() {
	e.t.Helper()
	var texts []string
	for _, g := range e.store.Grants() {
		b, _ := json.Marshal(g)
		texts = append(texts, string(b))
	}
	for _, ev := range e.store.Events() {
		b, _ := json.Marshal(ev)
		texts = append(texts, string(b))
	}
	for _, m := range e.store.Messages() {
		b, _ := json.Marshal(m)
		texts = append(texts, string(b))
	}
	for _, err := range e.errs {
		texts = append(texts, err.Error())
	}
	for _, tok := range e.vault.Tokens() {
		if tok.WrapToken == "" {
			continue // a token put in Vault by the test, not issued by the bot
		}
		for _, s := range texts {
			if strings.Contains(s, tok.WrapToken) || strings.Contains(s, accesstest.WrapTokenPrefix) {
				e.t.Errorf("a wrapping token leaked: %s", s)
			}
		}
	}
}

func blocksText(m outbox.Message) string { return string(m.Blocks) }
