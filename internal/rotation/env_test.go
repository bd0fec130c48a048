package rotation_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
	"github.com/secretbot/secretbot/internal/rotation"
	"github.com/secretbot/secretbot/internal/rotation/rotationtest"
)

var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// Values in the fake Vault: shaped so that a leak is found by substring,
// not refused as a credential by the fakes (which would hide it).
const (
	oldDB     = "OLDdbVALUEzz11aa22bb33cc44dd55ee"
	oldStripe = "OLDstripeVALUEqq99"
	provided  = "PROVIDEDvalueXq7Zr3Lm9Wp2Kt8"
)

var (
	sec = accesstest.Sec
	rae = rotationtest.Rae
	ana = accesstest.Ana
	gus = accesstest.Gus
)

type env struct {
	t     *testing.T
	ctx   context.Context
	svc   *rotation.Service
	store *rotationtest.Store
	kv    *rotationtest.KV
	jira  *accesstest.Tickets
	pd    *accesstest.OnCall
	ppl   *rotationtest.People
	dir   *accesstest.Directory
	msgr  *accesstest.Messenger
	grant *rotationtest.Grants
	clock *accesstest.Clock

	logMu sync.Mutex
	logs  bytes.Buffer
	errs  []error
}

func (e *env) Write(p []byte) (int, error) {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.logs.Write(p)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), store: rotationtest.NewStore(), kv: rotationtest.NewKV(),
		jira: accesstest.NewTickets(), pd: accesstest.NewOnCall(), ppl: rotationtest.NewPeople(),
		dir:   accesstest.NewDirectory(sec, rae, ana, gus, accesstest.Bob, rotationtest.Pam, rotationtest.Ike),
		msgr:  &accesstest.Messenger{},
		grant: rotationtest.NewGrants(), clock: accesstest.NewClock(t0)}
	e.svc = &rotation.Service{Config: rotationtest.Lumi(), Store: e.store, KV: e.kv, Tickets: e.jira, Incidents: e.pd,
		People: e.ppl, Directory: e.dir, Grants: e.grant, Messenger: e.msgr, Now: e.clock.Now,
		Log: slog.New(slog.NewTextHandler(e, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	e.kv.Seed("kv", "payments/db", oldDB)
	e.kv.Seed("kv", "payments/stripe", oldStripe)
	e.kv.Seed("kv", "platform/signing", "OLDsigningVALUE")
	e.jira.SetAccount(sec.Email, rotationtest.JiraSec)
	e.jira.SetAccount(rae.Email, rotationtest.JiraRae)
	e.jira.SetAccount(ana.Email, accesstest.JiraAna)
	e.jira.SetTicket(rotationTicket("SEC-100"))
	e.jira.SetTicket(provisionTicket("SEC-200", "new-api-key"))
	e.pd.SetIncident(access.Incident{ID: "PABC123", Number: "1234", Title: "key leaked", Status: "triggered",
		AssigneeIDs: []string{"PIKE"}}, "PABC123", "#1234")
	e.ppl.Set("PIKE", rotationtest.Ike.Email, rotationtest.Ike.SlackID)
	if err := e.svc.SyncConfig(e.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.assertNoValueLeaked)
	return e
}

// rotationTicket is approved by Lee through Service Management; it carries
// none of the access-request fields (a rotation does not need them).
func rotationTicket(key string) access.TicketFacts {
	return access.TicketFacts{Key: key, Project: "SEC", Status: "Approved", URL: "https://jira.lumi.example/browse/" + key,
		ServiceDesk: true, Approvals: []access.Approval{{Decision: "approved",
			Approvers: []access.JiraUser{{AccountID: accesstest.JiraLee, Name: "Lee"}}, At: t0.Add(-time.Hour)}}}
}

// provisionTicket carries owner, scope (the secret), justification and expiry.
func provisionTicket(key, secret string) access.TicketFacts {
	f := rotationTicket(key)
	f.Owner, f.Scope, f.Justification, f.Expiry = "pam", secret, "new payments provider", t0.Add(30*day)
	return f
}

func (e *env) keep(err error) error {
	if err != nil {
		e.errs = append(e.errs, err)
	}
	return err
}

// assertNoValueLeaked: no value Vault holds or held appears in the store
// (rows, meta, audit events, outbox), a message sent at once, a log line or
// an error the service returned.
func (e *env) assertNoValueLeaked() {
	e.t.Helper()
	var hay strings.Builder
	hay.WriteString(e.store.Dump())
	for _, m := range e.msgr.Sent() {
		b, _ := m.Marshal()
		hay.Write(b)
	}
	e.logMu.Lock()
	hay.WriteString(e.logs.String())
	e.logMu.Unlock()
	for _, err := range e.errs {
		hay.WriteString(err.Error())
	}
	text := hay.String()
	for _, v := range append([]string{oldDB, oldStripe, provided, "OLDsigningVALUE"}, e.generated()...) {
		if v != "" && strings.Contains(text, v) {
			e.t.Errorf("a secret value leaked: %q found outside Vault", v)
		}
	}
}

// generated lists every value in the fake Vault (live versions).
func (e *env) generated() []string {
	var out []string
	for _, p := range []string{"payments/db", "payments/stripe", "platform/signing", "new/api"} {
		for v := 1; v <= 10; v++ {
			if val, ok := e.kv.Value("kv", p, v); ok {
				out = append(out, val)
			}
		}
	}
	return out
}

func (e *env) start(p policy.Person, secret, ticket string) (rotation.Rotation, error) {
	r, err := e.svc.StartRotation(e.ctx, p, secret, ticket, false, "", "")
	return r, e.keep(err)
}

func (e *env) mustStart(p policy.Person, secret, ticket, value string) rotation.Rotation {
	e.t.Helper()
	r, err := e.svc.StartRotation(e.ctx, p, secret, ticket, false, "", value)
	if err != nil {
		e.t.Fatalf("start %s: %v", secret, e.keep(err))
	}
	return r
}

func (e *env) confirm(p policy.Person, id, stage string) (rotation.Rotation, error) {
	r, err := e.svc.Confirm(e.ctx, p, id, stage)
	return r, e.keep(err)
}

func (e *env) mustConfirm(p policy.Person, id, stage string) rotation.Rotation {
	e.t.Helper()
	r, err := e.confirm(p, id, stage)
	if err != nil {
		e.t.Fatalf("confirm %s %s: %v", id, stage, err)
	}
	return r
}

// userErr asserts err is a *UserError whose message contains each of want.
func userErr(t *testing.T, err error, want ...string) *rotation.UserError {
	t.Helper()
	ue, ok := rotation.IsUserError(err)
	if !ok {
		t.Fatalf("want a *UserError, got %v", err)
	}
	for _, w := range want {
		if !strings.Contains(ue.Msg, w) {
			t.Errorf("refusal %q does not say %q", ue.Msg, w)
		}
	}
	return ue
}

func hasAction(e *env, action string) bool {
	for _, a := range e.store.Actions() {
		if a == action {
			return true
		}
	}
	return false
}

func countAction(e *env, action string) int {
	n := 0
	for _, a := range e.store.Actions() {
		if a == action {
			n++
		}
	}
	return n
}

// posts returns the Slack posts (not updates) whose text contains s.
func posts(e *env, s string) []outbox.Message {
	var out []outbox.Message
	for _, m := range e.store.Messages() {
		if m.Kind == outbox.Post && strings.Contains(m.Text, s) {
			out = append(out, m)
		}
	}
	return out
}

var errBoom = errors.New("boom: connection refused")

// e0 is the fixture configuration.
func e0(t *testing.T) *config.Config { t.Helper(); return rotationtest.Lumi() }
