package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/policy"
)

// Journal fields of a post-incident review.
const (
	FieldCause     = "cause"
	FieldBlast     = "blast_radius"
	FieldFollowUps = "follow_ups"
	FieldIncident  = "incident"
	FieldSecret    = "secret"
)

// metaReview marks a rotation whose review is saved (value: the entry id).
func metaReview(rotationID string) string { return "rotation.review:" + rotationID }

// Journal records a restore test (`/secrets journal restore-test
// passed|failed "<notes>"`): only rotators; kind must be restore-test
// (reviews are recorded by the bot), outcome passed or failed, notes plain
// text up to MaxNotes. Audited, with a notice to the security channel.
func (s *Service) Journal(ctx context.Context, p policy.Person, kind, outcome, notes string) (JournalEntry, error) {
	op, err := s.rotator(ctx, p, "record journal entries", ActJournalRefused, "")
	if err != nil {
		return JournalEntry{}, err
	}
	kind, outcome, notes = strings.ToLower(strings.TrimSpace(kind)), strings.ToLower(strings.TrimSpace(outcome)), strings.TrimSpace(notes)
	if err := checkJournal(kind, outcome, notes); err != nil {
		ue, _ := IsUserError(err)
		return JournalEntry{}, s.audited(ctx, err, secretEvent(op.SlackID, ActJournalRefused, audit.Refused, ue.Msg, "", nil))
	}
	e := JournalEntry{ID: NewJournalID(), Kind: kind, Outcome: outcome, Notes: notes, Author: op.SlackID, At: s.now()}
	err = s.retry(ctx, func(tx Tx) error {
		if err := tx.JournalAdd(ctx, e); err != nil {
			return err
		}
		if err := tx.Audit(ctx, audit.Event{Actor: op.SlackID, Action: ActJournal, Outcome: audit.OK,
			Reason: audit.Redact(access.Truncate(kind+" "+outcome+": "+notes, 1000)), Links: map[string]string{"journal": e.ID}}); err != nil {
			return err
		}
		icon := ":white_check_mark:"
		if outcome == "failed" {
			icon = ":x:"
		}
		return tx.Send(ctx, notice(s.securityChannel(), fmt.Sprintf("%s Restore test %s, recorded by %s as %s: %s",
			icon, outcome, mention(op.SlackID), access.Code(e.ID), access.Escape(access.Truncate(notes, 500)))))
	})
	if err != nil {
		return JournalEntry{}, fmt.Errorf("rotation: record journal entry: %w", err)
	}
	return e, nil
}

// JournalList lists journal entries of kind ("" for every kind), newest
// first, at most limit (0: every one).
func (s *Service) JournalList(ctx context.Context, kind string, limit int) ([]JournalEntry, error) {
	kind = strings.ToLower(strings.TrimSpace(kind))
	if kind != "" && !validKind(kind) {
		return nil, userErr("kind", "%s is not a kind of journal entry: accepted %s", access.Code(access.Truncate(kind, 40)), strings.Join(JournalKinds, ", "))
	}
	var out []JournalEntry
	err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		out, err = tx.JournalList(ctx, kind, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rotation: journal: %w", err)
	}
	return out, nil
}

// SaveReview keeps the post-incident review of an emergency rotation (the
// review modal): only rotators; the rotation must be an emergency that is
// complete or rolled back; cause and blast radius are required, follow-ups
// may be empty; each is plain text up to MaxNotes. One review per
// rotation: a second is refused, naming the first. The entry goes to the
// journal (kind post-incident) with an audit event, a reply in the
// rotation's thread and a comment on its ticket.
func (s *Service) SaveReview(ctx context.Context, p policy.Person, rotationID, cause, blast, followups string) (JournalEntry, error) {
	id, ok := NormalizeRotationID(rotationID)
	if !ok {
		return JournalEntry{}, userErr("", "%s is not a rotation id (R followed by 8 letters and digits)", access.Code(access.Truncate(rotationID, 20)))
	}
	op, err := s.rotator(ctx, p, "record post-incident reviews", ActJournalRefused, "")
	if err != nil {
		return JournalEntry{}, err
	}
	cause, blast, followups = strings.TrimSpace(cause), strings.TrimSpace(blast), strings.TrimSpace(followups)
	var ue *UserError
	switch {
	case cause == "":
		ue = userErr(FieldCause, "say what caused the incident")
	case blast == "":
		ue = userErr(FieldBlast, "say what the blast radius was: which systems and data the secret reached")
	}
	for _, f := range []struct{ field, text string }{{FieldCause, cause}, {FieldBlast, blast}, {FieldFollowUps, followups}} {
		if ue != nil {
			break
		}
		if err := checkText(f.field, f.text); err != nil {
			ue, _ = IsUserError(err)
		}
	}
	if ue != nil {
		return JournalEntry{}, s.audited(ctx, ue, secretEvent(op.SlackID, ActJournalRefused, audit.Refused, ue.Msg, "", &Rotation{ID: id}))
	}
	e := JournalEntry{ID: NewJournalID(), Kind: KindPostIncident, Notes: cause, Author: op.SlackID, Rotation: id, At: s.now()}
	var refusal *UserError
	err = s.retry(ctx, func(tx Tx) error {
		refusal = nil
		r, err := tx.RotationGet(ctx, id)
		if err != nil {
			return err
		}
		refuse := func(format string, args ...any) error {
			refusal = &UserError{Msg: fmt.Sprintf(format, args...), Audited: true}
			return tx.Audit(ctx, secretEvent(op.SlackID, ActJournalRefused, audit.Refused, refusal.Msg, r.Secret, &r))
		}
		switch {
		case !r.Emergency:
			return refuse("%s is not an emergency rotation: post-incident reviews belong to emergencies.", access.Code(r.ID))
		case r.State != StateCompleted && r.State != StateRolledBack:
			return refuse("%s is %s: the review is written once it is complete or rolled back.", access.Code(r.ID), stateText(r))
		}
		if prev, ok, err := tx.MetaGet(ctx, metaReview(id)); err != nil {
			return err
		} else if ok {
			return refuse("The review of %s is already saved as %s.", access.Code(r.ID), access.Code(prev))
		}
		e.Fields = map[string]string{FieldCause: cause, FieldBlast: blast, FieldFollowUps: followups,
			FieldIncident: r.Incident, FieldSecret: r.Secret}
		e.Outcome = string(r.State)
		if err := tx.JournalAdd(ctx, e); err != nil {
			return err
		}
		if err := tx.MetaSet(ctx, metaReview(id), e.ID); err != nil {
			return err
		}
		ev := secretEvent(op.SlackID, ActReviewSaved, audit.OK, "post-incident review saved: "+cause, r.Secret, &r)
		ev.Links["journal"] = e.ID
		if err := tx.Audit(ctx, ev); err != nil {
			return err
		}
		fu := followups
		if fu == "" {
			fu = "none"
		}
		text := fmt.Sprintf(":memo: Post-incident review %s by %s (incident %s)\n*Cause:* %s\n*Blast radius:* %s\n*Follow-ups:* %s",
			access.Code(e.ID), mention(op.SlackID), access.Code(r.Incident), access.Escape(access.Truncate(cause, 800)),
			access.Escape(access.Truncate(blast, 800)), access.Escape(access.Truncate(fu, 800)))
		if err := tx.Send(ctx, threadReply(s.securityChannel(), r, text)); err != nil {
			return err
		}
		if r.Ticket != "" {
			return tx.Send(ctx, jiraComment(r.Ticket, fmt.Sprintf("secretbot: post-incident review %s of rotation %s (incident %s) by Slack user %s.\nCause: %s\nBlast radius: %s\nFollow-ups: %s",
				e.ID, r.ID, r.Incident, op.SlackID, cause, blast, fu)))
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return JournalEntry{}, userErr("", "There is no rotation %s.", access.Code(id))
	case err != nil:
		return JournalEntry{}, fmt.Errorf("rotation: save review of %s: %w", id, err)
	case refusal != nil:
		return JournalEntry{}, refusal
	}
	return e, nil
}
