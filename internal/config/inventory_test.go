package config

import (
	"strings"
	"testing"
	"time"
)

const inventoryDoc = `
slack:
  security_channel: C0123ABC
  platform_security_group: platform-security
vault:
  token_role: secretbot
  token_role_max_ttl: 12h
  kv_mount: secrets
scopes:` + roScope + `
inventory:
  default_interval: 60d
  secrets:
    - name: payments-db
      environment: prod
      owner: {team: payments, contact: U0PAYOWNER}
      path: /platform/payments-db/
      generate: {}
    - name: stripe-api-key
      environment: prod
      owner: {team: payments, contact: U0PAYOWNER}
      mount: kv
      path: payments/stripe
      interval: 30d
      provided: true
`

func TestInventoryDefaults(t *testing.T) {
	cfg, err := Load(writeFile(t, inventoryDoc), withEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	db, ok := cfg.Secret("payments-db")
	if !ok || db.Mount != "secrets" || db.Path != "platform/payments-db" || db.Interval.D() != 60*24*time.Hour ||
		db.Generate != (Generate{Length: 32, Alphabet: "A-Za-z0-9"}) || db.Provided {
		t.Errorf("payments-db = %+v", db)
	}
	st, _ := cfg.Secret("stripe-api-key")
	if st.Mount != "kv" || st.Interval.D() != 30*24*time.Hour || !st.Provided || st.Generate.Set() {
		t.Errorf("stripe = %+v", st)
	}
	if _, ok := cfg.Secret("nope"); ok {
		t.Error("Secret(nope) found something")
	}
	if r := cfg.Rotators(); len(r.Groups) != 1 || r.Groups[0] != "platform-security" {
		t.Errorf("rotators default = %+v", r)
	}
	if cfg.Inventory.DueSoon.D() != 14*24*time.Hour || cfg.Rotation.PreviousVersion != PreviousDestroy {
		t.Errorf("defaults: %+v %+v", cfg.Inventory, cfg.Rotation)
	}
	if h, m := cfg.Schedule.DailyTime(); h != 9 || m != 0 {
		t.Errorf("daily at %d:%d", h, m)
	}
}

func TestInventoryProblems(t *testing.T) {
	bad := `
slack:
  security_channel: C0123ABC
vault:
  token_role: secretbot
  token_role_max_ttl: 12h
scopes:` + roScope + `
inventory:
  default_interval: 0s
  due_soon: 14d
  secrets:
    - name: Payments_DB
      owner: {team: "", contact: pam}
      path: ""
      generate: {length: 4, alphabet: "z-a"}
    - name: dup
      environment: prod
      owner: {team: t, contact: U1AB}
      path: a/b
      provided: true
      generate: {length: 20}
    - name: dup
      environment: prod
      owner: {team: t, contact: U1AB}
      path: a/b
      interval: 0s
rotation:
  confirm_within: 0s
  previous_version: shred
  rotators: {users: [nobody]}
schedule:
  daily_at: "9am"
  review_day: 31
  review_window: 0s
  restore_test_months: [1, 13, 1]
`
	_, err := Load(writeFile(t, bad), withEnv(nil))
	ps := problemsOf(t, err)
	for _, want := range []struct{ key, msg string }{
		{"inventory.default_interval", "more than 0"},
		{"inventory.secrets[0].name", "not a secret name"},
		{"inventory.secrets[0].environment", "required"},
		{"inventory.secrets[0].owner.team", "required"},
		{"inventory.secrets[0].owner.contact", "not a Slack member ID"},
		{"inventory.secrets[0].path", "required"},
		{"inventory.secrets[0].generate.length", "out of range"},
		{"inventory.secrets[0].generate.alphabet", "backwards"},
		{"inventory.secrets[1].generate", "not both"},
		{"inventory.secrets[2].name", "already the name of inventory.secrets[1]"},
		{"inventory.secrets[2].path", "already the path of inventory.secrets[1]"},
		{"inventory.secrets[2].interval", "more than 0"},
		{"inventory.secrets[2].generate", "say how a new value is made"},
		{"rotation.confirm_within", "more than 0"},
		{"rotation.previous_version", "not a way to retire"},
		{"rotation.rotators.users[0]", "not a Slack member ID"},
		{"schedule.daily_at", "not a time of day"},
		{"schedule.review_day", "out of range"},
		{"schedule.review_window", "more than 0"},
		{"schedule.restore_test_months[1]", "not a month"},
		{"schedule.restore_test_months[2]", "listed twice"},
	} {
		if !hasProblem(ps, want.key, want.msg) {
			t.Errorf("no problem %s: %s in\n%v", want.key, want.msg, err)
		}
	}
}

func TestRotatorsRequiredWithSecrets(t *testing.T) {
	doc := strings.Replace(inventoryDoc, "  platform_security_group: platform-security\n", "", 1)
	_, err := Load(writeFile(t, doc), withEnv(nil))
	if !hasProblem(problemsOf(t, err), "rotation.rotators", "nobody could rotate") {
		t.Errorf("got %v", err)
	}
}

func TestExpandAlphabet(t *testing.T) {
	for in, want := range map[string]string{
		"A-Za-z0-9": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
		"a-f0-9_-":  "abcdef0123456789_-",
		"-0-9":      "-0123456789",
		"0-9a-cA-C": "0123456789abcABC",
		"0-90-9ab":  "0123456789ab",
	} {
		got, err := ExpandAlphabet(in)
		if err != nil || got != want {
			t.Errorf("ExpandAlphabet(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "abc", "a-z é", "z-a0-9", "a b c d e f g h i j k"} {
		if _, err := ExpandAlphabet(in); err == nil {
			t.Errorf("ExpandAlphabet(%q) accepted", in)
		}
	}
}
