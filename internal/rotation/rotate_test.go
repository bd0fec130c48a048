package rotation_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/rotation"
	"github.com/secretbot/secretbot/internal/rotation/rotationtest"
)

func TestRotateGeneratedFullFlow(t *testing.T) {
	e := newEnv(t)
	e.clock.Advance(10 * day)
	r := e.mustStart(sec, "payments-db", "sec-100", "")
	if r.State != rotation.StateStaging || r.FromVersion != 1 || r.ToVersion != 2 || r.Ticket != "SEC-100" || r.Operator != sec.SlackID {
		t.Fatalf("started: %+v", r)
	}
	v, ok := e.kv.Value("kv", "payments/db", 2)
	alphabet, _ := config.ExpandAlphabet("A-Za-z0-9")
	if !ok || len(v) != 32 || strings.Trim(v, alphabet) != "" || v == oldDB {
		t.Fatalf("new version: %q", v)
	}
	if got := e.store.MessagesOf(rotation.ThreadKind); len(got) != 1 || got[0].Target != r.ID {
		t.Fatalf("thread not queued: %+v", got)
	}

	// The deliverer posts the thread root, with its buttons.
	if err := e.svc.PostThread(e.ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.PostThread(e.ctx, r.ID); err != nil { // redelivery: nothing more
		t.Fatal(err)
	}
	sent := e.msgr.Sent()
	if len(sent) != 1 || sent[0].Target != "CSEC" || !strings.Contains(string(sent[0].Blocks), rotation.ActionStaging) ||
		!strings.Contains(string(sent[0].Blocks), rotation.ActionRollback) || strings.Contains(string(sent[0].Blocks), rotation.ActionProduction) {
		t.Fatalf("root: %+v", sent)
	}
	r, _ = e.store.Rotation(r.ID)
	if r.ThreadChannel != "CSEC" || r.ThreadTS == "" {
		t.Fatalf("thread not recorded: %+v", r)
	}

	// Production before staging is refused; a non-rotator is refused.
	_, err := e.confirm(sec, r.ID, "production")
	userErr(t, err, "Verify staging")
	_, err = e.confirm(ana, r.ID, "staging")
	userErr(t, err, "Only Platform Security")

	e.clock.Advance(time.Hour)
	r = e.mustConfirm(rae, r.ID, "staging")
	if r.State != rotation.StateProduction || r.StagingBy != rae.SlackID {
		t.Fatalf("after staging: %+v", r)
	}
	if m := posts(e, "Staging verified by <@URAE>"); len(m) != 1 || m[0].Thread != r.ThreadTS {
		t.Fatalf("staging reply: %+v", m)
	}
	_, err = e.confirm(sec, r.ID, "staging")
	userErr(t, err, "already verified by <@URAE>")

	e.clock.Advance(time.Hour)
	done := e.mustConfirm(sec, r.ID, "production")
	if done.State != rotation.StateCompleted || done.ProductionBy != sec.SlackID || !done.CompletedAt.Equal(e.clock.Now()) {
		t.Fatalf("after production: %+v", done)
	}
	if st := e.kv.VersionState("kv", "payments/db", 1); st != "destroyed" {
		t.Errorf("previous version is %s, want destroyed", st)
	}
	if st := e.kv.VersionState("kv", "payments/db", 2); st != "live" {
		t.Errorf("new version is %s", st)
	}
	s, _ := e.store.Secret("payments-db")
	if !s.LastRotatedAt.Equal(e.clock.Now()) || s.LastOperator != sec.SlackID || s.LastTicket != "SEC-100" || s.LastVersion != 2 {
		t.Errorf("registry: %+v", s)
	}
	if !s.Due().Equal(e.clock.Now().Add(90 * day)) {
		t.Errorf("due %s", s.Due())
	}
	md := e.kv.Custom("kv", "payments/db")
	if md[rotation.MetaLastTicket] != "SEC-100" || md[rotation.MetaLastOperator] != sec.SlackID ||
		md[rotation.MetaRotationDue] != s.Due().Format(time.RFC3339) || md[rotation.MetaOwnerTeam] != "payments" || md[rotation.MetaInterval] != "90d" {
		t.Errorf("metadata: %v", md)
	}
	if n := posts(e, "complete: version 1 → 2"); len(n) != 1 || n[0].Thread != "" || n[0].Target != "CSEC" {
		t.Errorf("completion notice: %+v", n)
	}
	jc := e.store.MessagesOf(outbox.JiraComment)
	if len(jc) != 1 || jc[0].Target != "SEC-100" {
		t.Fatalf("jira comment: %+v", jc)
	}
	for _, want := range []string{r.ID, "payments-db", "1 replaced by 2", "Staging verified by Slack user URAE", "Production verified by Slack user USEC",
		"Started by Slack user USEC", "Previous version 1 destroyed"} {
		if !strings.Contains(jc[0].Text, want) {
			t.Errorf("jira evidence lacks %q:\n%s", want, jc[0].Text)
		}
	}
	for _, a := range []string{rotation.ActStarted, rotation.ActThreadPosted, rotation.ActStagingVerified, rotation.ActProdVerified,
		rotation.ActPreviousRetired, rotation.ActCompleted} {
		if !hasAction(e, a) {
			t.Errorf("no %s audit event in %v", a, e.store.Actions())
		}
	}
	// The root was redrawn without buttons.
	ups := e.store.MessagesOf(outbox.Update)
	last := ups[len(ups)-1]
	if last.TS != r.ThreadTS || strings.Contains(string(last.Blocks), "rotation_") || !strings.Contains(last.Text, "completed") {
		t.Errorf("root update: %+v", last)
	}
	// A second click is refused, naming who verified.
	_, err = e.confirm(rae, r.ID, "production")
	userErr(t, err, "already complete", "<@USEC>")
	// Roll back after completion is refused.
	_, err = e.svc.RollBack(e.ctx, sec, r.ID)
	userErr(t, e.keep(err), "rotate again")
}

func TestRotateSoftDeleteWhenConfigured(t *testing.T) {
	e := newEnv(t)
	e.svc.Config.Rotation.PreviousVersion = config.PreviousDelete
	r := e.mustStart(sec, "payments-db", "SEC-100", "")
	e.mustConfirm(sec, r.ID, "staging")
	e.mustConfirm(sec, r.ID, "production")
	if st := e.kv.VersionState("kv", "payments/db", 1); st != "deleted" {
		t.Errorf("previous version is %s, want deleted", st)
	}
}

func TestRotateProvidedValueNeverLeaks(t *testing.T) {
	e := newEnv(t)
	// A provided secret needs its value.
	_, err := e.start(sec, "stripe-api-key", "SEC-100")
	if ue := userErr(t, err, "paste"); ue.Field != "value" {
		t.Errorf("field %q", ue.Field)
	}
	// A generated one takes none.
	_, err = e.svc.StartRotation(e.ctx, sec, "payments-db", "SEC-100", false, "", provided)
	userErr(t, e.keep(err), "generated by the bot")

	r := e.mustStart(sec, "stripe-api-key", "SEC-100", "  "+provided+"\n")
	if v, _ := e.kv.Value("kv", "payments/stripe", 2); v != provided {
		t.Fatalf("Vault holds %q", v)
	}
	if err := e.svc.PostThread(e.ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	e.mustConfirm(sec, r.ID, "staging")
	e.mustConfirm(rae, r.ID, "production")
	// assertNoValueLeaked (cleanup) scans store, outbox, sent messages, logs and errors.
}

func TestRotateConcurrentWriteDetected(t *testing.T) {
	e := newEnv(t)
	var once sync.Once
	e.kv.BeforeWrite = func(mount, path string) {
		once.Do(func() { e.kv.Seed(mount, path, "SOMEONEelsesVALUE") }) // version 2, between the read and the write
	}
	_, err := e.start(sec, "payments-db", "SEC-100")
	ue := userErr(t, err, "Concurrent write detected", "version 1", "version 2", "nothing was overwritten")
	if !ue.Audited {
		t.Error("not audited")
	}
	if v, _ := e.kv.Value("kv", "payments/db", 2); v != "SOMEONEelsesVALUE" {
		t.Errorf("version 2 is %q: overwritten", v)
	}
	if v, _ := e.kv.Value("kv", "payments/db", 1); v != oldDB {
		t.Errorf("version 1 is %q", v)
	}
	if _, ok := e.kv.Value("kv", "payments/db", 3); ok {
		t.Error("a third version was written")
	}
	rs := e.store.Rotations()
	if len(rs) != 1 || rs[0].State != rotation.StateFailed || !strings.Contains(rs[0].LastError, "nothing was overwritten") {
		t.Fatalf("rotation: %+v", rs)
	}
	if !hasAction(e, rotation.ActCASConflict) || len(posts(e, "Concurrent")) == 0 && len(posts(e, "someone else wrote")) == 0 {
		t.Errorf("not reported: %v", e.store.Actions())
	}
	if s, _ := e.store.Secret("payments-db"); !s.LastRotatedAt.IsZero() {
		t.Errorf("registry changed: %+v", s)
	}
	// The secret is free again: a new rotation goes from version 2.
	r := e.mustStart(sec, "payments-db", "SEC-100", "")
	if r.FromVersion != 2 || r.ToVersion != 3 {
		t.Errorf("next rotation: %+v", r)
	}
}

func TestRotateRefusals(t *testing.T) {
	e := newEnv(t)
	e.jira.SetTicket(access.TicketFacts{Key: "SEC-7", Project: "SEC", Status: "Open"})
	e.jira.SetTicket(access.TicketFacts{Key: "OPS-1", Project: "OPS", Status: "Approved"})
	self := rotationTicket("SEC-8")
	self.Approvals[0].Approvers = []access.JiraUser{{AccountID: rotationtest.JiraSec}}
	e.jira.SetTicket(self)
	tests := []struct {
		name   string
		who    func() (rotation.Rotation, error)
		want   []string
		field  string
		action string
	}{
		{"not platform security", func() (rotation.Rotation, error) { return e.start(ana, "payments-db", "SEC-100") },
			[]string{"Only Platform Security", "@platform-security"}, "", rotation.ActRotateRefused},
		{"guest", func() (rotation.Rotation, error) { return e.start(gus, "payments-db", "SEC-100") },
			[]string{"Guest accounts"}, "", rotation.ActRotateRefused},
		{"unknown secret", func() (rotation.Rotation, error) { return e.start(sec, "nope", "SEC-100") },
			[]string{"no secret", "inventory"}, "secret", rotation.ActRotateRefused},
		{"no ticket", func() (rotation.Rotation, error) { return e.start(sec, "payments-db", "") },
			[]string{"--ticket SEC-123"}, "ticket", rotation.ActRotateRefused},
		{"malformed ticket", func() (rotation.Rotation, error) { return e.start(sec, "payments-db", "SEC 1") },
			[]string{"not a ticket key of the SEC project"}, "ticket", rotation.ActRotateRefused},
		{"unknown ticket", func() (rotation.Rotation, error) { return e.start(sec, "payments-db", "SEC-999") },
			[]string{"SEC-999", "does not exist"}, "ticket", rotation.ActRotateRefused},
		{"unapproved ticket", func() (rotation.Rotation, error) { return e.start(sec, "payments-db", "SEC-7") },
			[]string{"not an approved status"}, "ticket", rotation.ActRotateRefused},
		{"self-approved ticket", func() (rotation.Rotation, error) { return e.start(sec, "payments-db", "SEC-8") },
			[]string{"requester themself"}, "ticket", rotation.ActRotateRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := countAction(e, tc.action)
			writes := e.kv.Writes()
			_, err := tc.who()
			ue := userErr(t, err, tc.want...)
			if ue.Field != tc.field {
				t.Errorf("field %q, want %q", ue.Field, tc.field)
			}
			if !ue.Audited || countAction(e, tc.action) != before+1 {
				t.Errorf("refusal not audited (%v)", e.store.Actions())
			}
			if e.kv.Writes() != writes {
				t.Error("Vault was written")
			}
		})
	}
	if len(e.store.Rotations()) != 0 {
		t.Errorf("rotations recorded: %+v", e.store.Rotations())
	}
	// Jira down: fail closed.
	e.jira.SetTicketErr("SEC-100", errBoom)
	_, err := e.start(sec, "payments-db", "SEC-100")
	userErr(t, err, "Jira could not be checked")
	// Without Jira at all.
	e.svc.Tickets = nil
	_, err = e.start(sec, "payments-db", "SEC-100")
	userErr(t, err, "Jira is not configured")
}

func TestRotateOneAtATime(t *testing.T) {
	e := newEnv(t)
	r := e.mustStart(sec, "payments-db", "SEC-100", "")
	_, err := e.start(rae, "payments-db", "SEC-100")
	userErr(t, err, "already being rotated", r.ID)
	if v := e.kv.Writes(); v != 1 {
		t.Errorf("%d writes", v)
	}
	// Another secret is fine.
	e.mustStart(sec, "platform-signing", "SEC-100", "")
}

func TestRotateRightsReadFromSlackNow(t *testing.T) {
	e := newEnv(t)
	// The caller claims Ana is in Platform Security; Slack says otherwise.
	claimed := ana
	claimed.Groups = []string{"platform-security"}
	_, err := e.start(claimed, "payments-db", "SEC-100")
	userErr(t, err, "Only Platform Security")
	// Slack cannot answer: fail closed.
	e.dir.Err = errBoom
	_, err = e.start(sec, "payments-db", "SEC-100")
	userErr(t, err, "Slack could not say who you are")
	e.dir.Err = nil
	// Sec leaves the workspace between start and confirm.
	r := e.mustStart(sec, "payments-db", "SEC-100", "")
	gone := sec
	gone.Deleted = true
	e.dir.Set(gone)
	_, err = e.confirm(sec, r.ID, "staging")
	userErr(t, err, "deactivated")
}

func TestRotateVaultFailures(t *testing.T) {
	e := newEnv(t)
	e.kv.SetErr(&e.kv.WriteErr, errBoom)
	_, err := e.start(sec, "payments-db", "SEC-100")
	userErr(t, err, "Vault refused the new version", "Nothing was rotated")
	rs := e.store.Rotations()
	if len(rs) != 1 || rs[0].State != rotation.StateFailed || !hasAction(e, rotation.ActRotateFailed) {
		t.Fatalf("%+v %v", rs, e.store.Actions())
	}
	e.kv.SetErr(&e.kv.WriteErr, nil)

	// Destroying the previous version fails: the rotation stays open.
	r := e.mustStart(sec, "payments-db", "SEC-100", "")
	e.mustConfirm(sec, r.ID, "staging")
	e.kv.SetErr(&e.kv.DestroyErr, errBoom)
	_, err = e.confirm(sec, r.ID, "production")
	userErr(t, err, "could not destroy version 1", "press *Production verified* again")
	if got, _ := e.store.Rotation(r.ID); got.State != rotation.StateProduction || got.LastError == "" {
		t.Errorf("after a failed retire: %+v", got)
	}
	if s, _ := e.store.Secret("payments-db"); !s.LastRotatedAt.IsZero() {
		t.Error("registry updated though the rotation is open")
	}
	e.kv.SetErr(&e.kv.DestroyErr, nil)
	if got := e.mustConfirm(sec, r.ID, "production"); got.State != rotation.StateCompleted || got.LastError != "" {
		t.Errorf("retry: %+v", got)
	}
}

func TestRollBack(t *testing.T) {
	e := newEnv(t)
	r := e.mustStart(sec, "payments-db", "SEC-100", "")
	if err := e.svc.PostThread(e.ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	e.mustConfirm(sec, r.ID, "staging")
	_, err := e.svc.RollBack(e.ctx, ana, r.ID)
	userErr(t, e.keep(err), "Only Platform Security")

	e.clock.Advance(time.Hour)
	got, err := e.svc.RollBack(e.ctx, rae, r.ID)
	if err != nil {
		t.Fatal(e.keep(err))
	}
	if got.State != rotation.StateRolledBack || got.RolledBackBy != rae.SlackID || got.RollbackVersion != 3 {
		t.Fatalf("rolled back: %+v", got)
	}
	if v, _ := e.kv.Value("kv", "payments/db", 3); v != oldDB {
		t.Errorf("current value is not the previous one")
	}
	if cur, _ := e.kv.Current(e.ctx, "kv", "payments/db"); cur != 3 {
		t.Errorf("current version %d", cur)
	}
	if s, _ := e.store.Secret("payments-db"); !s.LastRotatedAt.IsZero() || s.LastVersion != 0 {
		t.Errorf("registry changed by a roll back: %+v", s)
	}
	if !hasAction(e, rotation.ActRolledBack) || len(posts(e, "rolled back")) < 2 {
		t.Errorf("not reported: %v", e.store.Actions())
	}
	if jc := e.store.MessagesOf(outbox.JiraComment); len(jc) != 1 || !strings.Contains(jc[0].Text, "rolled back") {
		t.Errorf("jira: %+v", jc)
	}
	_, err = e.svc.RollBack(e.ctx, sec, r.ID)
	userErr(t, e.keep(err), "already rolled back by <@URAE>")
	_, err = e.confirm(sec, r.ID, "production")
	userErr(t, err, "rolled back")
}

func TestRollBackRefusesToOverwriteAConcurrentWrite(t *testing.T) {
	e := newEnv(t)
	r := e.mustStart(sec, "payments-db", "SEC-100", "")
	e.kv.Seed("kv", "payments/db", "SOMEONEelsesVALUE") // version 3
	_, err := e.svc.RollBack(e.ctx, sec, r.ID)
	userErr(t, e.keep(err), "at version 3", "overwrites nothing")
	if v, _ := e.kv.Value("kv", "payments/db", 3); v != "SOMEONEelsesVALUE" {
		t.Error("overwritten")
	}
	if got, _ := e.store.Rotation(r.ID); got.State != rotation.StateStaging {
		t.Errorf("state %s", got.State)
	}
	if !hasAction(e, rotation.ActRollbackFailed) {
		t.Error("not audited")
	}
	// The race inside the write itself is caught by the check-and-set.
	e2 := newEnv(t)
	r2 := e2.mustStart(sec, "payments-db", "SEC-100", "")
	var once sync.Once
	e2.kv.BeforeWrite = func(m, p string) { once.Do(func() { e2.kv.Seed(m, p, "RACERvalue") }) }
	_, err = e2.svc.RollBack(e2.ctx, sec, r2.ID)
	userErr(t, e2.keep(err), "check-and-set mismatch", "nothing was overwritten")
	if v, _ := e2.kv.Value("kv", "payments/db", 3); v != "RACERvalue" {
		t.Error("overwritten")
	}
}

func TestConcurrentConfirmationsFirstWins(t *testing.T) {
	e := newEnv(t)
	r := e.mustStart(sec, "payments-db", "SEC-100", "")
	e.mustConfirm(sec, r.ID, "staging")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := sec
			if i%2 == 1 {
				p = rae
			}
			_, errs[i] = e.svc.Confirm(e.ctx, p, r.ID, "production")
		}(i)
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if _, isUE := rotation.IsUserError(err); !isUE {
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || countAction(e, rotation.ActCompleted) != 1 || len(e.store.MessagesOf(outbox.JiraComment)) != 1 {
		t.Errorf("%d confirmations won; events %v", ok, e.store.Actions())
	}
	for _, ev := range e.store.Events() {
		if ev.Action == rotation.ActConfirmRefused && ev.Outcome != audit.Refused {
			t.Errorf("refusal outcome %s", ev.Outcome)
		}
	}
}
