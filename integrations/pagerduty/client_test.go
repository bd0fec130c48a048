package pagerduty

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/secretbot/secretbot/internal/check"
	"github.com/secretbot/secretbot/internal/config"
)

func TestCheck(t *testing.T) {
	oncallScope := config.Scope{Name: "platform-ro", Evidence: []string{config.EvidenceOnCall, config.EvidenceIncident}}
	tests := []struct {
		name  string
		mod   func(*config.Config)
		setup func(*fakePD)
		want  []string // "STATUS substring" per result
	}{
		{
			name: "not configured",
			mod:  func(c *config.Config) { c.Creds.PagerDutyToken = "" },
			want: []string{"SKIP PagerDuty not configured: scopes needing oncall/incident are disabled"},
		},
		{
			name: "all good",
			want: []string{"OK API key accepted (2 abilities)", "OK escalation policy PEP0001 (Platform) readable",
				"OK escalation policy PEP0002 (Payments) readable"},
		},
		{
			name: "wrong token",
			mod:  func(c *config.Config) { c.Creds.PagerDutyToken = "pd-test-wrong" },
			want: []string{"FAIL credentials rejected (HTTP 401): check PAGERDUTY_TOKEN"},
		},
		{
			name: "unknown policy",
			mod:  func(c *config.Config) { c.PagerDuty.EscalationPolicies = []string{"PEP0001", "PNOPE99"} },
			want: []string{"OK API key", "OK escalation policy PEP0001", "FAIL escalation policy PNOPE99 not found (HTTP 404)"},
		},
		{
			name: "policy id that is not an id",
			mod:  func(c *config.Config) { c.PagerDuty.EscalationPolicies = []string{"../users"} },
			want: []string{"OK API key", `FAIL escalation policy "../users" is not a PagerDuty id`},
		},
		{
			name: "no policies, nobody needs them",
			mod:  func(c *config.Config) { c.PagerDuty.EscalationPolicies = nil },
			want: []string{"OK API key", "SKIP no escalation policies configured"},
		},
		{
			name: "no policies, a scope needs them",
			mod: func(c *config.Config) {
				c.PagerDuty.EscalationPolicies = nil
				c.Scopes = []config.Scope{oncallScope}
			},
			want: []string{"OK API key", "FAIL no escalation policies configured (pagerduty.escalation_policies): nobody can pass"},
		},
		{
			name:  "server keeps failing",
			setup: func(f *fakePD) { f.fail("/abilities", reply{status: 503}, reply{status: 503}, reply{status: 503}) },
			want:  []string{"FAIL pagerduty: list abilities: PagerDuty server error (HTTP 503)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePD(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			c, _ := testClient(f, tt.mod)
			got := c.Check(context.Background())
			if len(got) != len(tt.want) {
				t.Fatalf("got %d results %+v, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				status, sub, _ := strings.Cut(w, " ")
				if got[i].Integration != "pagerduty" || got[i].Status != status || !strings.Contains(got[i].Detail, sub) {
					t.Errorf("result %d = %+v, want %s containing %q", i, got[i], status, sub)
				}
				noSecret(t, got[i].Detail)
			}
			if tt.name == "not configured" && check.Failed(got) {
				t.Error("SKIP must not count as a failure")
			}
		})
	}
}

func TestNotConfiguredCalls(t *testing.T) {
	c := New(&config.Config{}, nil)
	if _, err := c.OnCallStatus(context.Background(), "a@example.com"); err != ErrNotConfigured {
		t.Errorf("OnCallStatus: %v", err)
	}
	if _, err := c.Incident(context.Background(), "PABC123"); err != ErrNotConfigured {
		t.Errorf("Incident: %v", err)
	}
}

func TestClientPrintsNoCredential(t *testing.T) {
	f := newFakePD(t)
	c, _ := testClient(f, nil)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%+v", *c)} {
		noSecret(t, s)
	}
}
