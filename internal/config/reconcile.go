package config

import "time"

// Reconcile configures the Vault drift reconciler (vault.reconcile).
type Reconcile struct {
	// Every is how often every live grant is checked against Vault
	// (default 10m; also once at start).
	Every Duration `yaml:"every"`
	// FullScan also lists every token (sudo on auth/token/accessors, see
	// deploy/vault/secretbot-reconcile.hcl) and revokes those the token role
	// created that no live grant holds. Off by default.
	FullScan bool `yaml:"full_scan"`
}

// Reconcile interval bounds: often enough to matter, rarely enough that
// Vault is not hammered (each pass looks every live grant up).
const (
	DefaultReconcileEvery = 10 * time.Minute
	minReconcileEvery     = 5 * time.Second
	maxReconcileEvery     = 24 * time.Hour
)

func applyReconcileDefaults(c *Config, seen map[string]bool) {
	if !seen["vault.reconcile.every"] {
		c.Vault.Reconcile.Every = Duration(DefaultReconcileEvery)
	}
}

func validateReconcile(c *Config, p *collector) {
	if d := c.Vault.Reconcile.Every.D(); d < minReconcileEvery || d > maxReconcileEvery {
		p.add("vault.reconcile.every", "must be between 5s and 24h", DurationAccepted+", from 5s to 24h")
	}
}
