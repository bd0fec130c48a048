package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
	"github.com/secretbot/secretbot/e2e/vaulttest"
)

// callLog collects the Web API methods called on every fake Slack of the
// suite (fed by fakeslack.ObserveCalls in TestMain).
type callLog struct {
	mu   sync.Mutex
	seen map[string]int
}

var suiteCalls = &callLog{seen: map[string]int{}}

func (l *callLog) add(c fakeslack.Call) {
	if c.Method == "" {
		return
	}
	l.mu.Lock()
	l.seen[c.Method]++
	l.mu.Unlock()
}

// methods returns the methods called so far, sorted.
func (l *callLog) methods() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.seen))
	for m := range l.seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// scopeRule is one method's entry in docs/slack-scopes.yaml.
type scopeRule struct {
	Token  string   `yaml:"token"`
	Scopes []string `yaml:"scopes"`
	Why    string   `yaml:"why"`
}

// appTokenScopes are the scopes the app-level token (xapp-) is generated
// with (docs/slack-app.md); it is not installed through the manifest.
var appTokenScopes = []string{"connections:write"}

// loadScopeRules reads docs/slack-scopes.yaml and manifest.yaml's bot scopes.
func loadScopeRules(root string) (map[string]scopeRule, []string, error) {
	var doc struct {
		Methods map[string]scopeRule `yaml:"methods"`
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "slack-scopes.yaml"))
	if err != nil {
		return nil, nil, err
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("docs/slack-scopes.yaml: %w", err)
	}
	var man struct {
		OAuthConfig struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
	}
	b, err = os.ReadFile(filepath.Join(root, "manifest.yaml"))
	if err != nil {
		return nil, nil, err
	}
	if err := yaml.Unmarshal(b, &man); err != nil {
		return nil, nil, fmt.Errorf("manifest.yaml: %w", err)
	}
	if len(doc.Methods) == 0 || len(man.OAuthConfig.Scopes.Bot) == 0 {
		return nil, nil, fmt.Errorf("docs/slack-scopes.yaml has %d methods and manifest.yaml %d bot scopes: nothing to check against",
			len(doc.Methods), len(man.OAuthConfig.Scopes.Bot))
	}
	return doc.Methods, man.OAuthConfig.Scopes.Bot, nil
}

// manifestGaps names every method that no rule maps to a scope, or whose
// scopes the manifest (bot token) or the app-level token lacks.
func manifestGaps(methods []string, rules map[string]scopeRule, botScopes []string) []string {
	var gaps []string
	for _, m := range methods {
		r, ok := rules[m]
		if !ok {
			gaps = append(gaps, fmt.Sprintf("%s: no scope mapping in docs/slack-scopes.yaml", m))
			continue
		}
		switch r.Token {
		case "bot":
			for _, s := range r.Scopes {
				if !slices.Contains(botScopes, s) {
					gaps = append(gaps, fmt.Sprintf("%s: needs bot scope %s, which manifest.yaml (oauth_config.scopes.bot) lacks", m, s))
				}
			}
		case "app":
			for _, s := range r.Scopes {
				if !slices.Contains(appTokenScopes, s) {
					gaps = append(gaps, fmt.Sprintf("%s: needs app-level scope %s; the app-level token has only %v", m, s, appTokenScopes))
				}
			}
		default:
			gaps = append(gaps, fmt.Sprintf("%s: docs/slack-scopes.yaml gives token %q (want bot or app)", m, r.Token))
		}
	}
	return gaps
}

// manifestGapsFromRepo checks methods against the repository's files.
func manifestGapsFromRepo(methods []string) ([]string, error) {
	rules, bot, err := loadScopeRules(vaulttest.RepoRoot())
	if err != nil {
		return nil, err
	}
	return manifestGaps(methods, rules, bot), nil
}

// TestF13_ManifestCoversCalls checks that every Web API method the bot has
// called on any fake Slack so far in the suite is allowed by a scope in
// manifest.yaml, per docs/slack-scopes.yaml. It drives a bot of its own
// (connect, commands, check, shutdown checkpoint) so it means something when
// run alone; TestMain repeats the check once every test has finished.
func TestF13_ManifestCoversCalls(t *testing.T) {
	rules, botScopes, err := loadScopeRules(vaulttest.RepoRoot())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("checker catches gaps", func(t *testing.T) {
		gaps := manifestGaps([]string{"chat.postMessage", "chat.scheduleMessage"}, rules, botScopes)
		if len(gaps) != 1 || !strings.HasPrefix(gaps[0], "chat.scheduleMessage: no scope mapping") {
			t.Errorf("an unmapped method: gaps = %q, want exactly chat.scheduleMessage named", gaps)
		}
		withReactions := map[string]scopeRule{"reactions.add": {Token: "bot", Scopes: []string{"reactions:write"}}}
		gaps = manifestGaps([]string{"reactions.add"}, withReactions, botScopes)
		if len(gaps) != 1 || !strings.Contains(gaps[0], "reactions.add") || !strings.Contains(gaps[0], "reactions:write") {
			t.Errorf("a scope the manifest lacks: gaps = %q", gaps)
		}
		noChatWrite := slices.DeleteFunc(slices.Clone(botScopes), func(s string) bool { return s == "chat:write" })
		gaps = manifestGaps([]string{"chat.postMessage", "users.info"}, rules, noChatWrite)
		if len(gaps) != 1 || !strings.Contains(gaps[0], "chat.postMessage") || !strings.Contains(gaps[0], "chat:write") {
			t.Errorf("a manifest without chat:write: gaps = %q", gaps)
		}
		odd := map[string]scopeRule{
			"apps.connections.open": {Token: "app", Scopes: []string{"authorizations:read"}},
			"auth.test":             {Token: "user"},
		}
		if gaps = manifestGaps([]string{"apps.connections.open", "auth.test"}, odd, botScopes); len(gaps) != 2 {
			t.Errorf("an app-token scope not granted and an unknown token kind: gaps = %q", gaps)
		}
	})

	t.Run("every mapped method is granted", func(t *testing.T) {
		all := make([]string, 0, len(rules))
		for m := range rules {
			all = append(all, m)
		}
		sort.Strings(all)
		for _, g := range manifestGaps(all, rules, botScopes) {
			t.Error(g)
		}
	})

	// A bot of this test's own, so the suite-wide set is never empty.
	h := harness.Start(t, harness.Options{})
	for _, u := range []struct {
		who  harness.Person
		text string
	}{{harness.Alice, "whoami"}, {harness.Eve, "help"}, {harness.Bob, "frobnicate"}} {
		_, url := command(t, h, u.who, u.text)
		answer(t, h, url)
	}
	if _, _, code := h.RunCLI("check"); code != 0 {
		t.Errorf("check exit %d", code)
	}
	if err := h.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := h.Slack.WaitMessage(func(m fakeslack.Message) bool {
		return fakeslack.InChannel(harness.SecurityChannel)(m) && strings.Contains(m.Text, "--checkpoint")
	}, wait); err != nil {
		t.Fatalf("no shutdown checkpoint: %v", err)
	}

	seen := suiteCalls.methods()
	for _, c := range h.Slack.Calls() {
		if !slices.Contains(seen, c.Method) {
			t.Fatalf("the suite recorder missed %s, which this test's bot called: is TestMain's fakeslack.ObserveCalls hooked up?", c.Method)
		}
	}
	t.Logf("Web API methods the bot called so far in the suite: %v", seen)
	for _, g := range manifestGaps(seen, rules, botScopes) {
		t.Error(g)
	}
}
