package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Fake credentials only.
const (
	fakeApp   = "xapp-test-1-A0TEST-000-abcdef"
	fakeBot   = "xoxb-test-0000-abcdef"
	fakeVault = "hvs.TESTtesttesttest"
	fakeAudit = "test-audit-key-0123456789abcdef0123456789"
)

func goodEnv() map[string]string {
	return map[string]string{
		"VAULT_ADDR":          "https://vault.test:8200",
		"VAULT_TOKEN":         fakeVault,
		"SLACK_APP_TOKEN":     fakeApp,
		"SLACK_BOT_TOKEN":     fakeBot,
		"SECRETBOT_AUDIT_KEY": fakeAudit,
	}
}

func withEnv(mods map[string]string) func(string) string {
	env := goodEnv()
	for k, v := range mods {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	return func(k string) string { return env[k] }
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secretbot.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	baseSlack = "slack:\n  security_channel: C0123ABC\n"
	baseVault = "vault:\n  token_role: secretbot\n  token_role_max_ttl: 12h\n"
	roScope   = `
  - name: platform-ro
    vault_policies: [platform-ro]
    max_ttl: 4h
    eligible: {groups: [sre-oncall]}
    evidence: [oncall, incident]
    ends_with_incident: true
`
	rwScope = `
  - name: platform-rw
    vault_policies: [platform-rw]
    max_ttl: 8h
    eligible: {groups: [platform-security]}
    approvers: {groups: ["@platform-security"]}
    evidence: [jira, approval]
`
)

// doc is a minimal valid file plus extra top-level sections.
func doc(extra ...string) string {
	return baseSlack + baseVault + "scopes:" + roScope + strings.Join(extra, "")
}

// withScopes is a minimal file with the given scopes.
func withScopes(scopes ...string) string {
	return baseSlack + baseVault + "scopes:" + strings.Join(scopes, "")
}

func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var ps *Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T (%v), want *Problems", err, err)
	}
	return ps.List
}

func hasProblem(ps []Problem, key, msg string) bool {
	for _, p := range ps {
		if p.Key == key && strings.Contains(p.Msg, msg) {
			return true
		}
	}
	return false
}

func TestLoadExample(t *testing.T) {
	env := withEnv(map[string]string{
		"PAGERDUTY_TOKEN": "pd-test-token",
		"JIRA_URL":        "https://jira.test/",
		"JIRA_EMAIL":      "bot@example.com",
		"JIRA_API_TOKEN":  "jira-test-token",
	})
	cfg, err := Load("../../secretbot.example.yaml", env)
	if err != nil {
		t.Fatalf("example does not load:\n%v", err)
	}
	if cfg.Vault.Namespace != "lumi/platform" || cfg.Slack.SecurityChannel != "#lumi-security" ||
		cfg.Vault.TokenRole != "secretbot" || cfg.Vault.TokenRoleMaxTTL.D() != 12*time.Hour || cfg.Vault.KVMount != "kv" {
		t.Errorf("unexpected values: %+v", cfg.Vault)
	}
	rw, ok := cfg.Scope("platform-rw")
	if !ok || rw.Disabled || rw.Delivery != DeliveryEntityGroup || rw.MaxTTL.D() != 8*time.Hour ||
		!reflect.DeepEqual(rw.Evidence, []string{"jira", "approval"}) {
		t.Errorf("platform-rw = %+v", rw)
	}
	ro, ok := cfg.Scope("platform-ro")
	if !ok || ro.Disabled || ro.Delivery != DeliveryWrappedToken || !ro.EndsWithIncident || ro.MaxTTL.D() != 4*time.Hour {
		t.Errorf("platform-ro = %+v", ro)
	}
	if _, ok := cfg.Scope("nope"); ok {
		t.Error("Scope(nope) found something")
	}
	if len(cfg.Inventory.Secrets) != 3 {
		t.Fatalf("inventory = %+v", cfg.Inventory)
	}
	if db, ok := cfg.Secret("payments-db"); !ok || db.Mount != "kv" || db.Generate.Length != 32 || db.Owner.Contact != "U0PAYOWNER" {
		t.Errorf("payments-db = %+v", db)
	}
	if st, ok := cfg.Secret("stripe-api-key"); !ok || !st.Provided || st.Mount != "kv" || st.Interval.D() != 30*24*time.Hour {
		t.Errorf("stripe-api-key = %+v", st)
	}
	if cfg.Rotation.PreviousVersion != PreviousDestroy || cfg.Rotation.EmergencyReminderEvery.D() != 30*time.Minute ||
		cfg.Schedule.DailyAt != "09:00" || len(cfg.Schedule.RestoreTestMonths) != 4 {
		t.Errorf("rotation/schedule = %+v %+v", cfg.Rotation, cfg.Schedule)
	}
	if cfg.Creds.JiraURL != "https://jira.test" {
		t.Errorf("JiraURL = %q, want the trailing slash dropped", cfg.Creds.JiraURL)
	}
}

func TestLoadExampleWithoutOptionalSources(t *testing.T) {
	cfg, err := Load("../../secretbot.example.yaml", withEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ scope, reason string }{
		{"platform-rw", "needs Jira: "},
		{"platform-ro", "needs PagerDuty: PAGERDUTY_TOKEN is not set"},
	} {
		s, _ := cfg.Scope(tc.scope)
		if !s.Disabled || !strings.Contains(s.DisabledReason, tc.reason) {
			t.Errorf("%s: Disabled=%v reason %q, want %q", tc.scope, s.Disabled, s.DisabledReason, tc.reason)
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Load(writeFile(t, doc()), withEnv(map[string]string{"VAULT_NAMESPACE": "lumi/platform/"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Slack: Slack{Command: "/secrets", SecurityChannel: "C0123ABC", ApprovalsChannel: "C0123ABC"},
		Vault: Vault{Namespace: "lumi/platform", TokenRole: "secretbot", TokenRoleMaxTTL: Duration(12 * time.Hour),
			KVMount: "kv", WrapTTL: Duration(10 * time.Minute), DeliveryLease: Duration(2 * time.Minute),
			Reconcile: Reconcile{Every: Duration(10 * time.Minute)}},
		PagerDuty: PagerDuty{IncidentPollInterval: Duration(time.Minute)},
		Jira:      Jira{ApprovedStatuses: []string{"Approved"}, IssueType: "Task"},
		Storage:   Storage{Path: "secretbot.db"},
		Ops:       Ops{Listen: "127.0.0.1:9090", LogLevel: "info"},
		Runner:    Runner{Workers: 8, ShutdownTimeout: Duration(20 * time.Second), HandlerTimeout: Duration(60 * time.Second)},
		Inventory: Inventory{DefaultInterval: Duration(90 * 24 * time.Hour), DueSoon: Duration(14 * 24 * time.Hour)},
		Rotation: Rotation{ConfirmWithin: Duration(24 * time.Hour), EmergencyConfirmWithin: Duration(2 * time.Hour),
			ReminderEvery: Duration(4 * time.Hour), EmergencyReminderEvery: Duration(30 * time.Minute), PreviousVersion: "destroy"},
		Schedule: Schedule{DailyAt: "09:00", ReviewDay: 1, ReviewWindow: Duration(30 * 24 * time.Hour), RestoreTestMonths: []int{1, 4, 7, 10}},
		Backup:   Backup{Every: Duration(time.Hour), Keep: 24},
		Limits: Limits{RequestsPerUser: DefaultRequestsPerUser, CommandsPerUser: DefaultCommandsPerUser, Window: Duration(DefaultLimitWindow),
			RequestOpenFor: Duration(DefaultRequestOpenFor)},
	}
	got := *cfg
	got.Scopes, got.Creds = nil, Credentials{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if s := cfg.Scopes[0]; s.Delivery != DeliveryWrappedToken || !s.Disabled {
		t.Errorf("scope = %+v, want wrapped-token and disabled without PagerDuty", s)
	}
	c := cfg.Creds
	if c.SlackAPIURL != DefaultSlackAPIURL || c.PagerDutyAPIURL != DefaultPagerDutyAPIURL || c.VaultToken != fakeVault {
		t.Errorf("creds defaults wrong: %q %q", c.SlackAPIURL, c.PagerDutyAPIURL)
	}
}

func TestCredentialsTrimmedAndHidden(t *testing.T) {
	cfg, err := Load(writeFile(t, doc()), withEnv(map[string]string{"SLACK_BOT_TOKEN": " " + fakeBot + "\n"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Creds.SlackBotToken != fakeBot {
		t.Errorf("bot token not trimmed: %q", cfg.Creds.SlackBotToken)
	}
	for _, s := range []string{cfg.Creds.String(), cfg.Creds.GoString()} {
		if strings.Contains(s, "xoxb") {
			t.Errorf("Credentials print a value: %s", s)
		}
	}
}

func TestFileProblems(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		key, msg   string
	}{
		{"unknown top-level key", doc("slak:\n  x: 1\n"), nil, "slak", `unknown key (did you mean "slack"?)`},
		{"unknown nested key", doc("ops:\n  listen_addr: 127.0.0.1:1\n"), nil, "ops.listen_addr", "unknown key"},
		{"not a number", doc("runner:\n  workers: eight\n"), nil, "runner.workers", "must be a whole number"},
		{"not a bool", withScopes(strings.Replace(roScope, "ends_with_incident: true", "ends_with_incident: maybe", 1)), nil,
			"scopes[0].ends_with_incident", "must be true or false"},
		{"scalar for a list", withScopes(strings.Replace(roScope, "[oncall, incident]", "oncall", 1)), nil,
			"scopes[0].evidence", "must be a list"},
		{"scalar for a mapping", doc("ops: fast\n"), nil, "ops", "must be a mapping"},
		{"list for text", doc("storage:\n  path: [a, b]\n"), nil, "storage.path", "must be a single value"},
		{"bad duration", doc("runner:\n  handler_timeout: 10 minutes\n"), nil, "runner.handler_timeout", "invalid duration"},
		{"duration without unit", doc("runner:\n  handler_timeout: 600\n"), nil, "runner.handler_timeout", "invalid duration"},
		{"zero duration", doc("runner:\n  shutdown_timeout: 0s\n"), nil, "runner.shutdown_timeout", "must be more than 0"},
		{"zero delivery lease", baseSlack + baseVault + "  delivery_lease: 0s\n", nil, "vault.delivery_lease", "must be more than 0"},
		{"security channel missing", baseVault + "scopes:" + roScope, nil, "slack.security_channel", "required"},
		{"security channel malformed", "slack:\n  security_channel: lumi-security\n" + baseVault, nil,
			"slack.security_channel", "is not a channel"},
		{"approvals channel malformed", "slack:\n  security_channel: C0123ABC\n  approvals_channel: '#Lumi Approvals'\n" + baseVault, nil,
			"slack.approvals_channel", "is not a channel"},
		{"command without slash", "slack:\n  security_channel: C0123ABC\n  command: secrets\n" + baseVault, nil,
			"slack.command", "is not a slash command"},
		{"bad platform group", "slack:\n  security_channel: C0123ABC\n  platform_security_group: 'platform security'\n" + baseVault, nil,
			"slack.platform_security_group", "is not a user group"},
		{"token role missing", baseSlack + "vault:\n  token_role_max_ttl: 12h\n", nil, "vault.token_role", "required"},
		{"token role max ttl missing", baseSlack + "vault:\n  token_role: secretbot\n", nil, "vault.token_role_max_ttl", "required"},
		{"kv mount malformed", baseSlack + baseVault + "  kv_mount: 'kv secrets'\n", nil, "vault.kv_mount", "is not a mount path"},
		{"scope name malformed", withScopes(strings.Replace(roScope, "platform-ro", "Platform_RO", 1)), nil,
			"scopes[0].name", "is not a scope name"},
		{"scope name too short", withScopes(strings.Replace(roScope, "platform-ro", "p", 1)), nil,
			"scopes[0].name", "is not a scope name"},
		{"scope name twice", withScopes(roScope, roScope), nil, "scopes[1].name", "is already the name of scopes[0]"},
		{"unknown evidence", withScopes(strings.Replace(roScope, "[oncall, incident]", "[oncall, incident, pager]", 1)), nil,
			"scopes[0].evidence[2]", `"pager" is not a kind of evidence`},
		{"evidence twice", withScopes(strings.Replace(roScope, "[oncall, incident]", "[oncall, incident, oncall]", 1)), nil,
			"scopes[0].evidence[2]", "listed twice"},
		{"no evidence", withScopes(strings.Replace(roScope, "[oncall, incident]", "[]", 1)), nil,
			"scopes[0].evidence", "at least one kind"},
		{"approval without approvers", withScopes(strings.Replace(rwScope, `approvers: {groups: ["@platform-security"]}`, "", 1)), nil,
			"scopes[0].approvers", "names no approvers"},
		{"max ttl missing", withScopes(strings.Replace(roScope, "max_ttl: 4h", "", 1)), nil, "scopes[0].max_ttl", "required"},
		{"max ttl over the role's", withScopes(strings.Replace(roScope, "max_ttl: 4h", "max_ttl: 1d", 1)), nil,
			"scopes[0].max_ttl", "1d is more than vault.token_role_max_ttl (12h)"},
		{"unknown delivery", withScopes(roScope + "    delivery: email\n"), nil, "scopes[0].delivery", "is not a delivery"},
		{"entity-group without mount", withScopes(rwScope + "    delivery: entity-group\n"), nil,
			"vault.entity_auth_mount", `required: entity-group delivery is used by scope "platform-rw"`},
		{"no policies", withScopes(strings.Replace(roScope, "vault_policies: [platform-ro]", "", 1)), nil,
			"scopes[0].vault_policies", "required"},
		{"root policy", withScopes(strings.Replace(roScope, "[platform-ro]", "[platform-ro, root]", 1)), nil,
			"scopes[0].vault_policies[1]", "root policy is never granted"},
		{"ends with incident without incident", withScopes(strings.Replace(roScope, "[oncall, incident]", "[oncall]", 1)), nil,
			"scopes[0].ends_with_incident", "needs incident"},
		{"nobody eligible", withScopes(strings.Replace(roScope, "eligible: {groups: [sre-oncall]}", "", 1)), nil,
			"scopes[0].eligible", "names nobody"},
		{"bad user id", withScopes(strings.Replace(roScope, "{groups: [sre-oncall]}", "{users: ['@alice']}", 1)), nil,
			"scopes[0].eligible.users[0]", "is not a Slack member ID"},
		{"bad email", withScopes(strings.Replace(roScope, "{groups: [sre-oncall]}", "{emails: [alice]}", 1)), nil,
			"scopes[0].eligible.emails[0]", "is not an e-mail address"},
		{"bad kv path", withScopes(roScope + "    kv_paths: ['platform//x']\n"), nil, "scopes[0].kv_paths[0]", "is not a KV path"},
		{"listen without host", doc("ops:\n  listen: ':9090'\n"), nil, "ops.listen", "empty host"},
		{"listen without port", doc("ops:\n  listen: localhost\n"), nil, "ops.listen", "is not host:port"},
		{"listen port out of range", doc("ops:\n  listen: 127.0.0.1:70000\n"), nil, "ops.listen", "is not a port number"},
		{"log level", doc("ops:\n  log_level: verbose\n"), nil, "ops.log_level", "is not a log level"},
		{"zero workers", doc("runner:\n  workers: 0\n"), nil, "runner.workers", "out of range"},
		{"bad escalation policy", doc("pagerduty:\n  escalation_policies: [sre]\n"), nil,
			"pagerduty.escalation_policies[0]", "is not an escalation policy ID"},
		{"negative escalation level", doc("pagerduty:\n  max_escalation_level: -1\n"), nil,
			"pagerduty.max_escalation_level", "must not be negative"},
		{"escalation policies needed", doc(), map[string]string{"PAGERDUTY_TOKEN": "pd-test-token"},
			"pagerduty.escalation_policies", `on-call evidence is used by scope "platform-ro"`},
		{"jira project needed", withScopes(rwScope), map[string]string{"JIRA_URL": "https://jira.test", "JIRA_PAT": "jira-test-pat"},
			"jira.project", "required"},
		{"jira security leads needed", withScopes(rwScope) + "jira:\n  project: SEC\n",
			map[string]string{"JIRA_URL": "https://jira.test", "JIRA_PAT": "jira-test-pat"}, "jira.security_leads", "required"},
		{"jira project malformed", doc("jira:\n  project: sec\n"), nil, "jira.project", "is not a project key"},
		{"jira field malformed", doc("jira:\n  fields:\n    owner: 'custom field'\n"), nil, "jira.fields.owner", "is not a field ID"},
		{"syntax error", "slack:\n  security_channel: [C0123\nvault: x\n", nil, "", "is not valid YAML: line"},
		{"two documents", doc() + "---\nslack: {}\n", nil, "", "more than one YAML document"},
		{"key written twice", doc("ops:\n  log_level: info\n  log_level: debug\n"), nil, "ops.log_level", "written twice (lines"},
		{"top level list", "- a\n- b\n", nil, "(top level)", "must be a mapping"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tc.file), withEnv(tc.env))
			ps := problemsOf(t, err)
			if !hasProblem(ps, tc.key, tc.msg) {
				t.Errorf("want %q with %q, got:\n%v", tc.key, tc.msg, err)
			}
		})
	}
}

func TestEnvProblems(t *testing.T) {
	noCA := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name     string
		env      map[string]string
		key, msg string
	}{
		{"vault addr missing", map[string]string{"VAULT_ADDR": ""}, "VAULT_ADDR", "required"},
		{"vault addr not a url", map[string]string{"VAULT_ADDR": "vault.test:8200"}, "VAULT_ADDR", "is not an http(s) URL"},
		{"url with password", map[string]string{"JIRA_URL": "https://bot:hunter2@jira.test", "JIRA_PAT": "jira-test-pat"},
			"JIRA_URL", "must not carry a user name or password"},
		{"slack api url scheme", map[string]string{"SLACK_API_URL": "ftp://slack.test/api"}, "SLACK_API_URL", "is not an http(s) URL"},
		{"pagerduty api url", map[string]string{"PAGERDUTY_API_URL": "pagerduty"}, "PAGERDUTY_API_URL", "is not an http(s) URL"},
		{"app token missing", map[string]string{"SLACK_APP_TOKEN": ""}, "SLACK_APP_TOKEN", "required"},
		{"tokens swapped", map[string]string{"SLACK_APP_TOKEN": fakeBot}, "SLACK_APP_TOKEN", "it is a bot token (xoxb-)"},
		{"user token as bot token", map[string]string{"SLACK_BOT_TOKEN": "xoxp-test-0000"}, "SLACK_BOT_TOKEN", "it is a user token"},
		{"bot token garbage", map[string]string{"SLACK_BOT_TOKEN": "test-garbage"}, "SLACK_BOT_TOKEN", "does not start with xoxb-"},
		{"no vault auth", map[string]string{"VAULT_TOKEN": ""}, "VAULT_TOKEN", "no Vault credentials"},
		{"role id alone", map[string]string{"VAULT_TOKEN": "", "VAULT_ROLE_ID": "test-role"}, "VAULT_SECRET_ID", "required with VAULT_ROLE_ID"},
		{"secret id alone", map[string]string{"VAULT_TOKEN": "", "VAULT_SECRET_ID": "test-secret"}, "VAULT_ROLE_ID", "required with VAULT_SECRET_ID"},
		{"ca cert missing", map[string]string{"VAULT_CACERT": noCA}, "VAULT_CACERT", "cannot read"},
		{"jira email without token", map[string]string{"JIRA_URL": "https://jira.test", "JIRA_EMAIL": "a@example.com"},
			"JIRA_API_TOKEN", "required with JIRA_EMAIL"},
		{"jira token without email", map[string]string{"JIRA_URL": "https://jira.test", "JIRA_API_TOKEN": "jira-test-token"},
			"JIRA_EMAIL", "required with JIRA_API_TOKEN"},
		{"jira both auths", map[string]string{"JIRA_URL": "https://jira.test", "JIRA_PAT": "jira-test-pat",
			"JIRA_EMAIL": "a@example.com", "JIRA_API_TOKEN": "jira-test-token"}, "JIRA_PAT", "not both"},
		{"jira creds without url", map[string]string{"JIRA_PAT": "jira-test-pat"}, "JIRA_URL", "required when Jira credentials are set"},
		{"jira url without creds", map[string]string{"JIRA_URL": "https://jira.test"}, "JIRA_URL", "no Jira credentials"},
		{"audit key missing", map[string]string{"SECRETBOT_AUDIT_KEY": ""}, "SECRETBOT_AUDIT_KEY", "required"},
		{"audit key short", map[string]string{"SECRETBOT_AUDIT_KEY": "test-short-key"}, "SECRETBOT_AUDIT_KEY", "is 14 bytes; at least 32"},
	}
	path := writeFile(t, doc())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(path, withEnv(tc.env))
			ps := problemsOf(t, err)
			if !hasProblem(ps, tc.key, tc.msg) {
				t.Errorf("want %q with %q, got:\n%v", tc.key, tc.msg, err)
			}
			// No value from the environment is ever repeated.
			for k, v := range tc.env {
				if v != "" && k != "VAULT_CACERT" && strings.Contains(err.Error(), v) {
					t.Errorf("error repeats the value of %s:\n%v", k, err)
				}
			}
		})
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	file := `
slack:
  command: secrets
  channel: C0123ABC
vault:
  kv_mount: 'a b'
ops:
  listen: ':1'
  log_level: loud
runner:
  workers: many
scopes:
  - name: Bad_Name
    max_ttl: 2w
    evidence: [pager]
  - name: ok-scope
    vault_policies: [root]
    max_ttl: 1h
    eligible: {groups: [sre]}
    evidence: [approval]
`
	_, err := Load(writeFile(t, file), withEnv(map[string]string{"VAULT_ADDR": "", "SLACK_BOT_TOKEN": ""}))
	ps := problemsOf(t, err)
	want := []string{
		"slack.channel", "slack.command", "slack.security_channel", "vault.token_role", "vault.token_role_max_ttl",
		"vault.kv_mount", "ops.listen", "ops.log_level", "runner.workers", "scopes[0].name", "scopes[0].max_ttl",
		"scopes[0].evidence[0]", "scopes[0].vault_policies", "scopes[0].eligible", "scopes[1].vault_policies[0]",
		"scopes[1].approvers", "VAULT_ADDR", "SLACK_BOT_TOKEN",
	}
	for _, k := range want {
		found := false
		for _, p := range ps {
			found = found || p.Key == k
		}
		if !found {
			t.Errorf("no problem for %s", k)
		}
	}
	// A value that could not be read is reported once, not again as missing
	// or out of range.
	for _, k := range []string{"runner.workers", "scopes[0].max_ttl"} {
		n := 0
		for _, p := range ps {
			if p.Key == k {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d problems for %s, want 1", n, k)
		}
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != len(ps) {
		t.Errorf("Error() has %d lines for %d problems", lines, len(ps))
	}
}

func TestCredentialsInFile(t *testing.T) {
	tests := []struct {
		name, file, key, env, secret string
	}{
		{"bot token key", doc("") + "slack_token: x\n", "slack_token", "SLACK_BOT_TOKEN", ""},
		{"slack bot_token", baseSlack + "  bot_token: " + fakeBot + "\n" + baseVault, "slack.bot_token", "SLACK_BOT_TOKEN", fakeBot},
		{"slack appToken camel", baseSlack + "  appToken: abc\n" + baseVault, "slack.appToken", "SLACK_APP_TOKEN", ""},
		{"vault token", baseSlack + baseVault + "  token: " + fakeVault + "\n", "vault.token", "VAULT_TOKEN", fakeVault},
		{"vault secret_id", baseSlack + baseVault + "  secret_id: test-secret-id\n", "vault.secret_id", "VAULT_SECRET_ID", "test-secret-id"},
		{"vault role_id", baseSlack + baseVault + "  role_id: test-role-id\n", "vault.role_id", "VAULT_ROLE_ID", "test-role-id"},
		{"pagerduty token", doc("pagerduty:\n  api_token: pd-test-token\n"), "pagerduty.api_token", "PAGERDUTY_TOKEN", "pd-test-token"},
		{"jira pat", doc("jira:\n  pat: jira-test-pat\n"), "jira.pat", "JIRA_PAT", "jira-test-pat"},
		{"jira password", doc("jira:\n  password: jira-test-pw\n"), "jira.password", "JIRA_API_TOKEN", "jira-test-pw"},
		{"audit key", doc("storage:\n  audit_key: test-audit-key\n"), "storage.audit_key", "SECRETBOT_AUDIT_KEY", "test-audit-key"},
		{"slack token as a value", "slack:\n  security_channel: " + fakeBot + "\n" + baseVault, "slack.security_channel",
			"SLACK_BOT_TOKEN", fakeBot},
		{"app token in a description", withScopes(roScope + "    description: use " + fakeApp + " here\n"),
			"scopes[0].description", "SLACK_APP_TOKEN", fakeApp},
		{"vault token in a list", withScopes(strings.Replace(roScope, "[platform-ro]", "[platform-ro, "+fakeVault+"]", 1)),
			"scopes[0].vault_policies[1]", "VAULT_TOKEN", fakeVault},
		{"legacy vault token", baseSlack + "vault:\n  token_role: s.TESTtesttesttesttesttest\n  token_role_max_ttl: 12h\n",
			"vault.token_role", "VAULT_TOKEN", "s.TESTtesttesttesttesttest"},
		{"token under an unknown key", doc("extra:\n  nested:\n    - " + fakeBot + "\n"), "extra.nested[0]", "SLACK_BOT_TOKEN", fakeBot},
		{"token as a key", doc("ops:\n  " + fakeBot + ": 1\n"), "ops", "SLACK_BOT_TOKEN", fakeBot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tc.file), withEnv(nil))
			ps := problemsOf(t, err)
			if !hasProblem(ps, tc.key, "credentials come only from the environment ("+tc.env+")") {
				t.Errorf("want credential problem at %q naming %s, got:\n%v", tc.key, tc.env, err)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error repeats the credential:\n%v", err)
			}
			// The credential is the only complaint about that key.
			n := 0
			for _, p := range ps {
				if p.Key == tc.key {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d problems at %s, want 1:\n%v", n, tc.key, err)
			}
		})
	}
}

func TestFileNotUsable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	tests := []struct {
		name, path string
		env        map[string]string
		want       string
	}{
		{"missing file", missing, nil, "config file not found: " + missing + " (set --config or SECRETBOT_CONFIG)"},
		{"no path at all", "", nil, "no config file given (set --config or SECRETBOT_CONFIG)"},
		{"SECRETBOT_CONFIG used", "", map[string]string{"SECRETBOT_CONFIG": missing}, "config file not found: " + missing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.path, withEnv(tc.env))
			ps := problemsOf(t, err)
			if len(ps) == 0 || !strings.Contains(ps[0].Msg, tc.want) {
				t.Errorf("want %q, got:\n%v", tc.want, err)
			}
			// Environment problems are still listed alongside.
			if _, err := Load(tc.path, withEnv(map[string]string{"VAULT_ADDR": ""})); !strings.Contains(err.Error(), "VAULT_ADDR") {
				t.Errorf("environment not checked: %v", err)
			}
		})
	}
}

func TestLoadForAudit(t *testing.T) {
	path := writeFile(t, doc("storage:\n  path: /tmp/test.db\n"))
	onlyAudit := func(k string) string {
		if k == "SECRETBOT_AUDIT_KEY" {
			return fakeAudit
		}
		return ""
	}
	cfg, err := LoadForAudit(path, onlyAudit)
	if err != nil {
		t.Fatalf("LoadForAudit needs only the audit key: %v", err)
	}
	if cfg.Storage.Path != "/tmp/test.db" || cfg.Creds.AuditKey != fakeAudit {
		t.Errorf("got path %q", cfg.Storage.Path)
	}
	_, err = LoadForAudit(path, func(string) string { return "" })
	if ps := problemsOf(t, err); len(ps) != 1 || ps[0].Key != "SECRETBOT_AUDIT_KEY" {
		t.Errorf("want only the audit key problem, got:\n%v", err)
	}
	_, err = LoadForAudit(writeFile(t, doc("storage:\n  pth: x\n")), onlyAudit)
	if !hasProblem(problemsOf(t, err), "storage.pth", "unknown key") {
		t.Errorf("audit load is not strict: %v", err)
	}
}

func TestProblemsError(t *testing.T) {
	ps := &Problems{List: []Problem{
		{Key: "scopes[1].max_ttl", Msg: "required", Accepted: "a duration"},
		{Msg: "config file not found: x"},
		{Key: "VAULT_ADDR", Msg: "required"},
	}}
	want := "scopes[1].max_ttl: required (accepted: a duration)\nconfig file not found: x\nVAULT_ADDR: required"
	if got := ps.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	file := baseSlack + baseVault + `
scopes:
  - &ro
    name: platform-ro
    vault_policies: [platform-ro]
    max_ttl: 4h
    eligible: &sre {groups: [sre-oncall]}
    evidence: [approval]
    approvers: *sre
  - name: payments-ro
    max_ttl: 2h
    eligible: {users: [U0ALICE]}
    <<: *ro
`
	cfg, err := Load(writeFile(t, file), withEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := cfg.Scope("payments-ro")
	// Keys written beside the merge win, and replace the merged value whole.
	want := People{Users: []string{"U0ALICE"}}
	if !ok || p.MaxTTL.D() != 2*time.Hour || len(p.VaultPolicies) != 1 || p.Approvers.Groups[0] != "sre-oncall" ||
		!reflect.DeepEqual(p.Eligible, want) {
		t.Errorf("merged scope = %+v", p)
	}
}
