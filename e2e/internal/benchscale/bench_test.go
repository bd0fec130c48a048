package benchscale

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// Benchmarks of the scale figures' hot paths, for profiling:
//
//	go test -run - -bench Inventory -cpuprofile cpu.out ./internal/benchscale/
//	go tool pprof -top cpu.out

func BenchmarkInventoryAnswer10k(b *testing.B) {
	ctx := context.Background()
	d, err := openInventory(ctx, filepath.Join(b.TempDir(), "inv.db"), 10000)
	if err != nil {
		b.Fatal(err)
	}
	defer d.close()
	b.ResetTimer()
	for b.Loop() {
		if err := d.answer(ctx, 10000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSweep1k(b *testing.B) {
	ctx := context.Background()
	db, svc, _, err := openGrants(ctx, filepath.Join(b.TempDir(), "grants.db"), 1000)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.ResetTimer()
	for b.Loop() {
		if err := svc.Sweep(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// auditLog fills a log of n events for the audit benchmarks.
func auditLog(b *testing.B, n int) *auditDB {
	ctx := context.Background()
	a, err := openAudit(ctx, filepath.Join(b.TempDir(), "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.db.Close() })
	if err := a.fill(ctx, n); err != nil {
		b.Fatal(err)
	}
	return a
}

func BenchmarkAuditVerify100k(b *testing.B) {
	a := auditLog(b, 100_000)
	b.ResetTimer()
	for b.Loop() {
		if err := a.verify(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(a.n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAuditAppend100k(b *testing.B) {
	a := auditLog(b, 100_000)
	b.ResetTimer()
	for b.Loop() {
		if err := a.appendOne(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuditQuery100k(b *testing.B) {
	a := auditLog(b, 100_000)
	b.ResetTimer()
	for b.Loop() {
		if err := a.query(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// The first daily run over a fresh 10k inventory (setup untimed).
func BenchmarkReminderScan10k(b *testing.B) {
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		d, err := openInventory(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("inv%d.db", i)), 10000)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := d.reminderScan(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		d.close()
	}
}
