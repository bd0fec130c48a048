package vault

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/secretbot/secretbot/internal/check"
	"github.com/secretbot/secretbot/internal/config"
)

func TestCheck(t *testing.T) {
	approle := config.Credentials{VaultRoleID: testRoleID, VaultSecretID: testSecretID}
	static := config.Credentials{VaultToken: testBotToken}
	tests := []struct {
		name   string
		creds  config.Credentials
		setup  func(f *fakeVault, cfg *config.Config)
		wantOK bool
		want   []string // FAIL details expected (substring match); with wantOK, OK details
	}{
		{name: "healthy approle", creds: approle, wantOK: true, want: []string{
			"Vault 1.21.4 at http://127.0.0.1",
			"token (approle) policies: default, secretbot-bot; ttl 1h, renewable",
			"token has all 22 capabilities the bot needs on 16 paths",
			"kv/ is a KV version 2 mount",
			"token role secretbot: orphan, not renewable, explicit max ttl 12h, allows platform-ro, platform-rw",
		}},
		{name: "healthy static token, no entity-group scope", creds: static,
			setup:  func(f *fakeVault, cfg *config.Config) { cfg.Scopes = cfg.Scopes[:1] },
			wantOK: true, want: []string{"token (token) policies: default, secretbot-bot; ttl 768h, renewable",
				"token has all 16 capabilities the bot needs on 11 paths"}},
		{name: "sealed", creds: approle, setup: func(f *fakeVault, _ *config.Config) { f.sealed = true },
			want: []string{" is sealed"}},
		{name: "bad secret id", creds: config.Credentials{VaultRoleID: testRoleID, VaultSecretID: "secret-test-wrong0"},
			want: []string{"login (approle) failed: HTTP 400: invalid role or secret ID"}},
		{name: "revoked static token", creds: config.Credentials{VaultToken: "hvs.TESTgone000000000000000000"},
			want: []string{"token lookup-self failed (token): HTTP 403: permission denied; invalid token"}},
		{name: "root token", creds: static, setup: func(f *fakeVault, _ *config.Config) {
			f.tokens[testBotToken].policies = []string{"root"}
		}, want: []string{"bot token must not be root"}},
		{name: "missing capabilities", creds: approle, setup: func(f *fakeVault, _ *config.Config) {
			delete(f.caps, "auth/token/create/secretbot")
			f.caps["kv/metadata/secretbot-check"] = []string{"read"}
			f.caps["kv/destroy/secretbot-check"] = []string{"deny"}
		}, want: []string{
			"token lacks update on auth/token/create/secretbot",
			"token lacks create on kv/metadata/secretbot-check",
			"token lacks update on kv/metadata/secretbot-check",
			"token lacks patch on kv/metadata/secretbot-check",
			"token lacks update on kv/destroy/secretbot-check",
		}},
		{name: "capabilities-self denied", creds: approle, setup: func(f *fakeVault, _ *config.Config) {
			f.status["sys/capabilities-self"] = http.StatusForbidden
		}, want: []string{"token lacks update on sys/capabilities-self"}},
		{name: "kv v1", creds: approle, setup: func(f *fakeVault, _ *config.Config) {
			f.kvMount["options"] = map[string]any{"version": "1"}
		}, want: []string{`mount kv/ is kv version "1", want kv version 2`}},
		{name: "no kv mount", creds: approle, setup: func(f *fakeVault, _ *config.Config) { f.kvMount = nil },
			want: []string{"no KV mount at kv/ visible to the token: HTTP 403"}},
		{name: "role missing", creds: approle, setup: func(f *fakeVault, _ *config.Config) { f.role = nil },
			want: []string{"token role secretbot does not exist"}},
		{name: "role unreadable", creds: approle, setup: func(f *fakeVault, _ *config.Config) {
			f.status["auth/token/roles/secretbot"] = http.StatusForbidden
		}, want: []string{"token lacks read on auth/token/roles/secretbot"}},
		{name: "role misconfigured", creds: approle, setup: func(f *fakeVault, cfg *config.Config) {
			f.role["orphan"] = false
			f.role["renewable"] = true
			f.role["token_explicit_max_ttl"] = 28800
			f.role["token_type"] = "batch"
			f.role["allowed_policies"] = []string{"platform-rw"}
		}, want: []string{
			"token role secretbot: orphan must be true",
			"token role secretbot: renewable must be false",
			"token role secretbot: token_explicit_max_ttl 8h is below vault.token_role_max_ttl 12h",
			"token role secretbot: token_type is batch",
			"token role secretbot: does not allow policy platform-ro (scope platform-ro)",
		}},
		{name: "role without max ttl", creds: approle, setup: func(f *fakeVault, _ *config.Config) {
			f.role["token_explicit_max_ttl"] = 0
		}, want: []string{"token role secretbot: token_explicit_max_ttl is not set (want 12h)"}},
		{name: "role allows by glob", creds: approle, setup: func(f *fakeVault, _ *config.Config) {
			f.role["allowed_policies"] = []string{}
			f.role["allowed_policies_glob"] = []string{"platform-*"}
		}, wantOK: true},
		{name: "role disallows", creds: approle, setup: func(f *fakeVault, _ *config.Config) {
			f.role["disallowed_policies"] = []string{"platform-ro"}
		}, want: []string{"does not allow policy platform-ro (scope platform-ro)"}},
		{name: "disabled scope ignored", creds: approle, setup: func(f *fakeVault, cfg *config.Config) {
			cfg.Scopes = append(cfg.Scopes, config.Scope{Name: "payments-ro", VaultPolicies: []string{"payments-ro"}, Disabled: true})
		}, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVault(t)
			c := newTestClient(t, f, tt.creds)
			if tt.setup != nil {
				f.mu.Lock()
				tt.setup(f, c.cfg)
				f.mu.Unlock()
			}
			rs := c.Check(context.Background())
			var sb strings.Builder
			check.Render(&sb, rs)
			t.Logf("\n%s", sb.String())
			if check.Failed(rs) == tt.wantOK {
				t.Fatalf("failed = %v, want %v", check.Failed(rs), !tt.wantOK)
			}
			status := check.Fail
			if tt.wantOK {
				status = check.OK
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(rs, func(r check.Result) bool {
					return r.Status == status && strings.Contains(r.Detail, w)
				}) {
					t.Errorf("no %s result with %q", status, w)
				}
			}
			for _, r := range rs {
				if r.Integration != "vault" {
					t.Errorf("integration %q", r.Integration)
				}
				assertNoCredential(t, "check detail", r.Detail, tt.creds.VaultSecretID, tt.creds.VaultToken, testRoleID)
			}
		})
	}
}

// The exact wording other tools and people grep for.
func TestCheckLackingCapabilityWording(t *testing.T) {
	f := newFakeVault(t)
	delete(f.caps, "auth/token/create/secretbot")
	c := newTestClient(t, f, config.Credentials{VaultToken: testBotToken})
	rs := c.Check(context.Background())
	if !slices.Contains(rs, check.Result{Integration: "vault", Status: check.Fail, Detail: "token lacks update on auth/token/create/secretbot"}) {
		t.Errorf("results: %+v", rs)
	}
}

func TestCheckUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	c, err := New(testConfig(addr, config.Credentials{VaultToken: testBotToken}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.api.SetMaxRetries(0)
	rs := c.Check(context.Background())
	if len(rs) != 1 || rs[0].Status != check.Fail || !strings.HasPrefix(rs[0].Detail, "cannot reach Vault at "+addr+": ") ||
		!strings.Contains(rs[0].Detail, "connection refused") {
		t.Fatalf("results: %+v", rs)
	}
	assertNoCredential(t, "check detail", rs[0].Detail)
}

// The health probe goes to the root namespace without a token; everything
// else carries the configured namespace.
func TestCheckNamespace(t *testing.T) {
	f := newFakeVault(t)
	c := newTestClient(t, f, config.Credentials{VaultToken: testBotToken})
	c.cfg.Vault.Namespace = "lumi/platform"
	c.api.SetNamespace("lumi/platform")
	if rs := c.Check(context.Background()); check.Failed(rs) {
		t.Fatalf("check failed: %+v", rs)
	}
	for _, r := range f.requests() {
		wantNS, wantToken := "lumi/platform", true
		if r.Path == "sys/health" {
			wantNS, wantToken = "", false
		}
		if r.Namespace != wantNS || (r.Token != "") != wantToken {
			t.Errorf("%s: namespace %q, token sent %v", r.Path, r.Namespace, r.Token != "")
		}
	}
}
