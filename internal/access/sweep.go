package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
)

// Sweep does the time-driven work, in this order: retries of failed revokes,
// expiries (ExpiresAt <= now: revoked, state expired), unused wrapping
// tokens (looked up in the last minute before they expire; still unused at
// expiry: the grant is revoked as "wrap-unused" and the requester told),
// resolved incidents (scopes that end with their incident: polled every
// pagerduty.incident_poll_interval; resolved or gone: revoked), and requests
// whose checks were interrupted (failed). Call it at start, before anything
// else, and then every few seconds. It carries on past a failing grant and
// returns every error it met.
func (s *Service) Sweep(ctx context.Context) error {
	var issued, pending []Grant
	err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		if issued, err = tx.GrantsByState(ctx, StateIssued); err != nil {
			return err
		}
		pending, err = tx.GrantsByState(ctx, StatePending)
		return err
	})
	if err != nil {
		return fmt.Errorf("access: sweep: %w", err)
	}
	var errs []error
	now := s.now()
	live := map[string]bool{}
	for _, g := range issued {
		live[g.ID] = true
		if ctx.Err() != nil {
			break
		}
		if err := s.sweepOne(ctx, g, now); err != nil {
			errs = append(errs, err)
		}
	}
	for _, g := range pending {
		if ctx.Err() != nil {
			break
		}
		if err := s.sweepPending(ctx, g, now); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	for id := range s.lastPoll {
		if !live[id] {
			delete(s.lastPoll, id)
		}
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

func (s *Service) sweepOne(ctx context.Context, g Grant, now time.Time) error {
	switch {
	case g.RevokePending && g.EndReason == EndUndelivered:
		_, err := s.undeliver(ctx, g, "retrying the revoke of an undelivered token")
		return err
	case g.RevokePending:
		reason := g.EndReason
		if reason == "" {
			reason = EndExpired
		}
		_, err := s.end(ctx, g, reason, actorBot, "retry")
		return err
	case !g.ExpiresAt.IsZero() && !now.Before(g.ExpiresAt):
		_, err := s.end(ctx, g, g.ExpiryReason(), actorBot, "")
		return err
	case g.DeliveredAt.IsZero() && now.Sub(g.IssuedAt) >= abandonedDelivery:
		// Issued long ago and never delivered (a crash, and the delivery
		// message given up): a token nobody can reach. Take it back; the
		// grant is approved again, for a delivery retry.
		_, err := s.undeliver(ctx, g, "its delivery was abandoned")
		return err
	case g.DeliveredAt.IsZero():
		return nil // Deliver's business
	}
	if err := s.sweepWrap(ctx, g, now); err != nil || ctx.Err() != nil {
		return err
	}
	return s.sweepIncident(ctx, g, now)
}

func (s *Service) sweepWrap(ctx context.Context, g Grant, now time.Time) error {
	if g.Delivery == config.DeliveryEntityGroup || g.WrapAccessor == "" || g.TokenAccessor == AccessorDryRun ||
		g.WrapStatus == WrapUsed || g.WrapExpires.IsZero() || now.Before(g.WrapExpires.Add(-wrapCheckLead)) {
		return nil
	}
	if s.Vault == nil {
		return errors.New("access: sweep: Vault is not configured")
	}
	if !now.Before(g.WrapExpires) {
		// Expired without a look-up that saw it unwrapped: fail closed.
		_, err := s.end(ctx, g, EndWrapUnused, actorBot, "")
		return err
	}
	alive, err := s.Vault.AccessorAlive(ctx, g.WrapAccessor)
	if err != nil {
		return fmt.Errorf("access: look up the wrapping token of %s: %s", g.ID, errText(err))
	}
	status := WrapUsed
	if alive {
		status = WrapUnused
	}
	if status == g.WrapStatus {
		return nil
	}
	_, err = s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StateIssued || cur.WrapAccessor != g.WrapAccessor || cur.WrapStatus == WrapUsed {
			return cur, false, nil
		}
		ng, err := cur.WithWrapStatus(status, s.now())
		if err != nil {
			return cur, false, err
		}
		if status == WrapUsed {
			if err := tx.Audit(ctx, event(actorBot, ActUnwrapped, audit.OK, "the wrapping token was used", ng)); err != nil {
				return cur, false, err
			}
		}
		return ng, true, nil
	})
	return err
}

func (s *Service) sweepIncident(ctx context.Context, g Grant, now time.Time) error {
	sc, ok := s.scope(g.Scope)
	if !ok || !sc.EndsWithIncident || g.Incident == "" {
		return nil
	}
	if s.OnCall == nil {
		s.log().Warn("access: cannot poll the incident of a grant: PagerDuty is not configured", "grant", g.ID)
		return nil
	}
	interval := s.Config.PagerDuty.IncidentPollInterval.D()
	if interval <= 0 {
		interval = config.DefaultIncidentPollInterval
	}
	s.mu.Lock()
	if s.lastPoll == nil {
		s.lastPoll = map[string]time.Time{}
	}
	last, polled := s.lastPoll[g.ID]
	if polled && now.Sub(last) < interval {
		s.mu.Unlock()
		return nil
	}
	s.lastPoll[g.ID] = now
	s.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, s.checkTimeout())
	defer cancel()
	inc, err := s.OnCall.Incident(cctx, g.Incident)
	switch {
	case errors.Is(err, ErrIncidentNotFound):
	case err != nil:
		return fmt.Errorf("access: poll incident %s of %s: %s", g.Incident, g.ID, errText(err))
	case inc.Open():
		return nil
	}
	_, err = s.end(ctx, g, EndIncidentResolved, actorBot, "incident "+g.Incident)
	return err
}

func (s *Service) sweepPending(ctx context.Context, g Grant, now time.Time) error {
	checking := false
	for _, e := range g.Evidence {
		checking = checking || e.Status == EvidenceChecking
	}
	if !checking {
		return s.expireUndecided(ctx, g, now)
	}
	if now.Sub(g.CreatedAt) < staleChecks {
		return nil
	}
	why := "the checks were interrupted (the bot restarted); request again"
	_, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StatePending || cur.Version != g.Version {
			return cur, false, nil
		}
		ng, err := cur.Fail(why, s.now())
		if err != nil {
			return cur, false, err
		}
		if err := tx.Audit(ctx, event(actorBot, ActFailed, audit.Failed, why, ng)); err != nil {
			return cur, false, err
		}
		return ng, true, tx.Send(ctx, dm(ng, fmt.Sprintf("Your access request %s for %s failed: %s.", Code(ng.ID), Code(ng.Scope), why)))
	})
	return err
}

// expireUndecided ends a request waiting for an approver longer than
// limits.request_open_for: state expired, the requester told, the card (if
// known) shown ended without its buttons. A click on it later only says so.
func (s *Service) expireUndecided(ctx context.Context, g Grant, now time.Time) error {
	open := s.Config.Limits.RequestOpenFor.D()
	if open <= 0 || now.Sub(g.CreatedAt) < open {
		return nil
	}
	why := fmt.Sprintf("no approver decided within %s", config.Duration(open))
	_, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StatePending || cur.Version != g.Version {
			return cur, false, nil
		}
		ng, err := cur.End(EndExpired, now)
		if err != nil {
			return cur, false, err
		}
		ng.LastError = why
		if err := tx.Audit(ctx, event(actorBot, ActExpired, audit.OK, why, ng)); err != nil {
			return cur, false, err
		}
		if ng.CardChannel != "" && ng.CardTS != "" {
			if err := tx.Send(ctx, decidedCard(ng, ng.CardChannel, ng.CardTS)); err != nil {
				return cur, false, err
			}
		}
		return ng, true, tx.Send(ctx, dm(ng, fmt.Sprintf("Your access request %s for %s expired: %s. Nothing was granted; request again if you still need it.",
			Code(ng.ID), Code(ng.Scope), why)))
	})
	return err
}
