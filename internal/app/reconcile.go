package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/secretbot/secretbot/integrations/vault"
	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/metrics"
)

// vaultDrift adapts the Vault client to the reconciler.
type vaultDrift struct{ c *vault.Client }

func (v vaultDrift) GroupHasMember(ctx context.Context, group, email string) (bool, error) {
	ok, err := v.c.GroupHasMember(ctx, group, email)
	return ok, vaultErr(err)
}

func (v vaultDrift) TokenAccessors(ctx context.Context) ([]string, error) {
	accs, err := v.c.TokenAccessors(ctx)
	return accs, vaultErr(err)
}

func (v vaultDrift) LookupToken(ctx context.Context, accessor string) (access.TokenFacts, error) {
	info, ok, err := v.c.LookupToken(ctx, accessor)
	if err != nil {
		return access.TokenFacts{}, vaultErr(err)
	}
	if !ok {
		return access.TokenFacts{}, access.ErrTokenGone
	}
	return access.TokenFacts{Accessor: info.Accessor, Role: info.Role, Path: info.Path, Meta: info.Meta, CreatedAt: info.CreationTime}, nil
}

// reconcileMetrics counts what the reconciler found.
type reconcileMetrics struct {
	runs, grants, tokens *metrics.CounterVec
}

func newReconcileMetrics(r *metrics.Registry) *reconcileMetrics {
	return &reconcileMetrics{
		runs:   r.Counter("secretbot_vault_reconcile_runs_total", "Drift reconciler passes, by result (ok, incomplete: something could not be checked).", "result"),
		grants: r.Counter("secretbot_vault_reconcile_grants_total", "Live grants checked against Vault, by result (live, gone, unknown).", "result"),
		tokens: r.Counter("secretbot_vault_reconcile_tokens_total", "Tokens of the token role seen by the full scan, by result (kept, revoked).", "result"),
	}
}

func (m *reconcileMetrics) record(rep access.ReconcileReport, err error) {
	result := "ok"
	if err != nil {
		result = "incomplete"
	}
	m.runs.Inc(result)
	m.grants.Add(float64(rep.Checked-len(rep.Gone)-rep.Unknown), "live")
	m.grants.Add(float64(len(rep.Gone)), "gone")
	m.grants.Add(float64(rep.Unknown), "unknown")
	m.tokens.Add(float64(rep.Scanned-len(rep.Revoked)), "kept")
	m.tokens.Add(float64(len(rep.Revoked)), "revoked")
}

// reconcileLoop runs r at once (after the start-up sweep) and then every
// interval. A pass that could not check everything is logged and counted;
// the next pass tries again.
func reconcileLoop(ctx context.Context, r *access.Reconciler, every time.Duration, m *reconcileMetrics, log *slog.Logger, wake func()) {
	if every <= 0 {
		every = config.DefaultReconcileEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rep, err := r.Reconcile(ctx)
		if ctx.Err() != nil {
			return
		}
		m.record(rep, err)
		attrs := []any{"checked", rep.Checked, "gone", len(rep.Gone), "unknown", rep.Unknown,
			"full_scan", r.FullScan, "scanned", rep.Scanned, "revoked", len(rep.Revoked)}
		switch {
		case err != nil:
			log.Warn("vault reconcile incomplete; nothing concluded from what could not be checked, retried next pass", append(attrs, "err", err)...)
		case len(rep.Gone) > 0 || len(rep.Revoked) > 0:
			log.Warn("vault reconcile found drift", attrs...)
		default:
			log.Debug("vault reconcile ok", attrs...)
		}
		if len(rep.Gone) > 0 || len(rep.Revoked) > 0 {
			wake() // the reports are in the outbox
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
