package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/secretbot/secretbot/e2e/harness"
)

func TestF09_BadConfigListsEveryProblem(t *testing.T) {
	h := harness.Start(t, harness.Options{NoRun: true})
	suffix := make([]byte, 12)
	_, _ = rand.Read(suffix)
	botToken := "xoxb-test-f09-" + hex.EncodeToString(suffix)
	appToken := "xapp-1-A0F09-" + hex.EncodeToString(suffix[:6]) + "-f09"

	// The harness's working configuration, broken in several ways at once.
	b, err := os.ReadFile(h.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	slack := doc["slack"].(map[string]any)
	slack["bot_token"] = botToken // a credential written into the file
	runner := doc["runner"].(map[string]any)
	runner["max_retries"] = 3                // unknown key
	runner["shutdown_timeout"] = "5 minutes" // bad duration
	scopes := doc["scopes"].([]any)
	rw, ro := scopes[0].(map[string]any), scopes[1].(map[string]any)
	delete(rw, "approvers")                                    // evidence has approval, nobody may approve
	ro["evidence"] = []string{"oncall", "incident", "manager"} // not a kind of evidence
	ro["max_ttl"] = "24h"                                      // over vault.token_role_max_ttl (12h)
	ro["description"] = "ask in #sre, token " + appToken       // a credential-shaped value
	if b, err = yaml.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	h.SetEnv("VAULT_ADDR", "") // and the environment lacks VAULT_ADDR

	want := []struct{ key, says string }{
		{"runner.max_retries", ""},
		{"runner.shutdown_timeout", ""},
		{"scopes[0].approvers", ""},
		{"scopes[1].evidence[2]", "manager"},
		{"scopes[1].max_ttl", "token_role_max_ttl"},
		{"slack.bot_token", "SLACK_BOT_TOKEN"},
		{"scopes[1].description", "SLACK_APP_TOKEN"},
		{"VAULT_ADDR", ""},
	}
	for _, sub := range []string{"run", "check"} {
		t.Run(sub, func(t *testing.T) {
			out, errOut, code := h.RunCLI(sub, "--config", path)
			t.Logf("%s (exit %d):\nstdout:\n%s\nstderr:\n%s", sub, code, out, errOut)
			if code != 2 {
				t.Errorf("exit status %d, want 2 (bad configuration)", code)
			}
			lines := strings.Split(errOut, "\n")
			for _, w := range want {
				line := ""
				for _, l := range lines {
					if strings.HasPrefix(strings.TrimPrefix(l, "secretbot: "), w.key+": ") {
						line = l
						break
					}
				}
				if line == "" {
					t.Errorf("no problem listed for %s", w.key)
				} else if !strings.Contains(line, w.says) {
					t.Errorf("the problem for %s does not mention %q: %s", w.key, w.says, line)
				}
			}
			all := out + errOut
			for _, bad := range []string{"goroutine ", "panic", ".go:", "runtime."} {
				if strings.Contains(all, bad) {
					t.Errorf("output has %q, like a stack trace", bad)
				}
			}
			for _, cred := range []string{botToken, appToken} {
				for enc, v := range encodings(cred) {
					if strings.Contains(all, v) {
						t.Errorf("the credential written in the file is echoed (%s)", enc)
					}
				}
			}
			if strings.Contains(all, hex.EncodeToString(suffix[:6])) {
				t.Error("part of a credential written in the file is echoed")
			}
		})
	}
	if n := len(h.Slack.Calls()); n != 0 || h.Slack.Opened() != 0 {
		t.Errorf("a bad configuration still reached Slack (%d calls, %d connections)", n, h.Slack.Opened())
	}
	if _, err := os.Stat(h.DBPath); err == nil {
		t.Error("a bad configuration still created the database")
	}
}
