package rotation_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/rotation"
)

func TestSyncConfig(t *testing.T) {
	e := newEnv(t)
	s, ok := e.store.Secret("payments-db")
	if !ok || s.Source != rotation.SourceConfig || !s.CreatedAt.Equal(t0) || s.Interval != 90*day || s.Generate.Length != 32 {
		t.Fatalf("synced: %+v", s)
	}
	st, _ := e.store.Secret("stripe-api-key")
	if !st.Provided || st.Generate != (rotation.Generate{}) {
		t.Errorf("provided entry: %+v", st)
	}
	if md := e.kv.Custom("kv", "payments/db"); md["owner_team"] != "payments" || md["owner_contact"] != "UPAM" ||
		md["environment"] != "prod" || md["interval"] != "90d" || md["rotation_due"] != t0.Add(90*day).Format(time.RFC3339) || md["last_rotated_at"] != rotation.MetaNone {
		t.Errorf("mirror: %v", md)
	}
	if n := countAction(e, rotation.ActSynced); n != 3 {
		t.Errorf("%d sync events", n)
	}
	// Again: nothing changes.
	if err := e.svc.SyncConfig(e.ctx); err != nil {
		t.Fatal(err)
	}
	if n := countAction(e, rotation.ActSynced); n != 3 {
		t.Errorf("%d sync events after a second sync", n)
	}
	// A rotated entry keeps its last rotation when the file changes.
	r := e.mustStart(sec, "payments-db", "SEC-100", "")
	e.mustConfirm(sec, r.ID, "staging")
	e.mustConfirm(sec, r.ID, "production")
	e.svc.Config.Inventory.Secrets[0].Owner.Team = "payments-core"
	if err := e.svc.SyncConfig(e.ctx); err != nil {
		t.Fatal(err)
	}
	s, _ = e.store.Secret("payments-db")
	if s.OwnerTeam != "payments-core" || s.LastVersion != 2 || s.LastTicket != "SEC-100" {
		t.Errorf("after a file change: %+v", s)
	}
	if md := e.kv.Custom("kv", "payments/db"); md["owner_team"] != "payments-core" {
		t.Errorf("mirror not updated: %v", md)
	}
}

func newSecret() rotation.Secret {
	return rotation.Secret{Name: "Billing-Webhook ", Environment: "prod", OwnerTeam: "billing", OwnerContact: "UPAM",
		Path: "/billing/webhook/"}
}

func TestRegister(t *testing.T) {
	e := newEnv(t)
	e.kv.Seed("kv", "billing/webhook", "WEBHOOKvalue1", "WEBHOOKvalue2")
	e.clock.Advance(day)
	_, err := e.svc.Register(e.ctx, ana, newSecret())
	userErr(t, e.keep(err), "Only Platform Security")

	bad := newSecret()
	bad.OwnerContact = "pam"
	_, err = e.svc.Register(e.ctx, sec, bad)
	if ue := userErr(t, e.keep(err), "Slack member"); ue.Field != "owner_contact" || !ue.Audited {
		t.Errorf("%+v", ue)
	}
	missing := newSecret()
	missing.Path = "billing/nothing-here"
	_, err = e.svc.Register(e.ctx, sec, missing)
	if ue := userErr(t, e.keep(err), "no secret at", "provision"); ue.Field != "path" {
		t.Errorf("field %q", ue.Field)
	}

	got, err := e.svc.Register(e.ctx, sec, newSecret())
	if err != nil {
		t.Fatal(e.keep(err))
	}
	if got.Name != "billing-webhook" || got.Mount != "kv" || got.Path != "billing/webhook" || got.Interval != 90*day ||
		got.Generate.Length != 32 || got.LastVersion != 2 || got.Source != rotation.SourceRegistered {
		t.Fatalf("registered: %+v", got)
	}
	items, _ := e.svc.Inventory(e.ctx, rotation.Filter{})
	found := false
	for _, it := range items {
		if it.Name == "billing-webhook" {
			found = true
			if !it.Due.Equal(t0.Add(day).Add(90 * day)) {
				t.Errorf("due %s", it.Due)
			}
		}
	}
	if !found {
		t.Error("not in the inventory")
	}
	md := e.kv.Custom("kv", "billing/webhook")
	if md["rotation_due"] != t0.Add(91*day).Format(time.RFC3339) || md["owner_team"] != "billing" {
		t.Errorf("mirror: %v", md)
	}
	if !hasAction(e, rotation.ActRegistered) || len(posts(e, "registered")) != 1 {
		t.Errorf("not audited or announced: %v", e.store.Actions())
	}
	// Same name, or same path, again.
	_, err = e.svc.Register(e.ctx, sec, newSecret())
	userErr(t, e.keep(err), "already in the inventory")
	other := newSecret()
	other.Name = "billing-hook-2"
	_, err = e.svc.Register(e.ctx, sec, other)
	userErr(t, e.keep(err), "already registered as `billing-webhook`")
}

func TestValidateSecret(t *testing.T) {
	cfg := e0(t)
	tests := []struct {
		mod   func(*rotation.Secret)
		field string
	}{
		{func(s *rotation.Secret) { s.Name = "1abc" }, "name"},
		{func(s *rotation.Secret) { s.Environment = "" }, "environment"},
		{func(s *rotation.Secret) { s.OwnerTeam = "x\u202ey" }, "owner_team"},
		{func(s *rotation.Secret) { s.Path = "a//b" }, "path"},
		{func(s *rotation.Secret) { s.Path = "../etc" }, ""},
		{func(s *rotation.Secret) { s.Mount = "k v" }, "mount"},
		{func(s *rotation.Secret) { s.Interval = time.Minute }, "interval"},
		{func(s *rotation.Secret) { s.Provided = true; s.Generate = rotation.Generate{Length: 20} }, "generate"},
		{func(s *rotation.Secret) { s.Generate = rotation.Generate{Length: 4} }, "generate"},
		{func(s *rotation.Secret) { s.Generate = rotation.Generate{Length: 20, Alphabet: "ab"} }, "generate"},
	}
	for i, tc := range tests {
		s := newSecret()
		tc.mod(&s)
		_, err := rotation.ValidateSecret(cfg, s)
		if tc.field == "" { // accepted as is ("..": a legal KV path segment)
			continue
		}
		ue, ok := rotation.IsUserError(err)
		if !ok || ue.Field != tc.field {
			t.Errorf("%d: got %v, want field %s", i, err, tc.field)
		}
	}
	ok, err := rotation.ValidateSecret(cfg, rotation.Secret{Name: "x-y", Environment: "prod", OwnerTeam: "t", OwnerContact: "U1AB", Path: "p", Provided: true})
	if err != nil || ok.Generate != (rotation.Generate{}) || ok.Mount != "kv" {
		t.Errorf("%+v %v", ok, err)
	}
}

func TestProvision(t *testing.T) {
	e := newEnv(t)
	ns := rotation.Secret{Name: "new-api-key", Environment: "prod", OwnerTeam: "payments", OwnerContact: "UPAM", Path: "new/api",
		Interval: 30 * day, Provided: true}
	// The ticket lacks its justification: refused, naming the field.
	f := provisionTicket("SEC-201", "new-api-key")
	f.Justification = ""
	e.jira.SetTicket(f)
	_, err := e.svc.Provision(e.ctx, sec, ns, "SEC-201", provided)
	ue := userErr(t, e.keep(err), "justification", "customfield_10003")
	if ue.Field != "ticket" || !ue.Audited {
		t.Errorf("%+v", ue)
	}
	if e.kv.Writes() != 0 {
		t.Fatal("Vault written on a refused ticket")
	}
	// The scope field must name the secret.
	e.jira.SetTicket(provisionTicket("SEC-202", "other-secret"))
	_, err = e.svc.Provision(e.ctx, sec, ns, "SEC-202", provided)
	userErr(t, e.keep(err), "scope field")
	// A provided secret needs its value; no ticket is refused.
	_, err = e.svc.Provision(e.ctx, sec, ns, "SEC-200", "")
	userErr(t, e.keep(err), "paste")
	_, err = e.svc.Provision(e.ctx, sec, ns, "", provided)
	userErr(t, e.keep(err), "owner, scope, justification and expiry")
	_, err = e.svc.Provision(e.ctx, ana, ns, "SEC-200", provided)
	userErr(t, e.keep(err), "Only Platform Security")

	got, err := e.svc.Provision(e.ctx, sec, ns, "SEC-200", provided)
	if err != nil {
		t.Fatal(e.keep(err))
	}
	if v, _ := e.kv.Value("kv", "new/api", 1); v != provided {
		t.Fatalf("Vault holds %q", v)
	}
	if got.LastVersion != 1 || got.LastTicket != "SEC-200" || got.LastOperator != sec.SlackID || !got.LastRotatedAt.Equal(t0) ||
		got.Source != rotation.SourceRegistered {
		t.Errorf("registered: %+v", got)
	}
	md := e.kv.Custom("kv", "new/api")
	if md["last_ticket"] != "SEC-200" || md["rotation_due"] != t0.Add(30*day).Format(time.RFC3339) || md["owner_contact"] != "UPAM" {
		t.Errorf("metadata: %v", md)
	}
	items, _ := e.svc.Inventory(e.ctx, rotation.Filter{})
	if items[0].Name != "new-api-key" { // due in 30 days: first
		t.Errorf("inventory: %v", items[0].Name)
	}
	if jc := e.store.MessagesOf(outbox.JiraComment); len(jc) != 1 || jc[0].Target != "SEC-200" || !strings.Contains(jc[0].Text, "provisioned") {
		t.Errorf("jira: %+v", jc)
	}
	if !hasAction(e, rotation.ActProvisioned) || len(posts(e, "provisioned")) != 1 {
		t.Errorf("not audited/announced")
	}
	// Never over an existing secret.
	e.kv.Seed("kv", "taken/path", "TAKENvalue")
	e.jira.SetTicket(provisionTicket("SEC-203", "gen-key"))
	gen := rotation.Secret{Name: "gen-key", Environment: "prod", OwnerTeam: "p", OwnerContact: "UPAM", Path: "taken/path"}
	_, err = e.svc.Provision(e.ctx, sec, gen, "SEC-203", "")
	userErr(t, e.keep(err), "already exists", "nothing was written")
	if v, _ := e.kv.Value("kv", "taken/path", 1); v != "TAKENvalue" {
		t.Error("overwritten")
	}
	// A generated one.
	gen.Path = "gen/key"
	g, err := e.svc.Provision(e.ctx, sec, gen, "SEC-203", "")
	if err != nil {
		t.Fatal(e.keep(err))
	}
	if v, _ := e.kv.Value("kv", "gen/key", 1); len(v) != 32 || g.LastVersion != 1 {
		t.Errorf("generated %q %+v", v, g)
	}
}

func TestInventoryFiltersSortsAndMarks(t *testing.T) {
	e := newEnv(t)
	// payments-db due t0+90d, stripe t0+30d, signing t0+180d.
	e.clock.Set(t0.Add(20 * day)) // stripe due in 10 days: due soon
	items, err := e.svc.Inventory(e.ctx, rotation.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range items {
		names = append(names, it.Name)
	}
	if strings.Join(names, ",") != "stripe-api-key,payments-db,platform-signing" {
		t.Fatalf("order %v", names)
	}
	if !items[0].DueSoon || items[0].Overdue || items[1].DueSoon || items[1].Overdue {
		t.Errorf("marks: %+v", items[:2])
	}
	e.clock.Set(t0.Add(95 * day))
	items, _ = e.svc.Inventory(e.ctx, rotation.Filter{Overdue: true})
	if len(items) != 2 || !items[0].Overdue || items[0].Name != "stripe-api-key" || items[1].Name != "payments-db" {
		t.Errorf("overdue: %+v", items)
	}
	items, _ = e.svc.Inventory(e.ctx, rotation.Filter{Env: "STAGING"})
	if len(items) != 1 || items[0].Name != "platform-signing" {
		t.Errorf("env: %+v", items)
	}
	items, _ = e.svc.Inventory(e.ctx, rotation.Filter{Owner: "payments", Overdue: true})
	if len(items) != 2 {
		t.Errorf("owner: %+v", items)
	}
	items, _ = e.svc.Inventory(e.ctx, rotation.Filter{Owner: "URAE"})
	if len(items) != 1 || items[0].Name != "platform-signing" {
		t.Errorf("owner contact: %+v", items)
	}
}

func TestExportCSV(t *testing.T) {
	e := newEnv(t)
	r := e.mustStart(sec, "payments-db", "SEC-100", "")
	e.mustConfirm(sec, r.ID, "staging")
	e.clock.Advance(time.Hour)
	e.mustConfirm(sec, r.ID, "production")
	e.store.PutSecret(rotation.Secret{Name: "evil", Environment: "=HYPERLINK(\"x\")", OwnerTeam: "@team", OwnerContact: "UPAM",
		Mount: "kv", Path: "evil", Interval: day, Source: rotation.SourceRegistered, Version: 1, CreatedAt: t0})
	b, err := e.svc.ExportCSV(e.ctx, sec, rotation.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "name,environment,owner,rotationDue,interval,lastRotatedAt,lastOperator,lastTicket,lastVersion,path" {
		t.Fatalf("header %v", rows[0])
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows", len(rows))
	}
	byName := map[string][]string{}
	for _, r := range rows[1:] {
		byName[r[0]] = r
	}
	done := t0.Add(time.Hour)
	if got := byName["payments-db"]; strings.Join(got, "|") != strings.Join([]string{"payments-db", "prod", "payments",
		done.Add(90 * day).Format(time.RFC3339), "90d", done.Format(time.RFC3339), "USEC", "SEC-100", "2", "kv/payments/db"}, "|") {
		t.Errorf("payments-db row %v", got)
	}
	if got := byName["stripe-api-key"]; got[3] != t0.Add(30*day).Format(time.RFC3339) || got[5] != "" || got[8] != "0" {
		t.Errorf("stripe row %v", got)
	}
	if got := byName["evil"]; got[1] != "'=HYPERLINK(\"x\")" || got[2] != "'@team" {
		t.Errorf("formula not defused: %v", got)
	}
	if !hasAction(e, rotation.ActExported) {
		t.Error("export not audited")
	}
}

func TestDrift(t *testing.T) {
	e := newEnv(t)
	d, err := e.svc.Drift(e.ctx)
	if err != nil || len(d) != 0 {
		t.Fatalf("drift right after sync: %+v %v", d, err)
	}
	_ = e.kv.PatchMetadata(e.ctx, "kv", "payments/db", map[string]string{"owner_team": "someone-else"})
	e.store.PutSecret(rotation.Secret{Name: "ghost", Environment: "prod", OwnerTeam: "x", OwnerContact: "UPAM", Mount: "kv",
		Path: "ghost", Interval: day, Source: rotation.SourceRegistered, Version: 1, CreatedAt: t0})
	d, err = e.svc.Drift(e.ctx)
	if err != nil || len(d) != 2 {
		t.Fatalf("%+v %v", d, err)
	}
	if d[0].Secret != "ghost" || !d[0].Missing || d[1].Secret != "payments-db" || d[1].Fields["owner_team"] != [2]string{"payments", "someone-else"} {
		t.Errorf("%+v", d)
	}
	if !hasAction(e, rotation.ActDrift) {
		t.Error("drift not audited")
	}
}

func TestMirrorFailureRetriedBySweep(t *testing.T) {
	e := newEnv(t)
	e.kv.SetErr(&e.kv.PatchErr, errBoom)
	r := e.mustStart(sec, "payments-db", "SEC-100", "")
	e.mustConfirm(sec, r.ID, "staging")
	e.mustConfirm(sec, r.ID, "production")
	if md := e.kv.Custom("kv", "payments/db"); md["last_ticket"] != rotation.MetaNone {
		t.Fatal("mirrored despite the failure")
	}
	if !hasAction(e, rotation.ActMetadataFailed) || !strings.Contains(e.store.Meta()["rotation.mirror_pending"], "payments-db") {
		t.Fatalf("not pending: %v %v", e.store.Actions(), e.store.Meta())
	}
	if err := e.svc.Sweep(e.ctx); err == nil {
		t.Error("sweep hid the failure")
	}
	e.kv.SetErr(&e.kv.PatchErr, nil)
	if err := e.svc.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	if md := e.kv.Custom("kv", "payments/db"); md["last_ticket"] != "SEC-100" {
		t.Errorf("not mirrored: %v", md)
	}
	if e.store.Meta()["rotation.mirror_pending"] != "" {
		t.Errorf("still pending: %v", e.store.Meta())
	}
}

var _ = access.Truncate
