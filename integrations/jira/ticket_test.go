package jira

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/config"
)

func TestTicket(t *testing.T) {
	eet := time.FixedZone("", 2*3600)
	wantBase := func(f *fakeJira) Ticket {
		return Ticket{
			Key: "SEC-12", Project: "SEC", Summary: "Access to platform-rw", Status: "Approved", StatusCategory: "done",
			URL:   f.srv.URL + "/browse/SEC-12",
			Owner: "olga@acme.example", Scope: "platform-rw", Justification: "Rotate the payments DB credentials after INC-7",
			Expiry: time.Date(2025, 3, 10, 18, 0, 0, 0, eet),
			StatusChanges: []Change{
				{From: "Open", To: "Waiting for approval", AuthorAccountID: "A-REQ", AuthorName: "Alice Ops",
					AuthorEmail: "alice@acme.example", At: time.Date(2025, 3, 5, 9, 5, 0, 0, eet)},
				{From: "Waiting for approval", To: "Approved", AuthorAccountID: "A-LEAD", AuthorName: "Lena Lead",
					AuthorEmail: "lena@acme.example", At: time.Date(2025, 3, 6, 10, 0, 0, 0, eet)},
			},
		}
	}
	lead := approver("A-LEAD", "Lena Lead", "lena@acme.example", "approved")
	wantLead := Approver{AccountID: "A-LEAD", Name: "Lena Lead", Email: "lena@acme.example", Decision: "approved"}
	tests := []struct {
		name       string
		key        string
		mod        func(*config.Config)
		setup      func(*fakeJira)
		edit       func(*Ticket)
		wantErr    error
		wantDetail string
	}{
		{name: "not a service desk request", key: "SEC-12"},
		{
			name:  "service management approvals",
			key:   "SEC-12",
			setup: func(f *fakeJira) { f.approvals["SEC-12"] = []map[string]any{seedApproval("1", "approved", lead)} },
			edit: func(t *Ticket) {
				t.ServiceDesk = true
				t.Approvals = []Approval{{ID: "1", Name: "Security Lead approval", FinalDecision: "approved",
					Approvers: []Approver{wantLead}, CompletedAt: time.Date(2025, 3, 6, 8, 0, 0, 0, time.UTC)}}
			},
		},
		{
			name: "approvals over two pages, numeric id, no epoch",
			key:  "SEC-12",
			setup: func(f *fakeJira) {
				f.pageSize = 1
				second := seedApproval("2", "pending", approver("A-LEAD", "Lena Lead", "lena@acme.example", "pending"))
				second["id"] = 2
				first := seedApproval("1", "declined", lead)
				delete(first["completedDate"].(map[string]any), "epochMillis")
				f.approvals["SEC-12"] = []map[string]any{first, second}
			},
			edit: func(t *Ticket) {
				t.ServiceDesk = true
				t.Approvals = []Approval{
					{ID: "1", Name: "Security Lead approval", FinalDecision: "declined", Approvers: []Approver{wantLead},
						CompletedAt: time.Date(2025, 3, 6, 10, 0, 0, 0, eet)},
					{ID: "2", Name: "Security Lead approval", FinalDecision: "pending",
						Approvers: []Approver{{AccountID: "A-LEAD", Name: "Lena Lead", Email: "lena@acme.example", Decision: "pending"}}},
				}
			},
		},
		{
			name:  "service desk with no approvals",
			key:   "SEC-12",
			setup: func(f *fakeJira) { f.approvals["SEC-12"] = []map[string]any{} },
			edit:  func(t *Ticket) { t.ServiceDesk = true },
		},
		{
			name: "fields missing and a bad expiry",
			key:  "SEC-12",
			setup: func(f *fakeJira) {
				fs := f.issues["SEC-12"]["fields"].(map[string]any)
				delete(fs, "customfield_10050")
				fs["customfield_10051"] = nil
				fs["customfield_10053"] = "next week"
			},
			edit: func(t *Ticket) {
				t.Owner, t.Scope, t.Expiry = "", "", time.Time{}
				t.Problems = []string{`expiry (customfield_10053) "next week" is not a date (accepted: 2006-01-02 or 2006-01-02T15:04:05.000-0700)`}
			},
		},
		{
			name: "standard fields: assignee as owner, duedate as expiry",
			key:  "SEC-12",
			mod: func(c *config.Config) {
				c.Jira.Fields.Owner, c.Jira.Fields.Expiry = "assignee", "duedate"
			},
			setup: func(f *fakeJira) {
				fs := f.issues["SEC-12"]["fields"].(map[string]any)
				fs["assignee"] = jiraUser("A-ASG", "Asko Assignee", "")
				fs["duedate"] = "2025-03-09"
			},
			edit: func(t *Ticket) {
				t.Owner, t.Expiry = "Asko Assignee", time.Date(2025, 3, 9, 0, 0, 0, 0, time.UTC)
			},
		},
		{
			name: "moved to another project",
			key:  "SEC-12",
			setup: func(f *fakeJira) {
				f.issues["SEC-12"]["key"] = "OPS-3"
				f.issues["SEC-12"]["fields"].(map[string]any)["project"] = map[string]any{"id": "10001", "key": "OPS", "name": "Ops"}
			},
			edit: func(t *Ticket) {
				t.Key, t.Project, t.URL = "OPS-3", "OPS", strings.Replace(t.URL, "SEC-12", "OPS-3", 1)
				t.Problems = []string{`ticket is OPS-3 in project "OPS", not in SEC`}
			},
		},
		{name: "unknown ticket", key: "SEC-404", wantErr: ErrNotFound,
			wantDetail: "jira: get ticket SEC-404: not found or not visible to the bot (HTTP 404): Issue does not exist"},
		{name: "other project", key: "OPS-12", wantErr: ErrInvalidKey},
		{name: "malformed key", key: "SEC-12/../../myself", wantErr: ErrInvalidKey},
		{name: "no project configured", key: "SEC-12", mod: func(c *config.Config) { c.Jira.Project = "" }, wantErr: ErrNotConfigured},
		{
			name:  "429 with Retry-After, then 200",
			key:   "SEC-12",
			setup: func(f *fakeJira) { f.fail("/rest/api/2/issue/SEC-12", reply{status: 429, retryAfter: "1"}) },
		},
		{
			name: "500 three times",
			key:  "SEC-12",
			setup: func(f *fakeJira) {
				f.fail("/rest/api/2/issue/SEC-12", reply{status: 500}, reply{status: 500, body: "<html/>", contentTyp: "text/html"}, reply{status: 500})
			},
			wantErr: ErrUnavailable, wantDetail: "Jira server error (HTTP 500)",
		},
		{
			name:       "credentials rejected",
			key:        "SEC-12",
			mod:        func(c *config.Config) { c.Creds.JiraAPIToken = "jira-test-revoked" },
			wantErr:    ErrCredentialsRejected,
			wantDetail: "credentials rejected (HTTP 401)",
		},
		{
			name: "approvals unreadable fails the whole ticket",
			key:  "SEC-12",
			setup: func(f *fakeJira) {
				f.fail("/rest/servicedeskapi/request/SEC-12/approval", reply{status: 403, body: `{"errorMessages":["not an agent"]}`})
			},
			wantErr: ErrCredentialsRejected, wantDetail: "get approvals of SEC-12: access denied (HTTP 403)",
		},
		{
			name:       "reply with an unparseable date",
			key:        "SEC-12",
			setup:      func(f *fakeJira) { f.issues["SEC-12"]["fields"].(map[string]any)["created"] = "2025-03-05T09:00:00Z" },
			wantDetail: "unexpected reply",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeJira(t)
			seedIssue(f)
			if tt.setup != nil {
				tt.setup(f)
			}
			c, _ := testClient(t, f, tt.mod)
			got, err := c.Ticket(context.Background(), tt.key)
			if tt.wantErr != nil || tt.wantDetail != "" {
				if err == nil {
					t.Fatalf("no error, got %+v", got)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
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
			want := wantBase(f)
			if tt.edit != nil {
				tt.edit(&want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestTicketRequest(t *testing.T) {
	f := newFakeJira(t)
	seedIssue(f)
	c, _ := testClient(t, f, nil)
	if _, err := c.Ticket(context.Background(), "SEC-12"); err != nil {
		t.Fatal(err)
	}
	get := f.calls("/rest/api/2/issue/SEC-12")
	if len(get) != 1 || !strings.Contains(get[0].rawQuery, "expand=changelog") ||
		!strings.Contains(get[0].rawQuery, "customfield_10053") {
		t.Errorf("issue request %+v", get)
	}
	ap := f.calls("/rest/servicedeskapi/request/SEC-12/approval")
	if len(ap) != 1 || ap[0].header.Get("X-ExperimentalApi") != "opt-in" {
		t.Errorf("approval request %+v", ap)
	}
}

// The issue and its approvals are read at once: each request is held until
// the other has arrived too, so reading them one after the other would
// wait out the hold and fail.
func TestTicketReadsIssueAndApprovalsAtOnce(t *testing.T) {
	f := newFakeJira(t)
	seedIssue(f)
	f.approvals["SEC-12"] = []map[string]any{}
	var (
		mu       sync.Mutex
		arrived  = map[string]bool{}
		both     = make(chan struct{})
		timedOut atomic.Bool
	)
	f.before = func(r *http.Request) {
		mu.Lock()
		if !arrived[r.URL.Path] {
			arrived[r.URL.Path] = true
			if len(arrived) == 2 {
				close(both)
			}
		}
		mu.Unlock()
		select {
		case <-both:
		case <-time.After(10 * time.Second):
			timedOut.Store(true)
		}
	}
	c, _ := testClient(t, f, nil)
	tk, err := c.Ticket(context.Background(), "SEC-12")
	if err != nil {
		t.Fatal(err)
	}
	if timedOut.Load() {
		t.Errorf("the issue and its approvals were read one after the other (requests: %v)", arrived)
	}
	if tk.Key != "SEC-12" || !tk.ServiceDesk {
		t.Errorf("ticket %+v", tk)
	}
}

// A failed issue read is the answer, whatever the approvals read gives.
func TestTicketIssueErrorWins(t *testing.T) {
	f := newFakeJira(t)
	seedIssue(f)
	f.fail("/rest/api/2/issue/SEC-12", reply{status: 404, body: `{"errorMessages":["Issue does not exist"]}`})
	f.fail("/rest/servicedeskapi/request/SEC-12/approval", reply{status: 403, body: `{"errorMessages":["not an agent"]}`})
	c, _ := testClient(t, f, nil)
	if _, err := c.Ticket(context.Background(), "SEC-12"); !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v, want not found", err)
	}
}

func TestTicketMissing(t *testing.T) {
	tk := Ticket{Scope: "x"}
	if got := tk.Missing(); !reflect.DeepEqual(got, []string{"owner", "justification", "expiry"}) {
		t.Errorf("Missing = %v", got)
	}
}

func TestAnyText(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, ""},
		{"  text ", "text"},
		{float64(42), "42"},
		{true, "true"},
		{map[string]any{"value": "platform-ro", "id": "1"}, "platform-ro"},
		{map[string]any{"value": "A", "child": map[string]any{"value": "B"}}, "A"},
		{map[string]any{"accountId": "A1", "displayName": "Ann", "emailAddress": "ann@x.example"}, "ann@x.example"},
		{map[string]any{"accountId": "A1", "displayName": "Ann"}, "Ann"},
		{map[string]any{"accountId": "A1"}, "A1"},
		{[]any{map[string]any{"value": "a"}, "b", nil}, "a, b"},
		{map[string]any{"other": 1}, ""},
	}
	for _, tt := range tests {
		if got := anyText(tt.in); got != tt.want {
			t.Errorf("anyText(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	eet := time.FixedZone("", 2*3600)
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "2025-03-10", want: time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)},
		{in: "2025-03-10T18:00:00.000+0200", want: time.Date(2025, 3, 10, 18, 0, 0, 0, eet)},
		{in: "2025-03-10T18:00:00+0200", want: time.Date(2025, 3, 10, 18, 0, 0, 0, eet)},
		{in: "2025-03-10T16:00:00Z", want: time.Date(2025, 3, 10, 16, 0, 0, 0, time.UTC)},
		{in: "2025-03-10T18:00:00.5+02:00", want: time.Date(2025, 3, 10, 18, 0, 0, 5e8, eet)},
		{in: "10/03/2025", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in)
		if tt.bad != (err != nil) || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
