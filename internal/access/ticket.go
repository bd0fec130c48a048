package access

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/secretbot/secretbot/internal/audit"
)

// ticketKeyRe is a Jira issue key: a project key (a letter, then letters,
// digits or _) and an issue number without leading zeros.
var ticketKeyRe = regexp.MustCompile(`^[A-Z][A-Z0-9_]+-[1-9][0-9]{0,9}$`)

// ParseTicketKey reads a Jira issue key as people type it ("sec-123",
// " SEC-123 ") and returns it upper case. project, when not empty, is the
// only project accepted. A refusal is a *UserError (field "ticket") that
// says what is accepted.
func ParseTicketKey(s, project string) (string, error) {
	key := strings.ToUpper(strings.TrimSpace(s))
	project = strings.ToUpper(strings.TrimSpace(project))
	if !ticketKeyRe.MatchString(key) || (project != "" && !strings.HasPrefix(key, project+"-")) {
		p := project
		if p == "" {
			p = "PROJ"
		}
		p = Escape(Truncate(p, 40))
		return "", userErr("ticket", "%s is not a ticket key of the %s project: give a key like %s-123",
			Code(Truncate(key, 40)), p, p)
	}
	return key, nil
}

// OpenTicket opens the Jira access-log ticket of a grant whose scope needs no
// ticket (the outbox kind jira-open calls it), recording the grant, its
// incident and, if it already ended, its end; the key is stored in
// Grant.Ticket, and later records become comments on it. nil when done or
// when there is nothing to do; an error means try again.
func (s *Service) OpenTicket(ctx context.Context, grantID string) error {
	if s.Tickets == nil {
		return nil
	}
	g, err := s.get(ctx, grantID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("access: open ticket for %s: %w", grantID, err)
	}
	if g.Ticket != "" {
		return nil
	}
	summary, body := jiraOpenBody(g)
	key, err := s.Tickets.Open(ctx, summary, body)
	if err != nil {
		return fmt.Errorf("access: open ticket for %s: %s", g.ID, errText(err))
	}
	_, err = s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.Ticket != "" {
			return cur, false, nil
		}
		ng := cur.next(s.now())
		ng.Ticket = key
		if err := tx.Audit(ctx, event(actorBot, ActTicketOpened, audit.OK, "access-log ticket opened", ng)); err != nil {
			return cur, false, err
		}
		if cur.State.Final() && !g.State.Final() { // it ended while the ticket was being opened
			if err := tx.Send(ctx, jiraComment(key, jiraEnded(cur))); err != nil {
				return cur, false, err
			}
		}
		return ng, true, nil
	})
	if err != nil {
		return fmt.Errorf("access: record ticket %s of %s: %w", key, g.ID, err)
	}
	return nil
}
