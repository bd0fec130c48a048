package e2e

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakejira"
	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

// Rotation scenarios of issue 4: R02–R07.

var generatedRe = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)

func TestR02_GeneratedRotationStagingProductionCompleted(t *testing.T) {
	w := startR(t, "R02", harness.Rotation{}, harness.Options{})
	path := harness.PaymentsDBPath
	w.AddApprovedTicket("SEC-201", harness.Alice, harness.PaymentsDB, ticketExpiry())

	began := time.Now()
	r, root := w.startRotation(harness.Alice, harness.PaymentsDB, "--ticket SEC-201")

	// A new version, generated, written with check-and-set against the one read.
	if r.From != 1 || r.To != 2 || r.Operator != harness.Alice.Slack || r.Ticket != "SEC-201" || r.State != "staging" {
		t.Fatalf("stored rotation %+v: want staging, version 1 → 2, by Alice, ticket SEC-201", r)
	}
	kv := w.kv(path)
	if kv.Current != 2 {
		t.Fatalf("Vault is at version %d after the rotation started, want 2", kv.Current)
	}
	v2, _ := w.kvValue(path, 2)
	if !generatedRe.MatchString(v2) || v2 == w.initial[harness.PaymentsDB] {
		t.Errorf("version 2 holds %d characters that are not a fresh 32-character A-Za-z0-9 value", len(v2))
	}
	if v1, ok := w.kvValue(path, 1); !ok || v1 != w.initial[harness.PaymentsDB] {
		t.Errorf("version 1 is gone before production was verified")
	}
	writes := w.hook.kvWrites(path)
	if len(writes) != 1 || writes[0].CAS != 1 || writes[0].Status != 200 {
		t.Errorf("the bot's KV writes to %s: %+v, want one, with check-and-set 1", path, writes)
	}
	mustContain(t, "the thread root", root.Text, r.ID, "`"+harness.PaymentsDB+"`", "<@"+harness.Alice.Slack+">",
		"Ticket `SEC-201`", "version 1 → 2")
	if ids := fakeslack.ActionIDs(root.Blocks); !slices.Equal(ids, []string{"rotation_staging", "rotation_rollback"}) {
		t.Errorf("thread root buttons %v, want Staging verified and Roll back", ids)
	}

	// Staging verified (Bob, security), then Production verified (Sam).
	w.confirm(harness.Bob, r.ID, "rotation_staging")
	r = w.waitRotation(harness.PaymentsDB, "in production", func(r rotationRow) bool { return r.State == "production" })
	if r.StagingBy != harness.Bob.Slack {
		t.Errorf("staging verified by %s, want Bob", r.StagingBy)
	}
	w.waitSecurity("staging reply in the thread", "Staging verified by <@"+harness.Bob.Slack+">")
	if _, ok := w.kvValue(path, 1); !ok {
		t.Errorf("version 1 is gone after staging only")
	}
	w.confirm(harness.Sam, r.ID, "rotation_production")
	r = w.waitRotation(harness.PaymentsDB, "completed", func(r rotationRow) bool { return r.State == "completed" })
	if r.ProductionBy != harness.Sam.Slack || r.CompletedAt.IsZero() {
		t.Errorf("stored rotation %+v: want production verified by Sam", r)
	}

	// The previous version is destroyed; the new one is current.
	kv = w.kv(path)
	if kv.Current != 2 || !kv.Versions[1].Destroyed || kv.Versions[2].Destroyed || !kv.Versions[2].DeletionTime.IsZero() {
		t.Errorf("Vault after completion: current %d, versions %+v; want 2 current, 1 destroyed", kv.Current, kv.Versions)
	}
	if _, ok := w.kvValue(path, 1); ok {
		t.Errorf("version 1 can still be read after completion")
	}
	if cur, _ := w.kvValue(path, 0); cur != v2 {
		t.Errorf("the current value is not the one written by the rotation")
	}

	// The registry records time, operator, ticket and version, and Vault's
	// custom_metadata mirrors it.
	s, _ := w.secretRow(harness.PaymentsDB)
	if s.LastOperator != harness.Alice.Slack || s.LastTicket != "SEC-201" || s.LastVersion != 2 ||
		s.LastRotatedAt.Before(began) || s.LastRotatedAt.After(time.Now()) {
		t.Errorf("registry after the rotation: %+v; want Alice, SEC-201, version 2, rotated just now", s)
	}
	if !s.due().Equal(s.LastRotatedAt.Add(90 * 24 * time.Hour)) {
		t.Errorf("due %v, want the rotation + 90d", s.due())
	}
	w.checkMetadata(harness.PaymentsDB)
	inv := w.reply(harness.Alice, "inventory", "Secret inventory")
	mustContain(t, "the inventory", inv.Text, "`"+harness.PaymentsDB+"`", "due "+dayOf(s.due()), "last rotated "+dayOf(s.LastRotatedAt)+" (v2)")

	// The completion notice, top level in the security channel.
	done := w.waitSecurity("completion notice", ":lock:", r.ID, "complete")
	if done.ThreadTS != "" {
		t.Errorf("the completion notice is a thread reply, want a channel message")
	}
	mustContain(t, "the completion notice", done.Text, "`"+harness.PaymentsDB+"`", "version 1 → 2", "<@"+harness.Alice.Slack+">",
		"<@"+harness.Bob.Slack+">", "<@"+harness.Sam.Slack+">", "version 1 destroyed", "Next rotation due "+dayOf(s.due()))

	// The evidence on the ticket: who, what, when, versions, confirmations.
	c, err := w.Jira.WaitComment("SEC-201", func(c fakejira.Comment) bool { return strings.Contains(c.Body, r.ID) }, wait)
	if err != nil {
		t.Fatalf("no evidence comment on SEC-201: %v", err)
	}
	mustContain(t, "the Jira evidence", c.Body, harness.PaymentsDB, harness.KVMount+"/"+path, "completed",
		"Started by Slack user "+harness.Alice.Slack, "1 replaced by 2", "check-and-set against version 1",
		"Staging verified by Slack user "+harness.Bob.Slack+" at "+r.StagingAt.Format("2006-01-02 15:04"),
		"Production verified by Slack user "+harness.Sam.Slack+" at "+r.ProductionAt.Format("2006-01-02 15:04"),
		"Previous version 1 destroyed")

	// Every step is an audit event.
	for _, a := range []string{"rotation.started", "rotation.thread_posted", "rotation.staging_verified",
		"rotation.production_verified", "rotation.previous_retired", "rotation.completed"} {
		if len(w.secretEvents(a, harness.PaymentsDB)) == 0 {
			t.Errorf("no audit event %s", a)
		}
	}
}

func TestR03_ProvidedValueOnlyInVault(t *testing.T) {
	w := startR(t, "R03", harness.Rotation{}, harness.Options{})
	path := harness.StripeKeyPath
	w.AddApprovedTicket("SEC-301", harness.Alice, harness.StripeKey, ticketExpiry())
	value := "sk_live_" + randToken(24)

	// The value is asked for in a modal, never in the channel.
	url := w.ask(harness.Alice, "rotate "+harness.StripeKey+" --ticket SEC-301")
	v := w.modal(harness.Alice, "rotate_value_modal")
	if !strings.Contains(string(v.Blocks), `"block_id":"value"`) {
		t.Errorf("the modal has no value block: %s", v.Blocks)
	}
	env, a := w.submitEnv(harness.Alice, v, map[string]string{"value": value})
	if a.ResponseAction != "" || len(a.Errors) != 0 {
		t.Fatalf("the value was refused: %+v", a)
	}
	r := w.waitRotation(harness.StripeKey, "recorded with its thread", func(r rotationRow) bool { return r.To > 0 && r.ThreadTS != "" })
	if r.From != 1 || r.To != 2 {
		t.Fatalf("stored rotation %+v, want version 1 → 2", r)
	}
	if got, _ := w.kvValue(path, 2); got != value {
		t.Fatalf("Vault version 2 does not hold the pasted value")
	}
	if ws := w.hook.kvWrites(path); len(ws) != 1 || ws[0].CAS != 1 {
		t.Errorf("the bot's writes %+v, want one with check-and-set 1", ws)
	}

	// The rollout to its end, so every message it owes is sent.
	w.confirm(harness.Bob, r.ID, "rotation_staging")
	w.confirm(harness.Sam, r.ID, "rotation_production")
	w.waitRotation(harness.StripeKey, "completed", func(r rotationRow) bool { return r.State == "completed" })
	w.waitSecurity("completion notice", ":lock:", r.ID)
	if _, err := w.Jira.WaitComment("SEC-301", func(c fakejira.Comment) bool { return strings.Contains(c.Body, r.ID) }, wait); err != nil {
		t.Errorf("no evidence on SEC-301: %v", err)
	}
	w.reply(harness.Alice, "inventory", "Secret inventory")
	w.settled()
	if got, _ := w.kvValue(path, 0); got != value || !w.kv(path).Versions[1].Destroyed {
		t.Errorf("after completion Vault does not hold the pasted value as current with version 1 destroyed")
	}
	if err := w.Stop(); err != nil {
		t.Logf("stop: %v", err)
	}

	// Nowhere else: logs, database (every table, raw files), audit, Slack
	// (messages, responses, views, calls, files, acks), Jira, PagerDuty.
	texts := w.everything(env)
	if len(w.Slack.Responses(url)) == 0 && !strings.Contains(texts["bot output"], "rotation: started") {
		t.Fatalf("the scan has nothing to look at")
	}
	if leaks := findLeaks([]string{value}, texts); len(leaks) > 0 {
		t.Errorf("the pasted value leaked:\n%s", strings.Join(leaks, "\n"))
	}
}

func TestR04_RollBackMakesPreviousValueCurrent(t *testing.T) {
	w := startR(t, "R04", harness.Rotation{}, harness.Options{})
	path := harness.PaymentsDBPath
	w.AddApprovedTicket("SEC-401", harness.Alice, harness.PaymentsDB, ticketExpiry())

	r, _ := w.startRotation(harness.Alice, harness.PaymentsDB, "--ticket SEC-401")
	v2, _ := w.kvValue(path, 2)
	w.confirm(harness.Bob, r.ID, "rotation_staging")
	w.waitRotation(harness.PaymentsDB, "in production", func(r rotationRow) bool { return r.State == "production" })

	// Roll back during the rollout (staging verified, production not yet).
	w.confirm(harness.Sam, r.ID, "rotation_rollback")
	r = w.waitRotation(harness.PaymentsDB, "rolled back", func(r rotationRow) bool { return r.State == "rolled-back" })
	if r.RolledBackBy != harness.Sam.Slack || r.RollbackVersion != 3 || r.CompletedAt.IsZero() {
		t.Errorf("stored rotation %+v: want rolled back by Sam as version 3", r)
	}

	// The previous value is current again (as a new version, written with
	// check-and-set against the rotation's version); nothing was destroyed.
	kv := w.kv(path)
	cur, _ := w.kvValue(path, 0)
	if kv.Current != 3 || cur != w.initial[harness.PaymentsDB] {
		t.Errorf("Vault is at version %d; the current value is the previous one: %v", kv.Current, cur == w.initial[harness.PaymentsDB])
	}
	if v1, ok := w.kvValue(path, 1); !ok || v1 != w.initial[harness.PaymentsDB] {
		t.Errorf("version 1 is gone after a roll back")
	}
	if got, ok := w.kvValue(path, 2); !ok || got != v2 {
		t.Errorf("the abandoned version 2 changed")
	}
	if ws := w.hook.kvWrites(path); len(ws) != 2 || ws[1].CAS != 2 || ws[1].Status != 200 {
		t.Errorf("the bot's writes %+v, want the rotation's and the roll back's (check-and-set 2)", ws)
	}

	// Recorded as rolled back: the registry's last rotation is unchanged,
	// the thread and the ticket say so, the buttons are gone.
	if s, _ := w.secretRow(harness.PaymentsDB); !s.LastRotatedAt.IsZero() || s.LastVersion != 0 || s.LastTicket != "" {
		t.Errorf("the registry records a rotation that was rolled back: %+v", s)
	}
	w.waitSecurity("roll back notice", ":leftwards_arrow_with_hook:", r.ID, "<@"+harness.Sam.Slack+">", "version 1", "version 3")
	if !until(wait, func() bool {
		root, _ := w.Slack.Message(r.ThreadChannel, r.ThreadTS)
		return strings.Contains(root.Text, "rolled back") && len(fakeslack.ActionIDs(root.Blocks)) == 0
	}) {
		root, _ := w.Slack.Message(r.ThreadChannel, r.ThreadTS)
		t.Errorf("the thread root does not say rolled back without buttons: %s %v", root.Text, fakeslack.ActionIDs(root.Blocks))
	}
	if _, err := w.Jira.WaitComment("SEC-401", func(c fakejira.Comment) bool {
		return strings.Contains(c.Body, r.ID) && strings.Contains(c.Body, "rolled back")
	}, wait); err != nil {
		t.Errorf("no roll back comment on SEC-401: %v", err)
	}
	w.waitSecretEvent("rotation.rolled_back", harness.PaymentsDB)
	if n := len(w.secretEvents("rotation.completed", harness.PaymentsDB)); n != 0 {
		t.Errorf("%d completion events for a rolled back rotation", n)
	}
}

func TestR05_ConcurrentWriteDetectedNothingOverwritten(t *testing.T) {
	w := startR(t, "R05", harness.Rotation{}, harness.Options{})
	path := harness.PaymentsDBPath
	w.AddApprovedTicket("SEC-501", harness.Alice, harness.PaymentsDB, ticketExpiry())

	// Someone writes the secret (as root) right after the bot read its
	// version and before the bot writes: the hook runs once Vault has
	// answered the bot's metadata read and before the bot gets the answer.
	rogue := "written-by-someone-else-" + randToken(8)
	var once sync.Once
	wrote := make(chan int, 1)
	w.hook.setAfter(func(method, p string) {
		if method == http.MethodGet && p == "/v1/"+harness.KVMount+"/metadata/"+path {
			once.Do(func() {
				s, err := w.kvClient().Put(context.Background(), path, map[string]any{"value": rogue})
				if err != nil {
					t.Errorf("the concurrent write failed: %v", err)
					wrote <- 0
					return
				}
				wrote <- s.VersionMetadata.Version
			})
		}
	})
	ans := w.reply(harness.Alice, "rotate "+harness.PaymentsDB+" --ticket SEC-501", "Concurrent write")
	w.hook.setAfter(nil)
	select {
	case v := <-wrote:
		if v != 2 {
			t.Fatalf("the concurrent write made version %d, want 2", v)
		}
	default:
		t.Fatal("the bot rotated without reading the secret's version first")
	}

	// Reported to the operator, in the security channel and the audit log.
	mustContain(t, "the answer", ans.Text, "after the bot read version 1", "version 2", "nothing was overwritten")
	w.waitSecurity("failure notice", ":x:", "`"+harness.PaymentsDB+"`", "failed", "someone else wrote")
	ev := w.waitSecretEvent("rotation.cas_conflict", harness.PaymentsDB)
	if ev.actor != harness.Alice.Slack || !strings.Contains(ev.reason, "nothing was overwritten") {
		t.Errorf("the conflict event %+v", ev)
	}
	r := w.waitRotation(harness.PaymentsDB, "failed", func(r rotationRow) bool { return r.State == "failed" })
	if r.To != 0 || r.From != 1 || !strings.Contains(r.LastError, "someone else wrote") {
		t.Errorf("stored rotation %+v: want failed from version 1, nothing written", r)
	}

	// Nothing overwritten: the bot's one write was refused by check-and-set;
	// the concurrent writer's version is current, version 1 untouched.
	ws := w.hook.kvWrites(path)
	if len(ws) != 1 || ws[0].CAS != 1 || ws[0].Status != http.StatusBadRequest {
		t.Errorf("the bot's writes %+v, want one with check-and-set 1, refused", ws)
	}
	kv := w.kv(path)
	cur, _ := w.kvValue(path, 0)
	v1, ok1 := w.kvValue(path, 1)
	if kv.Current != 2 || len(kv.Versions) != 2 || cur != rogue || !ok1 || v1 != w.initial[harness.PaymentsDB] {
		t.Errorf("Vault: current %d, %d versions, current value the concurrent one: %v, version 1 intact: %v",
			kv.Current, len(kv.Versions), cur == rogue, ok1 && v1 == w.initial[harness.PaymentsDB])
	}
	w.settled()
	for _, m := range w.inSecurity(r.ID) {
		if len(fakeslack.ActionIDs(m.Blocks)) > 0 {
			t.Errorf("a rollout thread with buttons was posted for the failed rotation: %s", m.Text)
		}
	}
}

func TestR06_RefusalsOutsiderUnknownSecretBadTicket(t *testing.T) {
	w := startR(t, "R06", harness.Rotation{}, harness.Options{})
	w.AddApprovedTicket("SEC-601", harness.Alice, harness.PaymentsDB, ticketExpiry())
	w.addTicket("SEC-602", harness.Alice, harness.PaymentsDB, "Waiting for approval")
	w.Jira.SetApprovals("SEC-602", fakejira.Approval{Name: "Security Lead approval", FinalDecision: "pending",
		Approvers: []fakejira.Approver{{User: fakejira.User{AccountID: harness.Sam.Jira, Name: harness.Sam.Name}, Decision: "pending"}}})

	// Outside Platform Security (a plain member, an SRE), with a good ticket.
	for _, p := range []harness.Person{harness.Eve, harness.Carol} {
		a := w.reply(p, "rotate "+harness.PaymentsDB+" --ticket SEC-601", "Only Platform Security")
		mustContain(t, "the refusal to "+p.Name, a.Text, "rotate secrets", "@"+harness.PlatformSecurityGroup)
		if es := w.secretEvents("rotation.refused", harness.PaymentsDB); len(es) == 0 || es[len(es)-1].actor != p.Slack {
			t.Errorf("the refusal to %s is not audited", p.Name)
		}
	}
	// Unknown secret.
	a := w.reply(harness.Alice, "rotate no-such-secret --ticket SEC-601", "no-such-secret")
	mustContain(t, "the unknown-secret refusal", a.Text, "there is no secret `no-such-secret` in the inventory", "inventory")
	// Bad tickets: none, one that does not exist, one not approved, another project's.
	for _, c := range []struct{ args, want string }{
		{"", "needs its Jira ticket"},
		{"--ticket SEC-999", "`SEC-999` does not exist"},
		{"--ticket SEC-602", "the ticket does not allow this"},
		{"--ticket OPS-7", "OPS-7"},
	} {
		a := w.reply(harness.Alice, "rotate "+harness.PaymentsDB+" "+c.args, c.want)
		if strings.Contains(a.Text, "started") {
			t.Errorf("rotate %s: %s", c.args, a.Text)
		}
	}
	w.settled()

	// Nothing was rotated: no rotation, no write, Vault unchanged.
	if rs := w.rotations(); len(rs) != 0 {
		t.Errorf("refused rotations were stored: %+v", rs)
	}
	if ws := w.hook.kvWrites(harness.PaymentsDBPath); len(ws) != 0 {
		t.Errorf("the bot wrote the secret: %+v", ws)
	}
	if kv := w.kv(harness.PaymentsDBPath); kv.Current != 1 || len(kv.Versions) != 1 {
		t.Errorf("Vault changed: current %d, %d versions", kv.Current, len(kv.Versions))
	}
	// Every refusal is audited (the unknown secret by the handler, as
	// rotate.refused, since no registry entry is involved).
	es := w.secretEvents("rotation.refused", "")
	for _, e := range w.secretEvents("rotate.refused", "") {
		if strings.Contains(e.reason, "no-such-secret") && e.actor == harness.Alice.Slack {
			es = append(es, e)
		}
	}
	if len(es) != 7 {
		var got []string
		for _, e := range es {
			got = append(got, e.actor+" "+e.secret+": "+e.reason)
		}
		t.Errorf("%d refusal events, want one per refusal (7):\n%s", len(es), strings.Join(got, "\n"))
	}
}

func TestR07_EmergencyRotationAlertsCommanderAndReviewJournaled(t *testing.T) {
	w := startR(t, "R07", harness.Rotation{}, harness.Options{})

	r, root := w.startRotation(harness.Alice, harness.PaymentsDB, "--emergency --incident "+harness.OpenIncident)
	if !r.Emergency || r.Incident != harness.OpenIncident || r.Commander != harness.Carol.Slack || r.Ticket != "" {
		t.Errorf("stored rotation %+v: want an emergency for %s, commander Carol", r, harness.OpenIncident)
	}
	// The alert in the security channel mentions the incident's assignee
	// (Carol, found in Slack by her PagerDuty e-mail).
	if root.Channel != harness.SecurityChannel {
		t.Errorf("the alert went to %s", root.Channel)
	}
	mustContain(t, "the emergency alert", root.Text, "Emergency rotation", r.ID, "`"+harness.PaymentsDB+"`",
		"Incident `"+harness.OpenIncident+"`", "incident commander <@"+harness.Carol.Slack+">")
	if _, err := w.Slack.WaitCall("users.lookupByEmail", func(c fakeslack.Call) bool { return c.Param("email") == harness.Carol.Email }, wait); err != nil {
		t.Errorf("the commander was not looked up by e-mail: %v", err)
	}
	if kv := w.kv(harness.PaymentsDBPath); kv.Current != 2 {
		t.Errorf("Vault at version %d, want 2", kv.Current)
	}

	// The same rollout steps, then the post-incident review in the thread.
	w.confirm(harness.Bob, r.ID, "rotation_staging")
	w.confirm(harness.Sam, r.ID, "rotation_production")
	r = w.waitRotation(harness.PaymentsDB, "completed", func(r rotationRow) bool { return r.State == "completed" })
	if !w.kv(harness.PaymentsDBPath).Versions[1].Destroyed {
		t.Errorf("version 1 is not destroyed after the emergency rotation")
	}
	var prompt fakeslack.Message
	if !until(wait, func() bool {
		for _, m := range w.inSecurity("Post-incident review", r.ID, "rotation_review") {
			if m.ThreadTS == r.ThreadTS {
				prompt = m
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no post-incident review prompt in the rotation's thread; messages naming %s: %d", r.ID, len(w.inSecurity(r.ID)))
	}
	w.click(harness.Alice, prompt, "rotation_review")
	v := w.modal(harness.Alice, "incident_review_modal")
	fields := map[string]string{
		"cause":        "payments-db password pasted in a public CI log",
		"blast_radius": "read access to the payments ledger for 40 minutes",
		"follow_ups":   "mask secrets in CI output; rotate the CI token",
	}
	if a := w.submit(harness.Alice, v, fields); a.ResponseAction != "" || len(a.Errors) != 0 {
		t.Fatalf("the review was refused: %+v", a)
	}

	// Kept in the journal, listed by /secrets journal.
	var j journalRow
	if !until(wait, func() bool {
		js := w.journal("post-incident")
		if len(js) == 1 {
			j = js[0]
		}
		return len(js) == 1
	}) {
		t.Fatalf("the review is not in the journal: %+v", w.journal(""))
	}
	if j.Rotation != r.ID || j.Author != harness.Alice.Slack || j.Fields["cause"] != fields["cause"] ||
		j.Fields["blast_radius"] != fields["blast_radius"] || j.Fields["follow_ups"] != fields["follow_ups"] ||
		j.Fields["incident"] != harness.OpenIncident || j.Fields["secret"] != harness.PaymentsDB {
		t.Errorf("journal entry %+v", j)
	}
	list := w.reply(harness.Alice, "journal", "journal")
	mustContain(t, "the journal", list.Text, j.ID, "post-incident")
	w.waitSecretEvent("rotation.review_saved", harness.PaymentsDB)
}
