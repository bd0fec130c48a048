package e2e

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakejira"
	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

// Inventory scenarios of issue 4: R01 (register), R12 (CSV export), R14
// (provisioning).

const day = 24 * time.Hour

// inventoryLine returns the line of the inventory text naming secret.
func inventoryLine(t *testing.T, text, secret string) string {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "`"+secret+"`") {
			return l
		}
	}
	t.Fatalf("the inventory does not list %s:\n%s", secret, text)
	return ""
}

// inventoryOrder returns the secrets the inventory text lists, in order.
func inventoryOrder(text string, names ...string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, n := range names {
			if strings.Contains(l, "`"+n+"`") {
				out = append(out, n)
			}
		}
	}
	return out
}

func TestR01_RegisterInventoryAndCustomMetadata(t *testing.T) {
	w := startR(t, "R01", harness.Rotation{}, harness.Options{})
	const name, path = "search-api", "platform/search-api"
	w.kvPut(path, "search-api-key-"+randToken(8))

	w.ask(harness.Alice, "register")
	v := w.modal(harness.Alice, "register_modal")
	before := time.Now()
	a := w.submit(harness.Alice, v, map[string]string{
		"name": name, "environment": "staging", "owner_team": "search", "owner_contact": harness.Paula.Slack,
		"path": path, "interval": "30d", "length": "", "alphabet": "", "provided": "",
	})
	if a.ResponseAction != "" || len(a.Errors) != 0 {
		t.Fatalf("the register form was refused: %+v", a)
	}
	w.waitSecurity("registration notice", ":card_index:", "`"+name+"`", "registered")
	after := time.Now()

	// The registry entry.
	s, ok := w.secretRow(name)
	if !ok {
		t.Fatal("the secret is not in the registry")
	}
	if s.Environment != "staging" || s.Team != "search" || s.Contact != harness.Paula.Slack || s.Mount != harness.KVMount ||
		s.Path != path || s.Interval != 30*day || s.Source != "registered" || s.LastVersion != 1 {
		t.Errorf("registry entry %+v", s)
	}
	if s.CreatedAt.Before(before) || s.CreatedAt.After(after) {
		t.Errorf("registered at %v, not between the submission (%v) and its notice (%v)", s.CreatedAt, before, after)
	}
	due := s.due()

	// The inventory lists it with that due date, sorted by due date (30d
	// before the configured 90d secrets).
	inv := w.reply(harness.Alice, "inventory", "Secret inventory")
	line := inventoryLine(t, inv.Text, name)
	mustContain(t, "the inventory line", line, "(staging)", "owner search", "<@"+harness.Paula.Slack+">", "due "+dayOf(due))
	if got := inventoryOrder(inv.Text, name, harness.PaymentsDB, harness.StripeKey); len(got) != 3 || got[0] != name {
		t.Errorf("inventory order %v, want %s first (due soonest)", got, name)
	}

	// Vault's custom_metadata carries the same fields.
	w.checkMetadata(name)
	md := w.kv(path).Custom
	for k, want := range map[string]string{"owner_team": "search", "owner_contact": harness.Paula.Slack,
		"environment": "staging", "interval": "30d", "rotation_due": due.Format(time.RFC3339)} {
		if md[k] != want {
			t.Errorf("custom_metadata %s = %q, want %q", k, md[k], want)
		}
	}
	w.waitSecretEvent("secret.registered", name)
}

func TestR12_ExportCSVOneRowPerSecret(t *testing.T) {
	secrets := []harness.InventorySecret{harness.PaymentsDBSecret(), harness.StripeKeySecret(),
		{Name: "ledger-token", Environment: "staging", Team: "ledger", Contact: harness.Eve.Slack, Path: "platform/ledger-token", Interval: "30d"},
		{Name: "search-api", Environment: "prod", Team: "search", Contact: harness.Dave.Slack, Path: "platform/search-api", Interval: "7d"}}
	began := time.Now()
	w := startR(t, "R12", harness.Rotation{Secrets: secrets}, harness.Options{})
	ready := time.Now()

	w.reply(harness.Alice, "inventory --export", "as a direct message")
	f, err := w.Slack.WaitFile(func(f fakeslack.File) bool { return strings.HasSuffix(f.Name, ".csv") }, wait)
	if err != nil {
		t.Fatalf("no CSV shared: %v", err)
	}
	if f.User != harness.Alice.Slack || !f.Uploaded || len(f.Data) != f.Length {
		t.Errorf("the CSV went to %q (channel %s), uploaded %v, %d of %d bytes; want Alice's DM, complete",
			f.User, f.Channel, f.Uploaded, len(f.Data), f.Length)
	}
	recs, err := csv.NewReader(bytes.NewReader(f.Data)).ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV: %v\n%s", err, f.Data)
	}
	header := []string{"name", "environment", "owner", "rotationDue", "interval", "lastRotatedAt", "lastOperator",
		"lastTicket", "lastVersion", "path"}
	if len(recs) == 0 || strings.Join(recs[0], ",") != strings.Join(header, ",") {
		t.Fatalf("CSV header %v, want %v", recs[0], header)
	}
	rows := map[string][]string{}
	var order []string
	for _, r := range recs[1:] {
		if len(r) != len(header) {
			t.Fatalf("row %v has %d fields", r, len(r))
		}
		if _, dup := rows[r[0]]; dup {
			t.Errorf("%s has two rows", r[0])
		}
		rows[r[0]] = r
		order = append(order, r[0])
	}
	if len(rows) != len(secrets) {
		t.Errorf("%d rows (%v), want one per secret (%d)", len(rows), order, len(secrets))
	}
	// Sorted by due date: search-api (7d), ledger-token (30d), then the 90d ones by name.
	if want := []string{"search-api", "ledger-token", harness.PaymentsDB, harness.StripeKey}; strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("row order %v, want %v (by due date)", order, want)
	}
	for _, sec := range secrets {
		r, ok := rows[sec.Name]
		if !ok {
			t.Errorf("no row for %s", sec.Name)
			continue
		}
		s, _ := w.secretRow(sec.Name)
		due, err := time.Parse(time.RFC3339, r[3])
		if err != nil {
			t.Errorf("%s: rotationDue %q is not RFC 3339: %v", sec.Name, r[3], err)
			continue
		}
		// Never rotated: due = entry into the registry (at start) + interval.
		if !due.Equal(s.due().Truncate(time.Second)) || due.Before(began.Add(s.Interval).Truncate(time.Second)) ||
			due.After(ready.Add(s.Interval)) {
			t.Errorf("%s: rotationDue %s, want %s (registered at start + %s)", sec.Name, r[3], s.due().Format(time.RFC3339), sec.Interval)
		}
		// Never rotated by the bot: no last rotation (the registry's version, 0).
		want := []string{sec.Name, sec.Environment, sec.Team, r[3], sec.Interval, "", "", "", strconv.Itoa(s.LastVersion),
			harness.KVMount + "/" + sec.Path}
		if strings.Join(r, ",") != strings.Join(want, ",") {
			t.Errorf("row %v, want %v", r, want)
		}
	}
	if len(w.secretEvents("secret.inventory_exported", "")) != 1 {
		t.Errorf("the export is not audited once")
	}
}

// provisionValues is the provision form for secret name under ticket.
func provisionValues(name, path, ticket string) map[string]string {
	return map[string]string{
		"name": name, "environment": "prod", "owner_team": "payments", "owner_contact": harness.Paula.Slack,
		"path": path, "interval": "60d", "length": "40", "alphabet": "A-Za-z0-9", "provided": "", "ticket": ticket,
	}
}

func TestR14_ProvisionRefusedWithoutJustificationThenCreated(t *testing.T) {
	w := startR(t, "R14", harness.Rotation{}, harness.Options{})
	const name, path = "payouts-api", "platform/payouts-api"

	// A ticket approved by Sam but without its justification.
	w.AddApprovedTicket("SEC-1401", harness.Alice, name, ticketExpiry())
	w.Jira.AddIssue(fakejira.Issue{Key: "SEC-1402", Summary: name + " for alice", Reporter: fakejira.User{AccountID: harness.Alice.Jira,
		Name: harness.Alice.Name, DisplayName: harness.Alice.Name, Email: harness.Alice.Email},
		Fields: map[string]any{harness.FieldOwner: harness.Alice.Email, harness.FieldScope: name,
			harness.FieldExpiry: ticketExpiry().Format("2006-01-02")}})
	at := time.Now().Add(-10 * time.Minute)
	sam := fakejira.User{AccountID: harness.Sam.Jira, Name: harness.Sam.Name, DisplayName: harness.Sam.Name, Email: harness.Sam.Email}
	w.Jira.Transition("SEC-1402", "Approved", "done", sam, at)
	w.Jira.SetApprovals("SEC-1402", fakejira.Approval{Name: "Security Lead approval", FinalDecision: "approved", Completed: at,
		Approvers: []fakejira.Approver{{User: sam, Decision: "approved"}}})

	w.ask(harness.Alice, "provision")
	v := w.modal(harness.Alice, "provision_modal")
	if a := w.submit(harness.Alice, v, provisionValues(name, path, "SEC-1402")); a.ResponseAction != "" || len(a.Errors) != 0 {
		t.Fatalf("the provision form was refused at once: %+v", a)
	}
	refusal := w.dm(harness.Alice, "SEC-1402")
	mustContain(t, "the refusal", strings.ToLower(refusal.Text), "justification")
	w.waitSecretEvent("secret.provision_refused", name)
	if w.kvExists(path) {
		t.Errorf("a secret was written at %s for a ticket without justification", path)
	}
	if _, ok := w.secretRow(name); ok {
		t.Errorf("%s was registered for a ticket without justification", name)
	}

	// With the good ticket: the secret exists in Vault with its metadata,
	// and the inventory lists it.
	before := time.Now()
	if a := w.submit(harness.Alice, v, provisionValues(name, path, "SEC-1401")); a.ResponseAction != "" || len(a.Errors) != 0 {
		t.Fatalf("the provision form was refused: %+v", a)
	}
	w.waitSecurity("provisioning notice", ":seedling:", "`"+name+"`", "SEC-1401")
	kv := w.kv(path)
	if kv.Current != 1 || len(kv.Versions) != 1 {
		t.Fatalf("Vault at %s: current version %d, %d versions; want exactly version 1", path, kv.Current, len(kv.Versions))
	}
	if val, ok := w.kvValue(path, 1); !ok || len(val) != 40 || strings.Trim(val, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
		t.Errorf("version 1 is not a generated 40-character A-Za-z0-9 value (%d characters)", len(val))
	}
	if w.hook.kvWrites(path)[0].CAS != 0 {
		t.Errorf("the first version was not written with check-and-set 0: %+v", w.hook.kvWrites(path))
	}
	s, ok := w.secretRow(name)
	if !ok || s.Source != "registered" || s.LastOperator != harness.Alice.Slack || s.LastTicket != "SEC-1401" || s.LastVersion != 1 ||
		s.LastRotatedAt.Before(before) || s.Interval != 60*day || s.Contact != harness.Paula.Slack {
		t.Errorf("registry entry %+v", s)
	}
	w.checkMetadata(name)
	md := kv.Custom
	if md["owner_team"] != "payments" || md["environment"] != "prod" || md["last_ticket"] != "SEC-1401" {
		t.Errorf("custom_metadata %v", md)
	}
	inv := w.reply(harness.Alice, "inventory", "Secret inventory")
	mustContain(t, "the inventory line", inventoryLine(t, inv.Text, name), "(prod)", "owner payments", "due "+dayOf(s.due()), "(v1)")
	if _, err := w.Jira.WaitComment("SEC-1401", func(c fakejira.Comment) bool { return strings.Contains(c.Body, name) }, wait); err != nil {
		t.Errorf("no provisioning comment on SEC-1401: %v", err)
	}
	w.waitSecretEvent("secret.provisioned", name)
}
