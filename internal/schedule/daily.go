package schedule

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
)

// daily runs the rotation reminders for the latest daily instant, once:
//   - a secret due within DueSoon is announced once per due date: in a DM to
//     its owner contact (one DM per contact, listing their secrets) and in
//     one summary to the security channel;
//   - an overdue secret is escalated in the security channel, mentioning its
//     owner (and listed in the owner's DM), on the first run after it fell
//     due and again every EscalateEvery while it stays overdue.
//
// A rotation changes the due date, which starts the reminders afresh.
func (s *Scheduler) daily(ctx context.Context, now time.Time, c clock) (bool, error) {
	day := latestDaily(now, c).Format(dayLayout)
	if due, err := s.pending(ctx, KeyDaily, day); err != nil || !due {
		return false, err
	}
	secrets, err := s.Inventory.Secrets(ctx)
	if err != nil {
		return false, fmt.Errorf("list the inventory: %s", errText(err))
	}
	secrets = slices.Clone(secrets)
	slices.SortStableFunc(secrets, func(a, b Secret) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	soon := s.Config.DueSoon
	if soon <= 0 {
		soon = DefaultDueSoon
	}
	sent := false
	_, err = s.commit(ctx, KeyDaily, day, func(tx Tx) error {
		sent = false
		var dueSoon, overdue []Secret
		for _, sec := range secrets {
			if sec.Due.IsZero() || sec.Name == "" {
				continue
			}
			due := sec.Due.UTC()
			stamp := due.Format(time.RFC3339)
			switch {
			case !due.After(now):
				key := keyEscalatedPrefix + sec.Name
				old, _, err := tx.MetaGet(ctx, key)
				if err != nil {
					return err
				}
				if !escalationDue(old, stamp, now) {
					continue
				}
				if err := cas(ctx, tx, key, old, stamp+"@"+day); err != nil {
					return err
				}
				overdue = append(overdue, sec)
			case due.Sub(now) <= soon:
				key := keyRemindedPrefix + sec.Name
				old, _, err := tx.MetaGet(ctx, key)
				if err != nil {
					return err
				}
				if old == stamp {
					continue
				}
				if err := cas(ctx, tx, key, old, stamp); err != nil {
					return err
				}
				dueSoon = append(dueSoon, sec)
			}
		}
		if len(dueSoon)+len(overdue) == 0 {
			return nil
		}
		sent = true
		return s.sendDaily(ctx, tx, now, day, soon, dueSoon, overdue)
	})
	return sent, err
}

// escalationDue reports whether an overdue secret whose marker is old
// ("<due>@<day>") and whose due stamp is stamp is escalated again now.
func escalationDue(old, stamp string, now time.Time) bool {
	due, last, ok := strings.Cut(old, "@")
	if !ok || due != stamp {
		return true
	}
	t, err := time.Parse(dayLayout, last)
	return err != nil || days(t, now) >= int(EscalateEvery/(24*time.Hour))
}

// cas moves a marker; losing the race means another writer got there in
// this very period, so the run is abandoned (and rolled back).
func cas(ctx context.Context, tx Tx, key, old, value string) error {
	ok, err := tx.MetaCAS(ctx, key, old, value)
	if err == nil && !ok {
		return errSkip
	}
	return err
}

func (s *Scheduler) sendDaily(ctx context.Context, tx Tx, now time.Time, day string, soon time.Duration, dueSoon, overdue []Secret) error {
	rotate := access.Code(s.command() + " rotate <secret> --ticket <KEY>")

	// One DM per owner contact.
	type owned struct{ soon, over []Secret }
	byOwner := map[string]*owned{}
	var owners []string
	noContact := map[string]bool{}
	add := func(sec Secret, over bool) {
		id := strings.TrimSpace(sec.OwnerContact)
		if !userIDRe.MatchString(id) {
			noContact[sec.Name] = true
			return
		}
		o := byOwner[id]
		if o == nil {
			o = &owned{}
			byOwner[id] = o
			owners = append(owners, id)
		}
		if over {
			o.over = append(o.over, sec)
		} else {
			o.soon = append(o.soon, sec)
		}
	}
	for _, sec := range dueSoon {
		add(sec, false)
	}
	for _, sec := range overdue {
		add(sec, true)
	}
	slices.Sort(owners)
	for _, id := range owners {
		o := byOwner[id]
		lines := []string{":hourglass_flowing_sand: *Secrets you own need rotating*"}
		if len(o.over) > 0 {
			lines = append(lines, "*Overdue*")
			for _, sec := range o.over {
				lines = append(lines, "• "+secretLine(sec, now))
			}
		}
		if len(o.soon) > 0 {
			lines = append(lines, fmt.Sprintf("*Due within %s*", span(soon)))
			for _, sec := range o.soon {
				lines = append(lines, "• "+secretLine(sec, now))
			}
		}
		hint := "Ask Platform Security to rotate them (" + rotate + ")."
		text := access.Plain(append(lines, hint)...)
		m := outbox.Message{Kind: outbox.DM, Target: id, Text: text,
			Blocks: access.Blocks(append(sections("", lines), access.Context(hint))...)}
		if err := tx.Send(ctx, m, "schedule:reminder-dm:"+id+":"+day); err != nil {
			return err
		}
	}

	// One summary of what came due soon.
	if len(dueSoon) > 0 {
		title := fmt.Sprintf(":calendar: *Rotations due within %s* (%s)", span(soon), day)
		var lines []string
		for _, sec := range dueSoon {
			l := "• " + secretLine(sec, now) + ". Owner " + owner(sec)
			if noContact[sec.Name] {
				l += " (no Slack contact to tell)"
			}
			lines = append(lines, l)
		}
		if len(overdue) > 0 {
			lines = append(lines, fmt.Sprintf("%s escalated separately.", plural(len(overdue), "overdue secret")))
		}
		m := outbox.Message{Kind: outbox.Post, Target: s.Config.SecurityChannel,
			Text: access.Plain(append([]string{title}, lines...)...), Blocks: access.Blocks(sections(title, lines)...)}
		if err := tx.Send(ctx, m, "schedule:due-soon-summary:"+day); err != nil {
			return err
		}
		names := make([]string, len(dueSoon))
		for i, sec := range dueSoon {
			names[i] = sec.Name
		}
		e := audit.Event{Actor: actor, Action: ActDailyReminders, Outcome: audit.OK,
			Reason: access.Truncate(fmt.Sprintf("%s due within %s: %s", plural(len(dueSoon), "secret"), span(soon), strings.Join(names, ", ")), 1000),
			Links:  map[string]string{"day": day}}
		if err := tx.Audit(ctx, e); err != nil {
			return err
		}
	}

	// One escalation per overdue secret.
	for _, sec := range overdue {
		text := fmt.Sprintf(":rotating_light: *Rotation overdue*: %s. Owner %s: please arrange the rotation (%s).",
			secretLine(sec, now), owner(sec), rotate)
		if noContact[sec.Name] {
			text += " The inventory names no Slack contact for this secret."
		}
		m := outbox.Message{Kind: outbox.Post, Target: s.Config.SecurityChannel, Text: text, Blocks: access.Blocks(access.Section(text))}
		if err := tx.Send(ctx, m, "schedule:overdue:"+sec.Name+":"+day); err != nil {
			return err
		}
		e := audit.Event{Actor: actor, Action: ActOverdueEscalated, Secret: sec.Name, Outcome: audit.OK,
			Reason: fmt.Sprintf("due %s, %s", sec.Due.UTC().Format(dayLayout), ago(sec.Due, now)),
			Links:  map[string]string{"day": day}}
		if err := tx.Audit(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// secretLine is "`name` (env): due 2025-03-10, in 7 days", escaped.
func secretLine(sec Secret, now time.Time) string {
	l := access.Code(sec.Name)
	if env := strings.TrimSpace(sec.Environment); env != "" {
		l += " (" + access.Escape(access.Truncate(env, 40)) + ")"
	}
	return l + ": due " + sec.Due.UTC().Format(dayLayout) + ", " + ago(sec.Due, now)
}

// owner is "<@U…> (team payments)", escaped.
func owner(sec Secret) string {
	o := mention(sec.OwnerContact)
	if t := strings.TrimSpace(sec.OwnerTeam); t != "" {
		o += " (team " + access.Escape(access.Truncate(t, 60)) + ")"
	}
	return o
}

// ago says how far due is from now in days: "in 7 days", "today", "3 days ago".
func ago(due, now time.Time) string {
	switch n := days(now, due); {
	case n > 0:
		return "in " + plural(n, "day")
	case n == 0:
		return "today"
	default:
		return plural(-n, "day") + " ago"
	}
}

// span renders a window: "14 days", or the duration when not whole days.
func span(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return plural(int(d/(24*time.Hour)), "day")
	}
	return d.String()
}
