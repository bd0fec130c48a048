package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

// Request validates a, stores a pending grant (audit "grant.requested",
// summary to responseURL, or by DM when there is none), runs the evidence
// checks in parallel, each with a timeout, updating the summary as each
// lands, and then refuses (state failed, audit "grant.refused"), posts the
// approval card (audit "grant.checks_passed"), or approves automatically
// and queues delivery (audit "grant.approved"). Every check must pass; a
// check that cannot be made refuses, naming the check and why.
//
// It returns the grant as it stands. Refusals are *UserError: those found
// before anything is stored (Told false), and a refusal by the evidence
// (Told true: the summary already says why).
func (s *Service) Request(ctx context.Context, p policy.Person, a RequestArgs, responseURL string) (Grant, error) {
	asked := a.Scope
	a, err := ValidateRequest(s.Config, p, a)
	if err != nil {
		ue, ok := IsUserError(err)
		if !ok {
			return Grant{}, err
		}
		return Grant{}, s.auditRefusal(ctx, ue, audit.Event{Actor: orBot(p.SlackID), Action: ActRequestRefused,
			Scope: Truncate(asked, 100), Outcome: audit.Refused, Reason: audit.Redact(ue.Msg)})
	}
	sc, _ := s.scope(a.Scope)
	now := s.now()
	g := Grant{
		Requester: p.SlackID, Email: strings.TrimSpace(p.Email), RequesterName: p.Name, Scope: sc.Name,
		TTL: a.TTL, Ticket: a.Ticket, Incident: a.Incident, Reason: a.Reason,
		State: StatePending, Version: 1, Delivery: sc.Delivery, ResponseURL: responseURL,
		CreatedAt: now, UpdatedAt: now,
	}
	if g.Delivery == "" {
		g.Delivery = config.DeliveryWrappedToken
	}
	for _, kind := range sc.Evidence {
		if kind != config.EvidenceApproval {
			g.Evidence = append(g.Evidence, Evidence{Kind: kind, Status: EvidenceChecking})
		}
	}

	var dup *Grant
	var refusal string
	var limited *UserError
	concluded := g
	for attempt := 0; ; attempt++ {
		g.ID = NewGrantID()
		dup, limited = nil, nil
		err = s.Store.InTx(ctx, func(tx Tx) error {
			dup, limited, refusal, concluded = nil, nil, "", g
			// Counted in the store, in the transaction that would add one
			// more: every replica sharing the database counts the same.
			lim, err := s.rateLimit(ctx, tx, p.SlackID, now)
			if err != nil || lim != nil {
				limited = lim
				return err
			}
			mine, err := tx.GrantsByRequester(ctx, p.SlackID, ActiveStates...)
			if err != nil {
				return err
			}
			for _, m := range mine {
				if m.Scope == g.Scope {
					dup = &m
					return nil
				}
			}
			if err := tx.GrantInsert(ctx, g); err != nil {
				return err
			}
			if err := tx.Audit(ctx, event(p.SlackID, ActRequested, audit.OK, g.Reason, g)); err != nil {
				return err
			}
			if err := tx.Send(ctx, requesterMessage(g, "", true)); err != nil {
				return err
			}
			if len(g.Evidence) > 0 {
				return nil
			}
			// Nothing to check: concluded with the insert, so that no crash
			// can leave a request nobody is asked to decide.
			ng, why, err := s.conclude(ctx, tx, g, sc)
			if err != nil || ng.Version == g.Version {
				refusal = why
				return err
			}
			refusal, concluded = why, ng
			return tx.GrantUpdate(ctx, ng, g.Version)
		})
		if !errors.Is(err, ErrConflict) || attempt >= 3 { // a conflict on insert: the id was taken
			break
		}
	}
	if err != nil {
		return Grant{}, fmt.Errorf("access: store request: %w", err)
	}
	if limited != nil {
		s.log().Info("access: request refused by the rate limit", "user", p.SlackID, "scope", sc.Name)
		return Grant{}, s.auditRefusal(ctx, limited, audit.Event{Actor: p.SlackID, Action: ActRateLimited,
			Scope: sc.Name, Outcome: audit.Refused, Reason: limited.Msg})
	}
	if dup != nil {
		ue := userErr("scope", "you already have %s for %s (%s): wait for it, or end it with `revoke %s`, before asking again",
			Code(dup.ID), Code(dup.Scope), dup.State, dup.ID)
		return Grant{}, s.auditRefusal(ctx, ue, event(p.SlackID, ActRequestRefused, audit.Refused, ue.Msg, Grant{ID: dup.ID, Scope: dup.Scope}))
	}

	g = concluded

	// The checks, in parallel; results land one at a time, here.
	results := s.runChecks(ctx, g)
	for i := range len(g.Evidence) {
		r := <-results
		last := i == len(g.Evidence)-1
		var landed Grant
		landed, err = s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
			if cur.State != StatePending {
				return cur, false, nil
			}
			ng := cur.next(s.now())
			for j := range ng.Evidence {
				if ng.Evidence[j].Kind == r.ev.Kind {
					ng.Evidence[j] = r.ev
				}
			}
			if r.ev.Status == EvidenceOK && !r.notAfter.IsZero() {
				ng.NotAfter = r.notAfter
			}
			if r.incidentID != "" && r.ev.Status == EvidenceOK {
				ng.Incident = r.incidentID
			}
			if !last {
				if ng.ResponseURL != "" { // the outcome message follows the last one
					if err := tx.Send(ctx, requesterMessage(ng, "", false)); err != nil {
						return cur, false, err
					}
				}
				return ng, true, nil
			}
			// The last result and the conclusion commit together: a crash
			// cannot leave a request whose checks are done but whose card
			// (or refusal, or approval) was never written.
			var err error
			ng, refusal, err = s.conclude(ctx, tx, ng, sc)
			return ng, err == nil, err
		})
		if err != nil {
			// The channel is buffered: the other checks finish without a
			// reader. Sweep fails the grant once its checks are stale.
			return g, fmt.Errorf("access: record a check of %s: %w", g.ID, err)
		}
		g = landed
	}
	if refusal != "" {
		return g, &UserError{Msg: "Refused: " + refusal + ". Nothing was granted.", Audited: true, Told: true}
	}
	return g, nil
}

// rateLimit refuses a request by slackID when they already made
// limits.requests_per_user requests (grants stored, whatever became of
// them) within limits.window before now; nil when they may. The refusal
// says what the limit is and when they can try again.
func (s *Service) rateLimit(ctx context.Context, tx Tx, slackID string, now time.Time) (*UserError, error) {
	l := s.Config.Limits
	window := l.Window.D()
	if l.RequestsPerUser <= 0 || window <= 0 {
		return nil, nil
	}
	recent, err := tx.GrantsRequestedSince(ctx, slackID, now.Add(-window))
	if err != nil {
		return nil, err
	}
	if len(recent) < l.RequestsPerUser {
		return nil, nil
	}
	// The oldest request that still counts leaves the window first; once
	// enough have left, one more fits.
	again := recent[len(recent)-l.RequestsPerUser].Add(window)
	wait := again.Sub(now).Round(time.Second)
	if wait < time.Second {
		wait = time.Second
	}
	return &UserError{Field: "scope", Msg: fmt.Sprintf(
		"You have made %d access requests in the last %s: the limit is %d per %s per person. Try again in %s (after %s).",
		len(recent), config.Duration(window), l.RequestsPerUser, config.Duration(window), config.Duration(wait),
		again.UTC().Format("15:04:05 UTC"))}, nil
}

func orBot(id string) string {
	if id == "" {
		return actorBot
	}
	return id
}

// refusalText says why the evidence refused g ("" when every check passed).
func refusalText(g Grant) string {
	var parts []string
	for _, e := range g.Evidence {
		switch e.Status {
		case EvidenceOK:
		case EvidenceError:
			parts = append(parts, fmt.Sprintf("the %s check could not be made (%s)", evidenceLabel(e.Kind), e.Detail))
		case EvidenceChecking:
			parts = append(parts, fmt.Sprintf("the %s check did not finish", evidenceLabel(e.Kind)))
		default:
			parts = append(parts, fmt.Sprintf("the %s check failed (%s)", evidenceLabel(e.Kind), e.Detail))
		}
	}
	return strings.Join(parts, "; ")
}

// conclude decides a pending grant whose checks are all in, inside tx: a
// refusal fails it (refusal says why); a scope needing an approver's click
// gets its approval card (the grant is returned as it was); otherwise it is
// approved and its delivery queued. The caller writes the grant returned.
func (s *Service) conclude(ctx context.Context, tx Tx, cur Grant, sc *config.Scope) (g Grant, refusal string, err error) {
	now := s.now()
	if refusal = refusalText(cur); refusal != "" {
		ng, err := cur.Fail("refused: "+refusal, now)
		if err != nil {
			return cur, "", err
		}
		if err := tx.Audit(ctx, event(cur.Requester, ActRefused, audit.Refused, refusal, ng)); err != nil {
			return cur, "", err
		}
		final := ":x: *Refused*: " + Escape(refusal) + ". Nothing was granted."
		return ng, refusal, tx.Send(ctx, requesterMessage(ng, final, false))
	}
	if hasEvidence(sc, config.EvidenceApproval) {
		ch := s.approvalsChannel()
		if ch == "" {
			return cur, "", errors.New("access: no approvals channel is configured (slack.approvals_channel or slack.security_channel)")
		}
		if err := tx.Audit(ctx, event(cur.Requester, ActChecksPassed, audit.OK, "waiting for an approver", cur)); err != nil {
			return cur, "", err
		}
		if err := tx.Send(ctx, approvalCard(cur, sc, ch)); err != nil {
			return cur, "", err
		}
		final := ":hourglass_flowing_sand: Checks passed. Waiting for an approver: " + peopleText(sc.Approvers) + "."
		return cur, "", tx.Send(ctx, requesterMessage(cur, final, false))
	}
	ng, err := cur.AutoApprove(now)
	if err != nil {
		return cur, "", err
	}
	if err := tx.Audit(ctx, event(actorBot, ActApproved, audit.OK, "the evidence passed and the scope needs no approver click", ng)); err != nil {
		return cur, "", err
	}
	if err := tx.Send(ctx, outbox.Message{Kind: outbox.DeliverGrant, Target: ng.ID}); err != nil {
		return cur, "", err
	}
	final := ":white_check_mark: Checks passed; approved automatically. Your access is on its way by direct message."
	return ng, "", tx.Send(ctx, requesterMessage(ng, final, false))
}
