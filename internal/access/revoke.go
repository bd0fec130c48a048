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

// Revoke ends a grant at once, at the request of Slack user by: its holder,
// an approver of its scope, or Platform Security (rights as Slack reports
// them now, through Directory). A pending or approved grant is cancelled; an
// issued one has its token revoked (by accessor, confirmed by a look-up) or
// its group deleted. If that fails, the grant is marked RevokePending and
// Sweep retries, and the person gets a *UserError saying so. why is free
// text for the record (may be empty).
func (s *Service) Revoke(ctx context.Context, grantID, by, why string) error {
	id, ok := NormalizeGrantID(grantID)
	if !ok {
		return userErr("", "%s is not a grant id (accepted: G followed by 8 letters and digits, e.g. GK3D9QX2A; see `grants`)", Code(Truncate(grantID, 20)))
	}
	why = strings.TrimSpace(why)
	if err := checkReason(why); err != nil {
		return err
	}
	if s.Directory == nil {
		return errors.New("access: revoke: no directory to check rights with")
	}
	who, err := s.Directory.Person(ctx, by)
	if err != nil {
		return &UserError{Msg: "Slack could not say who you are, so your rights could not be checked: nothing was revoked. Try again."}
	}
	if who.SlackID == "" {
		who.SlackID = by
	}
	g, err := s.get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return userErr("", "There is no grant %s (see `grants`).", Code(id))
	}
	if err != nil {
		return fmt.Errorf("access: revoke %s: %w", id, err)
	}
	sc, _ := s.scope(g.Scope)
	holder := g.Requester == who.SlackID
	if !holder && !(sc != nil && policy.CanApprove(sc, who)) && !policy.PlatformSecurity(s.Config, who) {
		ue := userErr("", "Only the holder of %s, an approver of %s or Platform Security may revoke it.", Code(g.ID), Code(g.Scope))
		return s.auditRefusal(ctx, ue, event(who.SlackID, ActRevokeRefused, audit.Refused, ue.Msg, g))
	}
	if g.State.Final() {
		return userErr("", "%s has already ended (%s).", Code(g.ID), describeEnd(g))
	}
	reason := RevokedBy(who.SlackID)
	if holder {
		reason = EndDone
	}
	ended, err := s.end(ctx, g, reason, who.SlackID, why)
	if err != nil {
		if ended.RevokePending {
			return &UserError{Msg: fmt.Sprintf("%s could not be revoked yet: %s. It is marked revoke pending and retried until it succeeds.",
				Code(g.ID), Escape(ended.LastError)), Audited: true}
		}
		return err
	}
	return nil
}

func describeEnd(g Grant) string {
	switch g.State {
	case StateDenied:
		return "denied"
	case StateFailed:
		return "failed: " + Escape(g.LastError)
	}
	return endText(g.EndReason)
}

// takeBack removes the access an issued grant carries in Vault. Revoking a
// token is confirmed by looking its accessor up.
func (s *Service) takeBack(ctx context.Context, g Grant) error {
	if g.State != StateIssued || g.TokenAccessor == AccessorDryRun {
		return nil
	}
	if s.Vault == nil {
		return errors.New("Vault is not configured")
	}
	if g.VaultGroup != "" {
		if err := s.Vault.DeleteGroup(ctx, g.VaultGroup); err != nil {
			return fmt.Errorf("deleting Vault group %s: %w", g.VaultGroup, err)
		}
		return nil
	}
	if g.TokenAccessor == "" {
		return nil
	}
	err := s.Vault.RevokeAccessor(ctx, g.TokenAccessor)
	if g.WrapAccessor != "" && g.WrapStatus != WrapUsed {
		if werr := s.Vault.RevokeAccessor(ctx, g.WrapAccessor); werr != nil {
			s.log().Warn("access: could not revoke a wrapping token (it expires on its own)", "grant", g.ID, "err", errText(werr))
		}
	}
	if err != nil {
		return fmt.Errorf("revoking the token: %w", err)
	}
	alive, err := s.Vault.AccessorAlive(ctx, g.TokenAccessor)
	if err != nil {
		return fmt.Errorf("confirming the revoke: %w", err)
	}
	if alive {
		return errors.New("the token is still alive after revoking it")
	}
	return nil
}

// end takes g's access back and records the end (state expired or revoked,
// audit, DM, security notice, Jira comment). When taking back fails, the
// grant is marked RevokePending (audited the first time) and the error is
// returned with the grant as marked.
func (s *Service) end(ctx context.Context, g Grant, reason, actor, why string) (Grant, error) {
	for range maxConflictRetries {
		if err := s.takeBack(ctx, g); err != nil {
			msg := errText(err)
			marked, cerr := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
				if cur.State != StateIssued {
					return cur, false, nil
				}
				first := !cur.RevokePending
				ng, err := cur.RevokeFailed(reason, msg, s.now())
				if err != nil {
					return cur, false, err
				}
				if first {
					if err := tx.Audit(ctx, event(actor, ActRevokeFailed, audit.Failed, endText(reason)+": "+msg, ng)); err != nil {
						return cur, false, err
					}
					if ch := s.Config.Slack.SecurityChannel; ch != "" {
						if err := tx.Send(ctx, revokePendingNotice(ch, ng)); err != nil {
							return cur, false, err
						}
					}
				}
				return ng, first || cur.LastError != msg || cur.EndReason != reason, nil
			})
			if cerr != nil {
				return marked, fmt.Errorf("access: revoke %s: %s; recording it failed: %w", g.ID, msg, cerr)
			}
			return marked, fmt.Errorf("access: revoke %s: %s", g.ID, msg)
		}
		var again *Grant
		ended, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
			again = nil
			if cur.State.Final() {
				return cur, false, nil // someone else ended it
			}
			if cur.State == StateIssued && (g.State != StateIssued || cur.TokenAccessor != g.TokenAccessor || cur.VaultGroup != g.VaultGroup) {
				again = &cur // issued (again) since we took back: take that back too
				return cur, false, nil
			}
			ng, err := cur.End(reason, s.now())
			if err != nil {
				return cur, false, err
			}
			action := ActRevoked
			if ng.State == StateExpired {
				action = ActExpired
			}
			text := endText(reason)
			if why != "" {
				text += ": " + why
			}
			if err := tx.Audit(ctx, event(actor, action, audit.OK, text, ng)); err != nil {
				return cur, false, err
			}
			return ng, true, s.sendEnded(ctx, tx, cur, ng)
		})
		if err != nil {
			return ended, fmt.Errorf("access: record end of %s: %w", g.ID, err)
		}
		if again == nil {
			return ended, nil
		}
		g = *again
	}
	return g, fmt.Errorf("access: end %s: the grant kept changing", g.ID)
}

// sendEnded sends what an end owes: the requester's DM, the security notice
// (for access that was issued), the card (for a request ended before a
// decision), the Jira comment.
func (s *Service) sendEnded(ctx context.Context, tx Tx, before, g Grant) error {
	if err := tx.Send(ctx, endedDM(g)); err != nil {
		return err
	}
	if by, ok := strings.CutPrefix(g.EndReason, endRevokedBy); ok && before.RevokePending && by != g.Requester {
		// Who asked was told "revoke pending"; now tell them it is done.
		line := fmt.Sprintf(":lock: The revoke of %s (%s for <@%s>) you asked for is done: Vault confirmed it.", Code(g.ID), Code(g.Scope), g.Requester)
		if err := tx.Send(ctx, outbox.Message{Kind: outbox.DM, Target: by, Text: line, Blocks: Blocks(Section(line))}); err != nil {
			return err
		}
	}
	if before.State == StateIssued {
		if ch := s.Config.Slack.SecurityChannel; ch != "" {
			if err := tx.Send(ctx, endedNotice(ch, g)); err != nil {
				return err
			}
		}
	}
	if before.State == StatePending && g.CardChannel != "" && g.CardTS != "" {
		if err := tx.Send(ctx, decidedCard(g, g.CardChannel, g.CardTS)); err != nil {
			return err
		}
	}
	if g.Ticket != "" && s.Tickets != nil {
		return tx.Send(ctx, jiraComment(g.Ticket, jiraEnded(g)))
	}
	return nil
}
