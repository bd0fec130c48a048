package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/secretbot/secretbot/e2e/harness"
)

// Exposure scenario of issue 4: R13.

// withBillingRO adds billing-ro: on-call SREs during an incident, a policy
// path that does not cover platform/.
func withBillingRO(doc map[string]any) {
	doc["scopes"] = append(doc["scopes"].([]any), map[string]any{
		"name":               "billing-ro",
		"description":        "Read-only on the billing secrets during an incident",
		"tier":               "read-only",
		"vault_policies":     []string{"platform-ro"},
		"max_ttl":            "4h",
		"eligible":           map[string]any{"groups": []string{harness.SREGroup}},
		"evidence":           []string{"oncall", "incident"},
		"ends_with_incident": true,
		"delivery":           "wrapped-token",
		"kv_paths":           []string{"billing/*"},
	})
}

func TestR13_ExposureListsGrantsCoveringPathSinceLastRotation(t *testing.T) {
	w := startR(t, "R13", harness.Rotation{}, harness.Options{EditConfig: withBillingRO})
	w.AddApprovedTicket("SEC-1301", harness.Alice, harness.PaymentsDB, ticketExpiry())
	w.PD.AddOnCall(harness.Dave.PD, harness.EscalationPolicy, 1)

	// Before the rotation: one grant ended, one still live.
	ended := w.request(harness.Carol, "platform-ro")
	w.reply(harness.Carol, "revoke "+ended, ended)
	w.waitGrant(ended, wait, "revoked", func(g grantRow) bool { return g.State == "revoked" && !g.EndedAt.IsZero() })
	live := w.request(harness.Carol, "platform-ro")

	// The rotation.
	r, _ := w.startRotation(harness.Alice, harness.PaymentsDB, "--ticket SEC-1301")
	w.confirm(harness.Bob, r.ID, "rotation_staging")
	w.confirm(harness.Sam, r.ID, "rotation_production")
	w.waitRotation(harness.PaymentsDB, "completed", func(r rotationRow) bool { return r.State == "completed" })
	s, _ := w.secretRow(harness.PaymentsDB)
	rotated := s.LastRotatedAt
	if rotated.IsZero() {
		t.Fatal("the registry has no last rotation")
	}

	// After it: one grant of a covering scope (Dave: Carol holds one
	// already), one of a scope that does not cover platform/payments-db.
	after := w.request(harness.Dave, "platform-ro")
	billing := w.request(harness.Carol, "billing-ro")

	// The facts, as stored.
	if g := w.grant(ended); !g.EndedAt.Before(rotated) {
		t.Fatalf("grant %s ended at %v, not before the rotation at %v", ended, g.EndedAt, rotated)
	}
	if g := w.grant(live); !g.IssuedAt.Before(rotated) || !g.EndedAt.IsZero() {
		t.Fatalf("grant %s: issued %v, ended %v; want issued before the rotation (%v) and live", live, g.IssuedAt, g.EndedAt, rotated)
	}
	for _, id := range []string{after, billing} {
		if g := w.grant(id); !g.IssuedAt.After(rotated) {
			t.Fatalf("grant %s issued at %v, not after the rotation at %v", id, g.IssuedAt, rotated)
		}
	}

	ans := w.reply(harness.Alice, "exposure "+harness.PaymentsDB, "Who could read")
	got := grantIDRe.FindAllString(ans.Text, -1)
	slices.Sort(got)
	want := []string{live, after}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("exposure lists grants %v, want exactly %v (live across the rotation, and issued after it); not %s (ended before) nor %s (billing-ro)\n%s",
			got, want, ended, billing, ans.Text)
	}
	mustContain(t, "the exposure", ans.Text, "`"+harness.PaymentsDB+"`", rotated.Format("2006-01-02 15:04 UTC")+" (last rotation)",
		"platform-rw, platform-ro", "<@"+harness.Carol.Slack+">", "<@"+harness.Dave.Slack+">")
	if strings.Contains(ans.Text, "billing-ro") {
		t.Errorf("the exposure names billing-ro, which does not cover %s", harness.PaymentsDBPath)
	}
	if es := w.secretEvents("secret.exposure", harness.PaymentsDB); len(es) == 0 || es[len(es)-1].actor != harness.Alice.Slack {
		t.Errorf("the exposure report is not audited")
	}
}
