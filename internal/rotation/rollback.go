package rotation

import (
	"context"
	"errors"
	"fmt"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/policy"
)

// RollBack makes the previous value current again during a rollout (the
// Roll back button): only rotators; the rotation must be in staging or
// production (after completion the previous version is gone: rotate
// again). The previous version (FromVersion) is read and written as a new
// version with check-and-set against the rotation's own version, so a
// write by someone else since is detected and nothing is overwritten. The
// rotation ends rolled-back; the registry's last rotation is unchanged.
// The value read passes from KV.Read to KV.Write and nowhere else.
func (s *Service) RollBack(ctx context.Context, p policy.Person, rotationID string) (Rotation, error) {
	id, ok := NormalizeRotationID(rotationID)
	if !ok {
		return Rotation{}, userErr("", "%s is not a rotation id (R followed by 8 letters and digits)", access.Code(access.Truncate(rotationID, 20)))
	}
	op, err := s.rotator(ctx, p, "roll back rotations", ActRollbackRefused, "")
	if err != nil {
		return Rotation{}, err
	}
	r, err := s.getRotation(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Rotation{}, userErr("", "There is no rotation %s.", access.Code(id))
	}
	if err != nil {
		return Rotation{}, fmt.Errorf("rotation: roll back %s: %w", id, err)
	}
	if ue := rollbackRefusal(r); ue != nil {
		return r, s.audited(ctx, ue, secretEvent(op.SlackID, ActRollbackRefused, audit.Refused, ue.Msg, r.Secret, &r))
	}
	sec, err := s.getSecret(ctx, r.Secret)
	if err != nil {
		return r, fmt.Errorf("rotation: roll back %s: %w", id, err)
	}
	fail := func(why string) (Rotation, error) {
		ue := &UserError{Msg: access.Escape(why) + ". Nothing was rolled back; the rotation stays open."}
		return r, s.audited(ctx, ue, secretEvent(op.SlackID, ActRollbackFailed, audit.Failed, why, r.Secret, &r))
	}
	cur, err := s.KV.Current(ctx, sec.Mount, sec.Path)
	if err != nil {
		return fail("Vault could not be read: " + errText(err))
	}
	if cur != r.ToVersion {
		return fail(fmt.Sprintf("%s/%s is at version %d, not the rotation's version %d: someone else wrote it since, and the bot overwrites nothing",
			sec.Mount, sec.Path, cur, r.ToVersion))
	}
	data, err := s.KV.Read(ctx, sec.Mount, sec.Path, r.FromVersion)
	if err != nil {
		return fail(fmt.Sprintf("version %d could not be read: %s", r.FromVersion, errText(err)))
	}
	back, werr := s.KV.Write(ctx, sec.Mount, sec.Path, data, r.ToVersion)
	clear(data)
	switch {
	case errors.Is(werr, ErrCASMismatch):
		return fail(fmt.Sprintf("someone else wrote %s/%s after the bot read version %d (check-and-set mismatch): nothing was overwritten",
			sec.Mount, sec.Path, r.ToVersion))
	case werr != nil:
		return fail("Vault refused the write: " + errText(werr))
	}

	var refusal *UserError
	out, err := s.changeRotation(ctx, r.ID, func(tx Tx, c Rotation) (Rotation, bool, error) {
		refusal = rollbackRefusal(c)
		if refusal != nil { // finished meanwhile: the write above is recorded on the audit trail anyway
			refusal.Audited = true
			return c, false, tx.Audit(ctx, secretEvent(op.SlackID, ActRollbackRefused, audit.Refused,
				fmt.Sprintf("%s (version %d, holding version %d's value, was written)", refusal.Msg, back, c.FromVersion), c.Secret, &c))
		}
		nr := c
		nr.State, nr.RolledBackBy, nr.RollbackVersion, nr.CompletedAt = StateRolledBack, op.SlackID, back, s.now()
		if err := tx.Audit(ctx, secretEvent(op.SlackID, ActRolledBack, audit.OK,
			fmt.Sprintf("version %d's value made current again as version %d (version %d abandoned)", nr.FromVersion, back, nr.ToVersion),
			c.Secret, &nr)); err != nil {
			return c, false, err
		}
		text := fmt.Sprintf(":leftwards_arrow_with_hook: %s rolled back %s of %s: the previous value (version %d) is current again as version %d.",
			mention(op.SlackID), access.Code(nr.ID), secretRef(sec), nr.FromVersion, back)
		if err := tx.Send(ctx, threadReply(s.securityChannel(), nr, text)); err != nil {
			return c, false, err
		}
		if nr.ThreadTS != "" { // the thread is in the security channel: the notice goes top-level too
			if err := tx.Send(ctx, notice(s.securityChannel(), text)); err != nil {
				return c, false, err
			}
		}
		if m, ok := rootUpdate(nr, sec); ok {
			if err := tx.Send(ctx, m); err != nil {
				return c, false, err
			}
		}
		if nr.Ticket != "" {
			if err := tx.Send(ctx, jiraComment(nr.Ticket, fmt.Sprintf("secretbot: rotation %s of secret %s rolled back by Slack user %s at %s: version %d's value is current again as version %d; version %d abandoned.",
				nr.ID, sec.Name, op.SlackID, fmtTime(nr.CompletedAt), nr.FromVersion, back, nr.ToVersion))); err != nil {
				return c, false, err
			}
		}
		return nr, true, nil
	})
	if err != nil {
		return out, fmt.Errorf("rotation: roll back %s: version %d was written but could not be recorded: %w", r.ID, back, err)
	}
	if refusal != nil {
		return out, refusal
	}
	return out, nil
}

func rollbackRefusal(r Rotation) *UserError {
	switch r.State {
	case StateCompleted:
		return userErr("", "%s is complete and its previous version was retired: rotate again instead of rolling back.", access.Code(r.ID))
	case StateRolledBack:
		return userErr("", "%s was already rolled back by %s at %s.", access.Code(r.ID), mention(r.RolledBackBy), fmtTime(r.CompletedAt))
	case StateFailed:
		return userErr("", "%s failed before its new version was written (%s): nothing to roll back.", access.Code(r.ID), access.Escape(r.LastError))
	}
	if r.ToVersion == 0 {
		return userErr("", "%s is still writing its new version: wait a moment.", access.Code(r.ID))
	}
	return nil
}
