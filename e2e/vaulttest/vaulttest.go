// Package vaulttest runs a real, in-process Vault (vault.NewTestCluster)
// set up the way deploy/vault/README.md tells an operator to, and hands out
// the bot's credentials: an AppRole role/secret id and a static token, both
// carrying only the secretbot-bot policy.
package vaulttest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/builtin/credential/userpass"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault"
)

// Names the setup uses (they match deploy/vault and secretbot.example.yaml).
const (
	BotPolicy = "secretbot-bot"
	TokenRole = "secretbot"
	KVMount   = "kv"
	// EntityMount stands in for the auth method people log in with (OIDC in
	// production): entity aliases named by e-mail live on it.
	EntityMount = "userpass/"
)

// Vault is a running test Vault.
type Vault struct {
	// Addr is what the bot uses as VAULT_ADDR. It goes through a proxy that
	// Stop and Resume take down and bring back.
	Addr string
	// CACertPath is the cluster CA certificate (PEM), for VAULT_CACERT.
	CACertPath string
	// BotToken is a token with only the secretbot-bot policy, for VAULT_TOKEN.
	BotToken string
	// RoleID and SecretID log in to the AppRole "secretbot" (VAULT_ROLE_ID, VAULT_SECRET_ID).
	RoleID, SecretID string
	// RootToken is the cluster's root token (for leak scans; never give it to the bot).
	RootToken string
	// Root is a root client talking to Vault directly (unaffected by Stop).
	Root *api.Client
	// Cluster is the underlying test cluster.
	Cluster *vault.TestCluster
	// Applied lists the README commands that were run, in order.
	Applied []string

	proxy         *proxy
	personRole    sync.Once
	personRoleErr error
}

// Start runs a one-core Vault cluster, applies deploy/vault/README.md and
// creates the bot's credentials. Everything stops when the test ends.
func Start(t testing.TB) *Vault {
	t.Helper()
	quiet := hclog.NewNullLogger()
	cluster := vault.NewTestCluster(t, &vault.CoreConfig{
		LogicalBackends:    map[string]logical.Factory{"kv": kv.Factory},
		CredentialBackends: map[string]logical.Factory{"approle": approle.Factory, "userpass": userpass.Factory},
		Logger:             quiet,
	}, &vault.TestClusterOptions{HandlerFunc: vaulthttp.Handler, NumCores: 1, Logger: quiet})
	cluster.Start()
	t.Cleanup(cluster.Cleanup)
	core := cluster.Cores[0]
	vault.TestWaitActive(t, core.Core)

	root, err := core.Client.Clone()
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	root.SetToken(cluster.RootToken)

	v := &Vault{Root: root, RootToken: cluster.RootToken, Cluster: cluster}
	v.CACertPath = filepath.Join(t.TempDir(), "vault-ca.pem")
	if err := os.WriteFile(v.CACertPath, cluster.CACertPEM, 0o600); err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	v.proxy, err = newProxy(core.Listeners[0].Address.String())
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	t.Cleanup(v.proxy.close)
	v.Addr = "https://" + v.proxy.addr

	out := v.applyREADME(t)
	v.RoleID, v.SecretID = out["role_id"], out["secret_id"]
	if v.RoleID == "" || v.SecretID == "" {
		t.Fatalf("vaulttest: deploy/vault/README.md did not print role_id and secret_id (got %v)", keys(out))
	}
	v.BotToken = v.newBotToken(t)
	if err := root.Sys().EnableAuthWithOptions(EntityMount, &api.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatalf("vaulttest: enable %s: %v", EntityMount, err)
	}
	return v
}

// newBotToken makes a static token for VAULT_TOKEN use: an orphan with only
// the bot policy, so tests prove the policy is enough on its own.
func (v *Vault) newBotToken(t testing.TB) string {
	t.Helper()
	sec, err := v.Root.Auth().Token().CreateOrphan(&api.TokenCreateRequest{
		Policies: []string{BotPolicy}, NoDefaultPolicy: true, TTL: "768h", DisplayName: "secretbot-e2e",
	})
	if err != nil {
		t.Fatalf("vaulttest: create bot token: %v", err)
	}
	return sec.Auth.ClientToken
}

// Client returns a new client for Addr (through the proxy) with token set.
func (v *Vault) Client(t testing.TB, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = v.Addr
	cfg.MaxRetries = 0
	if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: v.CACertPath}); err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	c.SetToken(token)
	return c
}

// NewSecretID issues another secret id for the AppRole "secretbot".
func (v *Vault) NewSecretID(t testing.TB) string {
	t.Helper()
	sec, err := v.Root.Logical().Write("auth/approle/role/"+TokenRole+"/secret-id", nil)
	if err != nil {
		t.Fatalf("vaulttest: new secret id: %v", err)
	}
	return sec.Data["secret_id"].(string)
}

// Stop makes Vault unreachable: connections to Addr are refused and open
// ones are cut. Root keeps working.
func (v *Vault) Stop() { v.proxy.stop() }

// Resume makes Vault reachable again at the same Addr.
func (v *Vault) Resume() error { return v.proxy.resume() }

// Seal seals the core: every request answers 503 "Vault is sealed".
func (v *Vault) Seal(t testing.TB) {
	t.Helper()
	v.Cluster.Cores[0].Seal(t)
}

// Unseal unseals the core and waits until it is active again.
func (v *Vault) Unseal(t testing.TB) {
	t.Helper()
	core := v.Cluster.Cores[0]
	v.Cluster.UnsealCore(t, core)
	vault.TestWaitActive(t, core.Core)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, err := v.Root.Auth().Token().LookupSelfWithContext(ctx); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("vaulttest: vault not serving after unseal")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
