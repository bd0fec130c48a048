package access

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

// Decide records an approver's click on the card (card is where the click
// came from; it is updated to show the outcome). clicker is the person as
// Slack reports them now: their rights are checked now. The requester never
// decides, only the scope's approvers do, and the first decision wins: a
// later click gets a *UserError saying who decided and when. A deny needs a
// reason. Every refusal is audited.
func (s *Service) Decide(ctx context.Context, clicker policy.Person, grantID string, approve bool, reason string, card CardRef) error {
	id, ok := NormalizeGrantID(grantID)
	if !ok {
		return userErr("", "%s is not a grant id (accepted: G followed by 8 letters and digits, e.g. GK3D9QX2A)", Code(Truncate(grantID, 20)))
	}
	reason = strings.TrimSpace(reason)
	if !approve && reason == "" {
		return userErr("reason", "give a reason for the denial (at most %d characters)", MaxReasonLen)
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	// The requester's eligibility is checked again now, against Slack's
	// current groups, before an approval: outside the transaction (it is a
	// call to Slack), and it fails closed.
	var requesterGone string
	if approve {
		why, err := s.requesterStillEligible(ctx, id)
		if err != nil {
			return err
		}
		requesterGone = why
	}
	var refusal *UserError
	var decided Grant
	_, err := s.change(ctx, id, func(tx Tx, g Grant) (Grant, bool, error) {
		refusal = nil
		refuse := func(format string, args ...any) (Grant, bool, error) {
			refusal = &UserError{Msg: fmt.Sprintf(format, args...), Audited: true}
			return g, false, tx.Audit(ctx, event(orBot(clicker.SlackID), ActDecideRefused, audit.Refused, refusal.Msg, g))
		}
		if err := policy.Refusal(clicker); err != nil {
			return refuse("%s: you cannot decide access requests.", upperFirst(err.Error()))
		}
		sc, ok := s.scope(g.Scope)
		if !ok {
			return refuse("The scope %s is no longer configured: nobody can decide %s.", Code(g.Scope), Code(g.ID))
		}
		if g.State != StatePending {
			// A stale button: nothing changes. A card the bot never
			// updated (the request ended before anyone clicked it) is
			// brought up to date, so its buttons go.
			if card.Channel != "" && card.TS != "" && (g.CardChannel != card.Channel || g.CardTS != card.TS) {
				if err := tx.Send(ctx, decidedCard(g, card.Channel, card.TS)); err != nil {
					return g, false, err
				}
			}
			return refuse("%s", alreadyDecided(g))
		}
		now := s.now()
		var ng Grant
		var err error
		if approve && requesterGone != "" && !g.IsRequester(clicker) && policy.CanApprove(sc, clicker) {
			// Not approvable any more, by anyone: the request fails, and
			// the requester must ask again once eligible.
			ng, err := g.Fail(requesterGone, now)
			if err != nil {
				return g, false, err
			}
			ng.CardChannel, ng.CardTS = cardOr(g, card)
			refusal = &UserError{Msg: fmt.Sprintf("%s cannot be approved: %s. Nothing was granted; the request is closed.", Code(g.ID), Escape(requesterGone)), Audited: true}
			if err := s.sendDecision(ctx, tx, ng, event(clicker.SlackID, ActFailed, audit.Failed, requesterGone, ng)); err != nil {
				return g, false, err
			}
			return ng, true, nil
		}
		if approve {
			if !g.NotAfter.IsZero() && !now.Before(g.NotAfter) {
				// The ticket ran out while the request waited.
				ng, err = g.Fail(fmt.Sprintf("ticket %s expired at %s before approval", g.Ticket, fmtTime(g.NotAfter)), now)
				if err != nil {
					return g, false, err
				}
				ng.CardChannel, ng.CardTS = cardOr(g, card)
				refusal = &UserError{Msg: fmt.Sprintf("%s cannot be approved: %s. The requester must request again.", Code(g.ID), Escape(ng.LastError)), Audited: true}
				if err := s.sendDecision(ctx, tx, ng, event(actorBot, ActFailed, audit.Failed, ng.LastError, ng)); err != nil {
					return g, false, err
				}
				return ng, true, nil
			}
			ng, err = g.Approve(clicker, sc, now)
		} else {
			ng, err = g.Deny(clicker, sc, reason, now)
		}
		switch {
		case errors.Is(err, ErrSelfApproval):
			return refuse("You asked for %s: someone else among its approvers (%s) must decide.", Code(g.ID), peopleText(sc.Approvers))
		case errors.Is(err, ErrNotApprover):
			return refuse("Only the approvers of %s may decide: %s.", Code(g.Scope), peopleText(sc.Approvers))
		case errors.Is(err, ErrWrongState):
			return refuse("%s cannot be approved yet: %s.", Code(g.ID), Escape(strings.TrimPrefix(err.Error(), ErrWrongState.Error()+": ")))
		case err != nil:
			return g, false, err
		}
		ng.CardChannel, ng.CardTS = cardOr(g, card)
		action := ActApproved
		if !approve {
			action = ActDenied
		}
		if err := s.sendDecision(ctx, tx, ng, event(clicker.SlackID, action, audit.OK, reason, ng)); err != nil {
			return g, false, err
		}
		if approve {
			if err := tx.Send(ctx, outbox.Message{Kind: outbox.DeliverGrant, Target: ng.ID}); err != nil {
				return g, false, err
			}
		}
		decided = ng
		return ng, true, nil
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return userErr("", "There is no grant %s.", Code(id))
	case err != nil:
		return fmt.Errorf("access: decide %s: %w", id, err)
	case refusal != nil:
		return refusal
	}
	s.log().Info("access: decided", "grant", decided.ID, "state", string(decided.State), "by", clicker.SlackID)
	return nil
}

// freshDirectory is a Directory that can read a person's groups uncached
// (the Slack client's PersonNow).
type freshDirectory interface {
	PersonNow(ctx context.Context, slackID string) (policy.Person, error)
}

// requesterStillEligible looks the requester of grant id up in Slack now
// and says why they may no longer have it ("" when they may). A lookup that
// fails is an error: the approval is refused, nothing changes, and the
// approver can press again.
func (s *Service) requesterStillEligible(ctx context.Context, id string) (string, error) {
	if s.Directory == nil {
		return "", nil
	}
	g, err := s.get(ctx, id)
	if err != nil || g.State != StatePending {
		return "", nil // Decide itself says what is wrong
	}
	sc, ok := s.scope(g.Scope)
	if !ok {
		return "", nil
	}
	lookup := s.Directory.Person
	if fd, ok := s.Directory.(freshDirectory); ok {
		lookup = fd.PersonNow
	}
	p, err := lookup(ctx, g.Requester)
	if err != nil {
		s.log().Warn("access: requester lookup failed before approval", "grant", g.ID, "err", errText(err))
		return "", &UserError{Msg: fmt.Sprintf("I could not confirm with Slack that <@%s> may still have %s, so %s was not approved. Please press Approve again in a minute.",
			Escape(g.Requester), Code(g.Scope), Code(g.ID))}
	}
	switch {
	case policy.Refusal(p) != nil:
		return "the requester can no longer request access (" + policy.Refusal(p).Error() + ")", nil
	case !policy.Eligible(sc, p):
		return "the requester is no longer eligible for " + g.Scope + " (Slack's user groups changed since the request)", nil
	}
	return "", nil
}

func cardOr(g Grant, card CardRef) (string, string) {
	if card.Channel != "" && card.TS != "" {
		return card.Channel, card.TS
	}
	return g.CardChannel, g.CardTS
}

// sendDecision writes the audit event of a decision and the messages it owes:
// the card updated, the requester's DM, the Jira comment.
func (s *Service) sendDecision(ctx context.Context, tx Tx, g Grant, e audit.Event) error {
	if err := tx.Audit(ctx, e); err != nil {
		return err
	}
	if g.CardChannel != "" && g.CardTS != "" {
		if err := tx.Send(ctx, decidedCard(g, g.CardChannel, g.CardTS)); err != nil {
			return err
		}
	}
	if err := tx.Send(ctx, decisionDM(g)); err != nil {
		return err
	}
	if g.Ticket != "" && s.Tickets != nil {
		return tx.Send(ctx, jiraComment(g.Ticket, jiraDecision(g)))
	}
	return nil
}

func alreadyDecided(g Grant) string {
	switch g.State {
	case StateApproved, StateIssued:
		return fmt.Sprintf("%s was already approved by %s at %s.", Code(g.ID), actorText(g.Approver), fmtTime(g.DecidedAt))
	case StateDenied:
		return fmt.Sprintf("%s was already denied by %s at %s.", Code(g.ID), actorText(g.Approver), fmtTime(g.DecidedAt))
	case StateExpired, StateRevoked:
		if !g.DecidedAt.IsZero() {
			return fmt.Sprintf("%s was approved by %s at %s and has since ended (%s).", Code(g.ID), actorText(g.Approver), fmtTime(g.DecidedAt), endText(g.EndReason))
		}
		if g.EndReason == EndExpired {
			return fmt.Sprintf("%s expired before anyone decided (%s): nothing to decide.", Code(g.ID), Escape(g.LastError))
		}
		return fmt.Sprintf("%s was cancelled (%s): nothing to decide.", Code(g.ID), endText(g.EndReason))
	}
	if g.State == StateFailed && g.LastError != "" {
		return fmt.Sprintf("%s failed (%s): nothing to decide.", Code(g.ID), Escape(g.LastError))
	}
	return fmt.Sprintf("%s is %s: nothing to decide.", Code(g.ID), g.State)
}
