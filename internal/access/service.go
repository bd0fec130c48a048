package access

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
)

// Service runs access requests. Config and Store are required; Tickets and
// OnCall are nil when Jira or PagerDuty is not configured (scopes needing
// them are then disabled by config, and the service refuses them anyway).
// Vault may be nil only in dry-run mode. Now defaults to time.Now, Log to
// slog.Default(). DryRun makes no Vault writes: DMs say what would have
// been issued, and the grant records the accessor "dry-run".
//
// A Service is safe for concurrent use.
type Service struct {
	Config    *config.Config
	Store     Store
	Tickets   Tickets
	OnCall    OnCall
	Vault     Vault
	Messenger Messenger
	Directory Directory
	Now       func() time.Time
	Log       *slog.Logger
	DryRun    bool

	// CheckTimeout bounds each evidence check (default 10s).
	CheckTimeout time.Duration

	mu       sync.Mutex
	lastPoll map[string]time.Time // grant id -> last incident poll
	vaultOut vaultOutage          // deliveries skip Vault for a moment after it was found out (outage.go)
}

// Actor of events the service does on its own.
const actorBot = "secretbot"

// Audit actions.
const (
	ActRequested        = "grant.requested"
	ActRequestRefused   = "grant.request_refused" // refused before anything was stored
	ActRateLimited      = "grant.rate_limited"    // refused by limits.requests_per_user
	ActRefused          = "grant.refused"         // the evidence refused it
	ActChecksPassed     = "grant.checks_passed"
	ActApproved         = "grant.approved"
	ActDenied           = "grant.denied"
	ActDecideRefused    = "grant.decide_refused"
	ActIssued           = "grant.issued"
	ActDelivered        = "grant.delivered"
	ActUndelivered      = "grant.undelivered"
	ActFailed           = "grant.failed"
	ActRevoked          = "grant.revoked"
	ActExpired          = "grant.expired"
	ActRevokeFailed     = "grant.revoke_failed"
	ActRevokeRefused    = "grant.revoke_refused"
	ActUnwrapped        = "grant.unwrapped"
	ActTicketOpened     = "grant.ticket_opened"
	defaultCheckTO      = 10 * time.Second
	defaultDeliverLease = 2 * time.Minute  // an issued grant not yet DMed is left alone this long
	abandonedDelivery   = 10 * time.Minute // Sweep takes back a token undelivered this long
	staleChecks         = 5 * time.Minute  // pending grants still checking after this were interrupted
	wrapCheckLead       = time.Minute      // look the wrapping token up this long before it expires
	maxConflictRetries  = 5
)

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// deliverLease is vault.delivery_lease (defaultDeliverLease when unset, as in
// tests that build a Config by hand).
func (s *Service) deliverLease() time.Duration {
	if d := s.Config.Vault.DeliveryLease.D(); d > 0 {
		return d
	}
	return defaultDeliverLease
}

func (s *Service) checkTimeout() time.Duration {
	if s.CheckTimeout > 0 {
		return s.CheckTimeout
	}
	return defaultCheckTO
}

func (s *Service) approvalsChannel() string {
	if c := s.Config.Slack.ApprovalsChannel; c != "" {
		return c
	}
	return s.Config.Slack.SecurityChannel
}

// errText makes an error fit for a person, a row or an audit event: no
// credential, one line, bounded.
func errText(err error) string {
	if err == nil {
		return ""
	}
	t := audit.Redact(err.Error())
	t = strings.Join(strings.Fields(t), " ")
	return Truncate(t, 300)
}

// event builds an audit event about g.
func event(actor, action, outcome, reason string, g Grant) audit.Event {
	links := map[string]string{"grant": g.ID}
	if g.Ticket != "" {
		links["ticket"] = g.Ticket
	}
	if g.Incident != "" {
		links["incident"] = g.Incident
	}
	if g.TokenAccessor != "" {
		links["accessor"] = g.TokenAccessor
	}
	if g.VaultGroup != "" {
		links["vault_group"] = g.VaultGroup
	}
	if actor == "" {
		actor = actorBot
	}
	return audit.Event{Actor: actor, Action: action, Scope: g.Scope, Outcome: outcome,
		Reason: audit.Redact(Truncate(reason, 1000)), Links: links}
}

// errStop aborts a change whose grant moved on; the caller cleans up.
var errStop = errors.New("access: stop")

// change reads grant id inside one transaction, lets fn decide what to
// write (and write the audit events and messages of the change through tx),
// and writes fn's grant with a compare-and-set on the version read. When
// write is false nothing is written to the grant, but what fn sent and
// audited commits. A conflict re-runs the whole transaction.
func (s *Service) change(ctx context.Context, id string, fn func(tx Tx, g Grant) (Grant, bool, error)) (Grant, error) {
	var out Grant
	var err error
	for range maxConflictRetries {
		err = s.Store.InTx(ctx, func(tx Tx) error {
			cur, err := tx.GrantGet(ctx, id)
			if err != nil {
				return err
			}
			ng, write, err := fn(tx, cur)
			if err != nil {
				return err
			}
			out = cur
			if write {
				if err := tx.GrantUpdate(ctx, ng, cur.Version); err != nil {
					return err
				}
				out = ng
			}
			return nil
		})
		if !errors.Is(err, ErrConflict) {
			return out, err
		}
	}
	return out, err
}

func (s *Service) get(ctx context.Context, id string) (Grant, error) {
	var g Grant
	err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		g, err = tx.GrantGet(ctx, id)
		return err
	})
	return g, err
}

// auditRefusal records a refusal in its own transaction and marks ue audited.
func (s *Service) auditRefusal(ctx context.Context, ue *UserError, e audit.Event) error {
	err := s.Store.InTx(ctx, func(tx Tx) error { return tx.Audit(ctx, e) })
	if err != nil {
		s.log().Error("access: could not audit a refusal", "action", e.Action, "err", errText(err))
	} else {
		ue.Audited = true
	}
	return ue
}

func (s *Service) scope(name string) (*config.Scope, bool) { return s.Config.Scope(name) }
