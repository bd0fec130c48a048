package vaulttest_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"

	"github.com/secretbot/secretbot/e2e/vaulttest"
)

func TestBotCredentialsAndTokenRole(t *testing.T) {
	start := time.Now()
	v := vaulttest.Start(t)
	t.Logf("vault up and set up in %v; applied:\n  %s", time.Since(start), strings.Join(v.Applied, "\n  "))
	ctx := context.Background()
	bot := v.Client(t, v.BotToken)

	self, err := bot.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	policies, _ := self.TokenPolicies()
	if !slices.Equal(policies, []string{vaulttest.BotPolicy}) || v.BotToken == v.RootToken {
		t.Errorf("bot token policies = %v", policies)
	}

	// A grant token through the role: orphan, not renewable, grant policies only.
	grant, err := bot.Auth().Token().CreateWithRoleWithContext(ctx, &api.TokenCreateRequest{
		Policies: []string{"platform-ro"}, TTL: "1h", Metadata: map[string]string{"grant": "g1"}}, vaulttest.TokenRole)
	if err != nil {
		t.Fatal(err)
	}
	info, err := v.Root.Auth().Token().LookupAccessorWithContext(ctx, grant.Auth.Accessor)
	if err != nil {
		t.Fatal(err)
	}
	if info.Data["orphan"] != true || info.Data["renewable"] != false || !slices.Contains(grant.Auth.Policies, "platform-ro") {
		t.Errorf("grant token = %v", info.Data)
	}
	if _, err := bot.Auth().Token().CreateWithRoleWithContext(ctx, &api.TokenCreateRequest{
		Policies: []string{vaulttest.BotPolicy}}, vaulttest.TokenRole); err == nil {
		t.Error("the role issued a token with the bot's own policy")
	}
	if _, err := bot.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{"platform-rw"}}); err == nil {
		t.Error("the bot minted a token outside the role")
	}
	if err := bot.Auth().Token().RevokeAccessorWithContext(ctx, grant.Auth.Accessor); err != nil {
		t.Errorf("revoke accessor: %v", err)
	}

	// The AppRole login from the README works and carries the bot policy.
	c := v.Client(t, "")
	auth, err := approle.NewAppRoleAuth(v.RoleID, &approle.SecretID{FromString: v.SecretID})
	if err != nil {
		t.Fatal(err)
	}
	login, err := c.Auth().Login(ctx, auth)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(login.Auth.Policies, vaulttest.BotPolicy) {
		t.Errorf("approle policies = %v", login.Auth.Policies)
	}

	// KV v2 at kv/ is ready for the bot.
	if _, err := bot.KVv2(vaulttest.KVMount).Put(ctx, "platform/db", map[string]any{"password": "s3cret"}); err != nil {
		t.Errorf("kv put: %v", err)
	}
}

func TestEntityGroupDelivery(t *testing.T) {
	v := vaulttest.Start(t)
	ctx := context.Background()
	id := v.AddPerson(t, "alice@lumi.test")
	alice := v.LoginAs(t, "alice@lumi.test")
	caps, err := alice.Sys().CapabilitiesSelfWithContext(ctx, "kv/data/platform/db")
	if err != nil || !slices.Equal(caps, []string{"deny"}) {
		t.Fatalf("before the group: %v, %v", caps, err)
	}
	bot := v.Client(t, v.BotToken)
	acc, err := bot.Logical().ReadWithContext(ctx, "sys/auth")
	if err != nil || acc.Data[vaulttest.EntityMount] == nil {
		t.Fatalf("sys/auth = %v, %v", acc, err)
	}
	if _, err := bot.Logical().WriteWithContext(ctx, "identity/group", map[string]any{
		"name": "secretbot-g1", "type": "internal", "policies": []string{"platform-rw"}, "member_entity_ids": []string{id}}); err != nil {
		t.Fatal(err)
	}
	caps, err = alice.Sys().CapabilitiesSelfWithContext(ctx, "kv/data/platform/db")
	if err != nil || !slices.Contains(caps, "update") {
		t.Errorf("in the group: %v, %v", caps, err)
	}
	if _, err := bot.Logical().WriteWithContext(ctx, "identity/group", map[string]any{
		"name": "secretbot-g2", "type": "internal", "policies": []string{vaulttest.BotPolicy}, "member_entity_ids": []string{id}}); err == nil {
		t.Error("the bot created a group with its own policy")
	}
	if _, err := bot.Logical().DeleteWithContext(ctx, "identity/group/name/secretbot-g1"); err != nil {
		t.Fatal(err)
	}
	if caps, _ := alice.Sys().CapabilitiesSelfWithContext(ctx, "kv/data/platform/db"); !slices.Equal(caps, []string{"deny"}) {
		t.Errorf("after the group: %v", caps)
	}
}

func TestStopResumeSealUnseal(t *testing.T) {
	v := vaulttest.Start(t)
	ctx := context.Background()
	bot := v.Client(t, v.BotToken)
	lookup := func() error { _, err := bot.Auth().Token().LookupSelfWithContext(ctx); return err }

	v.Stop()
	if err := lookup(); err == nil {
		t.Error("vault reachable while stopped")
	}
	if err := v.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := lookup(); err != nil {
		t.Errorf("after resume: %v", err)
	}
	v.Seal(t)
	if err := lookup(); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Errorf("sealed: %v", err)
	}
	v.Unseal(t)
	if err := lookup(); err != nil {
		t.Errorf("after unseal: %v", err)
	}
}
