package benchscale

import (
	"context"
	"testing"
)

// The smoke run measures every figure, each positive.
func TestRunSmoke(t *testing.T) {
	figs, err := Run(context.Background(), true, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Figure{}
	for _, f := range figs {
		if _, dup := got[f.Name]; dup {
			t.Errorf("figure %s twice", f.Name)
		}
		got[f.Name] = f
		if f.Unit == "" || f.What == "" {
			t.Errorf("figure %s: unit %q, what %q", f.Name, f.Unit, f.What)
		}
		t.Logf("%-26s %12.3f %-9s %s", f.Name, f.Value, f.Unit, f.What)
	}
	for _, name := range []string{
		"inventory_5k_ms", "inventory_10k_ms", "inventory_10k_cpu_ms", "inventory_growth",
		"reminder_scan_5k_ms", "reminder_scan_10k_ms", "reminder_scan_growth",
		"sweep_500_ms", "sweep_1k_ms", "sweep_growth",
		"audit_append_per_s_100k", "audit_append_per_s", "audit_append_growth", "audit_fill_per_s", "audit_fill_growth",
		"audit_verify_per_s_100k", "audit_verify_per_s", "audit_verify_cpu_per_s", "audit_verify_growth",
		"audit_query_100k_ms", "audit_query_1m_ms", "audit_query_growth",
	} {
		f, ok := got[name]
		if !ok {
			t.Errorf("figure %s missing", name)
			continue
		}
		if !(f.Value > 0) {
			t.Errorf("figure %s = %v, want > 0", name, f.Value)
		}
	}
	if len(got) != 22 {
		t.Errorf("%d figures, want 22", len(got))
	}
}
