package access

import (
	"fmt"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/config"
)

// JiraVerdict decides the Jira evidence for a request of scope by requester,
// from the ticket's facts, at now. It is pure. The ticket passes when it is in
// the configured project, carries owner, scope, justification and expiry
// (a missing one is named, with its Jira field), its scope field names the
// scope, its expiry is in the future, and it is approved by a Security Lead
// (jira.security_leads) who is not the requester:
//   - through Service Management approvals (an approval whose final decision
//     is approved, by a lead other than the requester; any declined approval
//     refuses), or, when the ticket has none,
//   - through its status (one of jira.approved_statuses) and the author of
//     the latest changelog transition to that status (a lead, not the
//     requester).
//
// requester is the requester's Jira identity (AccountID found by e-mail) and
// the e-mail Slack reports; a requester with neither is refused, since
// self-approval could not be ruled out.
func JiraVerdict(f TicketFacts, cfg *config.Config, requester JiraUser, scope string, now time.Time) Evidence {
	ev := Evidence{Kind: config.EvidenceJira, Status: EvidenceFailed, Link: f.URL}
	key := f.Key
	fail := func(format string, args ...any) Evidence {
		ev.Detail = key + ": " + fmt.Sprintf(format, args...)
		return ev
	}
	if len(f.Problems) > 0 {
		return fail("the ticket has values that cannot be read: %s", strings.Join(f.Problems, "; "))
	}
	project := cfg.Jira.Project
	if project == "" {
		ev.Status = EvidenceError
		return fail("jira.project is not configured")
	}
	if !strings.EqualFold(f.Project, project) || !strings.HasPrefix(strings.ToUpper(key), strings.ToUpper(project)+"-") {
		return fail("the ticket is in project %q, not in %s", f.Project, project)
	}
	var missing []string
	for _, m := range []struct{ name, field, value string }{
		{"owner", cfg.Jira.Fields.Owner, f.Owner},
		{"scope", cfg.Jira.Fields.Scope, f.Scope},
		{"justification", cfg.Jira.Fields.Justification, f.Justification},
	} {
		if strings.TrimSpace(m.value) == "" {
			missing = append(missing, fieldName(m.name, m.field))
		}
	}
	if f.Expiry.IsZero() {
		missing = append(missing, fieldName("expiry", cfg.Jira.Fields.Expiry))
	}
	if len(missing) > 0 {
		return fail("the ticket lacks %s: fill it in and request again", strings.Join(missing, ", "))
	}
	if !namesScope(f.Scope, scope) {
		return fail("the ticket's scope field says %q, not %s", Truncate(f.Scope, 80), scope)
	}
	if !now.Before(f.Expiry) {
		return fail("the ticket expired at %s", fmtTime(f.Expiry))
	}
	if strings.TrimSpace(requester.AccountID) == "" && strings.TrimSpace(requester.Email) == "" {
		return fail("the requester's Jira account is unknown, so self-approval cannot be ruled out")
	}
	leads := cfg.Jira.SecurityLeads
	if len(leads) == 0 {
		ev.Status = EvidenceError
		return fail("jira.security_leads is empty: nobody can approve")
	}

	if f.ServiceDesk && len(f.Approvals) > 0 {
		var byLead *JiraUser
		var at time.Time
		self := false
		for _, a := range f.Approvals {
			switch strings.ToLower(a.Decision) {
			case "declined":
				return fail("an approval on the ticket was declined")
			case "approved":
				for i := range a.Approvers {
					u := a.Approvers[i]
					if sameJiraUser(u, requester) {
						self = true
						continue
					}
					if isLead(u, leads) && byLead == nil {
						byLead, at = &u, a.At
					}
				}
			}
		}
		if byLead != nil {
			ev.Status = EvidenceOK
			return okDetail(ev, key, *byLead, at, f.Expiry)
		}
		if self {
			return fail("the ticket was approved by the requester themself; a Security Lead other than the requester must approve it")
		}
		return fail("no Service Management approval by a Security Lead (approvals: %s)", approvalsSummary(f.Approvals))
	}

	if !containsFold(cfg.Jira.ApprovedStatuses, f.Status) {
		return fail("the ticket's status is %q, not an approved status (%s)", f.Status, strings.Join(cfg.Jira.ApprovedStatuses, ", "))
	}
	var last *StatusChange
	for i := range f.StatusChanges {
		c := f.StatusChanges[i]
		if strings.EqualFold(c.To, f.Status) && (last == nil || !c.At.Before(last.At)) {
			last = &c
		}
	}
	switch {
	case last == nil:
		return fail("no changelog entry shows who moved the ticket to %q", f.Status)
	case sameJiraUser(last.Author, requester):
		return fail("the ticket was moved to %q by the requester themself; a Security Lead other than the requester must approve it", f.Status)
	case !isLead(last.Author, leads):
		return fail("the ticket was moved to %q by %s, who is not a Security Lead", f.Status, jiraName(last.Author))
	}
	ev.Status = EvidenceOK
	return okDetail(ev, key, last.Author, last.At, f.Expiry)
}

func okDetail(ev Evidence, key string, by JiraUser, at, expiry time.Time) Evidence {
	when := ""
	if !at.IsZero() {
		when = " at " + fmtTime(at)
	}
	ev.Detail = fmt.Sprintf("%s: approved by %s%s; valid until %s", key, jiraName(by), when, fmtTime(expiry))
	return ev
}

func fieldName(name, field string) string {
	if field == "" {
		return name
	}
	return fmt.Sprintf("%s (field %s)", name, field)
}

// namesScope reports whether a ticket's scope field names scope: the whole
// value, or one item of a list separated by commas, semicolons or spaces.
func namesScope(field, scope string) bool {
	for _, item := range strings.FieldsFunc(field, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\t'
	}) {
		if strings.EqualFold(strings.TrimSpace(item), scope) {
			return true
		}
	}
	return false
}

// isLead matches a Jira person against jira.security_leads: by account id
// (or Data Center username), or by e-mail when Jira shows it. Display names
// never count (anyone can choose one).
func isLead(u JiraUser, leads []string) bool {
	for _, l := range leads {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if (u.AccountID != "" && strings.EqualFold(l, u.AccountID)) || (u.Email != "" && strings.EqualFold(l, u.Email)) {
			return true
		}
	}
	return false
}

// sameJiraUser reports whether u is the requester r, by account id or e-mail.
func sameJiraUser(u, r JiraUser) bool {
	return (u.AccountID != "" && r.AccountID != "" && strings.EqualFold(u.AccountID, r.AccountID)) ||
		(u.Email != "" && r.Email != "" && strings.EqualFold(strings.TrimSpace(u.Email), strings.TrimSpace(r.Email)))
}

func jiraName(u JiraUser) string {
	switch {
	case u.Name != "":
		return u.Name
	case u.Email != "":
		return u.Email
	case u.AccountID != "":
		return u.AccountID
	}
	return "an unknown user"
}

func approvalsSummary(as []Approval) string {
	parts := make([]string, 0, len(as))
	for _, a := range as {
		names := make([]string, 0, len(a.Approvers))
		for _, u := range a.Approvers {
			names = append(names, jiraName(u))
		}
		p := a.Decision
		if len(names) > 0 {
			p += " by " + strings.Join(names, ", ")
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), strings.TrimSpace(s)) && s != "" {
			return true
		}
	}
	return false
}

// fmtTime formats a time for people: UTC, to the minute.
func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
