package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
	"github.com/secretbot/secretbot/e2e/vaulttest"
)

func TestF11_NoCredentialInLogs(t *testing.T) {
	t.Run("the scanner finds what it looks for", func(t *testing.T) {
		tok := "hvs.CAESIFakeTokenForTheScannerSelfTest"
		for name, text := range map[string]string{
			"as is":        "token=" + tok,
			"JSON":         `{"t":"` + tok + `"}`,
			"base64":       base64.StdEncoding.EncodeToString([]byte(tok)),
			"Basic auth":   "Basic " + base64.StdEncoding.EncodeToString([]byte("bot@lumi.test:"+tok)),
			"Basic auth 2": "Basic " + base64.StdEncoding.EncodeToString([]byte("b@lumi.test:"+tok)),
			"Basic auth 3": "Basic " + base64.URLEncoding.EncodeToString([]byte("bo@lumi.test:"+tok)),
			"base64 run":   base64.StdEncoding.EncodeToString([]byte(tok + ":and more after it")),
		} {
			if len(findLeaks([]string{tok}, map[string]string{name: text})) == 0 {
				t.Errorf("%s: not found in %q", name, text)
			}
		}
		if got := findLeaks([]string{tok}, map[string]string{"clean": "nothing to see " + tok[:7]}); len(got) != 0 {
			t.Errorf("false positive: %v", got)
		}
	})

	h := harness.Start(t, harness.Options{AppRole: true, NoRun: true})
	// The bot reaches Vault through a tap that records every token Vault
	// hands it, so the scan knows the tokens obtained at runtime.
	tap := newVaultTap(t, h)
	h.SetEnv("VAULT_ADDR", tap.srv.URL)
	h.SetEnv("VAULT_CACERT", tap.caPath)
	h.StartBot()
	if err := h.WaitReady(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WaitLog(func(e map[string]any) bool {
		return e["msg"] == "vault login ok" && e["method"] == "approle"
	}, wait); err != nil {
		t.Fatalf("the bot did not log in to Vault with AppRole: %v", err)
	}
	tokens := tap.Tokens()
	if len(tokens) == 0 {
		t.Fatal("the tap saw no token from the bot's AppRole login")
	}
	// It is the bot's token: the bot policy, obtained through AppRole.
	sec, err := h.Vault.Root.Auth().Token().Lookup(tokens[0])
	if err != nil {
		t.Fatalf("look up the bot's runtime token: %v", err)
	}
	if pol := fmt.Sprint(sec.Data["policies"]); !strings.Contains(pol, vaulttest.BotPolicy) || sec.Data["path"] != "auth/approle/login" {
		t.Fatalf("the tapped token is not the bot's AppRole token: policies %s, path %v", pol, sec.Data["path"])
	}
	if !slices.ContainsFunc(h.LogEntries(), func(e map[string]any) bool { return e["level"] == "DEBUG" }) {
		t.Fatal("the bot does not log at debug level: the scan would prove little")
	}

	outputs := map[string]string{}
	ask := func(who harness.Person, text string) fakeslack.Response {
		t.Helper()
		_, url := command(t, h, who, text)
		return answer(t, h, url)
	}
	ask(harness.Alice, "help")
	ask(harness.Bob, "whoami")
	ask(harness.Eve, "frobnicate --now")
	ask(harness.Gus, "whoami") // a guest: refused

	// PagerDuty fails: whoami says so.
	h.PD.SetFailure("/users", 500)
	if r := ask(harness.Carol, "whoami"); !strings.Contains(r.Text, "could not check PagerDuty") {
		t.Errorf("whoami with PagerDuty failing: %s", r.Text)
	}
	h.PD.SetFailure("/users", 0)

	// Slack's users.info fails: nothing is done, the person is told.
	h.Slack.SetFailure("users.info", 500)
	if r := ask(harness.Dave, "whoami"); !strings.Contains(r.Text, "could not confirm who you are") {
		t.Errorf("whoami with users.info failing: %s", r.Text)
	}
	h.Slack.SetFailure("users.info", 0)

	out, errOut, code := h.RunCLI("check")
	if code != 0 {
		t.Errorf("check exit %d:\n%s%s", code, out, errOut)
	}
	outputs["check stdout"], outputs["check stderr"] = out, errOut

	h.Vault.Stop()
	out, errOut, code = h.RunCLI("check")
	if code != 1 {
		t.Errorf("check with Vault down: exit %d, want 1:\n%s%s", code, out, errOut)
	}
	outputs["check (Vault down) stdout"], outputs["check (Vault down) stderr"] = out, errOut
	ask(harness.Alice, "whoami")
	if err := h.Vault.Resume(); err != nil {
		t.Fatal(err)
	}

	if err := h.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("stop: %v", err)
	}
	if _, err := h.Slack.WaitMessage(func(m fakeslack.Message) bool {
		return fakeslack.InChannel(harness.SecurityChannel)(m) && strings.Contains(m.Text, "--checkpoint")
	}, wait); err != nil {
		t.Errorf("no shutdown checkpoint: %v", err)
	}

	// Everything captured.
	texts := map[string]string{"bot output": h.Output()}
	for k, v := range outputs {
		texts[k] = v
	}
	var b strings.Builder
	for _, m := range h.Slack.Messages() {
		fmt.Fprintf(&b, "%s %s %s\n", m.Channel, m.Text, m.Blocks)
	}
	texts["Slack messages"] = b.String()
	b.Reset()
	for _, r := range h.Slack.Responses("") {
		fmt.Fprintf(&b, "%s %s\n", r.URL, r.Raw)
	}
	texts["Slack responses"] = b.String()
	b.Reset()
	for _, c := range h.Slack.Calls() {
		form, _ := json.Marshal(c.Form)
		body, _ := json.Marshal(c.JSON)
		fmt.Fprintf(&b, "%s %s %s\n", c.Method, form, body)
	}
	texts["Slack Web API calls"] = b.String()
	b.Reset()
	for _, v := range h.Slack.Views() {
		raw, _ := json.Marshal(v.Raw)
		fmt.Fprintf(&b, "%s %s %s\n", v.ID, v.Blocks, raw)
	}
	texts["Slack views"] = b.String()
	texts["database"] = dumpDB(t, h.DBPath)

	// Each capture holds what it should, so an empty one cannot pass.
	for where, want := range map[string]string{
		"bot output":          "vault login ok",
		"check stdout":        "INTEGRATION",
		"Slack messages":      "--checkpoint",
		"Slack responses":     harness.Bob.Email,
		"Slack Web API calls": "users.info",
		"database":            "audit_events:",
	} {
		if !strings.Contains(texts[where], want) {
			t.Errorf("%s lacks %q: the capture is incomplete", where, want)
		}
	}

	tokens = tap.Tokens()
	if len(tokens) < 2 {
		t.Errorf("the tap saw %d tokens, want the bot's and check's logins", len(tokens))
	}
	secrets := append(h.Secrets(), tokens...)
	for _, leak := range findLeaks(secrets, texts) {
		t.Error(leak)
	}
	t.Logf("scanned %d credentials (%d Vault tokens obtained at runtime) in %d captures", len(secrets), len(tokens), len(texts))
}
