package access_test

import (
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
)

var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

var (
	jLee  = access.JiraUser{AccountID: accesstest.JiraLee, Name: "Lee Lead"}
	jKim  = access.JiraUser{AccountID: "acc-kim", Name: "Kim", Email: "Kim@Lumi.example"}
	jAna  = access.JiraUser{AccountID: accesstest.JiraAna, Name: "Ana"}
	jBob  = access.JiraUser{AccountID: accesstest.JiraBob, Name: "Bob"}
	reqAn = access.JiraUser{AccountID: accesstest.JiraAna, Email: "ana@lumi.example"}
)

// approvedTicket is a Service Management ticket for platform-rw approved by Lee.
func approvedTicket() access.TicketFacts {
	return access.TicketFacts{
		Key: "SEC-12", Project: "SEC", Status: "Approved", StatusCategory: "done", URL: "https://jira.lumi.example/browse/SEC-12",
		Owner: "ana", Scope: "platform-rw", Justification: "migrate the db", Expiry: t0.Add(7 * 24 * time.Hour),
		ServiceDesk: true,
		Approvals:   []access.Approval{{Decision: "approved", Approvers: []access.JiraUser{jLee}, At: t0.Add(-time.Hour)}},
	}
}

// statusTicket is a plain Jira ticket moved to Approved by author.
func statusTicket(authors ...access.JiraUser) access.TicketFacts {
	f := approvedTicket()
	f.ServiceDesk, f.Approvals = false, nil
	for i, a := range authors {
		f.StatusChanges = append(f.StatusChanges,
			access.StatusChange{To: "In Review", Author: jAna, At: t0.Add(time.Duration(-10+2*i) * time.Hour)},
			access.StatusChange{To: "Approved", Author: a, At: t0.Add(time.Duration(-9+2*i) * time.Hour)})
	}
	return f
}

func TestJiraVerdict(t *testing.T) {
	cfg := accesstest.Lumi()
	tests := []struct {
		name      string
		facts     func() access.TicketFacts
		requester access.JiraUser
		scope     string
		status    string
		want      []string
	}{
		{name: "service management approval by a lead", facts: approvedTicket, status: "ok",
			want: []string{"SEC-12: approved by Lee Lead", "valid until 2025-03-10 09:00 UTC"}},
		{name: "lead matched by e-mail, any case", status: "ok", facts: func() access.TicketFacts {
			f := approvedTicket()
			f.Approvals[0].Approvers = []access.JiraUser{jKim}
			return f
		}, want: []string{"approved by Kim"}},
		{name: "approved by the requester themself", status: "failed", requester: access.JiraUser{AccountID: accesstest.JiraLee},
			facts: approvedTicket, want: []string{"approved by the requester themself"}},
		{name: "self-approval caught by e-mail when ids differ", status: "failed",
			requester: access.JiraUser{AccountID: "acc-other", Email: "kim@lumi.example"}, facts: func() access.TicketFacts {
				f := approvedTicket()
				f.Approvals[0].Approvers = []access.JiraUser{jKim}
				return f
			}, want: []string{"requester themself"}},
		{name: "self plus another lead passes", status: "ok", requester: access.JiraUser{AccountID: accesstest.JiraLee},
			facts: func() access.TicketFacts {
				f := approvedTicket()
				f.Approvals[0].Approvers = []access.JiraUser{jLee, jKim}
				return f
			}, want: []string{"approved by Kim"}},
		{name: "approved by someone who is not a lead", status: "failed", facts: func() access.TicketFacts {
			f := approvedTicket()
			f.Approvals[0].Approvers = []access.JiraUser{jBob}
			return f
		}, want: []string{"no Service Management approval by a Security Lead", "approved by Bob"}},
		{name: "display name is not an identity", status: "failed", facts: func() access.TicketFacts {
			f := approvedTicket()
			f.Approvals[0].Approvers = []access.JiraUser{{AccountID: "acc-mallory", Name: accesstest.JiraLee}}
			return f
		}, want: []string{"no Service Management approval by a Security Lead"}},
		{name: "approval still pending", status: "failed", facts: func() access.TicketFacts {
			f := approvedTicket()
			f.Approvals[0].Decision, f.Approvals[0].Approvers = "pending", nil
			return f
		}, want: []string{"no Service Management approval", "pending"}},
		{name: "a declined approval refuses", status: "failed", facts: func() access.TicketFacts {
			f := approvedTicket()
			f.Approvals = append(f.Approvals, access.Approval{Decision: "declined", Approvers: nil})
			return f
		}, want: []string{"declined"}},
		{name: "status and changelog author a lead", status: "ok", facts: func() access.TicketFacts { return statusTicket(jLee) },
			want: []string{"approved by Lee Lead at 2025-03-03 00:00 UTC"}},
		{name: "service desk without approvals falls back to status", status: "ok", facts: func() access.TicketFacts {
			f := statusTicket(jLee)
			f.ServiceDesk = true
			return f
		}, want: []string{"approved by Lee Lead"}},
		{name: "status set by the requester themself", status: "failed", facts: func() access.TicketFacts { return statusTicket(jAna) },
			want: []string{`moved to "Approved" by the requester themself`}},
		{name: "latest transition counts", status: "failed", facts: func() access.TicketFacts { return statusTicket(jLee, jAna) },
			want: []string{"requester themself"}},
		{name: "latest transition by a lead after the requester", status: "ok", facts: func() access.TicketFacts { return statusTicket(jAna, jLee) },
			want: []string{"approved by Lee Lead"}},
		{name: "status author not a lead", status: "failed", facts: func() access.TicketFacts { return statusTicket(jBob) },
			want: []string{"by Bob, who is not a Security Lead"}},
		{name: "status not approved", status: "failed", facts: func() access.TicketFacts {
			f := statusTicket(jLee)
			f.Status = "In Review"
			return f
		}, want: []string{`status is "In Review", not an approved status (Approved)`}},
		{name: "no changelog", status: "failed", facts: func() access.TicketFacts { return statusTicket() },
			want: []string{"no changelog entry shows who moved the ticket"}},
		{name: "missing field is named with its Jira field", status: "failed", facts: func() access.TicketFacts {
			f := approvedTicket()
			f.Owner = ""
			return f
		}, want: []string{"lacks owner (field customfield_10001)"}},
		{name: "several missing fields", status: "failed", facts: func() access.TicketFacts {
			f := approvedTicket()
			f.Justification, f.Expiry = " ", time.Time{}
			return f
		}, want: []string{"justification (field customfield_10003), expiry (field customfield_10004)"}},
		{name: "wrong project", status: "failed", facts: func() access.TicketFacts {
			f := approvedTicket()
			f.Project, f.Key = "OPS", "OPS-12"
			return f
		}, want: []string{`in project "OPS", not in SEC`}},
		{name: "scope mismatch", status: "failed", scope: "payments-rw", facts: approvedTicket,
			want: []string{`scope field says "platform-rw", not payments-rw`}},
		{name: "scope in a list", status: "ok", scope: "payments-rw", facts: func() access.TicketFacts {
			f := approvedTicket()
			f.Scope = "platform-rw, Payments-RW"
			return f
		}},
		{name: "scope prefix is not the scope", status: "failed", facts: func() access.TicketFacts {
			f := approvedTicket()
			f.Scope = "platform-rw-admin"
			return f
		}, want: []string{"scope field says"}},
		{name: "expired ticket", status: "failed", facts: func() access.TicketFacts {
			f := approvedTicket()
			f.Expiry = t0
			return f
		}, want: []string{"expired at 2025-03-03 09:00 UTC"}},
		{name: "unreadable values refuse", status: "failed", facts: func() access.TicketFacts {
			f := approvedTicket()
			f.Problems = []string{`expiry "next week" is not a date`}
			return f
		}, want: []string{"cannot be read", "next week"}},
		{name: "requester unknown to Jira", status: "failed", requester: access.JiraUser{Name: "x"}, facts: approvedTicket,
			want: []string{"self-approval cannot be ruled out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.requester
			if req == (access.JiraUser{}) {
				req = reqAn
			}
			scope := tt.scope
			if scope == "" {
				scope = "platform-rw"
			}
			ev := access.JiraVerdict(tt.facts(), cfg, req, scope, t0)
			if ev.Kind != "jira" || ev.Status != tt.status {
				t.Fatalf("verdict %+v, want status %s", ev, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(ev.Detail, w) {
					t.Errorf("detail %q lacks %q", ev.Detail, w)
				}
			}
			if ev.Link != tt.facts().URL {
				t.Errorf("link %q", ev.Link)
			}
		})
	}
}

func TestJiraVerdictConfigGaps(t *testing.T) {
	cfg := accesstest.Lumi()
	cfg.Jira.SecurityLeads = nil
	if ev := access.JiraVerdict(approvedTicket(), cfg, reqAn, "platform-rw", t0); ev.Status != "error" || !strings.Contains(ev.Detail, "security_leads") {
		t.Fatalf("no leads: %+v", ev)
	}
	cfg = accesstest.Lumi()
	cfg.Jira.Project = ""
	if ev := access.JiraVerdict(approvedTicket(), cfg, reqAn, "platform-rw", t0); ev.Status != "error" {
		t.Fatalf("no project: %+v", ev)
	}
}
