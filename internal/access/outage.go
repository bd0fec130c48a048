package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
)

// Vault outages. An approved grant Vault cannot issue now stays approved
// (the outbox retries its delivery); the requester and the security channel
// are told once per wait, not on every retry. A revoke Vault cannot do now
// leaves the grant issued with RevokePending (Sweep retries it), shown in
// `grants` and App Home, and announced once in the security channel.

// ErrVaultUnavailable marks a Vault error that retrying can cure: Vault
// unreachable, sealed, failing (5xx, 429), or the bot not logged in yet.
// The app's adapter wraps such errors so that errors.Is finds it.
var ErrVaultUnavailable = errors.New("access: Vault is unavailable")

// Audit actions of outages.
const (
	// ActDeliveryDelayed: an approved grant could not be issued yet (recorded
	// once per wait, when the requester is told).
	ActDeliveryDelayed = "grant.delivery_delayed"
)

// vaultProbeGap: once an issue found Vault unavailable, deliveries in the
// next few seconds do not call it again. Each call to a Vault that is down
// can take seconds (client retries, timeouts) and deliveries share the
// outbox's one delivery loop: without the gap, grants waiting for Vault
// would hold up every other message owed.
const vaultProbeGap = 10 * time.Second

// vaultOutage is the last outage an issue met (guarded by Service.mu).
type vaultOutage struct {
	at  time.Time
	err error
}

// noteVault remembers an issue's outcome: an outage starts the gap, any
// answer from Vault ends it.
func (s *Service) noteVault(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case errors.Is(err, ErrVaultUnavailable):
		s.vaultOut = vaultOutage{at: s.now(), err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// interrupted: says nothing about Vault
	default:
		s.vaultOut = vaultOutage{} // Vault answered
	}
}

// vaultKnownOut returns the outage a recent issue met while still in the
// gap, else nil.
func (s *Service) vaultKnownOut() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vaultOut.err == nil || s.now().Sub(s.vaultOut.at) >= vaultProbeGap {
		return nil
	}
	return s.vaultOut.err
}

// waitPrefix starts LastError on an approved grant waiting for Vault: the
// mark that the requester was told.
const waitPrefix = "waiting for Vault: "

// WaitingForVault reports whether an approved grant is waiting for Vault to
// issue it (its delivery failed and is being retried), with why.
func (g Grant) WaitingForVault() (string, bool) {
	if g.State != StateApproved || !strings.HasPrefix(g.LastError, waitPrefix) {
		return "", false
	}
	return strings.TrimPrefix(g.LastError, waitPrefix), true
}

// DeliveryDelayed records on an approved grant that its delivery failed and
// is retried (LastError "waiting for Vault: why"). Issued clears it.
func (g Grant) DeliveryDelayed(why string, at time.Time) (Grant, error) {
	if g.State != StateApproved {
		return g, wrongState(g, StateApproved)
	}
	g = g.next(at)
	g.LastError = waitPrefix + why
	return g, nil
}

// delayed handles a failed issue of approved grant g: the first failure of
// a wait is recorded, audited and told (requester DM, security notice);
// later ones change nothing. It returns cause, wrapped, for the outbox to
// retry.
func (s *Service) delayed(ctx context.Context, g Grant, cause error) error {
	why := errText(cause)
	retry := fmt.Errorf("access: issue %s: %s", g.ID, why)
	if _, told := g.WaitingForVault(); told || ctx.Err() != nil {
		return retry // told already, or interrupted (shutdown): not Vault's fault
	}
	unavailable := errors.Is(cause, ErrVaultUnavailable)
	_, err := s.change(context.WithoutCancel(ctx), g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if _, told := cur.WaitingForVault(); told || cur.State != StateApproved {
			return cur, false, nil
		}
		ng, err := cur.DeliveryDelayed(why, s.now())
		if err != nil {
			return cur, false, err
		}
		if err := tx.Audit(ctx, event(actorBot, ActDeliveryDelayed, audit.Failed, why, ng)); err != nil {
			return cur, false, err
		}
		if err := tx.Send(ctx, delayedDM(ng, unavailable)); err != nil {
			return cur, false, err
		}
		if ch := s.Config.Slack.SecurityChannel; ch != "" {
			if err := tx.Send(ctx, securityNotice(ch, ng, ":hourglass_flowing_sand: *Delivery delayed* ("+Escape(Truncate(why, 200))+"); retrying:")); err != nil {
				return cur, false, err
			}
		}
		return ng, true, nil
	})
	if err != nil {
		s.log().Error("access: could not record a delayed delivery", "grant", g.ID, "err", errText(err))
	}
	return retry
}

func delayedDM(g Grant, unavailable bool) outbox.Message {
	head := fmt.Sprintf("Your access request %s for %s is *approved*", Code(g.ID), Code(g.Scope))
	if unavailable {
		return dm(g, head+"; Vault is unreachable right now, so your access will be issued as soon as it is back. Nothing for you to do: watch for the next message.")
	}
	why, _ := g.WaitingForVault()
	return dm(g, head+", but Vault did not issue it: "+Escape(Truncate(why, 200))+". It is retried until it succeeds; Platform Security has been told.")
}

// revokePendingNotice tells the security channel that access which should
// have ended is still alive in Vault, and is being retried.
func revokePendingNotice(channel string, g Grant) outbox.Message {
	what := fmt.Sprintf(":warning: *Revoke pending* (%s; Vault said: %s), retried until it succeeds:",
		Escape(endText(g.EndReason)), Escape(Truncate(g.LastError, 200)))
	return securityNotice(channel, g, what)
}
