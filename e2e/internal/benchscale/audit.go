package benchscale

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/secretbot/secretbot/handlers"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/app"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/rotation/rotationtest"
	"github.com/secretbot/secretbot/internal/store"
)

// eventGap is the time between two generated events: a million events span
// about a year, so `/secrets audit` (last 7 days) shows about 20,000.
const eventGap = 30 * time.Second

// ticker is a clock that moves eventGap on every reading.
type ticker struct {
	mu sync.Mutex
	t  time.Time
}

func (c *ticker) next() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(eventGap)
	return c.t
}

func (c *ticker) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

var actions = []string{"grant.requested", "grant.checks_passed", "grant.approved", "grant.issued", "grant.delivered",
	"grant.expired", "whoami", "inventory.exported", "rotation.started", "command.refused"}

// event i of the generated log: what the bot writes, with varied actors.
func event(i int) audit.Event {
	e := audit.Event{Actor: fmt.Sprintf("UACT%04d", i%300), Action: actions[i%len(actions)], Outcome: audit.OK}
	switch i % 10 {
	case 0, 1, 2, 3, 4, 5:
		e.Scope = []string{"payments-rw", "platform-ro", "platform-rw"}[i%3]
		e.Reason = "database failover during the incident, read-only checks"
		e.Links = map[string]string{"grant": fmt.Sprintf("G%08d", i), "ticket": fmt.Sprintf("SEC-%d", i%5000)}
	case 8:
		e.Secret = fmt.Sprintf("svc-%05d", i%10000)
		e.Links = map[string]string{"rotation": fmt.Sprintf("R%08d", i)}
	case 9:
		e.Outcome = audit.Refused
		e.Reason = "unknown subcommand"
		e.Links = map[string]string{"subcommand": "frobnicate"}
	}
	return e
}

type auditDB struct {
	db    *store.DB
	log   *audit.Log
	clock *ticker
	h     *handlers.Handlers
	n     int // events in the log
}

func openAudit(ctx context.Context, path string) (*auditDB, error) {
	db, err := store.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	c := &ticker{t: epoch.Add(-400 * 24 * time.Hour)}
	log := audit.New([]byte(benchKey), c.next)
	led := app.NewLedger(db, log, c.now)
	h := &handlers.Handlers{Config: rotationtest.Lumi(), Directory: directory{}, Audit: led.AuditReader(),
		Log: quietLog(), Now: c.now}
	return &auditDB{db: db, log: log, clock: c, h: h}, nil
}

// fill appends events until the log holds n, a thousand per transaction
// (through audit.Log.Append and the store, as every domain transaction).
func (a *auditDB) fill(ctx context.Context, n int) error {
	const batch = 1000
	for a.n < n {
		k := min(batch, n-a.n)
		err := a.db.InTx(ctx, func(tx *store.Tx) error {
			for i := range k {
				if _, err := a.log.Append(ctx, tx, event(a.n+i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		a.n += k
	}
	return nil
}

// appendOne appends one event in its own transaction: how the bot writes
// them (one transaction per handled command or state change, committed
// with synchronous=FULL).
func (a *auditDB) appendOne(ctx context.Context) error {
	err := a.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := a.log.Append(ctx, tx, event(a.n))
		return err
	})
	if err == nil {
		a.n++
	}
	return err
}

// verify is `secretbot audit verify`: the whole chain, from the database.
func (a *auditDB) verify(ctx context.Context) error {
	res, err := audit.New([]byte(benchKey), time.Now).Verify(ctx, a.db, nil)
	if err != nil {
		return err
	}
	if res.Events != int64(a.n) {
		return fmt.Errorf("verify saw %d events, the log has %d", res.Events, a.n)
	}
	return nil
}

// query is `/secrets audit` as Platform Security types it: the last 7 days
// (about 20,000 events of a full log), and one person's last 30 days.
func (a *auditDB) query(ctx context.Context) error {
	for _, text := range []string{"audit", "audit --user <@UACT0007> --since 30d"} {
		res := a.h.Command(ctx, handlers.Command{UserID: accesstest.Sec.SlackID, ChannelID: "CSEC", Command: "/secrets",
			Text: text, ResponseURL: "https://hooks.slack.test/commands/T1/2/3"})
		if t := replyText(res); !strings.Contains(t, "*Access log since") || strings.Contains(t, "No events") {
			return fmt.Errorf("unexpected audit answer to %q: %.200q", text, t)
		}
	}
	return nil
}

func runAudit(ctx context.Context, sz sizes, dir string) ([]Figure, error) {
	a, err := openAudit(ctx, filepath.Join(dir, "audit.db"))
	if err != nil {
		return nil, err
	}
	defer a.db.Close()
	type result struct{ fill, appendEach, verify, verifyCPU, query time.Duration }
	var res [2]result
	for i, n := range []int{sz.auditSmall, sz.auditBig} {
		start := time.Now()
		if err := a.fill(ctx, n); err != nil {
			return nil, fmt.Errorf("fill to %d events: %w", n, err)
		}
		res[i].fill = time.Since(start)
		if i == 1 {
			res[i].fill += res[0].fill // the big log was filled from empty, in two parts
		}
		start = time.Now()
		for range sz.appendSample {
			if err := a.appendOne(ctx); err != nil {
				return nil, fmt.Errorf("append: %w", err)
			}
		}
		res[i].appendEach = time.Since(start) / time.Duration(sz.appendSample)
		if res[i].verify, res[i].verifyCPU, err = medians(3, func() error { return a.verify(ctx) }); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		if err := a.query(ctx); err != nil { // warm
			return nil, err
		}
		if res[i].query, err = median(sz.repeats, func() error { return a.query(ctx) }); err != nil {
			return nil, err
		}
	}
	ns := [2]int{sz.auditSmall, sz.auditBig}
	perS := func(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }
	s, b := label(full.auditSmall), label(full.auditBig)
	return []Figure{
		{Name: "audit_append_per_s_" + s, Value: 1 / res[0].appendEach.Seconds(), Unit: "events/s",
			What: fmt.Sprintf("audit events appended one per transaction (audit.Log.Append + store, synchronous=FULL) onto a log of %d, %d appended", ns[0], sz.appendSample)},
		{Name: "audit_append_per_s", Value: 1 / res[1].appendEach.Seconds(), Unit: "events/s",
			What: fmt.Sprintf("audit events appended one per transaction (audit.Log.Append + store, synchronous=FULL) onto a log of %d, %d appended", ns[1], sz.appendSample)},
		{Name: "audit_append_growth", Value: float64(res[1].appendEach) / float64(res[0].appendEach), Unit: "ratio",
			What: fmt.Sprintf("time per appended event on the %s log over the %s log (1.0 = constant per event, linear in total)", b, s)},
		{Name: "audit_fill_per_s", Value: perS(ns[1], res[1].fill), Unit: "events/s",
			What: fmt.Sprintf("audit events appended 1,000 per transaction, building the %d-event log from empty", ns[1])},
		{Name: "audit_fill_growth", Value: growth(res[0].fill, res[1].fill, ns[0], ns[1]), Unit: "ratio",
			What: fmt.Sprintf("time to build the %s log over time to build the %s log, per event (1.0 = linear)", b, s)},
		{Name: "audit_verify_per_s_" + s, Value: perS(ns[0]+sz.appendSample, res[0].verify), Unit: "events/s",
			What: fmt.Sprintf("`secretbot audit verify` (audit.Log.Verify over the store) of %d events", ns[0]+sz.appendSample)},
		{Name: "audit_verify_per_s", Value: perS(ns[1]+2*sz.appendSample, res[1].verify), Unit: "events/s",
			What: fmt.Sprintf("`secretbot audit verify` (audit.Log.Verify over the store) of %d events", ns[1]+2*sz.appendSample)},
		{Name: "audit_verify_cpu_per_s", Value: perS(ns[1]+2*sz.appendSample, res[1].verifyCPU), Unit: "events/s",
			What: fmt.Sprintf("`secretbot audit verify` of %d events per second of process CPU time: the rate without waiting for a core", ns[1]+2*sz.appendSample)},
		{Name: "audit_verify_growth", Value: growth(res[0].verify, res[1].verify, ns[0], ns[1]), Unit: "ratio",
			What: fmt.Sprintf("verify time per event, %s log over %s log (1.0 = linear)", b, s)},
		{Name: "audit_query_" + s + "_ms", Value: ms(res[0].query), Unit: "ms",
			What: fmt.Sprintf("`/secrets audit` (last 7 days) plus `/secrets audit --user @x --since 30d` through the handler, log of %d (median of %d)", ns[0], sz.repeats)},
		{Name: "audit_query_" + b + "_ms", Value: ms(res[1].query), Unit: "ms",
			What: fmt.Sprintf("`/secrets audit` (last 7 days) plus `/secrets audit --user @x --since 30d` through the handler, log of %d (median of %d)", ns[1], sz.repeats)},
		{Name: "audit_query_growth", Value: float64(res[1].query) / float64(res[0].query), Unit: "ratio",
			What: fmt.Sprintf("`/secrets audit` time on the %s log over the %s log; the answer covers the same days, so 1.0 means independent of the log's size", b, s)},
	}, nil
}
