package rotation_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/rotation"
	"github.com/secretbot/secretbot/internal/rotation/rotationtest"
)

func TestGenerateValue(t *testing.T) {
	g := rotation.Generate{Length: 4000 / 4, Alphabet: "a-f0-9"}
	v, err := rotation.GenerateValue(rand.Reader, g)
	if err != nil || len(v) != 1000 || strings.Trim(v, "abcdef0123456789") != "" {
		t.Fatalf("%q %v", v, err)
	}
	// Roughly uniform: each of 16 characters about 1/16 of 16000 draws.
	counts := map[rune]int{}
	for range 16 {
		v, _ := rotation.GenerateValue(rand.Reader, g)
		for _, c := range v {
			counts[c]++
		}
	}
	for c, n := range counts {
		if n < 700 || n > 1300 {
			t.Errorf("%c drawn %d times of 16000", c, n)
		}
	}
	// Rejection sampling: bytes above the largest multiple of 62 are skipped.
	src := bytes.NewReader(append(bytes.Repeat([]byte{255}, 10), bytes.Repeat([]byte{0}, 100)...))
	v, err = rotation.GenerateValue(src, rotation.Generate{Length: 12, Alphabet: "A-Za-z0-9"})
	if err != nil || v != "AAAAAAAAAAAA" {
		t.Errorf("%q %v", v, err)
	}
	// A failing source: an error that holds no part of the value.
	_, err = rotation.GenerateValue(iotest.ErrReader(errors.New("entropy gone")), rotation.Generate{Length: 12, Alphabet: "A-Za-z0-9"})
	if err == nil || strings.Contains(err.Error(), "A") && strings.Contains(err.Error(), "AAAA") {
		t.Errorf("%v", err)
	}
	if _, err := rotation.GenerateValue(rand.Reader, rotation.Generate{Length: 3, Alphabet: "A-Z"}); err == nil {
		t.Error("length 3 accepted")
	}
	if _, err := rotation.GenerateValue(rand.Reader, rotation.Generate{Length: 20, Alphabet: "ab"}); err == nil {
		t.Error("2 characters accepted")
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"platform/*", "platform/signing", true},
		{"platform/*", "platform/a/b", true},
		{"platform/*", "platform", false},
		{"platform/*", "platformx/a", false},
		{"platform/sig*", "platform/signing", true},
		{"platform/sig*", "platform/other", false},
		{"platform/", "platform/a", true},
		{"payments/+", "payments/db", true},
		{"payments/+", "payments/db/x", false},
		{"+/db", "payments/db", true},
		{"payments/db", "payments/db", true},
		{"payments/db", "payments/db2", false},
		{"kv/payments/*", "payments/db", true},
		{"kv/data/payments/*", "payments/db", true},
		{"other/payments/*", "payments/db", false},
		{"*", "anything/at/all", true},
	}
	for _, tc := range tests {
		if got := rotation.Covers(tc.pattern, "kv", tc.path); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v", tc.pattern, tc.path, got)
		}
	}
}

func TestExposure(t *testing.T) {
	e := newEnv(t)
	r := e.mustStart(sec, "platform-signing", "SEC-100", "")
	e.mustConfirm(sec, r.ID, "staging")
	e.clock.Advance(time.Hour)
	e.mustConfirm(sec, r.ID, "production")
	rotated := e.clock.Now()
	g := func(id, scope string, issued, ended time.Time) access.Grant {
		return access.Grant{ID: id, Requester: "UBOB", Scope: scope, State: access.StateIssued, IssuedAt: issued, EndedAt: ended}
	}
	gs := []access.Grant{
		g("GBEFORE01", "platform-rw", rotated.Add(-5*time.Hour), rotated.Add(-4*time.Hour)),    // ended before the rotation
		g("GACROSS01", "platform-ro", rotated.Add(-time.Hour), rotated.Add(time.Hour)),         // held across it
		g("GAFTER001", "platform-rw", rotated.Add(2*time.Hour), time.Time{}),                   // active now
		g("GPAYMENT1", "payments-rw", rotated.Add(2*time.Hour), time.Time{}),                   // another path
		{ID: "GPENDING1", Requester: "UANA", Scope: "platform-rw", State: access.StatePending}, // never issued
	}
	e.svc.Grants = rotationtest.NewGrants(gs...)
	_, err := e.svc.Exposure(e.ctx, ana, "platform-signing")
	userErr(t, e.keep(err), "Only Platform Security")
	_, err = e.svc.Exposure(e.ctx, sec, "nope")
	userErr(t, e.keep(err), "no secret")
	x, err := e.svc.Exposure(e.ctx, sec, "platform-signing")
	if err != nil {
		t.Fatal(err)
	}
	if !x.Since.Equal(rotated) || strings.Join(x.Scopes, ",") != "platform-rw,platform-ro" {
		t.Errorf("%+v", x)
	}
	var ids []string
	for _, g := range x.Grants {
		ids = append(ids, g.ID)
	}
	if strings.Join(ids, ",") != "GACROSS01,GAFTER001" {
		t.Errorf("exposed: %v", ids)
	}
	// Never rotated by the bot: every grant of a covering scope counts.
	x, _ = e.svc.Exposure(e.ctx, sec, "payments-db")
	if !x.Since.IsZero() || len(x.Grants) != 1 || x.Grants[0].ID != "GPAYMENT1" {
		t.Errorf("payments: %+v", x)
	}
	if countAction(e, rotation.ActExposure) < 3 {
		t.Error("not audited")
	}
}

func TestJournal(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.Journal(e.ctx, ana, "restore-test", "passed", "restored")
	userErr(t, e.keep(err), "Only Platform Security")
	_, err = e.svc.Journal(e.ctx, sec, "restore-test", "maybe", "restored")
	if ue := userErr(t, e.keep(err), "passed, failed"); ue.Field != "outcome" || !ue.Audited {
		t.Errorf("%+v", ue)
	}
	_, err = e.svc.Journal(e.ctx, sec, "review", "ok", "x")
	userErr(t, e.keep(err), "only restore tests")
	_, err = e.svc.Journal(e.ctx, sec, "restore-test", "passed", "")
	userErr(t, e.keep(err), "say what was restored")
	_, err = e.svc.Journal(e.ctx, sec, "restore-test", "passed", "ok\u202e")
	userErr(t, e.keep(err), "invisible")

	a, err := e.svc.Journal(e.ctx, sec, "Restore-Test", "PASSED", "raft snapshot restored to staging in 14m")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(day)
	b, err := e.svc.Journal(e.ctx, rae, "restore-test", "failed", "snapshot 3 days old")
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.svc.JournalList(e.ctx, "", 0)
	if err != nil || len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID || list[1].Outcome != "passed" || list[1].Author != sec.SlackID {
		t.Fatalf("%+v %v", list, err)
	}
	if one, _ := e.svc.JournalList(e.ctx, "restore-test", 1); len(one) != 1 || one[0].ID != b.ID {
		t.Errorf("limit: %+v", one)
	}
	if _, err := e.svc.JournalList(e.ctx, "nonsense", 0); err == nil {
		t.Error("unknown kind listed")
	}
	if n := countAction(e, rotation.ActJournal); n != 2 || len(posts(e, "Restore test")) != 2 {
		t.Errorf("%d journal events", n)
	}
}

func TestParseRotateArgs(t *testing.T) {
	good := []struct {
		args []string
		want rotation.RotateArgs
	}{
		{[]string{"payments-db", "--ticket", "SEC-1"}, rotation.RotateArgs{Secret: "payments-db", Ticket: "SEC-1"}},
		{[]string{"--emergency", "payments-db", "--incident=PABC123"}, rotation.RotateArgs{Secret: "payments-db", Emergency: true, Incident: "PABC123"}},
		{[]string{"payments-db", "--emergency", "--incident", "#12", "--ticket", "SEC-2"}, rotation.RotateArgs{Secret: "payments-db", Emergency: true, Incident: "#12", Ticket: "SEC-2"}},
	}
	for _, tc := range good {
		got, err := rotation.ParseRotateArgs(tc.args)
		if err != nil || got != tc.want {
			t.Errorf("%v: %+v %v", tc.args, got, err)
		}
	}
	bad := map[string][]string{
		"name the secret":   {"--ticket", "SEC-1"},
		"unknown flag":      {"x-y", "--force"},
		"given twice":       {"x-y", "--ticket", "A-1", "--ticket", "A-2"},
		"needs a value":     {"x-y", "--ticket"},
		"goes with":         {"x-y", "--incident", "P1"},
		"not a secret name": {"<!channel>"},
		"name one secret":   {"a-b", "c-d"},
		"takes no value":    {"a-b", "--emergency=yes"},
	}
	for want, args := range bad {
		_, err := rotation.ParseRotateArgs(args)
		userErr(t, err, want)
	}
}

func TestParseInventoryAndJournalArgs(t *testing.T) {
	f, export, err := rotation.ParseInventoryArgs([]string{"--overdue", "--env", "prod", "--owner=@payments", "--export"})
	if err != nil || !export || f != (rotation.Filter{Overdue: true, Env: "prod", Owner: "payments"}) {
		t.Errorf("%+v %v %v", f, export, err)
	}
	for _, args := range [][]string{{"prod"}, {"--env"}, {"--overdue=1"}, {"--color", "x"}, {"--env", "a", "--env", "b"}} {
		if _, _, err := rotation.ParseInventoryArgs(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	a, err := rotation.ParseJournalArgs(nil)
	if err != nil || !a.List || a.Kind != "" {
		t.Errorf("%+v %v", a, err)
	}
	a, err = rotation.ParseJournalArgs([]string{"restore-test", "passed", "restored", "in", "14m"})
	if err != nil || a.List || a.Outcome != "passed" || a.Notes != "restored in 14m" {
		t.Errorf("%+v %v", a, err)
	}
	if a, err = rotation.ParseJournalArgs([]string{"review"}); err != nil || !a.List || a.Kind != "review" {
		t.Errorf("%+v %v", a, err)
	}
	for _, args := range [][]string{{"restore-test", "ok", "x"}, {"restore-test", "passed"}, {"review", "ok", "x"}, {"diary"}} {
		if _, err := rotation.ParseJournalArgs(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestDueAndMarks(t *testing.T) {
	s := rotation.Secret{Interval: 10 * day, CreatedAt: t0}
	if !s.Due().Equal(t0.Add(10 * day)) {
		t.Error(s.Due())
	}
	s.LastRotatedAt = t0.Add(5 * day)
	if !s.Due().Equal(t0.Add(15 * day)) {
		t.Error(s.Due())
	}
	now := t0.Add(14 * day)
	if !s.DueSoon(now, 2*day) || s.Overdue(now) || s.DueSoon(now, time.Hour) {
		t.Error("marks")
	}
	if !s.Overdue(t0.Add(15*day)) || s.DueSoon(t0.Add(15*day), 2*day) {
		t.Error("overdue marks")
	}
	md := rotation.Metadata(s)
	if md["rotation_due"] != "2025-03-18T09:00:00Z" || md["interval"] != "10d" || len(md) != len(rotation.MetadataKeys) {
		t.Errorf("%v", md)
	}
	_ = config.Duration(0)
}
