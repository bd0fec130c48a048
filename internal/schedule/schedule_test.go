package schedule

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/policy"
)

var reminderKeys = []string{"schedule:reminder-dm:", "schedule:due-soon-summary:", "schedule:overdue:"}

func lumiSecrets(e *env) {
	e.inv.put(Secret{Name: "payments-db", Environment: "prod", OwnerTeam: "payments", OwnerContact: "U0PAYOWNER", Due: ts("2025-03-10 09:00")})
	e.inv.put(Secret{Name: "search-key", Environment: "staging", OwnerTeam: "payments", OwnerContact: "U0PAYOWNER", Due: ts("2025-03-15 12:00")})
	e.inv.put(Secret{Name: "ledger-token", Environment: "prod", OwnerTeam: "ledger <!channel> & co", OwnerContact: "U0LEDGER", Due: ts("2025-02-20 00:00")})
	e.inv.put(Secret{Name: "far-away", Environment: "prod", OwnerTeam: "web", OwnerContact: "U0WEB", Due: ts("2025-06-01 00:00")})
}

// R08: due soon -> one DM per owner and one summary; the next day no
// duplicate; overdue -> escalation, again a week later.
func TestDailyReminders(t *testing.T) {
	e := newEnv()
	lumiSecrets(e)
	s := e.scheduler()
	steps := []struct {
		at   string
		want []string
	}{
		{"2025-03-03 09:00", []string{
			"schedule:due-soon-summary:2025-03-03",
			"schedule:overdue:ledger-token:2025-03-03",
			"schedule:reminder-dm:U0LEDGER:2025-03-03",
			"schedule:reminder-dm:U0PAYOWNER:2025-03-03",
		}},
		{"2025-03-03 09:01", nil},
		{"2025-03-03 23:59", nil},
		{"2025-03-04 08:59", nil},
		{"2025-03-04 09:00", nil}, // same due dates: no duplicate
		{"2025-03-05 09:30", nil},
		// payments-db falls due at 09:00 on the 10th; ledger-token has been
		// overdue for a week since its escalation: escalated again.
		{"2025-03-10 09:00", []string{
			"schedule:overdue:ledger-token:2025-03-10",
			"schedule:overdue:payments-db:2025-03-10",
			"schedule:reminder-dm:U0LEDGER:2025-03-10",
			"schedule:reminder-dm:U0PAYOWNER:2025-03-10",
		}},
		{"2025-03-11 09:00", nil},
	}
	for _, st := range steps {
		got := keysWith(e.tick(t, s, st.at), reminderKeys...)
		if !slices.Equal(got, st.want) {
			t.Fatalf("at %s: sent %v, want %v", st.at, got, st.want)
		}
	}
}

func TestDailyReminderContent(t *testing.T) {
	e := newEnv()
	lumiSecrets(e)
	ms := e.tick(t, e.scheduler(), "2025-03-03 09:00")

	dm := byKey(t, ms, "schedule:reminder-dm:U0PAYOWNER:2025-03-03")
	if dm.Kind != "dm" || dm.Target != "U0PAYOWNER" {
		t.Fatalf("DM goes to %s %s", dm.Kind, dm.Target)
	}
	for _, want := range []string{"`payments-db` (prod): due 2025-03-10, in 7 days", "`search-key` (staging): due 2025-03-15, in 12 days", "Due within 14 days"} {
		if !strings.Contains(dm.Text, want) {
			t.Errorf("DM lacks %q:\n%s", want, dm.Text)
		}
	}
	if strings.Contains(dm.Text, "far-away") || strings.Contains(dm.Text, "ledger-token") {
		t.Errorf("DM lists someone else's or a far secret:\n%s", dm.Text)
	}

	sum := byKey(t, ms, "schedule:due-soon-summary:2025-03-03")
	if sum.Kind != "post" || sum.Target != secChannel {
		t.Fatalf("summary goes to %s %s", sum.Kind, sum.Target)
	}
	for _, want := range []string{"payments-db", "search-key", "<@U0PAYOWNER>", "1 overdue secret escalated"} {
		if !strings.Contains(sum.Text, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.Text)
		}
	}

	esc := byKey(t, ms, "schedule:overdue:ledger-token:2025-03-03")
	if esc.Target != secChannel || !strings.Contains(esc.Text, "<@U0LEDGER>") || !strings.Contains(esc.Text, "11 days ago") {
		t.Errorf("escalation: %s", esc.Text)
	}
	// User text is made inert.
	if strings.Contains(esc.Text, "<!channel>") || !strings.Contains(esc.Text, "ledger &lt;!channel&gt; &amp; co") {
		t.Errorf("team name not escaped: %s", esc.Text)
	}
	if strings.Contains(string(esc.Blocks), "<!channel>") {
		t.Errorf("team name not escaped in blocks: %s", esc.Blocks)
	}
	ledgerDM := byKey(t, ms, "schedule:reminder-dm:U0LEDGER:2025-03-03")
	if !strings.Contains(ledgerDM.Text, "*Overdue*") || !strings.Contains(ledgerDM.Text, "ledger-token") {
		t.Errorf("owner of an overdue secret not told: %s", ledgerDM.Text)
	}
	acts := e.store.auditActions()
	if !slices.Contains(acts, ActDailyReminders) || !slices.Contains(acts, ActOverdueEscalated) {
		t.Errorf("audit: %v", acts)
	}
}

// A secret that enters the window later, a rotation (new due date) and a
// secret with no usable contact.
func TestDailyNewDueDates(t *testing.T) {
	e := newEnv()
	lumiSecrets(e)
	s := e.scheduler()
	e.tick(t, s, "2025-03-03 09:00")

	e.inv.put(Secret{Name: "cache-key", Environment: "prod", OwnerTeam: "infra", OwnerContact: "not-a-user <@U1>", Due: ts("2025-03-16 00:00")})
	ms := e.tick(t, s, "2025-03-04 09:00")
	if got, want := keysWith(ms, reminderKeys...), []string{"schedule:due-soon-summary:2025-03-04"}; !slices.Equal(got, want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
	sum := ms[0].M.Text
	if !strings.Contains(sum, "cache-key") || strings.Contains(sum, "payments-db") || !strings.Contains(sum, "no Slack contact") {
		t.Errorf("summary: %s", sum)
	}
	if strings.Contains(sum, "<@U1>") {
		t.Errorf("contact text not escaped: %s", sum)
	}

	// payments-db is rotated: due in 90 days; reminded again when it comes due.
	e.inv.mu.Lock()
	e.inv.secrets[0].Due = ts("2025-06-01 09:00")
	e.inv.mu.Unlock()
	if got := keysWith(e.tick(t, s, "2025-03-10 09:00"), "schedule:overdue:payments-db"); got != nil {
		t.Fatalf("a rotated secret escalated: %v", got)
	}
	ms = e.tick(t, s, "2025-05-20 09:00")
	if got := keysWith(ms, "schedule:reminder-dm:U0PAYOWNER"); len(got) != 1 {
		t.Fatalf("rotated secret coming due again: %v", keysWith(ms, ""))
	}
}

// R09: the bot is down over reminder times: a new Scheduler over the same
// store catches up once, not once per missed day.
func TestRestartCatchesUpOnce(t *testing.T) {
	e := newEnv()
	lumiSecrets(e)
	e.tick(t, e.scheduler(), "2025-03-03 09:00")

	// Down from the 3rd to the 6th; meanwhile another secret came due.
	e.inv.put(Secret{Name: "queue-creds", Environment: "prod", OwnerTeam: "infra", OwnerContact: "U0INFRA", Due: ts("2025-03-18 00:00")})
	restarted := e.scheduler()
	ms := e.tick(t, restarted, "2025-03-06 11:17")
	want := []string{"schedule:due-soon-summary:2025-03-06", "schedule:reminder-dm:U0INFRA:2025-03-06"}
	if got := keysWith(ms, reminderKeys...); !slices.Equal(got, want) {
		t.Fatalf("catch-up sent %v, want %v", got, want)
	}
	if got := e.store.get(KeyDaily); got != "2025-03-06" {
		t.Fatalf("cursor %q", got)
	}
	if got := keysWith(e.tick(t, e.scheduler(), "2025-03-06 11:18"), reminderKeys...); got != nil {
		t.Fatalf("second restart sent %v", got)
	}

	// Down over a reminder time with nothing new: started before the
	// day's run, it runs the day before's once, then today's at 09:00.
	e2 := newEnv()
	e2.inv.put(Secret{Name: "a-secret", OwnerContact: "U0A", Due: ts("2025-03-12 00:00")})
	ms = e2.tick(t, e2.scheduler(), "2025-03-03 08:30")
	if got := keysWith(ms, "schedule:due-soon-summary"); !slices.Equal(got, []string{"schedule:due-soon-summary:2025-03-02"}) {
		t.Fatalf("first start: %v", got)
	}
	if got := keysWith(e2.tick(t, e2.scheduler(), "2025-03-03 09:00"), reminderKeys...); got != nil {
		t.Fatalf("same secret reminded twice: %v", got)
	}
}

// Two replicas: whichever commits first posts; the other's run is dropped
// by the cursor compare-and-set even though it gathered everything.
func TestReplicasPostOnce(t *testing.T) {
	e := newEnv()
	lumiSecrets(e)
	e.clock.SetS("2025-03-03 09:00")
	a, b := e.scheduler(), e.scheduler()
	e.inv.hook = func() {
		if err := b.Tick(context.Background()); err != nil {
			t.Errorf("replica b: %v", err)
		}
	}
	if err := a.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := keysWith(e.store.sentSince(0), "schedule:due-soon-summary"); len(got) != 1 {
		t.Fatalf("summaries: %v", got)
	}
	n := 0
	for _, a := range e.store.auditActions() {
		if a == ActDailyReminders {
			n++
		}
	}
	if n != 1 || len(e.store.journal) != 1 {
		t.Fatalf("%d daily runs audited, %d reviews journaled", n, len(e.store.journal))
	}

	// The same for the review: b posts it while a gathers; a drops its own.
	e = reviewEnv()
	e.clock.SetS("2025-04-01 09:00")
	a, b = e.scheduler(), e.scheduler()
	e.gr.hook = func() {
		if err := b.Tick(context.Background()); err != nil {
			t.Errorf("replica b: %v", err)
		}
	}
	if err := a.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := keysWith(e.store.sentSince(0), "schedule:review:"); len(got) != 1 || len(e.store.journal) != 1 {
		t.Fatalf("reviews %v, journal %+v", got, e.store.journal)
	}

	// And concurrently, many times over.
	e = newEnv()
	lumiSecrets(e)
	e.clock.SetS("2025-03-03 09:00")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.scheduler().Tick(context.Background()); err != nil {
				t.Errorf("tick: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := keysWith(e.store.sentSince(0), reminderKeys...); len(got) != 4 {
		t.Fatalf("concurrent replicas sent %v", got)
	}
	if n := len(keysWith(e.store.sentSince(0), "schedule:review:")); n != 1 {
		t.Fatalf("concurrent replicas posted %d reviews", n)
	}
}

func reviewEnv() *env {
	e := newEnv()
	g := func(id, user, scope string, state access.State, created, issued string) access.Grant {
		gr := access.Grant{ID: id, Requester: user, Scope: scope, State: state, CreatedAt: ts(created)}
		if issued != "" {
			gr.IssuedAt = ts(issued)
			gr.ExpiresAt = gr.IssuedAt.Add(4 * time.Hour)
		}
		return gr
	}
	e.gr.all = []access.Grant{
		g("GALICE001", "U0ALICE", "platform-ro", access.StateIssued, "2025-03-31 22:00", "2025-03-31 22:01"),
		g("GGONE0001", "U0GONE", "platform-rw", access.StateIssued, "2025-03-20 10:00", "2025-03-20 11:00"),
		g("GALICE002", "U0ALICE", "platform-ro", access.StateExpired, "2025-03-10 10:00", "2025-03-10 10:05"),
		g("GALICE003", "U0ALICE", "platform-ro", access.StateRevoked, "2025-03-11 10:00", "2025-03-11 10:05"),
		g("GBOB00001", "U0BOB", "platform-ro", access.StateExpired, "2025-01-10 10:00", "2025-01-10 10:05"),
		g("GCAROL001", "U0CAROL", "platform-rw", access.StateDenied, "2025-03-15 10:00", ""),
	}
	e.dir.people["U0GONE"] = policy.Person{SlackID: "U0GONE", Deleted: true}
	e.dir.groups["sre-oncall"] = []string{"U0ALICE", "U0BOB", "U0DAVE"}
	e.dir.groups["platform-security"] = []string{"U0GONE", "U0CAROL"}
	return e
}

// R10: the monthly review.
func TestMonthlyReview(t *testing.T) {
	e := reviewEnv()
	s := e.scheduler()
	ms := e.tick(t, s, "2025-04-01 09:05")
	reviews := keysWith(ms, "schedule:review:")
	if !slices.Equal(reviews, []string{"schedule:review:2025-04:1"}) {
		t.Fatalf("reviews %v", reviews)
	}
	m := byKey(t, ms, "schedule:review:2025-04:1")
	if m.Kind != "post" || m.Target != secChannel {
		t.Fatalf("review goes to %s %s", m.Kind, m.Target)
	}
	blocks := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(m.Blocks))
	for _, want := range []string{
		"Monthly access review: April 2025",
		"2 grants active",
		"`GALICE001` `platform-ro` held by <@U0ALICE>",
		"`GGONE0001` `platform-rw` held by <@U0GONE>",
		"<@U0ALICE>: `platform-ro` ×3",
		"<@U0GONE>: `platform-rw` ×1",
		"(account deactivated)",
		"<@U0BOB> in `@sre-oncall`: no grant of `platform-ro`",
		"<@U0CAROL> in `@platform-security`",
	} {
		if !strings.Contains(blocks, want) {
			t.Errorf("review lacks %q:\n%s", want, blocks)
		}
	}
	if strings.Contains(blocks, "GBOB00001") || strings.Contains(blocks, "GCAROL001") {
		t.Errorf("review lists an old or never-issued grant as active")
	}
	got := buttons(t, m)
	want := []string{
		"review_revoke=GGONE0001",
		"review_remove=platform-security:U0CAROL",
		"review_remove=sre-oncall:U0BOB",
		"review_remove=sre-oncall:U0DAVE",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("buttons %v, want %v", got, want)
	}
	for _, b := range got[1:] {
		v := strings.TrimPrefix(b, "review_remove=")
		if g, u, ok := ParseRemoveValue(v); !ok || g == "" || u == "" {
			t.Errorf("ParseRemoveValue(%q) = %q %q %v", v, g, u, ok)
		}
	}

	// Recorded in the journal and audited.
	if len(e.store.journal) != 1 {
		t.Fatalf("journal: %+v", e.store.journal)
	}
	j := e.store.journal[0]
	if j.Kind != JournalKindReview || j.Author != "secretbot" || j.Fields["period"] != "2025-04" ||
		j.Fields["deactivated_grants"] != "GGONE0001" || j.Fields["active"] != "2" ||
		j.Fields["unused_members"] != "platform-security:U0CAROL,sre-oncall:U0BOB,sre-oncall:U0DAVE" {
		t.Errorf("journal entry %+v", j)
	}
	if !slices.Contains(e.store.auditActions(), ActReviewPosted) {
		t.Errorf("not audited: %v", e.store.auditActions())
	}

	// Once per month, across restarts; the next month's comes on its day.
	for _, at := range []string{"2025-04-01 09:06", "2025-04-15 09:00", "2025-05-01 08:59"} {
		if got := keysWith(e.tick(t, e.scheduler(), at), "schedule:review:"); got != nil {
			t.Fatalf("at %s: %v", at, got)
		}
	}
	if got := keysWith(e.tick(t, e.scheduler(), "2025-05-01 09:00"), "schedule:review:"); !slices.Equal(got, []string{"schedule:review:2025-05:1"}) {
		t.Fatalf("May review: %v", got)
	}
	// Down for the whole of June's review day and into July's: one review.
	if got := keysWith(e.tick(t, e.scheduler(), "2025-07-03 12:00"), "schedule:review:"); !slices.Equal(got, []string{"schedule:review:2025-07:1"}) {
		t.Fatalf("catch-up review: %v", got)
	}
}

// Slack down: the review waits (cursor unmoved) instead of posting an empty
// one; a single failed look-up is listed instead.
func TestReviewWaitsForSlack(t *testing.T) {
	e := reviewEnv()
	s := e.scheduler()
	e.dir.setErrs(errors.New("slack: ratelimited"), nil)
	e.clock.SetS("2025-04-01 09:00")
	if err := s.Tick(context.Background()); err == nil || !strings.Contains(err.Error(), "access review") {
		t.Fatalf("tick: %v", err)
	}
	if got := e.store.get(KeyReview); got != installed {
		t.Fatalf("cursor moved to %q", got)
	}
	if got := keysWith(e.store.sentSince(0), "schedule:review:"); got != nil {
		t.Fatalf("posted %v", got)
	}
	// The daily run was not held up.
	if e.store.get(KeyDaily) != "2025-04-01" {
		t.Fatalf("daily cursor %q", e.store.get(KeyDaily))
	}

	e.dir.setErrs(nil, nil)
	delete(e.dir.groups, "sre-oncall")
	ms := e.tick(t, s, "2025-04-01 09:01")
	m := byKey(t, ms, "schedule:review:2025-04:1")
	if !strings.Contains(string(m.Blocks), "could not list the members of `@sre-oncall`") {
		t.Errorf("problem not listed: %s", m.Blocks)
	}
}

// A long review is split into messages of at most 50 blocks.
func TestReviewSplits(t *testing.T) {
	e := reviewEnv()
	var many []string
	for i := range 120 {
		many = append(many, fmt.Sprintf("U0M%03d", i))
	}
	e.dir.groups["sre-oncall"] = many
	ms := e.tick(t, e.scheduler(), "2025-04-01 09:00")
	keys := keysWith(ms, "schedule:review:")
	if len(keys) < 3 {
		t.Fatalf("review keys %v", keys)
	}
	total := 0
	for _, k := range keys {
		m := byKey(t, ms, k)
		n := strings.Count(string(m.Blocks), `"type":"section"`) + strings.Count(string(m.Blocks), `"type":"divider"`)
		if n > 50 {
			t.Errorf("%s has %d blocks", k, n)
		}
		for _, b := range buttons(t, m) {
			if strings.HasPrefix(b, "review_remove=sre-oncall:") {
				total++
			}
		}
	}
	if total != 120 {
		t.Fatalf("%d remove buttons, want 120", total)
	}
}

// R11: the quarterly restore-test reminder fires once per restore month.
func TestRestoreTestReminder(t *testing.T) {
	e := newEnv()
	e.cfg.RestoreTestMonths = []int{1, 4, 7, 10}
	e.store.set(KeyRestoreTest, "2025-01") // January's was sent
	s := e.scheduler()
	steps := []struct{ at, want string }{
		{"2025-03-31 09:00", ""},
		{"2025-04-01 08:59", ""},
		{"2025-04-01 09:00", "schedule:restore-test:2025-04"},
		{"2025-04-01 09:01", ""},
		{"2025-04-02 09:00", ""},
		{"2025-05-01 09:00", ""},
		{"2025-07-01 09:00", "schedule:restore-test:2025-07"},
		{"2025-11-15 10:00", "schedule:restore-test:2025-10"}, // down over October's: caught up once
		{"2025-12-01 09:00", ""},
		{"2026-01-01 09:00", "schedule:restore-test:2026-01"},
	}
	for _, st := range steps {
		got := keysWith(e.tick(t, s, st.at), "schedule:restore-test:")
		var want []string
		if st.want != "" {
			want = []string{st.want}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("at %s: %v, want %v", st.at, got, want)
		}
	}
	m := byKey(t, e.store.sentSince(0), "schedule:restore-test:2025-04")
	if m.Target != secChannel || !strings.Contains(m.Text, "April 2025") ||
		!strings.Contains(m.Text, "/secrets journal restore-test passed|failed") {
		t.Errorf("reminder: %s", m.Text)
	}
	if !slices.Contains(e.store.auditActions(), ActRestoreTestReminded) {
		t.Errorf("not audited")
	}

	// No months configured: never.
	e2 := newEnv()
	if got := keysWith(e2.tick(t, e2.scheduler(), "2025-04-01 09:00"), "schedule:restore-test:"); got != nil {
		t.Fatalf("%v", got)
	}
}

func TestPeriods(t *testing.T) {
	c := clock{9, 0}
	for _, tc := range []struct {
		now, daily, review, prev string
		day                      int
	}{
		{"2025-03-03 09:00", "2025-03-03 09:00", "2025-03-01 09:00", "2025-02-01 09:00", 1},
		{"2025-03-03 08:59", "2025-03-02 09:00", "2025-03-01 09:00", "2025-02-01 09:00", 1},
		{"2025-03-01 08:00", "2025-02-28 09:00", "2025-02-01 09:00", "2025-01-01 09:00", 1},
		{"2025-01-01 08:00", "2024-12-31 09:00", "2024-12-01 09:00", "2024-11-01 09:00", 1},
		{"2025-03-15 10:00", "2025-03-15 09:00", "2025-02-28 09:00", "2025-01-31 09:00", 31},
		{"2025-03-31 09:00", "2025-03-31 09:00", "2025-03-31 09:00", "2025-02-28 09:00", 31},
	} {
		now := ts(tc.now)
		if got := latestDaily(now, c); !got.Equal(ts(tc.daily)) {
			t.Errorf("latestDaily(%s) = %s", tc.now, got)
		}
		cur, prev := latestMonthly(now, tc.day, c)
		if !cur.Equal(ts(tc.review)) || !prev.Equal(ts(tc.prev)) {
			t.Errorf("latestMonthly(%s, %d) = %s, %s", tc.now, tc.day, cur, prev)
		}
	}
	for _, bad := range []string{"9", "24:00", "09:60", "nine"} {
		if _, err := parseDailyAt(bad); err == nil {
			t.Errorf("parseDailyAt(%q) accepted", bad)
		}
	}
	if c, err := parseDailyAt("7:30"); err != nil || c != (clock{7, 30}) {
		t.Errorf("parseDailyAt(7:30) = %v %v", c, err)
	}
	for _, tc := range []struct {
		v           string
		group, user string
		ok          bool
	}{
		{"S0GROUP:U0BOB", "S0GROUP", "U0BOB", true},
		{"sre-oncall:W0ENT", "sre-oncall", "W0ENT", true},
		{"sre-oncall:", "", "", false},
		{":U0BOB", "", "", false},
		{"sre-oncall:bob", "", "", false},
	} {
		g, u, ok := ParseRemoveValue(tc.v)
		if g != tc.group || u != tc.user || ok != tc.ok {
			t.Errorf("ParseRemoveValue(%q) = %q %q %v", tc.v, g, u, ok)
		}
	}
}

func TestTickErrors(t *testing.T) {
	e := newEnv()
	e.inv.err = errors.New("db gone")
	e.clock.SetS("2025-03-03 09:00")
	s := e.scheduler()
	if err := s.Tick(context.Background()); err == nil || !strings.Contains(err.Error(), "daily reminders") {
		t.Fatalf("tick: %v", err)
	}
	if e.store.get(KeyDaily) != "" {
		t.Fatal("cursor moved after a failure")
	}
	if e.store.get(KeyReview) != "2025-03" {
		t.Fatal("a failing cadence held up the others")
	}
	e.inv.err = nil
	lumiSecrets(e)
	if got := keysWith(e.tick(t, s, "2025-03-03 09:01"), "schedule:due-soon-summary:"); len(got) != 1 {
		t.Fatalf("retry: %v", got)
	}

	bad := newEnv()
	bad.cfg.DailyAt = "9am"
	if err := bad.scheduler().Tick(context.Background()); err == nil {
		t.Fatal("bad daily_at accepted")
	}
}

func TestRunTicksAndStops(t *testing.T) {
	e := newEnv()
	lumiSecrets(e)
	e.clock.SetS("2025-03-03 09:00")
	woke := make(chan struct{}, 10)
	s := e.scheduler()
	s.Every = time.Millisecond
	s.Wake = func() { woke <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("Run never woke the deliverer")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	if got := keysWith(e.store.sentSince(0), "schedule:due-soon-summary:"); len(got) != 1 {
		t.Fatalf("summaries %v", got)
	}
}

func TestConfigFrom(t *testing.T) {
	c := &config.Config{
		Slack:     config.Slack{SecurityChannel: "C0SEC", Command: "/secrets"},
		Inventory: config.Inventory{DueSoon: config.Duration(7 * 24 * time.Hour)},
		Schedule: config.Schedule{DailyAt: "08:30", ReviewDay: 3, ReviewWindow: config.Duration(45 * 24 * time.Hour),
			RestoreTestMonths: []int{2, 5}},
		Scopes: []config.Scope{{Name: "platform-ro"}},
	}
	got := ConfigFrom(c)
	if got.SecurityChannel != "C0SEC" || got.DailyAt != "08:30" || got.DueSoon != 7*24*time.Hour || got.ReviewDay != 3 ||
		got.ReviewWindow != 45*24*time.Hour || !slices.Equal(got.RestoreTestMonths, []int{2, 5}) || len(got.Scopes) != 1 {
		t.Fatalf("%+v", got)
	}
}

func TestFreshInstallStartsNextPeriod(t *testing.T) {
	e := newEnv()
	delete(e.store.meta, KeyReview)
	delete(e.store.meta, KeyRestoreTest)
	e.cfg.RestoreTestMonths = []int{1, 4, 7, 10}
	s := e.scheduler()
	e.clock.SetS("2025-04-02 10:00") // a review day and a restore-test month just passed
	if err := s.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := keysWith(e.store.sentSince(0), "schedule:review", "schedule:restore-test"); len(got) != 0 {
		t.Errorf("a fresh install posted %v at once", got)
	}
	if e.store.get(KeyReview) != "2025-04" || e.store.get(KeyRestoreTest) == "" {
		t.Errorf("cursors not seeded: review %q, restore %q", e.store.get(KeyReview), e.store.get(KeyRestoreTest))
	}
	e.clock.SetS("2025-05-01 10:00")
	if err := s.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := keysWith(e.store.sentSince(0), "schedule:review"); len(got) == 0 {
		t.Error("the next month's review was not posted")
	}
}
