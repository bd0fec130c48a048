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
)

// Deliver issues an approved grant and tells the requester (the outbox kind
// deliver-grant calls it). nil means done or nothing left to do; an error
// means try again later (and never holds a credential).
//
// wrapped-token: the token is created (response-wrapped) only now; the grant
// moves to issued with its accessors (audit "grant.issued"), then the DM
// with the wrapping token goes out through Messenger.SendNow; if that fails
// the token is revoked and the grant is approved again, so a retry issues a
// fresh one. An issued grant whose DM was never confirmed (a crash in
// between) is treated the same way once deliverLease has passed.
// entity-group: the requester's entity joins the grant's group; the DM goes
// through the outbox with the state change. DryRun: no Vault write.
func (s *Service) Deliver(ctx context.Context, grantID string) error {
	g, err := s.get(ctx, grantID)
	if errors.Is(err, ErrNotFound) {
		s.log().Warn("access: deliver: no such grant", "grant", grantID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("access: deliver %s: %w", grantID, err)
	}
	now := s.now()
	switch g.State {
	case StateApproved:
	case StateIssued:
		if !g.DeliveredAt.IsZero() {
			return nil // already delivered
		}
		if g.RevokePending && g.EndReason != EndUndelivered {
			return nil // being ended: Sweep finishes it
		}
		if !g.ExpiresAt.IsZero() && !now.Before(g.ExpiresAt) {
			return nil // over before it was delivered: Sweep ends it
		}
		if !g.RevokePending && now.Sub(g.IssuedAt) < s.deliverLease() {
			return fmt.Errorf("access: delivery of %s is in progress (issued %s ago); try again later", g.ID, now.Sub(g.IssuedAt).Round(time.Second))
		}
		// Issued but never confirmed delivered: take the token back, then
		// issue a fresh one.
		if g, err = s.undeliver(ctx, g, "its delivery was not confirmed"); err != nil {
			return err
		}
		if g.State != StateApproved {
			return nil
		}
	default:
		return nil // denied, failed, revoked, ...: nothing to deliver
	}
	sc, ok := s.scope(g.Scope)
	if !ok {
		return s.failApproved(ctx, g, fmt.Sprintf("the scope %s is no longer configured", g.Scope))
	}
	ttl := g.TTL
	if !g.NotAfter.IsZero() {
		if left := g.NotAfter.Sub(now); left < ttl {
			ttl = left
		}
	}
	if ttl < MinTTL {
		return s.failApproved(ctx, g, fmt.Sprintf("ticket %s expires at %s: too soon to issue access", g.Ticket, fmtTime(g.NotAfter)))
	}
	if !s.DryRun && s.Vault == nil {
		return errors.New("access: deliver: Vault is not configured")
	}
	if err := s.vaultKnownOut(); err != nil && !s.DryRun {
		return s.delayed(ctx, g, err) // Vault was just found out: do not hold the outbox up asking again
	}
	if g.Delivery == config.DeliveryEntityGroup {
		return s.deliverGroup(ctx, g, sc)
	}
	return s.deliverWrapped(ctx, g, sc, ttl)
}

func (s *Service) failApproved(ctx context.Context, g Grant, why string) error {
	_, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StateApproved {
			return cur, false, nil
		}
		ng, err := cur.Fail(why, s.now())
		if err != nil {
			return cur, false, err
		}
		return ng, true, s.sendDecision(ctx, tx, ng, event(actorBot, ActFailed, audit.Failed, why, ng))
	})
	if err != nil {
		return fmt.Errorf("access: fail %s: %w", g.ID, err)
	}
	return nil
}

func (s *Service) grantMetadata(g Grant) map[string]string {
	m := map[string]string{"grant": g.ID, "user": g.Requester, "email": g.Email, "scope": g.Scope}
	if g.Ticket != "" {
		m["ticket"] = g.Ticket
	}
	if g.Incident != "" {
		m["incident"] = g.Incident
	}
	return m
}

// displayName is "secretbot-<slack name or e-mail>", reduced to characters
// Vault keeps in a display name.
func displayName(g Grant) string {
	n := g.RequesterName
	if n == "" {
		n = g.Email
	}
	if n == "" {
		n = g.Requester
	}
	n = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-', r == '@':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '-'
	}, n)
	return Truncate("secretbot-"+n, 64)
}

func (s *Service) deliverWrapped(ctx context.Context, g Grant, sc *config.Scope, ttl time.Duration) error {
	var w Wrapped
	if s.DryRun {
		w = Wrapped{TokenAccessor: AccessorDryRun}
	} else {
		var err error
		w, err = s.Vault.IssueWrapped(ctx, IssueRequest{Policies: append([]string(nil), sc.VaultPolicies...), TTL: ttl,
			Metadata: s.grantMetadata(g), DisplayName: displayName(g)})
		s.noteVault(err)
		if err != nil {
			if w.WrapToken != "" { // never expected with an error; defence in depth
				return fmt.Errorf("access: issue %s: %s", g.ID, scrub(errText(err), w.WrapToken))
			}
			return s.delayed(ctx, g, err)
		}
		if w.WrapToken == "" || w.TokenAccessor == "" {
			s.revokeQuietly(ctx, w)
			return fmt.Errorf("access: issue %s: Vault returned no wrapping token or accessor", g.ID)
		}
	}
	// A token exists from here on: finish the bookkeeping even if the
	// caller gives up (shutdown), or the token could be left unrecorded.
	ctx = context.WithoutCancel(ctx)
	issued, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StateApproved {
			return cur, false, errStop // ended, or delivered by someone else, meanwhile
		}
		ng, err := cur.Issued(w, "", s.now())
		if err != nil {
			return cur, false, err
		}
		if s.DryRun {
			ng.DeliveredAt = ng.IssuedAt
			if err := s.sendIssued(ctx, tx, ng, "dry run: nothing was written to Vault"); err != nil {
				return cur, false, err
			}
			return ng, true, tx.Send(ctx, dryRunDM(ng, sc))
		}
		return ng, true, tx.Audit(ctx, event(actorBot, ActIssued, audit.OK, fmt.Sprintf("wrapped token, ttl %s", config.Duration(ttl)), ng))
	})
	if err != nil {
		if !s.DryRun {
			s.revokeQuietly(ctx, w)
		}
		if errors.Is(err, errStop) {
			return nil
		}
		return fmt.Errorf("access: record issue of %s: %w", g.ID, err)
	}
	if s.DryRun {
		return nil
	}

	// The one message that carries the wrapping token.
	ts, sendErr := s.sendNow(ctx, issuedDM(issued, w.WrapToken, s.Config.Creds.VaultAddr, s.Config.Vault.Namespace))
	if sendErr != nil {
		why := "the DM could not be sent: " + scrub(errText(sendErr), w.WrapToken)
		if _, err := s.undeliver(ctx, issued, why); err != nil {
			return fmt.Errorf("access: deliver %s: %s; %w", g.ID, why, err)
		}
		return fmt.Errorf("access: deliver %s: %s; the token was revoked and will be issued afresh", g.ID, why)
	}
	_, err = s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StateIssued || cur.TokenAccessor != w.TokenAccessor {
			return cur, false, nil // ended meanwhile: nothing to record
		}
		ng, err := cur.Delivered(s.now())
		if err != nil {
			return cur, false, err
		}
		return ng, true, s.sendIssued(ctx, tx, ng, "DM sent (message "+ts+")")
	})
	if err != nil {
		// The DM went out; recording it failed. A retry finds the grant
		// undelivered after deliverLease and re-issues (revoking this token).
		return fmt.Errorf("access: record delivery of %s: %w", g.ID, err)
	}
	return nil
}

// sendIssued audits "grant.delivered" and sends the security notice and the
// Jira record (a comment, or a ticket opened for scopes that need none).
func (s *Service) sendIssued(ctx context.Context, tx Tx, g Grant, reason string) error {
	if err := tx.Audit(ctx, event(actorBot, ActDelivered, audit.OK, reason, g)); err != nil {
		return err
	}
	if ch := s.Config.Slack.SecurityChannel; ch != "" {
		if err := tx.Send(ctx, issuedNotice(ch, g)); err != nil {
			return err
		}
	}
	if s.Tickets == nil {
		return nil
	}
	if g.Ticket != "" {
		return tx.Send(ctx, jiraComment(g.Ticket, jiraIssued(g)))
	}
	return tx.Send(ctx, outbox.Message{Kind: outbox.JiraOpen, Target: g.ID})
}

// sendNow sends the DM carrying a credential. Its error never repeats the
// message.
func (s *Service) sendNow(ctx context.Context, m outbox.Message) (string, error) {
	if s.Messenger == nil {
		return "", errors.New("no messenger is configured")
	}
	return s.Messenger.SendNow(ctx, m)
}

// scrub removes secret from text (defence in depth: errText already masks
// token shapes).
func scrub(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, redacted)
}

// revokeQuietly takes back a token nobody will ever hold (an issue that
// could not be recorded). A failure is logged: the token then dies at its TTL.
func (s *Service) revokeQuietly(ctx context.Context, w Wrapped) {
	if s.Vault == nil {
		return
	}
	for _, a := range []string{w.TokenAccessor, w.WrapAccessor} {
		if a == "" || a == AccessorDryRun {
			continue
		}
		if err := s.Vault.RevokeAccessor(context.WithoutCancel(ctx), a); err != nil {
			s.log().Error("access: could not revoke an unrecorded token; it ends at its TTL", "accessor", a, "err", errText(err))
		}
	}
}

// undeliver takes back the token of an issued grant whose DM did not go out
// and moves it back to approved (audit "grant.undelivered"). When the token
// cannot be revoked the grant stays issued with RevokePending (reason
// "undelivered"), and Deliver or Sweep tries again.
func (s *Service) undeliver(ctx context.Context, g Grant, why string) (Grant, error) {
	if err := s.takeBack(ctx, g); err != nil {
		msg := "revoking the undelivered token failed: " + errText(err)
		g2, cerr := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
			if cur.State != StateIssued || cur.TokenAccessor != g.TokenAccessor {
				return cur, false, nil
			}
			first := !cur.RevokePending
			ng, err := cur.RevokeFailed(EndUndelivered, msg, s.now())
			if err != nil {
				return cur, false, err
			}
			if first {
				if err := tx.Audit(ctx, event(actorBot, ActRevokeFailed, audit.Failed, why+"; "+msg, ng)); err != nil {
					return cur, false, err
				}
			}
			return ng, first || cur.LastError != msg, nil
		})
		if cerr != nil {
			return g2, fmt.Errorf("access: %s; recording it failed: %w", msg, cerr)
		}
		return g2, fmt.Errorf("access: %s", msg)
	}
	g2, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StateIssued || cur.TokenAccessor != g.TokenAccessor {
			return cur, false, nil
		}
		ng, err := cur.Undelivered(s.now())
		if err != nil {
			return cur, false, err
		}
		ev := event(actorBot, ActUndelivered, audit.Failed, why+"; the token was revoked", cur)
		return ng, true, tx.Audit(ctx, ev)
	})
	if err != nil {
		return g2, fmt.Errorf("access: record undelivered %s: %w", g.ID, err)
	}
	return g2, nil
}

func (s *Service) deliverGroup(ctx context.Context, g Grant, sc *config.Scope) error {
	group := "secretbot-" + g.ID
	if s.DryRun {
		group = ""
	} else if err := s.Vault.JoinGroup(ctx, group, append([]string(nil), sc.VaultPolicies...), g.Email, s.grantMetadata(g)); err != nil {
		s.noteVault(err)
		return s.delayed(ctx, g, err)
	} else {
		s.noteVault(nil)
	}
	ctx = context.WithoutCancel(ctx) // the group exists: finish the bookkeeping
	_, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StateApproved {
			return cur, false, errStop
		}
		w := Wrapped{}
		if s.DryRun {
			w.TokenAccessor = AccessorDryRun
		}
		ng, err := cur.Issued(w, group, s.now())
		if err != nil {
			return cur, false, err
		}
		ng.DeliveredAt = ng.IssuedAt
		how := "entity-group " + group
		if s.DryRun {
			how = "dry run: nothing was written to Vault"
		}
		if err := tx.Audit(ctx, event(actorBot, ActIssued, audit.OK, how, ng)); err != nil {
			return cur, false, err
		}
		if err := s.sendIssued(ctx, tx, ng, how); err != nil {
			return cur, false, err
		}
		if s.DryRun {
			return ng, true, tx.Send(ctx, dryRunDM(ng, sc))
		}
		return ng, true, tx.Send(ctx, groupDM(ng, sc))
	})
	if err != nil {
		if !s.DryRun && group != "" {
			if derr := s.Vault.DeleteGroup(context.WithoutCancel(ctx), group); derr != nil {
				s.log().Error("access: could not delete an unrecorded grant group", "group", group, "err", errText(derr))
			}
		}
		if errors.Is(err, errStop) {
			return nil
		}
		return fmt.Errorf("access: record issue of %s: %w", g.ID, err)
	}
	return nil
}
