package benchscale

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/secretbot/secretbot/handlers"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/app"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/policy"
	"github.com/secretbot/secretbot/internal/rotation"
	"github.com/secretbot/secretbot/internal/rotation/rotationtest"
	"github.com/secretbot/secretbot/internal/schedule"
	"github.com/secretbot/secretbot/internal/store"
)

// benchKey is the audit HMAC key of the scratch databases (not a credential).
const benchKey = "benchscale-audit-key-not-a-secret"

// epoch is the benchmark's "now": a Monday 10:00 UTC, after the 09:00 daily run.
var epoch = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// directory is Slack's user directory: everyone is who the fixture says.
type directory struct{}

func (directory) Person(_ context.Context, id string) (policy.Person, error) {
	if id == accesstest.Sec.SlackID {
		return accesstest.Sec, nil
	}
	return policy.Person{SlackID: id, Email: strings.ToLower(id) + "@lumi.example", Name: id}, nil
}

// PersonNow is Person: the fixture's groups never change.
func (d directory) PersonNow(ctx context.Context, id string) (policy.Person, error) {
	return d.Person(ctx, id)
}

func (directory) GroupMembers(context.Context, string) ([]string, error) { return nil, nil }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// invDB is an inventory of n secrets with the services reading it.
type invDB struct {
	db    *store.DB
	rot   *rotation.Service
	h     *handlers.Handlers
	sched *schedule.Scheduler
}

func (d *invDB) close() { d.db.Close() }

// openInventory creates a database holding n registry entries. Their due
// dates are spread evenly over a year from 30 days ago, so about 8% are
// overdue and 4% due within 14 days, owned by 200 teams (one contact each).
func openInventory(ctx context.Context, path string, n int) (*invDB, error) {
	db, err := store.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	cfg := rotationtest.Lumi()
	cfg.Inventory.Secrets = nil
	now := func() time.Time { return epoch }
	led := app.NewLedger(db, audit.New([]byte(benchKey), now), now)
	rot := &rotation.Service{Config: cfg, Store: led.RotationStore(), KV: rotationtest.NewKV(),
		Directory: directory{}, Grants: led.RotationGrants(), Now: now, Log: quietLog()}
	h := &handlers.Handlers{Config: cfg, Directory: directory{}, Rotation: rot, Audit: led.AuditReader(),
		Log: quietLog(), Now: now}
	sched := &schedule.Scheduler{Now: now, Store: led.ScheduleStore(), Inventory: app.InventoryView(rot),
		Grants: led.ScheduleGrants(), Directory: directory{}, Config: schedule.ConfigFrom(cfg), Log: quietLog()}
	d := &invDB{db: db, rot: rot, h: h, sched: sched}

	const interval = 365 * 24 * time.Hour
	const batch = 1000
	for start := 0; start < n; start += batch {
		err := led.RotationStore().InTx(ctx, func(tx rotation.Tx) error {
			for i := start; i < min(start+batch, n); i++ {
				// Due = created + interval, from epoch-30d to epoch+335d.
				due := epoch.Add(-30*24*time.Hour + time.Duration(i)*interval/time.Duration(n))
				created := due.Add(-interval)
				team := i % 200
				sec := rotation.Secret{
					Name: fmt.Sprintf("svc-%05d", i), Environment: []string{"prod", "staging", "dev"}[i%3],
					OwnerTeam: fmt.Sprintf("team-%03d", team), OwnerContact: fmt.Sprintf("UOWNER%03d", team),
					Mount: rotationtest.KVMount, Path: fmt.Sprintf("apps/svc-%05d", i), Interval: interval,
					Generate: rotation.Generate{Length: 32, Alphabet: "A-Za-z0-9"},
					Source:   rotation.SourceRegistered, Version: 1, CreatedAt: created, UpdatedAt: created,
				}
				if err := tx.SecretInsert(ctx, sec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("fill the inventory: %w", err)
		}
	}
	return d, nil
}

// answer is `/secrets inventory` as the inbox runs it: the handler reads
// the registry through the rotation service and renders the reply.
func (d *invDB) answer(ctx context.Context, n int) error {
	res := d.h.Command(ctx, handlers.Command{UserID: accesstest.Sec.SlackID, ChannelID: "CSEC", Command: "/secrets",
		Text: "inventory", ResponseURL: "https://hooks.slack.test/commands/T1/2/3"})
	if len(res.Replies) != 1 || !strings.Contains(res.Replies[0].Text, fmt.Sprintf("(%d, by due date)", n)) {
		return fmt.Errorf("unexpected inventory answer: %.200q", replyText(res))
	}
	return nil
}

func replyText(res handlers.Result) string {
	if len(res.Replies) == 0 {
		return ""
	}
	return res.Replies[0].Text
}

// reminderScan runs the scheduler's tick on the first day it sees the
// inventory: every entry is scanned, and the overdue and due-soon ones are
// marked, messaged and audited in one transaction.
func (d *invDB) reminderScan(ctx context.Context) error {
	if err := d.sched.Tick(ctx); err != nil {
		return err
	}
	return d.db.InTx(ctx, func(tx *store.Tx) error {
		v, _, err := tx.MetaGet(ctx, schedule.KeyDaily)
		if err == nil && v != epoch.Format("2006-01-02") {
			err = fmt.Errorf("the daily run did not happen (cursor %q)", v)
		}
		return err
	})
}

func runInventory(ctx context.Context, sz sizes, dir string) ([]Figure, error) {
	type result struct{ answer, answerCPU, scan time.Duration }
	measure := func(n int) (result, error) {
		d, err := openInventory(ctx, filepath.Join(dir, fmt.Sprintf("inventory-%d.db", n)), n)
		if err != nil {
			return result{}, err
		}
		defer d.close()
		if err := d.answer(ctx, n); err != nil { // warm: the first answer pays for the page cache
			return result{}, err
		}
		a, aCPU, err := medians(sz.repeats, func() error { return d.answer(ctx, n) })
		if err != nil {
			return result{}, err
		}
		start := time.Now()
		if err := d.reminderScan(ctx); err != nil {
			return result{}, fmt.Errorf("reminder scan: %w", err)
		}
		return result{answer: a, answerCPU: aCPU, scan: time.Since(start)}, nil
	}
	small, err := measure(sz.invSmall)
	if err != nil {
		return nil, err
	}
	big, err := measure(sz.invBig)
	if err != nil {
		return nil, err
	}
	answerWhat := "`/secrets inventory`: the handler reads %d registry entries through the rotation service and the store, sorts and renders the reply (median of %d)"
	scanWhat := "the daily reminder run over %d entries (scheduler tick: scan, mark, DM owners, escalate overdue ones, audit), first day, one run"
	return []Figure{
		{Name: "inventory_5k_ms", Value: ms(small.answer), Unit: "ms", What: fmt.Sprintf(answerWhat, sz.invSmall, sz.repeats)},
		{Name: "inventory_10k_ms", Value: ms(big.answer), Unit: "ms", What: fmt.Sprintf(answerWhat, sz.invBig, sz.repeats)},
		{Name: "inventory_10k_cpu_ms", Value: ms(big.answerCPU), Unit: "ms",
			What: fmt.Sprintf("CPU time of the process for the inventory answer over %d entries (median of %d): the cost without waiting for a core", sz.invBig, sz.repeats)},
		{Name: "inventory_growth", Value: growth(small.answer, big.answer, sz.invSmall, sz.invBig), Unit: "ratio",
			What: "inventory answer time per entry, big over small size (1.0 = linear)"},
		{Name: "reminder_scan_5k_ms", Value: ms(small.scan), Unit: "ms", What: fmt.Sprintf(scanWhat, sz.invSmall)},
		{Name: "reminder_scan_10k_ms", Value: ms(big.scan), Unit: "ms", What: fmt.Sprintf(scanWhat, sz.invBig)},
		{Name: "reminder_scan_growth", Value: growth(small.scan, big.scan, sz.invSmall, sz.invBig), Unit: "ratio",
			What: "daily reminder run time per entry, big over small size (1.0 = linear)"},
	}, nil
}
