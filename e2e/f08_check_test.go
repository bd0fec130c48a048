package e2e

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretbot/secretbot/e2e/harness"
	"github.com/secretbot/secretbot/e2e/vaulttest"
)

// checkedIntegrations are the rows `secretbot check` must print.
var checkedIntegrations = []string{"slack", "vault", "pagerduty", "jira", "store"}

func TestF08_CheckReportsEachIntegration(t *testing.T) {
	h := harness.Start(t, harness.Options{NoRun: true})

	t.Run("all OK", func(t *testing.T) {
		out, errOut, code := h.RunCLI("check")
		t.Logf("check (exit %d):\n%s%s", code, out, errOut)
		if code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		rows := checkRows(t, out)
		for _, in := range checkedIntegrations {
			rs := rowsOf(rows, in)
			if len(rs) == 0 {
				t.Errorf("no row for %s", in)
			}
			for _, r := range rs {
				if r.Status != "OK" {
					t.Errorf("%s: %s %s, want OK", in, r.Status, r.Detail)
				}
			}
		}
		for _, r := range rows {
			if !slices.Contains(checkedIntegrations, r.Integration) {
				t.Errorf("row for an unknown integration %q", r.Integration)
			}
		}
	})

	t.Run("vault down", func(t *testing.T) {
		h.Vault.Stop()
		defer func() {
			if err := h.Vault.Resume(); err != nil {
				t.Fatal(err)
			}
		}()
		out, errOut, code := h.RunCLI("check")
		t.Logf("check (exit %d):\n%s%s", code, out, errOut)
		if code != 1 {
			t.Errorf("exit status %d, want 1 (a check failed)", code)
		}
		rows := checkRows(t, out)
		vr := rowsOf(rows, "vault")
		if len(vr) == 0 || vr[0].Status != "FAIL" {
			t.Fatalf("vault rows = %+v, want a FAIL first", vr)
		}
		for _, r := range vr[1:] {
			if r.Status == "OK" {
				t.Errorf("vault row OK with Vault down: %s", r.Detail)
			}
		}
		// The reason says Vault could not be reached, and where it was looked for.
		d := strings.ToLower(vr[0].Detail)
		if !strings.Contains(vr[0].Detail, strings.TrimPrefix(h.Vault.Addr, "https://")) ||
			!(strings.Contains(d, "reach") || strings.Contains(d, "refused") || strings.Contains(d, "unavailable")) {
			t.Errorf("vault FAIL detail %q does not say Vault at %s could not be reached", vr[0].Detail, h.Vault.Addr)
		}
		for _, in := range []string{"slack", "pagerduty", "jira", "store"} {
			for _, r := range rowsOf(rows, in) {
				if r.Status != "OK" {
					t.Errorf("%s: %s %s: Vault being down must not affect it", in, r.Status, r.Detail)
				}
			}
		}
	})

	t.Run("token lacks a capability", func(t *testing.T) {
		// The bot's policy as deployed, minus the grant-issuing path.
		pol, err := h.Vault.Root.Sys().GetPolicy(vaulttest.BotPolicy)
		if err != nil {
			t.Fatal(err)
		}
		createPath := regexp.MustCompile(`(?s)path "auth/token/create/` + vaulttest.TokenRole + `" \{.*?\}`)
		reduced := createPath.ReplaceAllString(pol, "")
		if reduced == pol {
			t.Fatalf("policy %s has no auth/token/create/%s block to remove:\n%s", vaulttest.BotPolicy, vaulttest.TokenRole, pol)
		}
		if err := h.Vault.Root.Sys().PutPolicy("secretbot-bot-no-create", reduced); err != nil {
			t.Fatal(err)
		}
		sec, err := h.Vault.Root.Auth().Token().CreateOrphan(&api.TokenCreateRequest{
			Policies: []string{"secretbot-bot-no-create"}, NoDefaultPolicy: true, TTL: "1h",
		})
		if err != nil {
			t.Fatal(err)
		}
		h.SetEnv("VAULT_TOKEN", sec.Auth.ClientToken)
		defer h.SetEnv("VAULT_TOKEN", h.Vault.BotToken)

		out, errOut, code := h.RunCLI("check")
		t.Logf("check (exit %d):\n%s%s", code, out, errOut)
		if code != 1 {
			t.Errorf("exit status %d, want 1 (a check failed)", code)
		}
		want := "token lacks update on auth/token/create/" + vaulttest.TokenRole
		var fails []checkRow
		for _, r := range checkRows(t, out) {
			if r.Status == "FAIL" {
				fails = append(fails, r)
			}
		}
		if len(fails) != 1 || fails[0].Integration != "vault" || !strings.Contains(fails[0].Detail, want) {
			t.Errorf("FAIL rows = %+v, want exactly one: vault %q", fails, want)
		}
		if strings.Contains(out+errOut, sec.Auth.ClientToken) {
			t.Error("check printed the Vault token")
		}
	})

	t.Run("PagerDuty and Jira unconfigured", func(t *testing.T) {
		h := harness.Start(t, harness.Options{NoRun: true, NoPagerDuty: true, NoJira: true})
		out, errOut, code := h.RunCLI("check")
		t.Logf("check (exit %d):\n%s%s", code, out, errOut)
		if code != 0 {
			t.Errorf("exit status %d, want 0 (skipped integrations are not failures)", code)
		}
		rows := checkRows(t, out)
		for _, c := range []struct{ integration, env, scope string }{
			{"pagerduty", "PAGERDUTY_TOKEN", "platform-ro"}, // oncall and incident evidence
			{"jira", "JIRA_URL", "platform-rw"},             // jira evidence
		} {
			rs := rowsOf(rows, c.integration)
			if len(rs) != 1 || rs[0].Status != "SKIP" {
				t.Errorf("%s rows = %+v, want one SKIP", c.integration, rs)
				continue
			}
			for _, w := range []string{c.env, "disabled", c.scope} {
				if !strings.Contains(rs[0].Detail, w) {
					t.Errorf("%s SKIP detail %q does not mention %q", c.integration, rs[0].Detail, w)
				}
			}
		}
		for _, in := range []string{"slack", "vault", "store"} {
			rs := rowsOf(rows, in)
			if len(rs) == 0 {
				t.Errorf("no row for %s", in)
			}
			for _, r := range rs {
				if r.Status != "OK" {
					t.Errorf("%s: %s %s, want OK", in, r.Status, r.Detail)
				}
			}
		}
		if n := len(h.PD.Calls()) + len(h.Jira.Calls()); n != 0 {
			t.Errorf("check called unconfigured integrations %d times", n)
		}
	})
}
