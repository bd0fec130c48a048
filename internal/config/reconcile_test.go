package config

import (
	"testing"
	"time"
)

func TestReconcileKeys(t *testing.T) {
	file := func(every string) string {
		return `
slack:
  security_channel: C0123ABC
vault:
  token_role: secretbot
  token_role_max_ttl: 12h
  reconcile:
    every: ` + every + `
    full_scan: true
scopes:` + roScope
	}
	cfg, err := Load(writeFile(t, file("2m")), withEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Vault.Reconcile.Every.D() != 2*time.Minute || !cfg.Vault.Reconcile.FullScan {
		t.Fatalf("reconcile %+v", cfg.Vault.Reconcile)
	}
	for _, bad := range []string{"0s", "2s", "2d", "soon"} {
		_, err := Load(writeFile(t, file(bad)), withEnv(nil))
		if ps := problemsOf(t, err); !hasProblem(ps, "vault.reconcile.every", "") {
			t.Errorf("every %s: no problem on vault.reconcile.every in\n%v", bad, err)
		}
	}
}
