package fakepd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/secretbot/secretbot/e2e/fakepd"
	"github.com/secretbot/secretbot/e2e/internal/fault"
)

func seeded(t *testing.T) (*fakepd.Server, *pagerduty.Client) {
	s := fakepd.New(t)
	s.AddService("PSVC1", "platform-api")
	s.AddEscalationPolicy("PLUMI01", "Platform", "PSVC1")
	carol := s.AddUser(fakepd.User{ID: "PCAROL", Name: "Carol SRE", Email: "carol@lumi.test"})
	s.AddUser(fakepd.User{ID: "PCAROLINE", Name: "Caroline", Email: "xcarol@lumi.test"})
	s.AddOnCall(carol.ID, "PLUMI01", 1)
	s.AddOnCall("PCAROLINE", "POTHER", 2)
	s.AddIncident(fakepd.Incident{ID: "PINC1", Title: "db down", ServiceID: "PSVC1", PolicyID: "PLUMI01", Assignees: []string{"PCAROL"}})
	return s, pagerduty.NewClient(s.Token(), pagerduty.WithAPIEndpoint(s.URL))
}

func TestReadsDecodeWithGoPagerDuty(t *testing.T) {
	s, c := seeded(t)
	ctx := context.Background()

	ab, err := c.ListAbilitiesWithContext(ctx)
	if err != nil || len(ab.Abilities) == 0 {
		t.Fatalf("abilities = %v, %v", ab, err)
	}
	ep, err := c.GetEscalationPolicyWithContext(ctx, "PLUMI01", nil)
	if err != nil || ep.Name != "Platform" || len(ep.Services) != 1 || len(ep.EscalationRules) != 1 ||
		ep.EscalationRules[0].Targets[0].ID != "PCAROL" {
		t.Errorf("policy = %+v, %v", ep, err)
	}
	users, err := c.ListUsersWithContext(ctx, pagerduty.ListUsersOptions{Query: "carol@lumi.test"})
	if err != nil || len(users.Users) != 2 { // substring: xcarol@lumi.test matches too
		t.Errorf("users = %+v, %v", users, err)
	}
	ocs, err := c.ListOnCallsWithContext(ctx, pagerduty.ListOnCallOptions{UserIDs: []string{"PCAROL"}, EscalationPolicyIDs: []string{"PLUMI01"}})
	if err != nil || len(ocs.OnCalls) != 1 || ocs.OnCalls[0].EscalationLevel != 1 || ocs.OnCalls[0].User.ID != "PCAROL" ||
		ocs.OnCalls[0].EscalationPolicy.ID != "PLUMI01" || ocs.OnCalls[0].Start == "" {
		t.Errorf("oncalls = %+v, %v", ocs, err)
	}
	s.EndOnCall("PCAROL", "PLUMI01")
	if ocs, err := c.ListOnCallsWithContext(ctx, pagerduty.ListOnCallOptions{UserIDs: []string{"PCAROL"}}); err != nil || len(ocs.OnCalls) != 0 {
		t.Errorf("after EndOnCall = %+v, %v", ocs, err)
	}

	for _, id := range []string{"PINC1", "1"} {
		in, err := c.GetIncidentWithContext(ctx, id)
		if err != nil || in.ID != "PINC1" || in.Status != "triggered" || in.Service.ID != "PSVC1" ||
			in.EscalationPolicy.ID != "PLUMI01" || len(in.Assignments) != 1 || in.Assignments[0].Assignee.ID != "PCAROL" {
			t.Errorf("incident %s = %+v, %v", id, in, err)
		}
	}
	open, err := c.ListIncidentsWithContext(ctx, pagerduty.ListIncidentsOptions{Statuses: []string{"triggered", "acknowledged"}, UserIDs: []string{"PCAROL"}})
	if err != nil || len(open.Incidents) != 1 {
		t.Errorf("open incidents = %+v, %v", open, err)
	}
	s.ResolveIncident("PINC1")
	in, err := c.GetIncidentWithContext(ctx, "PINC1")
	if err != nil || in.Status != "resolved" || in.ResolvedAt == "" {
		t.Errorf("resolved = %+v, %v", in, err)
	}
	if open, _ := c.ListIncidentsWithContext(ctx, pagerduty.ListIncidentsOptions{Statuses: []string{"triggered"}}); len(open.Incidents) != 0 {
		t.Errorf("resolved incident still listed as triggered")
	}
	if len(s.CallsTo("/incidents")) != 5 {
		t.Errorf("incident calls = %d", len(s.CallsTo("/incidents")))
	}
}

func TestErrorsAndFaults(t *testing.T) {
	s, c := seeded(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		client *pagerduty.Client
		setup  func()
		status int
	}{
		{"bad token", pagerduty.NewClient("pd-test-wrong", pagerduty.WithAPIEndpoint(s.URL)), func() {}, 401},
		{"unknown incident", c, func() {}, 404},
		{"rate limited", c, func() { s.SetFault("/incidents/", fault.Fault{Status: 429, Times: 1}) }, 429},
		{"server error", c, func() { s.SetFailure("/incidents/", 500) }, 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			defer s.SetFailure("/incidents/", 0)
			id := "PINC1"
			if tc.status == 404 {
				id = "PNOPE"
			}
			_, err := tc.client.GetIncidentWithContext(ctx, id)
			var apiErr pagerduty.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || !apiErr.APIError.Valid {
				t.Errorf("err = %#v", err)
			}
		})
	}
	// A one-shot fault is used up.
	if _, err := c.GetIncidentWithContext(ctx, "PINC1"); err != nil {
		t.Errorf("after faults: %v", err)
	}
	s.SetDelay("/abilities", 300*time.Millisecond)
	start := time.Now()
	if _, err := c.ListAbilitiesWithContext(ctx); err != nil || time.Since(start) < 300*time.Millisecond {
		t.Errorf("delay not applied: %v after %v", err, time.Since(start))
	}
}
