package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
)

// The access service over the real store: the adapter here is what
// internal/app does (errors mapped, audit through the hash chain, messages
// into the outbox), so the CAS and the one-transaction rule are tested on
// SQLite itself.

type svcStore struct {
	db  *DB
	log *audit.Log
}

type svcTx struct {
	tx  *Tx
	log *audit.Log
}

func (s svcStore) InTx(ctx context.Context, fn func(access.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(svcTx{tx, s.log}) })
}

func mapErr(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: %w", access.ErrNotFound, err)
	case errors.Is(err, ErrConflict):
		return fmt.Errorf("%w: %w", access.ErrConflict, err)
	}
	return err
}

func (t svcTx) GrantInsert(ctx context.Context, g access.Grant) error {
	return mapErr(t.tx.GrantInsert(ctx, g))
}
func (t svcTx) GrantGet(ctx context.Context, id string) (access.Grant, error) {
	g, err := t.tx.GrantGet(ctx, id)
	return g, mapErr(err)
}
func (t svcTx) GrantUpdate(ctx context.Context, g access.Grant, from int64) error {
	return mapErr(t.tx.GrantUpdate(ctx, g, from))
}
func (t svcTx) GrantsByState(ctx context.Context, states ...access.State) ([]access.Grant, error) {
	return t.tx.GrantsByState(ctx, states...)
}
func (t svcTx) GrantsByRequester(ctx context.Context, id string, states ...access.State) ([]access.Grant, error) {
	return t.tx.GrantsByRequester(ctx, id, states...)
}
func (t svcTx) GrantsRequestedSince(ctx context.Context, id string, since time.Time) ([]time.Time, error) {
	return t.tx.GrantsRequestedSince(ctx, id, since)
}
func (t svcTx) Audit(ctx context.Context, e audit.Event) error {
	_, err := t.log.Append(ctx, t.tx, e)
	return err
}
func (t svcTx) Send(ctx context.Context, m outbox.Message) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	_, err = t.tx.OutboxAdd(ctx, OutboxMessage{Body: b})
	return err
}

func TestAccessServiceOnSQLite(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	clock := accesstest.NewClock(time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC))
	alog := audit.New(auditKey, clock.Now)
	jira := accesstest.NewTickets()
	jira.SetTicket(access.TicketFacts{Key: "SEC-12", Project: "SEC", Status: "Approved", URL: "https://jira/SEC-12",
		Owner: "ana", Scope: "payments-rw", Justification: "x", Expiry: clock.Now().Add(48 * time.Hour), ServiceDesk: true,
		Approvals: []access.Approval{{Decision: "approved", Approvers: []access.JiraUser{{AccountID: accesstest.JiraLee}}}}})
	jira.SetAccount("ana@lumi.example", accesstest.JiraAna)
	vault := accesstest.NewVault()
	vault.Now = clock.Now
	msgr := &accesstest.Messenger{}
	svc := &access.Service{Config: accesstest.Lumi(), Store: svcStore{db, alog}, Tickets: jira, OnCall: accesstest.NewOnCall(),
		Vault: vault, Messenger: msgr, Directory: accesstest.NewDirectory(accesstest.Ana, accesstest.Lee),
		Now: clock.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	a, err := access.ParseRequest([]string{"payments-rw", "--ticket", "SEC-12", "--ttl", "1h"}, svc.Config, accesstest.Ana)
	if err != nil {
		t.Fatal(err)
	}
	g, err := svc.Request(ctx, accesstest.Ana, a, "https://hooks.slack.com/commands/T1/2/3")
	if err != nil || g.State != access.StatePending {
		t.Fatalf("request: %+v %v", g, err)
	}

	// Several approvers at once: one decision.
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := accesstest.Lee
			if i%2 == 1 {
				p = accesstest.Kim
			}
			errs[i] = svc.Decide(ctx, p, g.ID, true, "", access.CardRef{Channel: "C1", TS: "1.1"})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else if _, ok := access.IsUserError(err); !ok {
			t.Fatalf("decide: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d decisions won", won)
	}

	if err := svc.Deliver(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.Deliver(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(vault.Tokens()); n != 1 || len(msgr.Sent()) != 1 {
		t.Fatalf("%d tokens, %d DMs", n, len(msgr.Sent()))
	}
	clock.Advance(9*time.Minute + 30*time.Second)
	vault.Unwrap(vault.Tokens()[0].WrapAccessor)
	if err := svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if err := svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	var got access.Grant
	if err := db.InTx(ctx, func(tx *Tx) error { got, err = tx.GrantGet(ctx, g.ID); return err }); err != nil {
		t.Fatal(err)
	}
	if got.State != access.StateExpired || vault.LiveTokens() != 0 {
		t.Fatalf("grant %+v", got)
	}

	// The chain verifies, and holds the whole story.
	res, err := alog.Verify(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	if err := db.AuditScan(ctx, 1, func(r audit.Record) error { actions = append(actions, r.Action); return nil }); err != nil {
		t.Fatal(err)
	}
	want := "grant.requested grant.checks_passed grant.approved grant.issued grant.delivered grant.unwrapped grant.expired"
	decisionRefusals := strings.Count(strings.Join(actions, " "), access.ActDecideRefused)
	if got := strings.Join(filterOut(actions, access.ActDecideRefused), " "); got != want || decisionRefusals != 5 || res.Events != int64(len(actions)) {
		t.Fatalf("actions %v (verified %d)", actions, res.Events)
	}
	// No wrapping token anywhere in the database.
	due, err := db.OutboxDue(ctx, clock.Now().Add(time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range due {
		if strings.Contains(string(m.Body), accesstest.WrapTokenPrefix) {
			t.Fatalf("token in the outbox: %s", m.Body)
		}
	}
}

func filterOut(ss []string, drop string) []string {
	var out []string
	for _, s := range ss {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}
