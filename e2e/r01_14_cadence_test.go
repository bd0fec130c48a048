package e2e

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
	"github.com/secretbot/secretbot/internal/schedule"
)

// Cadence scenarios of issue 4: R08 (daily reminders), R09 (catch-up),
// R10 (monthly access review), R11 (restore tests).

const (
	dayLayout   = "2006-01-02"
	monthLayout = "2006-01"
	sayOwnerDM  = "Secrets you own need rotating"
	saySummary  = "Rotations due within"
	sayOverdue  = "Rotation overdue"
)

func TestR08_DueReminders(t *testing.T) {
	now := time.Now().UTC()
	if now.Hour() == 23 && now.Minute() >= 58 {
		t.Skip("today's 23:59 daily run is too close: run this scenario at another time of day")
	}
	today, yesterday := now.Format(dayLayout), now.AddDate(0, 0, -1).Format(dayLayout)
	soon := harness.PaymentsDBSecret()
	soon.Interval = "10d" // due within the 14-day window from the start
	session := harness.InventorySecret{Name: "session-key", Environment: "prod", Team: "payments", Contact: harness.Paula.Slack,
		Path: "platform/session-key", Interval: "15s"} // due soon at start, overdue 15 seconds later
	rot := harness.Rotation{Secrets: []harness.InventorySecret{soon, harness.StripeKeySecret(), session},
		DailyAt: "23:59"} // today's run is still ahead: the start runs yesterday's
	w := startR(t, "R08", rot, harness.Options{})

	// Day 1 (yesterday's run): one DM to the owner and one summary, listing
	// the two secrets coming due, not the one due in 90 days.
	dm := w.dm(harness.Paula, sayOwnerDM)
	mustContain(t, "the owner's DM", dm.Text, "`"+harness.PaymentsDB+"`", "`session-key`", "Due within 14 days")
	sum := w.waitSecurity("due-soon summary", saySummary, "("+yesterday+")")
	mustContain(t, "the summary", sum.Text, "`"+harness.PaymentsDB+"`", "`session-key`", "<@"+harness.Paula.Slack+">")
	for what, text := range map[string]string{"DM": dm.Text, "summary": sum.Text} {
		if strings.Contains(text, harness.StripeKey) {
			t.Errorf("the %s lists %s, due in 90 days", what, harness.StripeKey)
		}
	}
	w.settled()
	if n, m := len(w.dms(harness.Paula, sayOwnerDM)), len(w.inSecurity(saySummary)); n != 1 || m != 1 {
		t.Fatalf("day 1: %d DMs to the owner and %d summaries, want 1 and 1", n, m)
	}
	if c, _ := w.metaGet(schedule.KeyDaily); c != yesterday {
		t.Errorf("daily cursor %q after day 1, want %s", c, yesterday)
	}

	// Day 2: the daily time of today is passed (daily_at 00:00), and
	// session-key's due date with it. The bot restarts into today's run.
	s, _ := w.secretRow("session-key")
	time.Sleep(time.Until(s.due().Add(time.Second)))
	w.stop()
	rot.DailyAt = "00:00"
	w.WriteConfig(harness.WithRotation(rot))
	w.start()
	esc := w.waitSecurity("overdue escalation", sayOverdue, "`session-key`")
	mustContain(t, "the escalation", esc.Text, "<@"+harness.Paula.Slack+">", "due "+dayOf(s.due()))
	w.settled()
	if c, _ := w.metaGet(schedule.KeyDaily); c != today {
		t.Errorf("daily cursor %q after day 2, want %s", c, today)
	}
	// No duplicate: payments-db, announced on day 1, is not announced
	// again: no second summary; the owner's one new DM is about the
	// overdue secret only.
	if m := len(w.inSecurity(saySummary)); m != 1 {
		t.Errorf("%d due-soon summaries after day 2, want still 1", m)
	}
	dms := w.dms(harness.Paula, sayOwnerDM)
	if len(dms) > 2 {
		t.Errorf("%d DMs to the owner after day 2, want at most 2", len(dms))
	}
	for _, m := range dms[1:] {
		if strings.Contains(m.Text, harness.PaymentsDB) || !strings.Contains(m.Text, "*Overdue*") {
			t.Errorf("day 2's DM repeats the due-soon reminder:\n%s", m.Text)
		}
	}
	if n := len(w.inSecurity(sayOverdue)); n != 1 {
		t.Errorf("%d escalations, want 1", n)
	}
	if n := len(w.secretEvents(schedule.ActOverdueEscalated, "session-key")); n != 1 {
		t.Errorf("%d escalation audit events, want 1", n)
	}
	if n := len(w.secretEvents(schedule.ActDailyReminders, "")); n != 1 {
		t.Errorf("%d due-soon audit events, want 1 (day 1's)", n)
	}

	// A restart the same day posts nothing again (but the audit
	// checkpoint the bot posts when it stops).
	reminders := func() int {
		n := 0
		for _, m := range w.Slack.Messages() {
			text := m.Text
			if strings.Contains(text, sayOwnerDM) || strings.Contains(text, saySummary) || strings.Contains(text, sayOverdue) {
				n++
			}
		}
		return n
	}
	before := reminders()
	if err := w.Restart(); err != nil {
		t.Fatal(err)
	}
	w.settled()
	if after := reminders(); after != before {
		t.Errorf("a restart posted %d more reminders", after-before)
	}
}

func TestR09_CatchUpOnceAfterDowntime(t *testing.T) {
	now := time.Now().UTC()
	today := now.Format(dayLayout)
	soon := harness.PaymentsDBSecret()
	soon.Interval = "10d"
	rot := harness.Rotation{Secrets: []harness.InventorySecret{soon, harness.StripeKeySecret()}}
	w := startR(t, "R09", rot, harness.Options{NoRun: true})

	// The store as a run three days ago left it: the daily run of that day
	// done, then the bot down over three daily reminder times.
	w.prepareStore(map[string]string{schedule.KeyDaily: now.AddDate(0, 0, -3).Format(dayLayout)})
	w.start()

	dm := w.dm(harness.Paula, sayOwnerDM, "`"+harness.PaymentsDB+"`")
	sum := w.waitSecurity("due-soon summary", saySummary, "`"+harness.PaymentsDB+"`")
	if !strings.Contains(sum.Text, "("+today+")") {
		t.Errorf("the catch-up summary is not today's run:\n%s", sum.Text)
	}
	w.settled()
	check := func(when string) {
		t.Helper()
		if n, m := len(w.dms(harness.Paula, sayOwnerDM)), len(w.inSecurity(saySummary)); n != 1 || m != 1 {
			t.Errorf("%s: %d DMs and %d summaries, want one of each (one run, not one per missed day)", when, n, m)
		}
		es := w.secretEvents(schedule.ActDailyReminders, "")
		if len(es) != 1 || !strings.Contains(es[0].links, today) {
			t.Errorf("%s: daily-run audit events %+v, want one, for %s", when, es, today)
		}
		if c, _ := w.metaGet(schedule.KeyDaily); c != today {
			t.Errorf("%s: daily cursor %q, want %s", when, c, today)
		}
	}
	check("after the catch-up")
	_ = dm

	// Once: the next start does not run it again.
	if err := w.Restart(); err != nil {
		t.Fatal(err)
	}
	w.settled()
	check("after another restart")
}

// reviewMessage waits for the monthly access review naming every one of subs.
func (w *rworld) reviewMessage(subs ...string) fakeslack.Message {
	w.t.Helper()
	return w.waitSecurity("monthly access review", append([]string{"Monthly access review"}, subs...)...)
}

func TestR10_MonthlyAccessReviewRevokeAndRemove(t *testing.T) {
	now := time.Now().UTC()
	month := now.Format(monthLayout)
	rot := harness.Rotation{ReviewDay: harness.ReviewDayOf(now)}
	w := startR(t, "R10", rot, harness.Options{NoRun: true})
	frank := harness.Person{Slack: "U0FRANK", Name: "frank", Email: "frank@lumi.test"}
	w.Slack.AddUser(fakeslack.User{ID: frank.Slack, Name: frank.Name, Email: frank.Email})
	w.Slack.SetGroupMembers(harness.SREGroup, harness.Carol.Slack, harness.Dave.Slack, frank.Slack)
	w.PD.AddOnCall(harness.Dave.PD, harness.EscalationPolicy, 1)

	// This month's review is done (as an earlier run left the store): the
	// grants come first.
	w.prepareStore(map[string]string{schedule.KeyReview: month})
	w.start()
	carol := w.request(harness.Carol, "platform-ro")
	dave := w.request(harness.Dave, "platform-ro")
	w.Slack.AddUser(fakeslack.User{ID: harness.Dave.Slack, Name: harness.Dave.Name, Email: harness.Dave.Email, Deleted: true})
	w.settled()
	if n := len(w.inSecurity("Monthly access review")); n != 0 {
		t.Fatalf("a review was posted before it was due (%d)", n)
	}

	// The review day comes: the cursor says last month's review was the
	// last one; the bot starts and posts this month's.
	w.stop()
	w.metaSet(schedule.KeyReview, now.AddDate(0, -1, 0).Format(monthLayout))
	w.start()
	rev := w.reviewMessage(carol, dave)
	w.settled()
	mustContain(t, "the review", msgText(rev), "Active grants", "`"+carol+"`", "`"+dave+"`",
		"<@"+harness.Carol.Slack+">: `platform-ro` ×1", "<@"+harness.Dave.Slack+">: `platform-ro` ×1",
		"Grants held by deactivated Slack accounts", "(account deactivated)", "Eligible but unused")

	// Revoke: exactly Dave's grant (deactivated). Remove: the eligible
	// people with no grant in the window (Frank in sre-oncall; Alice, Bob
	// and Sam in platform-security), not Carol nor Dave.
	var revoke, remove []string
	for _, b := range buttons(t, rev.Blocks) {
		switch b.ActionID {
		case "review_revoke":
			revoke = append(revoke, b.Value)
		case "review_remove":
			remove = append(remove, b.Value)
		}
	}
	if !slices.Equal(revoke, []string{dave}) {
		t.Errorf("Revoke buttons for %v, want only Dave's grant %s", revoke, dave)
	}
	slices.Sort(remove)
	wantRemove := []string{harness.PlatformSecurityGroup + ":" + harness.Alice.Slack, harness.PlatformSecurityGroup + ":" + harness.Bob.Slack,
		harness.PlatformSecurityGroup + ":" + harness.Sam.Slack, harness.SREGroup + ":" + frank.Slack}
	if !slices.Equal(remove, wantRemove) {
		t.Errorf("Remove buttons for %v, want %v", remove, wantRemove)
	}
	j := w.journal("review")
	if len(j) != 1 || j[0].Fields["period"] != month || j[0].Fields["deactivated_grants"] != dave ||
		!strings.Contains(j[0].Fields["unused_members"], harness.SREGroup+":"+frank.Slack) {
		t.Errorf("the review's journal entries: %+v", j)
	}

	// Revoke revokes it in Vault.
	accessor := w.grant(dave).TokenAccessor
	if !w.accessorAlive(accessor) {
		t.Fatal("Dave's token is not alive before the Revoke")
	}
	w.clickValue(harness.Alice, rev, "review_revoke", dave)
	g := w.waitGrant(dave, wait, "revoked", func(g grantRow) bool { return g.State == "revoked" })
	if w.accessorAlive(accessor) {
		t.Errorf("Dave's token is still alive in Vault after Revoke (grant %+v)", g)
	}
	if w.grant(carol).State != "issued" {
		t.Errorf("Carol's grant changed: %+v", w.grant(carol))
	}

	// Remove takes Frank out of the user group that makes him eligible.
	w.clickValue(harness.Alice, rev, "review_remove", harness.SREGroup+":"+frank.Slack)
	w.waitSecurity("removal notice", ":scissors:", "<@"+frank.Slack+">")
	members, _ := w.Slack.GroupMembers(harness.SREGroup)
	if slices.Contains(members, frank.Slack) || !slices.Contains(members, harness.Carol.Slack) || !slices.Contains(members, harness.Dave.Slack) {
		t.Errorf("sre-oncall members after Remove: %v, want Carol and Dave only", members)
	}
	ups := w.Slack.GroupUpdates()
	if len(ups) != 1 || ups[0].Group != harness.SREGroupID {
		t.Errorf("user group updates %+v, want one, of %s", ups, harness.SREGroupID)
	}
	if n := len(w.inSecurity("Monthly access review")); n != 1 {
		t.Errorf("%d reviews posted, want 1", n)
	}
}

var journalIDRe = regexp.MustCompile(`\bJ[0-9A-HJKMNP-TV-Z]{8}\b`)

func TestR11_RestoreTestJournalAndQuarterlyReminderOnce(t *testing.T) {
	now := time.Now().UTC()
	rot := harness.Rotation{RestoreTestMonths: harness.QuarterOf(now)}
	w := startR(t, "R11", rot, harness.Options{NoRun: true})
	const sayReminder = "Quarterly restore test due"

	// The store as an earlier run left it: last quarter's reminder posted.
	// (A fresh install starts its quarterly cadence at the next quarter.)
	lastQuarter := time.Date(now.Year(), now.Month()-3, 1, 0, 0, 0, 0, time.UTC).Format(monthLayout)
	w.prepareStore(map[string]string{schedule.KeyRestoreTest: lastQuarter})
	w.start()

	// The quarter's reminder, once.
	rem := w.waitSecurity("restore-test reminder", sayReminder)
	mustContain(t, "the reminder", rem.Text, now.Format("January 2006"), "journal restore-test passed|failed")
	w.settled()
	if c, _ := w.metaGet(schedule.KeyRestoreTest); c != now.Format(monthLayout) {
		t.Errorf("restore-test cursor %q, want %s", c, now.Format(monthLayout))
	}

	// Recorded and listed.
	notes := "restored the 02:00 snapshot into the scratch cluster; 14 secrets read back"
	r := w.reply(harness.Alice, `journal restore-test passed "`+notes+`"`, "Recorded restore test")
	id := journalIDRe.FindString(r.Text)
	if id == "" {
		t.Fatalf("no journal id in: %s", r.Text)
	}
	js := w.journal("restore-test")
	if len(js) != 1 || js[0].ID != id || js[0].Outcome != "passed" || js[0].Notes != notes || js[0].Author != harness.Alice.Slack {
		t.Errorf("restore-test journal entries %+v", js)
	}
	list := w.reply(harness.Bob, "journal", id)
	mustContain(t, "the journal", list.Text, "restore-test", "passed", notes, "<@"+harness.Alice.Slack+">")
	w.waitSecurity("restore-test notice", "Restore test passed", id)

	// Never twice: a restart in the same quarter posts no second reminder.
	if err := w.Restart(); err != nil {
		t.Fatal(err)
	}
	w.settled()
	if n := len(w.inSecurity(sayReminder)); n != 1 {
		t.Errorf("%d restore-test reminders, want 1", n)
	}
	if n := len(w.secretEvents(schedule.ActRestoreTestReminded, "")); n != 1 {
		t.Errorf("%d restore-test reminder audit events, want 1", n)
	}
}
