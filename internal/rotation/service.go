package rotation

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
)

// Service runs the inventory and rotations. Config, Store and KV are
// required; Tickets is nil without Jira (rotations and provisioning that
// name a ticket are then refused), Incidents nil without PagerDuty
// (emergencies are then refused). People may be nil (the alert then names
// the incident's assignee without a mention). Directory, when set, is asked
// for the person's rights at the moment of acting (fail closed); without it
// the person the caller passes is trusted as Slack reported them. Grants is
// needed by Exposure, Messenger by PostThread. Now defaults to time.Now,
// Log to slog.Default(), Rand to crypto/rand.Reader.
//
// A Service is safe for concurrent use.
type Service struct {
	Config    *config.Config
	Store     Store
	KV        KV
	Tickets   Tickets
	Incidents Incidents
	People    People
	Directory Directory
	Grants    Grants
	Messenger Messenger
	Now       func() time.Time
	Log       *slog.Logger
	Rand      io.Reader
}

// Actor of events the service does on its own.
const actorBot = "secretbot"

// Audit actions.
const (
	ActRegistered       = "secret.registered"
	ActRegisterRefused  = "secret.register_refused"
	ActSynced           = "secret.synced" // a config entry entered or changed the registry
	ActProvisioned      = "secret.provisioned"
	ActProvisionRefused = "secret.provision_refused"
	ActProvisionFailed  = "secret.provision_failed"
	ActMetadataFailed   = "secret.metadata_failed"
	ActDrift            = "secret.drift"
	ActExported         = "secret.inventory_exported"
	ActExposure         = "secret.exposure"
	ActStarted          = "rotation.started"
	ActRotateRefused    = "rotation.refused"
	ActRotateFailed     = "rotation.failed"
	ActCASConflict      = "rotation.cas_conflict"
	ActThreadPosted     = "rotation.thread_posted"
	ActStagingVerified  = "rotation.staging_verified"
	ActProdVerified     = "rotation.production_verified"
	ActCompleted        = "rotation.completed"
	ActPreviousRetired  = "rotation.previous_retired"
	ActRetireFailed     = "rotation.retire_failed"
	ActConfirmRefused   = "rotation.confirm_refused"
	ActRolledBack       = "rotation.rolled_back"
	ActRollbackRefused  = "rotation.rollback_refused"
	ActRollbackFailed   = "rotation.rollback_failed"
	ActFlagged          = "rotation.flagged"
	ActReminded         = "rotation.reminded"
	ActReviewSaved      = "rotation.review_saved"
	ActJournal          = "journal.recorded"
	ActJournalRefused   = "journal.refused"
	maxConflictRetries  = 5
)

// ValueKey is the key of the KV data a rotation writes: {"value": "..."}.
const ValueKey = "value"

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

func (s *Service) rand() io.Reader {
	if s.Rand != nil {
		return s.Rand
	}
	return rand.Reader
}

func (s *Service) securityChannel() string { return s.Config.Slack.SecurityChannel }

// errText makes an error fit for a person, a row or an audit event: no
// credential, one line, bounded. Errors never carry a value (no adapter
// puts one there), and Redact is defence in depth.
func errText(err error) string {
	if err == nil {
		return ""
	}
	t := audit.Redact(err.Error())
	t = strings.Join(strings.Fields(t), " ")
	return access.Truncate(t, 300)
}

func orBot(id string) string {
	if id == "" {
		return actorBot
	}
	return id
}

// secretEvent builds an audit event about secret sec (and rotation r, when set).
func secretEvent(actor, action, outcome, reason string, sec string, r *Rotation) audit.Event {
	links := map[string]string{}
	if r != nil {
		if r.ID != "" {
			links["rotation"] = r.ID
		}
		if ticketRe.MatchString(r.Ticket) {
			links["ticket"] = r.Ticket
		}
		if r.Incident != "" {
			links["incident"] = r.Incident
		}
		if r.ThreadChannel != "" && r.ThreadTS != "" {
			links["slack_thread"] = r.ThreadChannel + "/" + r.ThreadTS
		}
	}
	if len(links) == 0 {
		links = nil
	}
	return audit.Event{Actor: orBot(actor), Action: action, Secret: sec, Outcome: outcome,
		Reason: audit.Redact(access.Truncate(reason, 1000)), Links: links}
}

// audited records an event in its own transaction (for refusals and
// failures that change nothing else); a *UserError is marked audited.
func (s *Service) audited(ctx context.Context, err error, e audit.Event) error {
	aerr := s.Store.InTx(ctx, func(tx Tx) error { return tx.Audit(ctx, e) })
	if aerr != nil {
		s.log().Error("rotation: could not audit", "action", e.Action, "err", errText(aerr))
		return err
	}
	if ue, ok := IsUserError(err); ok {
		ue.Audited = true
	}
	return err
}

// changeRotation reads rotation id in one transaction, lets fn decide what
// to write (and write its audit events and messages through tx), and writes
// fn's rotation with a compare-and-set on the version read. A conflict
// re-runs the whole transaction.
func (s *Service) changeRotation(ctx context.Context, id string, fn func(tx Tx, r Rotation) (Rotation, bool, error)) (Rotation, error) {
	var out Rotation
	var err error
	for range maxConflictRetries {
		err = s.Store.InTx(ctx, func(tx Tx) error {
			cur, err := tx.RotationGet(ctx, id)
			if err != nil {
				return err
			}
			nr, write, err := fn(tx, cur)
			if err != nil {
				return err
			}
			out = cur
			if write {
				nr.Version = cur.Version + 1
				nr.UpdatedAt = s.now()
				if err := tx.RotationUpdate(ctx, nr, cur.Version); err != nil {
					return err
				}
				out = nr
			}
			return nil
		})
		if !errors.Is(err, ErrConflict) {
			return out, err
		}
	}
	return out, err
}

func (s *Service) getRotation(ctx context.Context, id string) (Rotation, error) {
	var r Rotation
	err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		r, err = tx.RotationGet(ctx, id)
		return err
	})
	return r, err
}

func (s *Service) getSecret(ctx context.Context, name string) (Secret, error) {
	var sec Secret
	err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		sec, err = tx.SecretGet(ctx, name)
		return err
	})
	return sec, err
}
