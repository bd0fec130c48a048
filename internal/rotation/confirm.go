package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

// Confirm records a rotator's click on Staging verified or Production
// verified (stage StageStaging or StageProduction). Staging comes first.
// Production verified retires the previous KV version (destroy, or
// soft-delete per rotation.previous_version; a failure leaves the rotation
// open, to press again), records the rotation in the registry (time,
// operator, ticket, version), mirrors it into the custom_metadata, posts the
// completion notice to the security channel and queues the evidence as a
// comment on the ticket; an emergency also gets the post-incident review
// button in its thread. The first click wins: a later one gets a
// *UserError saying who verified and when. Every refusal is audited.
func (s *Service) Confirm(ctx context.Context, p policy.Person, rotationID, stage string) (Rotation, error) {
	id, ok := NormalizeRotationID(rotationID)
	if !ok {
		return Rotation{}, userErr("", "%s is not a rotation id (R followed by 8 letters and digits)", access.Code(access.Truncate(rotationID, 20)))
	}
	stage = strings.ToLower(strings.TrimSpace(stage))
	if stage != StageStaging && stage != StageProduction {
		return Rotation{}, userErr("stage", "%s is not a stage: accepted staging, production", access.Code(access.Truncate(stage, 20)))
	}
	op, err := s.rotator(ctx, p, "confirm rotations", ActConfirmRefused, "")
	if err != nil {
		return Rotation{}, err
	}
	r, err := s.getRotation(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Rotation{}, userErr("", "There is no rotation %s.", access.Code(id))
	}
	if err != nil {
		return Rotation{}, fmt.Errorf("rotation: confirm %s: %w", id, err)
	}
	if ue := confirmRefusal(r, stage); ue != nil {
		return r, s.audited(ctx, ue, secretEvent(op.SlackID, ActConfirmRefused, audit.Refused, ue.Msg, r.Secret, &r))
	}
	if stage == StageStaging {
		return s.confirmStaging(ctx, op, r)
	}
	return s.confirmProduction(ctx, op, r)
}

// confirmRefusal says why stage cannot be confirmed on r now (nil: it can).
func confirmRefusal(r Rotation, stage string) *UserError {
	switch {
	case r.State == StateCompleted:
		return userErr("", "%s is already complete: production was verified by %s at %s.", access.Code(r.ID), mention(r.ProductionBy), fmtTime(r.ProductionAt))
	case r.State == StateRolledBack:
		return userErr("", "%s was rolled back by %s at %s: nothing to verify.", access.Code(r.ID), mention(r.RolledBackBy), fmtTime(r.CompletedAt))
	case r.State == StateFailed:
		return userErr("", "%s failed (%s): nothing to verify.", access.Code(r.ID), access.Escape(r.LastError))
	case r.ToVersion == 0:
		return userErr("", "%s is still writing its new version: wait a moment.", access.Code(r.ID))
	case stage == StageStaging && r.State == StateProduction:
		return userErr("", "Staging of %s was already verified by %s at %s: verify production next.", access.Code(r.ID), mention(r.StagingBy), fmtTime(r.StagingAt))
	case stage == StageProduction && r.State == StateStaging:
		return userErr("", "Verify staging of %s first: production comes after staging.", access.Code(r.ID))
	}
	return nil
}

func (s *Service) confirmStaging(ctx context.Context, op policy.Person, r Rotation) (Rotation, error) {
	var refusal *UserError
	out, err := s.changeRotation(ctx, r.ID, func(tx Tx, cur Rotation) (Rotation, bool, error) {
		refusal = confirmRefusal(cur, StageStaging)
		if refusal != nil {
			refusal.Audited = true
			return cur, false, tx.Audit(ctx, secretEvent(op.SlackID, ActConfirmRefused, audit.Refused, refusal.Msg, cur.Secret, &cur))
		}
		sec, err := tx.SecretGet(ctx, cur.Secret)
		if err != nil {
			return cur, false, err
		}
		nr := cur
		nr.State, nr.StagingBy, nr.StagingAt = StateProduction, op.SlackID, s.now()
		if err := tx.Audit(ctx, secretEvent(op.SlackID, ActStagingVerified, audit.OK,
			fmt.Sprintf("staging verified on version %d", nr.ToVersion), cur.Secret, &nr)); err != nil {
			return cur, false, err
		}
		if err := tx.Send(ctx, threadReply(s.securityChannel(), nr, fmt.Sprintf(":white_check_mark: Staging verified by %s. Next: *Production verified* (or *Roll back*).",
			mention(op.SlackID)))); err != nil {
			return cur, false, err
		}
		if m, ok := rootUpdate(nr, sec); ok {
			if err := tx.Send(ctx, m); err != nil {
				return cur, false, err
			}
		}
		return nr, true, nil
	})
	if err != nil {
		return out, fmt.Errorf("rotation: confirm staging of %s: %w", r.ID, err)
	}
	if refusal != nil {
		return out, refusal
	}
	return out, nil
}

func (s *Service) confirmProduction(ctx context.Context, op policy.Person, r Rotation) (Rotation, error) {
	sec, err := s.getSecret(ctx, r.Secret)
	if err != nil {
		return r, fmt.Errorf("rotation: confirm production of %s: %w", r.ID, err)
	}
	// Retire the previous version first (idempotent in Vault): a failure
	// leaves the rotation in production, to press again.
	retired, rerr := s.retire(ctx, sec, r.FromVersion)
	if rerr != nil {
		why := fmt.Sprintf("Vault could not %s version %d: %s", s.Config.Rotation.PreviousVersion, r.FromVersion, errText(rerr))
		_, _ = s.changeRotation(ctx, r.ID, func(tx Tx, cur Rotation) (Rotation, bool, error) {
			nr := cur
			nr.LastError = why
			return nr, cur.State == StateProduction, tx.Audit(ctx, secretEvent(op.SlackID, ActRetireFailed, audit.Failed, why, cur.Secret, &cur))
		})
		return r, &UserError{Msg: access.Escape(why) + ". The rotation stays open: press *Production verified* again.", Audited: true}
	}

	var refusal *UserError
	out, err := s.changeRotation(ctx, r.ID, func(tx Tx, cur Rotation) (Rotation, bool, error) {
		refusal = confirmRefusal(cur, StageProduction)
		if refusal != nil {
			refusal.Audited = true
			return cur, false, tx.Audit(ctx, secretEvent(op.SlackID, ActConfirmRefused, audit.Refused, refusal.Msg, cur.Secret, &cur))
		}
		now := s.now()
		nr := cur
		nr.State, nr.ProductionBy, nr.ProductionAt, nr.CompletedAt, nr.LastError = StateCompleted, op.SlackID, now, now, ""
		cs, err := tx.SecretGet(ctx, cur.Secret)
		if err != nil {
			return cur, false, err
		}
		ns := cs
		ns.LastRotatedAt, ns.LastOperator, ns.LastVersion = now, cur.Operator, cur.ToVersion
		ns.LastTicket = cur.Ticket
		if ns.LastTicket == "" {
			ns.LastTicket = cur.Incident
		}
		ns.Version, ns.UpdatedAt = cs.Version+1, now
		if err := tx.SecretUpdate(ctx, ns, cs.Version); err != nil {
			return cur, false, err
		}
		for _, e := range []audit.Event{
			secretEvent(op.SlackID, ActProdVerified, audit.OK, fmt.Sprintf("production verified on version %d", nr.ToVersion), cur.Secret, &nr),
			secretEvent(op.SlackID, ActPreviousRetired, audit.OK, fmt.Sprintf("version %d %s", nr.FromVersion, retired), cur.Secret, &nr),
			secretEvent(cur.Operator, ActCompleted, audit.OK, fmt.Sprintf("rotated from version %d to %d; next due %s",
				nr.FromVersion, nr.ToVersion, fmtTime(ns.Due())), cur.Secret, &nr),
		} {
			if err := tx.Audit(ctx, e); err != nil {
				return cur, false, err
			}
		}
		msgs := []outbox.Message{
			threadReply(s.securityChannel(), nr, fmt.Sprintf(":white_check_mark: Production verified by %s. Version %d %s. Rotation complete.",
				mention(op.SlackID), nr.FromVersion, retired)),
			notice(s.securityChannel(), fmt.Sprintf(":lock: %s %s of %s complete: version %d → %d, started by %s, staging verified by %s, production verified by %s; version %d %s. Next rotation due %s.",
				kindText(nr), access.Code(nr.ID), secretRef(ns), nr.FromVersion, nr.ToVersion, mention(nr.Operator), mention(nr.StagingBy),
				mention(nr.ProductionBy), nr.FromVersion, retired, fmtTime(ns.Due()))),
		}
		if m, ok := rootUpdate(nr, ns); ok {
			msgs = append(msgs, m)
		}
		if nr.Ticket != "" {
			msgs = append(msgs, jiraComment(nr.Ticket, jiraEvidence(nr, ns, retired)))
		}
		if nr.Emergency {
			msgs = append(msgs, reviewPrompt(s.securityChannel(), nr))
		}
		for _, m := range msgs {
			if err := tx.Send(ctx, m); err != nil {
				return cur, false, err
			}
		}
		return nr, true, addPending(ctx, tx, cur.Secret)
	})
	if err != nil {
		return out, fmt.Errorf("rotation: confirm production of %s: %w", r.ID, err)
	}
	if refusal != nil {
		return out, refusal
	}
	s.mirror(ctx, r.Secret)
	s.log().Info("rotation: completed", "rotation", out.ID, "secret", out.Secret, "version", out.ToVersion)
	return out, nil
}

// retire destroys or soft-deletes the previous version, per config, and
// says what happened to it.
func (s *Service) retire(ctx context.Context, sec Secret, version int) (string, error) {
	if version <= 0 {
		return "had nothing to retire", nil
	}
	if s.Config.Rotation.PreviousVersion == config.PreviousDelete {
		return "soft-deleted", s.KV.SoftDelete(ctx, sec.Mount, sec.Path, version)
	}
	return "destroyed", s.KV.Destroy(ctx, sec.Mount, sec.Path, version)
}

// reviewPrompt opens the post-incident review in the thread.
func reviewPrompt(channel string, r Rotation) outbox.Message {
	text := fmt.Sprintf(":memo: Emergency rotation %s is complete. Post-incident review for incident %s: cause, blast radius, follow-up actions.",
		access.Code(r.ID), access.Code(r.Incident))
	m := threadReply(channel, r, text)
	m.Blocks = access.Blocks(access.Section(text),
		access.Actions("rotation_review_"+r.ID, access.Button{Text: "Post-incident review", ActionID: ActionReview, Value: r.ID, Style: "primary"}))
	return m
}
