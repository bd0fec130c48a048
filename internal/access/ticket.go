package access

import (
	"context"
	"errors"
	"fmt"

	"github.com/secretbot/secretbot/internal/audit"
)

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
