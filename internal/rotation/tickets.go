package rotation

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/policy"
)

// How much of the ticket is checked.
type ticketCheck int

const (
	// ticketExists: the ticket exists and is in jira.project (emergencies).
	ticketExists ticketCheck = iota
	// ticketApproved: also approved as access requests are (a Security Lead
	// other than the operator), and not expired (rotations).
	ticketApproved
	// ticketComplete: also carries owner, scope, justification and expiry,
	// its scope names the secret, and the expiry is ahead (provisioning).
	ticketComplete
)

// checkTicket checks key for p and returns a *UserError (field "ticket")
// saying what is wrong, or an error when Jira could not answer (fail
// closed: the caller refuses either way).
func (s *Service) checkTicket(ctx context.Context, p policy.Person, key, secret string, level ticketCheck) error {
	if s.Tickets == nil {
		return userErr("ticket", "Jira is not configured, so the ticket %s cannot be checked: nothing was done", access.Code(key))
	}
	facts, err := s.Tickets.Ticket(ctx, key)
	switch {
	case errors.Is(err, access.ErrTicketNotFound):
		return userErr("ticket", "%s does not exist, or the bot may not see it", access.Code(key))
	case err != nil:
		return userErr("ticket", "Jira could not be checked (reading %s): %s. Nothing was done; try again", access.Code(key), access.Escape(errText(err)))
	}
	if facts.Key == "" {
		facts.Key = key
	}
	project := s.Config.Jira.Project
	if project == "" {
		return userErr("ticket", "jira.project is not configured, so %s cannot be checked", access.Code(key))
	}
	if !strings.EqualFold(facts.Project, project) {
		return userErr("ticket", "%s is in project %s, not in %s", access.Code(key), access.Code(facts.Project), project)
	}
	if level == ticketExists {
		return nil
	}
	account, err := s.Tickets.AccountByEmail(ctx, p.Email)
	switch {
	case errors.Is(err, access.ErrUnknownJiraUser):
		return userErr("ticket", "no Jira account with your e-mail %s is visible to the bot, so self-approval of %s cannot be ruled out", access.Escape(p.Email), access.Code(key))
	case err != nil:
		return userErr("ticket", "Jira could not be checked (finding your Jira account): %s. Nothing was done; try again", access.Escape(errText(err)))
	case strings.TrimSpace(account) == "":
		return userErr("ticket", "your Jira account could not be identified, so self-approval of %s cannot be ruled out", access.Code(key))
	}
	if level == ticketApproved {
		// A rotation ticket need not carry the access-request fields: the
		// verdict is asked only about project, approval and expiry.
		if strings.TrimSpace(facts.Owner) == "" {
			facts.Owner = "-"
		}
		if strings.TrimSpace(facts.Justification) == "" {
			facts.Justification = "-"
		}
		facts.Scope = secret
		if facts.Expiry.IsZero() {
			facts.Expiry = s.now().Add(24 * time.Hour)
		}
	}
	v := access.JiraVerdict(facts, s.Config, access.JiraUser{AccountID: account, Email: p.Email}, secret, s.now())
	if v.Status != access.EvidenceOK {
		detail := strings.Replace(v.Detail, "fill it in and request again", "fill it in and try again", 1)
		return userErr("ticket", "the ticket does not allow this: %s", access.Escape(detail))
	}
	return nil
}
