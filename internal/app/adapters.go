package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/secretbot/secretbot/integrations/jira"
	"github.com/secretbot/secretbot/integrations/pagerduty"
	slackint "github.com/secretbot/secretbot/integrations/slack"
	"github.com/secretbot/secretbot/integrations/vault"
	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/crash"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/store"
)

// The adapters below fit the integrations and the store to the ports the
// domain declares; they translate types and errors, nothing more.

// ledger is the store with the audit log and clock that every domain
// transaction writes through: state, audit events and owed messages commit
// together.
type ledger struct {
	db    *store.DB
	audit *audit.Log
	now   func() time.Time
}

// txBase is one transaction of the ledger: the Audit and Send every domain
// port needs.
type txBase struct {
	tx    *store.Tx
	audit *audit.Log
	now   func() time.Time
}

func (l ledger) base(tx *store.Tx) txBase { return txBase{tx: tx, audit: l.audit, now: l.now} }

func (t txBase) Audit(ctx context.Context, e audit.Event) error {
	_, err := t.audit.Append(ctx, t.tx, e)
	return err
}

func (t txBase) Send(ctx context.Context, m outbox.Message) error {
	return enqueue(ctx, t.tx, m, t.now())
}

// accessStore runs access transactions on the ledger.
type accessStore struct{ ledger }

func (s accessStore) InTx(ctx context.Context, fn func(access.Tx) error) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error { return fn(accessTx{s.base(tx)}) })
}

type accessTx struct{ txBase }

func (t accessTx) GrantInsert(ctx context.Context, g access.Grant) error {
	return storeErr(t.tx.GrantInsert(ctx, g))
}

func (t accessTx) GrantGet(ctx context.Context, id string) (access.Grant, error) {
	g, err := t.tx.GrantGet(ctx, id)
	return g, storeErr(err)
}

func (t accessTx) GrantUpdate(ctx context.Context, g access.Grant, fromVersion int64) error {
	return storeErr(t.tx.GrantUpdate(ctx, g, fromVersion))
}

func (t accessTx) GrantsByState(ctx context.Context, states ...access.State) ([]access.Grant, error) {
	return t.tx.GrantsByState(ctx, states...)
}

func (t accessTx) GrantsByRequester(ctx context.Context, id string, states ...access.State) ([]access.Grant, error) {
	return t.tx.GrantsByRequester(ctx, id, states...)
}

func (t accessTx) GrantsRequestedSince(ctx context.Context, id string, since time.Time) ([]time.Time, error) {
	return t.tx.GrantsRequestedSince(ctx, id, since)
}

func storeErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", access.ErrNotFound, err)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: %w", access.ErrConflict, err)
	}
	return err
}

// tickets adapts Jira.
type tickets struct{ c *jira.Client }

func (t tickets) Ticket(ctx context.Context, key string) (access.TicketFacts, error) {
	tk, err := t.c.Ticket(ctx, key)
	if errors.Is(err, jira.ErrNotFound) {
		return access.TicketFacts{}, fmt.Errorf("%w: %s", access.ErrTicketNotFound, key)
	}
	if err != nil {
		return access.TicketFacts{}, err
	}
	f := access.TicketFacts{
		Key: tk.Key, Project: tk.Project, Status: tk.Status, StatusCategory: tk.StatusCategory, URL: tk.URL,
		Owner: tk.Owner, Scope: tk.Scope, Justification: tk.Justification, Expiry: tk.Expiry,
		ServiceDesk: tk.ServiceDesk, Problems: tk.Problems,
	}
	for _, a := range tk.Approvals {
		ap := access.Approval{Decision: a.FinalDecision, At: a.CompletedAt}
		for _, p := range a.Approvers {
			if strings.EqualFold(p.Decision, "approved") {
				ap.Approvers = append(ap.Approvers, access.JiraUser{AccountID: p.AccountID, Name: p.Name, Email: p.Email})
			}
		}
		f.Approvals = append(f.Approvals, ap)
	}
	for _, c := range tk.StatusChanges {
		f.StatusChanges = append(f.StatusChanges, access.StatusChange{To: c.To, At: c.At,
			Author: access.JiraUser{AccountID: c.AuthorAccountID, Name: c.AuthorName, Email: c.AuthorEmail}})
	}
	return f, nil
}

func (t tickets) AccountByEmail(ctx context.Context, email string) (string, error) {
	id, err := t.c.UserByEmail(ctx, email)
	if errors.Is(err, jira.ErrUnknownUser) {
		return "", access.ErrUnknownJiraUser
	}
	return id, err
}

func (t tickets) Comment(ctx context.Context, key, body string) error {
	return t.c.AddComment(ctx, key, body)
}

func (t tickets) Open(ctx context.Context, summary, body string) (string, error) {
	return t.c.CreateIssue(ctx, summary, body)
}

// onCallPD adapts PagerDuty.
type onCallPD struct {
	pd  *pagerduty.Client
	cfg *config.Config
}

func (o onCallPD) OnCallNow(ctx context.Context, email string) (bool, string, string, error) {
	st, err := o.pd.OnCallStatus(ctx, email)
	if errors.Is(err, pagerduty.ErrUnknownUser) {
		return false, "no PagerDuty user has the e-mail " + email, "", nil
	}
	if err != nil {
		return false, "", "", err
	}
	if !st.OnCall {
		return false, "not on call now on the configured escalation policies", st.UserID, nil
	}
	return true, strings.Join(st.Policies, ", "), st.UserID, nil
}

func (o onCallPD) Incident(ctx context.Context, ref string) (access.Incident, error) {
	in, err := o.pd.Incident(ctx, ref)
	if errors.Is(err, pagerduty.ErrNotFound) || errors.Is(err, pagerduty.ErrInvalidRef) {
		return access.Incident{}, fmt.Errorf("%w: %s", access.ErrIncidentNotFound, ref)
	}
	if err != nil {
		return access.Incident{}, err
	}
	inPolicy := false
	for _, p := range o.cfg.PagerDuty.EscalationPolicies {
		// The incident's escalation policy is its service's: it belongs to
		// the configured policies' services exactly when it is one of them.
		inPolicy = inPolicy || p == in.EscalationPolicyID
	}
	return access.Incident{ID: in.ID, Number: fmt.Sprint(in.Number), Title: in.Title, Status: in.Status, URL: in.URL,
		ServiceID: in.ServiceID, PolicyID: in.EscalationPolicyID, AssigneeIDs: in.AssigneeIDs, InPolicyServices: inPolicy}, nil
}

// vaultGrants adapts Vault.
type vaultGrants struct{ c *vault.Client }

func (v vaultGrants) IssueWrapped(ctx context.Context, r access.IssueRequest) (access.Wrapped, error) {
	w, err := v.c.IssueWrapped(ctx, vault.IssueRequest{Policies: r.Policies, TTL: r.TTL, Metadata: r.Metadata, DisplayName: r.DisplayName})
	if err != nil {
		return access.Wrapped{}, vaultErr(err)
	}
	return access.Wrapped{WrapToken: w.WrapToken, WrapAccessor: w.WrapAccessor, TokenAccessor: w.TokenAccessor, WrapExpires: w.WrapExpiresAt}, nil
}

func (v vaultGrants) RevokeAccessor(ctx context.Context, accessor string) error {
	return vaultErr(v.c.RevokeAccessor(ctx, accessor))
}

func (v vaultGrants) AccessorAlive(ctx context.Context, accessor string) (bool, error) {
	alive, err := v.c.AccessorAlive(ctx, accessor)
	return alive, vaultErr(err)
}

func (v vaultGrants) JoinGroup(ctx context.Context, group string, policies []string, email string, meta map[string]string) error {
	return vaultErr(v.c.JoinGroup(ctx, group, policies, email, meta))
}

func (v vaultGrants) DeleteGroup(ctx context.Context, group string) error {
	return vaultErr(v.c.DeleteGroup(ctx, group))
}

// messenger sends the one DM that carries a wrapping token, at once.
type messenger struct{ sl *slackint.Client }

func (m messenger) SendNow(ctx context.Context, msg outbox.Message) (string, error) {
	crash.Point("slack.send_now.before")
	ts, err := m.sl.Deliver(ctx, msg)
	crash.Point("slack.send_now.after")
	return ts, err
}

// views opens modals.
type views struct{ sl *slackint.Client }

func (v views) OpenView(ctx context.Context, triggerID string, raw json.RawMessage) error {
	var req slack.ModalViewRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return err
	}
	crash.Point("slack.views_open.before")
	_, err := v.sl.API().OpenViewContext(ctx, triggerID, req)
	crash.Point("slack.views_open.after")
	return err
}

func (v views) PublishHome(ctx context.Context, userID string, raw json.RawMessage) error {
	var req slack.HomeTabViewRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return err
	}
	crash.Point("slack.views_publish.before")
	_, err := v.sl.API().PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: userID, View: req})
	crash.Point("slack.views_publish.after")
	return err
}

// auditReader reads the access log for `/secrets audit`.
type auditReader struct{ db *store.DB }

func (a auditReader) AuditSince(ctx context.Context, since time.Time, actor string, limit int) ([]audit.Record, error) {
	return a.db.AuditRecent(ctx, since, actor, limit)
}
