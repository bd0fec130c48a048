package pagerduty

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/secretbot/secretbot/internal/config"
)

func TestOnCallStatus(t *testing.T) {
	const (
		past   = "2025-03-06T08:00:00+02:00"
		future = "2025-03-07T08:00:00+02:00"
	)
	seed := func(f *fakePD) {
		f.users = []map[string]any{
			pdUser("PMALICE", "Mallory Alice", "malice@example.com"), // substring of the query: must not match
			pdUser("PALICE1", "Alice Ops", "Alice@Example.com"),
			pdUser("PBOB001", "Bob Dev", "bob@example.com"),
		}
		f.oncalls = []map[string]any{
			pdOnCall("PMALICE", "PEP0001", "Platform", 1, past, future),
			pdOnCall("PALICE1", "PEP0001", "Platform", 2, past, future),
			pdOnCall("PALICE1", "PEP0001", "Platform", 1, past, future),
			pdOnCall("PALICE1", "PEP0002", "Payments", 3, past, ""),      // permanent
			pdOnCall("PALICE1", "POTHER1", "Elsewhere", 1, past, future), // not configured
		}
	}
	tests := []struct {
		name     string
		email    string
		mod      func(*config.Config)
		setup    func(*fakePD)
		want     OnCallStatus
		wantErr  error
		policies []string
	}{
		{
			name:  "exact match, case-insensitive, lowest level per policy",
			email: "alice@example.com",
			want: OnCallStatus{UserID: "PALICE1", Name: "Alice Ops", OnCall: true,
				Policies: []string{"Payments (level 3)", "Platform (level 1)"}},
		},
		{
			name:  "max escalation level",
			email: "alice@example.com",
			mod:   func(c *config.Config) { c.PagerDuty.MaxEscalationLevel = 2 },
			want:  OnCallStatus{UserID: "PALICE1", Name: "Alice Ops", OnCall: true, Policies: []string{"Platform (level 1)"}},
		},
		{
			name:  "only higher levels than allowed",
			email: "alice@example.com",
			mod: func(c *config.Config) {
				c.PagerDuty.MaxEscalationLevel = 1
				c.PagerDuty.EscalationPolicies = []string{"PEP0002"}
			},
			want: OnCallStatus{UserID: "PALICE1", Name: "Alice Ops"},
		},
		{
			name:  "known user, not on call",
			email: "bob@example.com",
			want:  OnCallStatus{UserID: "PBOB001", Name: "Bob Dev"},
		},
		{
			name:  "shift not started or already over",
			email: "bob@example.com",
			setup: func(f *fakePD) {
				f.oncalls = append(f.oncalls,
					pdOnCall("PBOB001", "PEP0001", "Platform", 1, future, ""),
					pdOnCall("PBOB001", "PEP0002", "Payments", 1, "2025-03-01T00:00:00Z", "2025-03-06T12:00:00Z"))
			},
			want: OnCallStatus{UserID: "PBOB001", Name: "Bob Dev"},
		},
		{
			name:  "paginated on-calls",
			email: "alice@example.com",
			setup: func(f *fakePD) { f.pageSize = 1 },
			want: OnCallStatus{UserID: "PALICE1", Name: "Alice Ops", OnCall: true,
				Policies: []string{"Payments (level 3)", "Platform (level 1)"}},
		},
		{name: "substring only", email: "lice@example.com", wantErr: ErrUnknownUser},
		{name: "nobody", email: "carol@example.com", wantErr: ErrUnknownUser},
		{name: "not an address", email: "Alice <alice@example.com>", wantErr: ErrUnknownUser},
		{
			name:    "no policies configured",
			email:   "alice@example.com",
			mod:     func(c *config.Config) { c.PagerDuty.EscalationPolicies = nil },
			wantErr: ErrNotConfigured,
		},
		{
			name:  "users lookup rejected",
			email: "alice@example.com",
			setup: func(f *fakePD) {
				f.fail("/users", reply{status: 403, body: `{"error":{"message":"Access Denied","code":2010}}`})
			},
			wantErr: ErrCredentialsRejected,
		},
		{
			name:  "on-calls unavailable",
			email: "alice@example.com",
			setup: func(f *fakePD) {
				f.fail("/oncalls", reply{status: 500}, reply{status: 502}, reply{status: 503})
			},
			wantErr: ErrUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePD(t)
			seed(f)
			if tt.setup != nil {
				tt.setup(f)
			}
			c, _ := testClient(f, tt.mod)
			got, err := c.OnCallStatus(context.Background(), tt.email)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				noSecret(t, err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Entries = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestOnCallEntries(t *testing.T) {
	f := newFakePD(t)
	f.users = []map[string]any{pdUser("PALICE1", "Alice Ops", "alice@example.com")}
	f.oncalls = []map[string]any{pdOnCall("PALICE1", "PEP0001", "Platform", 1, "2025-03-06T08:00:00Z", "2025-03-06T20:00:00Z")}
	c, _ := testClient(f, nil)
	got, err := c.OnCallStatus(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entries) != 1 {
		t.Fatalf("entries %+v", got.Entries)
	}
	e := got.Entries[0]
	if e.PolicyID != "PEP0001" || e.PolicyName != "Platform" || e.Level != 1 || e.End.Hour() != 20 {
		t.Errorf("entry %+v", e)
	}
}
