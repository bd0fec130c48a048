package vault

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/secretbot/secretbot/internal/check"
	"github.com/secretbot/secretbot/internal/config"
)

func TestTokenAccessorsAndLookupToken(t *testing.T) {
	f := newFakeVault(t)
	c := loggedIn(t, f)
	ctx := context.Background()

	// Without sudo on auth/token/accessors: permission denied, never an
	// empty list.
	if accs, err := c.TokenAccessors(ctx); !errors.Is(err, ErrPermissionDenied) || accs != nil {
		t.Fatalf("without sudo: %v, %v", accs, err)
	}

	f.mu.Lock()
	f.caps["auth/token/accessors"] = []string{"list", "sudo"}
	grant := f.addToken(&fakeToken{accessor: "acc-grant", policies: []string{"default", "platform-ro"}, ttl: 3600, orphan: true,
		role: "secretbot", meta: map[string]string{"grant": "GK3D9QX2A"}})
	f.mu.Unlock()
	accs, err := c.TokenAccessors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(accs, "acc-grant") || len(accs) < 3 { // the static token, the AppRole login, the grant's
		t.Fatalf("accessors %v", accs)
	}
	for _, r := range f.requests() {
		if r.Path == "auth/token/accessors" {
			assertNoCredential(t, "the request", r.Path+r.Method)
		}
	}

	info, ok, err := c.LookupToken(ctx, "acc-grant")
	if err != nil || !ok {
		t.Fatalf("lookup: %v %v", ok, err)
	}
	if info.Role != "secretbot" || info.Path != "auth/token/create/secretbot" || info.Meta["grant"] != "GK3D9QX2A" ||
		!info.CreationTime.Equal(grant.created.Truncate(1e9).UTC()) {
		t.Errorf("info %+v", info)
	}
	if _, ok, err := c.LookupToken(ctx, "acc-nonesuch"); ok || err != nil {
		t.Errorf("gone accessor: ok %v, err %v; want not ok, no error", ok, err)
	}
	f.mu.Lock()
	f.sealed = true
	f.mu.Unlock()
	if _, ok, err := c.LookupToken(ctx, "acc-grant"); ok || !errors.Is(err, ErrUnavailable) {
		t.Errorf("sealed: ok %v, err %v; want an error (never \"gone\")", ok, err)
	}
	if _, err := c.TokenAccessors(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("sealed list: %v", err)
	}
}

// With vault.reconcile.full_scan the check names the sudo permission the
// scan needs, and says when it is there.
func TestCheckFullScanPermission(t *testing.T) {
	f := newFakeVault(t)
	c := newTestClient(t, f, config.Credentials{VaultToken: testBotToken})
	c.cfg.Vault.Reconcile.FullScan = true
	rs := c.Check(context.Background())
	for _, want := range []string{"token lacks list on auth/token/accessors", "token lacks sudo on auth/token/accessors",
		"vault.reconcile.full_scan is on but the token may not list auth/token/accessors: apply deploy/vault/secretbot-reconcile.hcl (see deploy/vault/README.md)"} {
		if !slices.Contains(rs, check.Result{Integration: "vault", Status: check.Fail, Detail: want}) {
			t.Errorf("no %q in %+v", want, rs)
		}
	}
	f.mu.Lock()
	f.caps["auth/token/accessors"] = []string{"list", "sudo"}
	f.mu.Unlock()
	rs = c.Check(context.Background())
	for _, r := range rs {
		if r.Status == check.Fail {
			t.Errorf("with the reconcile policy: %+v", r)
		}
	}
	if !slices.Contains(rs, check.Result{Integration: "vault", Status: check.OK, Detail: "vault.reconcile.full_scan: the token may list auth/token/accessors (sudo)"}) {
		t.Errorf("the check does not say the scan may run: %+v", rs)
	}
}
