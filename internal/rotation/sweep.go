package rotation

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
)

// interruptedAfter: a rotation recorded but without its new version this
// long was interrupted (a crash between the record and the KV write).
const interruptedAfter = 2 * time.Minute

// metaReminder is the dedup key of reminder slot n of a rotation: set in
// the transaction that queues the reminder, so a restart or a second
// replica never posts it twice.
func metaReminder(rotationID string, slot int64) string {
	return "rotation.reminder:" + rotationID + ":" + strconv.FormatInt(slot, 10)
}

// Deadlines returns the confirmation deadline and the reminder cadence of r.
func (s *Service) Deadlines(r Rotation) (confirmBy time.Time, every time.Duration) {
	c := s.Config.Rotation
	if r.Emergency {
		return r.StartedAt.Add(c.EmergencyConfirmWithin.D()), c.EmergencyReminderEvery.D()
	}
	return r.StartedAt.Add(c.ConfirmWithin.D()), c.ReminderEvery.D()
}

// Sweep does the time-driven work of rollouts: a rollout interrupted
// before its new version was recorded is failed (saying what Vault holds);
// one unconfirmed past rotation.confirm_within (emergency_confirm_within)
// is flagged, once, with a notice, and never completed on its own; every
// reminder_every (emergency_reminder_every) since its start a reminder
// goes to its thread: one per slot, deduplicated by a meta key written with
// it, and after downtime only the latest slot is posted. Owed metadata
// mirrors are retried. Call it at start and every minute or so. It carries
// on past a failing rotation and returns every error it met.
func (s *Service) Sweep(ctx context.Context) error {
	var active []Rotation
	if err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		active, err = tx.RotationsByState(ctx, ActiveStates...)
		return err
	}); err != nil {
		return fmt.Errorf("rotation: sweep: %w", err)
	}
	var errs []error
	now := s.now()
	for _, r := range active {
		if ctx.Err() != nil {
			break
		}
		var err error
		if r.ToVersion == 0 {
			err = s.sweepInterrupted(ctx, r, now)
		} else {
			err = s.sweepRollout(ctx, r, now)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if ctx.Err() == nil {
		if err := s.retryMirrors(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Service) sweepInterrupted(ctx context.Context, r Rotation, now time.Time) error {
	if now.Sub(r.StartedAt) < interruptedAfter {
		return nil
	}
	sec, err := s.getSecret(ctx, r.Secret)
	if err != nil {
		return fmt.Errorf("rotation: sweep %s: %w", r.ID, err)
	}
	why := fmt.Sprintf("interrupted before its new version was recorded (the bot read version %d)", r.FromVersion)
	if cur, err := s.KV.Current(ctx, sec.Mount, sec.Path); err == nil {
		if cur != r.FromVersion {
			why += fmt.Sprintf("; Vault is now at version %d: check it, and roll back by hand if that version is unwanted", cur)
		} else {
			why += "; Vault still holds that version, nothing was written"
		}
	}
	_, err = s.failStart(ctx, r, sec, ActRotateFailed, why, &UserError{})
	if _, ok := IsUserError(err); ok {
		return nil
	}
	return err
}

func (s *Service) sweepRollout(ctx context.Context, r Rotation, now time.Time) error {
	confirmBy, every := s.Deadlines(r)
	flag := !r.Flagged && !now.Before(confirmBy)
	var slot int64
	if every > 0 {
		slot = int64(now.Sub(r.StartedAt) / every)
	}
	if !flag && slot < 1 {
		return nil
	}
	_, err := s.changeRotation(ctx, r.ID, func(tx Tx, cur Rotation) (Rotation, bool, error) {
		if !cur.Active() || cur.ToVersion == 0 {
			return cur, false, nil
		}
		nr, write := cur, false
		sec, err := tx.SecretGet(ctx, cur.Secret)
		if err != nil {
			return cur, false, err
		}
		channel := s.securityChannel()
		if !cur.Flagged && !now.Before(confirmBy) {
			nr.Flagged, write = true, true
			why := fmt.Sprintf("unconfirmed %s after it started (deadline %s); it stays open", access.Truncate(now.Sub(cur.StartedAt).Round(time.Minute).String(), 20), fmtTime(confirmBy))
			if err := tx.Audit(ctx, secretEvent(actorBot, ActFlagged, audit.Failed, why, cur.Secret, &nr)); err != nil {
				return cur, false, err
			}
			text := fmt.Sprintf(":warning: %s %s of %s is unconfirmed past its deadline (%s): %s. It is *not* completed: %s, verify it or roll it back.",
				kindText(nr), access.Code(nr.ID), secretRef(sec), fmtTime(confirmBy), stateText(nr), mention(nr.Operator))
			if err := tx.Send(ctx, notice(channel, text)); err != nil {
				return cur, false, err
			}
			if m, ok := rootUpdate(nr, sec); ok {
				if err := tx.Send(ctx, m); err != nil {
					return cur, false, err
				}
			}
		}
		if slot >= 1 {
			key := metaReminder(cur.ID, slot)
			_, done, err := tx.MetaGet(ctx, key)
			if err != nil {
				return cur, false, err
			}
			if !done {
				if err := tx.MetaSet(ctx, key, now.UTC().Format(time.RFC3339)); err != nil {
					return cur, false, err
				}
				nr.Reminders, write = cur.Reminders+1, true
				if err := tx.Audit(ctx, secretEvent(actorBot, ActReminded, audit.OK, "reminder "+strconv.FormatInt(slot, 10)+": "+string(cur.State), cur.Secret, &nr)); err != nil {
					return cur, false, err
				}
				text := fmt.Sprintf(":bell: Reminder: %s of %s is %s (started %s by %s). %s, verify it or roll it back.",
					access.Code(nr.ID), secretRef(sec), stateText(nr), fmtTime(nr.StartedAt), mention(nr.Operator), mention(nr.Operator))
				if err := tx.Send(ctx, threadReply(channel, nr, text)); err != nil {
					return cur, false, err
				}
			}
		}
		return nr, write, nil
	})
	if err != nil {
		return fmt.Errorf("rotation: sweep %s: %w", r.ID, err)
	}
	return nil
}

// Awaiting lists rollouts in progress (waiting for a confirmation), oldest
// first: for the App Home.
func (s *Service) Awaiting(ctx context.Context) ([]Rotation, error) {
	var out []Rotation
	err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		out, err = tx.RotationsByState(ctx, ActiveStates...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rotation: awaiting: %w", err)
	}
	return out, nil
}
