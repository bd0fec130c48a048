// Package schedule runs the playbook's cadences: the daily rotation
// reminders (due soon: a DM to each owner contact and a summary to the
// security channel; overdue: an escalation in the security channel), the
// monthly access review, and the quarterly restore-test reminder.
//
// The Scheduler is driven by an injected clock and keeps its cursors in the
// store's meta table. Each Tick runs every cadence at most once, for the
// latest period that is due and not yet done: a bot that was down for three
// days sends one daily run on start, not three. A cursor moves with a
// compare-and-set in the same transaction as the messages and audit events
// of its run, so two replicas never both post, and every message also
// carries a dedup key.
//
// Like internal/access, the package reaches everything through small ports
// (Store/Tx, Inventory, Grants, Directory) that internal/app adapts.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

// Button action ids of the access review. The value of a Revoke button is
// the grant id; the value of a Remove button is "<group>:<userID>" (see
// ParseRemoveValue).
const (
	ActionReviewRevoke = "review_revoke"
	ActionReviewRemove = "review_remove"
)

// JournalKindReview is the journal kind of a posted access review.
const JournalKindReview = "review"

// Meta keys of the cursors. Each holds the last period done: a UTC day
// "2006-01-02" (daily) or a month "2006-01" (review, restore test).
const (
	KeyDaily       = "schedule.daily"
	KeyReview      = "schedule.review"
	KeyRestoreTest = "schedule.restore_test"

	// Per-secret markers of the daily run: "schedule.reminded.<secret>" holds
	// the due date last announced as due soon; "schedule.escalated.<secret>"
	// holds "<due date>@<day of the last escalation>".
	keyRemindedPrefix  = "schedule.reminded."
	keyEscalatedPrefix = "schedule.escalated."
)

// Audit actions.
const (
	ActDailyReminders      = "schedule.daily_reminders"
	ActOverdueEscalated    = "schedule.overdue_escalated"
	ActReviewPosted        = "schedule.review_posted"
	ActRestoreTestReminded = "schedule.restore_test_reminded"
)

// Actor of everything the scheduler does.
const actor = "secretbot"

// Defaults of Config fields left zero.
const (
	DefaultDailyAt      = "09:00"
	DefaultDueSoon      = 14 * 24 * time.Hour
	DefaultReviewDay    = 1
	DefaultReviewWindow = 30 * 24 * time.Hour
	// EscalateEvery is how often an overdue secret is escalated again while
	// it stays overdue (the first escalation comes on the day it falls due).
	EscalateEvery = 7 * 24 * time.Hour
	defaultEvery  = time.Minute
)

// Config is what the cadences need from the configuration (internal/app
// fills it from slack.*, inventory.due_soon, schedule.* and scopes).
type Config struct {
	SecurityChannel string        // slack.security_channel (required)
	Command         string        // slack.command, for hints in messages (default "/secrets")
	DailyAt         string        // schedule.daily_at, "HH:MM" UTC (default 09:00)
	DueSoon         time.Duration // inventory.due_soon (default 14d)
	ReviewDay       int           // schedule.review_day, 1..31; past a month's end: its last day (default 1)
	ReviewWindow    time.Duration // schedule.review_window (default 30d)
	// RestoreTestMonths are the months (1..12) of the restore-test reminder;
	// empty: no reminder.
	RestoreTestMonths []int
	// Scopes: the eligible user groups of each are checked for unused
	// permissions in the access review.
	Scopes []config.Scope
}

// ConfigFrom takes the cadences' settings from the loaded configuration.
func ConfigFrom(c *config.Config) Config {
	return Config{
		SecurityChannel:   c.Slack.SecurityChannel,
		Command:           c.Slack.Command,
		DailyAt:           c.Schedule.DailyAt,
		DueSoon:           c.Inventory.DueSoon.D(),
		ReviewDay:         c.Schedule.ReviewDay,
		ReviewWindow:      c.Schedule.ReviewWindow.D(),
		RestoreTestMonths: append([]int(nil), c.Schedule.RestoreTestMonths...),
		Scopes:            c.Scopes,
	}
}

// ---- Ports (implemented by adapters in internal/app) ----

// Tx is one store transaction: cursors, messages, audit events and journal
// entries commit together or not at all.
type Tx interface {
	MetaGet(ctx context.Context, key string) (value string, ok bool, err error)
	// MetaCAS sets key to value only if it is old now ("" also matches an
	// absent key); swapped reports whether it did.
	MetaCAS(ctx context.Context, key, old, value string) (swapped bool, err error)
	// Send enqueues m; a second message with the same dedupKey is a no-op.
	Send(ctx context.Context, m outbox.Message, dedupKey string) error
	Audit(ctx context.Context, e audit.Event) error
	JournalAdd(ctx context.Context, kind, outcome, notes, author string, fields map[string]string) error
}

// Store runs fn in one transaction; fn's error rolls everything back and is
// returned as is. fn may run more than once.
type Store interface {
	InTx(ctx context.Context, fn func(Tx) error) error
}

// Secret is what the reminders need about an inventoried secret.
type Secret struct {
	Name, Environment       string
	OwnerTeam, OwnerContact string // OwnerContact: a Slack user id
	Due                     time.Time
}

// Inventory lists the registry's secrets.
type Inventory interface {
	Secrets(ctx context.Context) ([]Secret, error)
}

// Grants reads access grants.
type Grants interface {
	// Active returns the grants that are not over (access.ActiveStates).
	Active(ctx context.Context) ([]access.Grant, error)
	// Since returns the grants issued (or requested) at or after t, in any
	// state. Grants never issued are ignored by the scheduler.
	Since(ctx context.Context, t time.Time) ([]access.Grant, error)
}

// Directory is Slack's user directory.
type Directory interface {
	// Person returns the user as Slack reports them now (Deleted for a
	// deactivated account).
	Person(ctx context.Context, slackID string) (policy.Person, error)
	// GroupMembers returns the user ids in a user group (id or handle).
	GroupMembers(ctx context.Context, group string) ([]string, error)
}

// Scheduler runs the cadences. Store, Inventory, Grants, Directory and
// Config.SecurityChannel are required. Now defaults to time.Now, Log to
// slog.Default(), Every to one minute. Wake, when set, is called after a
// tick enqueued messages (to wake the outbox deliverer).
type Scheduler struct {
	Now       func() time.Time
	Store     Store
	Inventory Inventory
	Grants    Grants
	Directory Directory
	Config    Config
	Log       *slog.Logger
	Every     time.Duration
	Wake      func()
}

// Run ticks at once and then every Every until ctx ends. Errors are logged;
// a cadence that failed is tried again on the next tick.
func (s *Scheduler) Run(ctx context.Context) {
	every := s.Every
	if every <= 0 {
		every = defaultEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log().Error("schedule: tick failed", "err", errText(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick runs each cadence whose latest period is due and not yet done, at
// most once each, and returns every error met (a failed cadence does not
// stop the others, and its cursor does not move).
func (s *Scheduler) Tick(ctx context.Context) error {
	now := s.now().UTC()
	at, err := parseDailyAt(s.Config.DailyAt)
	if err != nil {
		return err
	}
	if s.Config.SecurityChannel == "" {
		return errors.New("schedule: no security channel configured")
	}
	var errs []error
	sent := false
	for _, c := range []struct {
		name string
		run  func(context.Context, time.Time, clock) (bool, error)
	}{
		{"daily reminders", s.daily},
		{"restore-test reminder", s.restoreTest},
		{"access review", s.review},
	} {
		if ctx.Err() != nil {
			break
		}
		ok, err := c.run(ctx, now, at)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule: %s: %w", c.name, err))
		}
		sent = sent || ok
	}
	if sent && s.Wake != nil {
		s.Wake()
	}
	return errors.Join(errs...)
}

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Scheduler) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Scheduler) command() string {
	if s.Config.Command != "" {
		return s.Config.Command
	}
	return "/secrets"
}

// ---- Cursors ----

// errSkip rolls back a run another replica (or an earlier tick) already did.
var errSkip = errors.New("schedule: already done")

// pending reports whether the cursor at key is before period.
func (s *Scheduler) pending(ctx context.Context, key, period string) (bool, error) {
	var due bool
	err := s.Store.InTx(ctx, func(tx Tx) error {
		cur, _, err := tx.MetaGet(ctx, key)
		due = cur < period
		return err
	})
	return due, err
}

// seed marks period done at key when the cursor has never been set, and
// reports whether it did. A fresh install starts its monthly and quarterly
// cadences from the next period instead of posting a review the moment it
// first starts; a cursor that exists catches up as usual.
func (s *Scheduler) seed(ctx context.Context, key, period string) (bool, error) {
	var seeded bool
	err := s.Store.InTx(ctx, func(tx Tx) error {
		_, ok, err := tx.MetaGet(ctx, key)
		if err != nil || ok {
			return err
		}
		seeded, err = tx.MetaCAS(ctx, key, "", period)
		return err
	})
	return seeded, err
}

// commit moves the cursor at key to period with a compare-and-set and runs
// fn in the same transaction. done is false when the period was already
// done (by another replica, say): then nothing fn did is kept.
func (s *Scheduler) commit(ctx context.Context, key, period string, fn func(tx Tx) error) (done bool, err error) {
	err = s.Store.InTx(ctx, func(tx Tx) error {
		cur, _, err := tx.MetaGet(ctx, key)
		if err != nil {
			return err
		}
		if cur >= period {
			return errSkip
		}
		swapped, err := tx.MetaCAS(ctx, key, cur, period)
		if err != nil {
			return err
		}
		if !swapped {
			return errSkip
		}
		return fn(tx)
	})
	if errors.Is(err, errSkip) {
		return false, nil
	}
	return err == nil, err
}

// ---- Periods (all UTC) ----

// clock is a time of day.
type clock struct{ h, m int }

var dailyAtRe = regexp.MustCompile(`^([01]?[0-9]|2[0-3]):([0-5][0-9])$`)

func parseDailyAt(s string) (clock, error) {
	if s == "" {
		s = DefaultDailyAt
	}
	m := dailyAtRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return clock{}, fmt.Errorf("schedule: daily_at %q is not HH:MM", s)
	}
	var c clock
	fmt.Sscanf(m[1], "%d", &c.h)
	fmt.Sscanf(m[2], "%d", &c.m)
	return c, nil
}

func (c clock) on(y int, mo time.Month, d int) time.Time {
	return time.Date(y, mo, d, c.h, c.m, 0, 0, time.UTC)
}

// latestDaily is the latest daily instant at or before now.
func latestDaily(now time.Time, c clock) time.Time {
	t := c.on(now.Year(), now.Month(), now.Day())
	if t.After(now) {
		t = t.AddDate(0, 0, -1)
	}
	return t
}

// monthInstant is day (clamped to the month's last day) of the month y-mo
// (normalised) at c.
func monthInstant(y int, mo time.Month, day int, c clock) time.Time {
	first := time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	if day > last {
		day = last
	}
	if day < 1 {
		day = 1
	}
	return c.on(first.Year(), first.Month(), day)
}

// latestMonthly is the latest instant of day-of-month at c at or before now,
// and the one a month earlier.
func latestMonthly(now time.Time, day int, c clock) (cur, prev time.Time) {
	y, mo := now.Year(), now.Month()
	cur = monthInstant(y, mo, day, c)
	if cur.After(now) {
		mo--
		cur = monthInstant(y, mo, day, c)
	}
	return cur, monthInstant(y, mo-1, day, c)
}

// latestRestore is the first daily instant of the latest restore-test month
// at or before now (ok false when no month is configured).
func latestRestore(now time.Time, months []int, c clock) (time.Time, bool) {
	want := map[time.Month]bool{}
	for _, m := range months {
		if m >= 1 && m <= 12 {
			want[time.Month(m)] = true
		}
	}
	if len(want) == 0 {
		return time.Time{}, false
	}
	for back := 0; back <= 12; back++ {
		t := monthInstant(now.Year(), now.Month()-time.Month(back), 1, c)
		if want[t.Month()] && !t.After(now) {
			return t, true
		}
	}
	return time.Time{}, false
}

const (
	dayLayout   = "2006-01-02"
	monthLayout = "2006-01"
)

// ---- Text ----

var userIDRe = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// mention renders a Slack user id as a mention; anything else as inert code.
func mention(id string) string {
	id = strings.TrimSpace(id)
	switch {
	case id == "":
		return "_nobody_"
	case userIDRe.MatchString(id):
		return "<@" + id + ">"
	}
	return access.Code(id)
}

// ParseRemoveValue splits a Remove button's value "<group>:<userID>".
func ParseRemoveValue(v string) (group, user string, ok bool) {
	group, user, ok = strings.Cut(v, ":")
	if !ok || group == "" || !userIDRe.MatchString(user) {
		return "", "", false
	}
	return group, user, true
}

// RemoveValue is the value of a Remove button.
func RemoveValue(group, user string) string {
	return strings.TrimPrefix(strings.TrimSpace(group), "@") + ":" + user
}

// days is the whole number of UTC days from a's date to b's date.
func days(a, b time.Time) int {
	da := time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, time.UTC)
	db := time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, time.UTC)
	return int(db.Sub(da).Hours() / 24)
}

func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %ss", n, one)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return access.Truncate(strings.Join(strings.Fields(audit.Redact(err.Error())), " "), 300)
}

// maxBlocks keeps a message under Slack's 50 blocks.
const maxBlocks = 45

// sectionLimit keeps a section under Slack's 3000 characters.
const sectionLimit = 2900

// sections packs a title and lines into as few sections as fit.
func sections(title string, lines []string) []access.Block {
	var out []access.Block
	cur := title
	for _, l := range lines {
		if len(cur)+1+len(l) > sectionLimit && cur != "" {
			out = append(out, access.Section(cur))
			cur = ""
		}
		if cur != "" {
			cur += "\n"
		}
		cur += l
	}
	if cur != "" {
		out = append(out, access.Section(cur))
	}
	return out
}

// withButton is a section with one button beside its text.
func withButton(mrkdwn string, b access.Button) access.Block {
	bl := access.Section(mrkdwn)
	btn := map[string]any{
		"type":      "button",
		"text":      map[string]any{"type": "plain_text", "text": access.Truncate(b.Text, 75), "emoji": true},
		"action_id": b.ActionID,
		"value":     b.Value,
	}
	if b.Style == "primary" || b.Style == "danger" {
		btn["style"] = b.Style
	}
	bl["accessory"] = btn
	return bl
}
