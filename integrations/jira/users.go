package jira

import (
	"context"
	"errors"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"unicode/utf8"

	jira "github.com/andygrunwald/go-jira"

	"github.com/secretbot/secretbot/internal/crash"
)

// MaxCommentLength bounds a comment body (Jira's own limit is 32767).
const MaxCommentLength = 32000

// AddComment posts body as a comment on key (a key of jira.project). Only a
// 429 is retried here: after a timeout or a 5xx the comment may exist, and
// the outbox that calls this decides whether to send it again.
//
// Errors: ErrNotConfigured; ErrInvalidKey; an error for an empty or
// over-long body; an *Error (ErrNotFound, ErrCredentialsRejected,
// ErrUnavailable with RetryAfter) otherwise.
func (c *Client) AddComment(ctx context.Context, key, body string) error {
	crash.Point("jira.comment.before")
	defer crash.Point("jira.comment.after")
	if !c.enabled {
		return ErrNotConfigured
	}
	if !ValidKey(c.project, key) {
		return ErrInvalidKey
	}
	body = strings.TrimSpace(body)
	if body == "" || utf8.RuneCountInString(body) > MaxCommentLength {
		return errors.New("jira: a comment must have 1 to 32000 characters")
	}
	return c.retry(ctx, "comment on "+key, false, func(ctx context.Context) error {
		_, _, err := c.api.Issue.AddCommentWithContext(ctx, key, &jira.Comment{Body: body})
		return err
	})
}

// UserByEmail returns the Jira identity whose e-mail is exactly email (case
// does not matter): the accountId on Cloud (GET
// /rest/api/2/user/search?query=), the username on Data Center
// (?username=). Cloud hides e-mails its users keep private; such a user is
// not matched.
//
// Errors: ErrNotConfigured; ErrUnknownUser; an *Error when Jira could not
// answer.
func (c *Client) UserByEmail(ctx context.Context, email string) (string, error) {
	if !c.enabled {
		return "", ErrNotConfigured
	}
	email = strings.TrimSpace(email)
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return "", ErrUnknownUser
	}
	param := "query"
	if c.dataCenter {
		param = "username"
	}
	path := "rest/api/2/user/search?" + url.Values{param: {email}, "maxResults": {"50"}}.Encode()
	var users []jira.User
	err := c.do(ctx, "find user by e-mail", func(ctx context.Context) error {
		users = nil
		return c.doJSON(ctx, http.MethodGet, path, nil, &users)
	})
	if err != nil {
		return "", err
	}
	var found *jira.User
	for i := range users {
		u := &users[i]
		if strings.EqualFold(u.EmailAddress, email) && (found == nil || (u.Active && !found.Active)) {
			found = u
		}
	}
	if found == nil {
		return "", ErrUnknownUser
	}
	if id := firstNonEmpty(found.AccountID, found.Name); id != "" {
		return id, nil
	}
	return "", ErrUnknownUser
}
