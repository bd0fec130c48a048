package app

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/metrics"
)

// The loop runs a pass at once, counts what it found, and wakes the
// outbox when a pass left reports in it.
func TestReconcileLoopCountsAndWakes(t *testing.T) {
	st, vc := accesstest.NewStore(), accesstest.NewVault()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	svc := &access.Service{Config: accesstest.Lumi(), Store: st, Vault: vc, Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	vc.AddToken("accstray", "secretbot", nil, now.Add(-time.Hour))
	vc.AddToken("accother", "ops", nil, now.Add(-time.Hour))
	m := newReconcileMetrics(metrics.NewRegistry())
	var woken atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		reconcileLoop(ctx, &access.Reconciler{Service: svc, Vault: vc, FullScan: true}, time.Hour, m, svc.Log, func() { woken.Add(1) })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for m.runs.Value("ok") < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if m.runs.Value("ok") != 1 || m.tokens.Value("revoked") != 1 || m.tokens.Value("kept") != 0 || woken.Load() != 1 {
		t.Fatalf("runs %v, revoked %v, kept %v, woken %d", m.runs.Value("ok"), m.tokens.Value("revoked"), m.tokens.Value("kept"), woken.Load())
	}
	if alive, _ := vc.AccessorAlive(ctx, "accother"); !alive {
		t.Error("a token of another role was revoked")
	}
}
