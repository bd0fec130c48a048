package pagerduty

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseIncidentRef(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"PABC123", "PABC123"},
		{"  Q0RIJJZL24RC6W ", "Q0RIJJZL24RC6W"},
		{"#1234", "1234"},
		{"1234", "1234"},
		{"https://acme.pagerduty.com/incidents/PABC123", "PABC123"},
		{"https://acme.eu.pagerduty.com/incidents/PABC123/", "PABC123"},
		{"http://localhost:8080/incidents/PABC123?utm=x", "PABC123"},
		{"", ""},
		{"#0", ""},
		{"#12a", ""},
		{"pabc123", ""},
		{"PABC123/../../users", ""},
		{"P", ""},
		{"https://acme.pagerduty.com/services/PABC123", ""},
		{"https://acme.pagerduty.com/incidents/1234", ""},
		{"ftp://acme.pagerduty.com/incidents/PABC123", ""},
		{"https:///incidents/PABC123", ""},
		{strings.Repeat("P", 400), ""},
		{"PABC123\u200b", ""},
	}
	for _, tt := range tests {
		got, err := ParseIncidentRef(tt.in)
		if tt.want == "" {
			if !errors.Is(err, ErrInvalidRef) {
				t.Errorf("ParseIncidentRef(%q) = %q, %v; want ErrInvalidRef", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseIncidentRef(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestIncident(t *testing.T) {
	seed := func(f *fakePD) {
		f.incident["PINC001"] = map[string]any{
			"id": "PINC001", "type": "incident", "summary": "[#1234] Database on fire", "incident_number": 1234,
			"title": "Database on fire", "status": "acknowledged", "urgency": "high",
			"created_at":        "2025-03-06T10:00:00Z",
			"html_url":          "https://acme.pagerduty.com/incidents/PINC001",
			"service":           map[string]any{"id": "PSVC001", "type": "service_reference", "summary": "db"},
			"escalation_policy": map[string]any{"id": "PEP0001", "type": "escalation_policy_reference", "summary": "Platform"},
			"assignments": []any{
				map[string]any{"at": "2025-03-06T10:01:00Z", "assignee": map[string]any{"id": "PALICE1", "type": "user_reference"}},
				map[string]any{"at": "2025-03-06T10:02:00Z", "assignee": map[string]any{"id": "PBOB001", "type": "user_reference"}},
			},
		}
	}
	want := Incident{ID: "PINC001", Number: 1234, Title: "Database on fire", Status: "acknowledged",
		ServiceID: "PSVC001", EscalationPolicyID: "PEP0001", AssigneeIDs: []string{"PALICE1", "PBOB001"},
		URL: "https://acme.pagerduty.com/incidents/PINC001"}
	tests := []struct {
		name       string
		ref        string
		setup      func(*fakePD)
		wantErr    error
		wantDetail string
	}{
		{name: "by id", ref: "PINC001"},
		{name: "by number with hash", ref: "#1234"},
		{name: "by number", ref: "1234"},
		{name: "by URL", ref: "https://acme.pagerduty.com/incidents/PINC001"},
		{name: "unknown id", ref: "PNOPE01", wantErr: ErrNotFound, wantDetail: "incident PNOPE01 not found (HTTP 404)"},
		{name: "unknown number", ref: "#77", wantErr: ErrNotFound, wantDetail: "incident #77 not found"},
		{name: "bad ref", ref: "drop table", wantErr: ErrInvalidRef},
		{name: "server error", ref: "PINC001", setup: func(f *fakePD) {
			f.fail("/incidents/PINC001", reply{status: 500}, reply{status: 500}, reply{status: 500})
		}, wantErr: ErrUnavailable},
		{name: "429 then ok", ref: "PINC001", setup: func(f *fakePD) {
			f.fail("/incidents/PINC001", reply{status: 429, retryAfter: "1"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePD(t)
			seed(f)
			if tt.setup != nil {
				tt.setup(f)
			}
			c, _ := testClient(f, nil)
			got, err := c.Incident(context.Background(), tt.ref)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantDetail) {
					t.Errorf("err %q, want %q", err, tt.wantDetail)
				}
				noSecret(t, err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			if !got.Open() {
				t.Error("acknowledged incident should be open")
			}
		})
	}
}

func TestIncidentMismatchedReply(t *testing.T) {
	f := newFakePD(t)
	// The fake finds it by number but the reply names another number.
	f.incident["PX"] = map[string]any{"id": "PX00001", "incident_number": 5}
	f.fail("/incidents/6", reply{status: 200, body: `{"incident":{"id":"PX00001","incident_number":5}}`})
	c, _ := testClient(f, nil)
	_, err := c.Incident(context.Background(), "#6")
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Detail, "different incident") {
		t.Fatalf("err = %v", err)
	}
}
