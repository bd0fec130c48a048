package pagerduty

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/PagerDuty/go-pagerduty"
)

// UserEmail returns the e-mail address of the PagerDuty user with this id
// (GET /users/{id}), e.g. an incident's assignee, so the incident commander
// can be found in Slack.
//
// Errors: ErrNotConfigured; a plain error when userID is not shaped like a
// PagerDuty id (nothing is sent); an *Error matching ErrNotFound when there
// is no such user; any other *Error means PagerDuty could not answer (fail
// closed).
func (c *Client) UserEmail(ctx context.Context, userID string) (string, error) {
	if !c.enabled {
		return "", ErrNotConfigured
	}
	userID = strings.TrimSpace(userID)
	if !idRe.MatchString(userID) {
		return "", fmt.Errorf("pagerduty: %q is not a PagerDuty user id (like PABC123)", c.clean(userID))
	}
	op := "get user " + userID
	var u *pagerduty.User
	err := c.do(ctx, op, func(ctx context.Context) error {
		var err error
		u, err = c.api.GetUserWithContext(ctx, userID, pagerduty.GetUserOptions{})
		return err
	})
	if err != nil {
		if e := (*Error)(nil); errors.As(err, &e) && e.Status == http.StatusNotFound {
			e.Detail = fmt.Sprintf("user %s not found (HTTP 404)", userID)
		}
		return "", err
	}
	// The reply must be the user asked for, and carry an address.
	if u == nil || u.ID != userID {
		return "", &Error{Op: op, Status: http.StatusOK, Detail: "unexpected reply: a different user came back"}
	}
	email := strings.TrimSpace(u.Email)
	if email == "" {
		return "", &Error{Op: op, Status: http.StatusOK, Detail: "unexpected reply: the user has no e-mail address"}
	}
	return email, nil
}
