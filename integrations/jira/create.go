package jira

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	jira "github.com/andygrunwald/go-jira"

	"github.com/secretbot/secretbot/internal/crash"
)

const (
	// MaxSummaryLength bounds an issue summary (Jira refuses 255 or more);
	// longer summaries are shortened, ending in "…".
	MaxSummaryLength = 250
	// MaxDescriptionLength bounds an issue description (Jira's own limit is
	// 32767).
	MaxDescriptionLength = 32000

	defaultIssueType = "Task"
)

// CreateIssue opens an issue in jira.project with the issue type
// jira.issue_type (default Task) through POST /rest/api/2/issue, and returns
// its key (e.g. SEC-124). The summary is made one line (Jira refuses line
// breaks there) and shortened to MaxSummaryLength characters; the
// description is sent as is (Jira wiki markup).
//
// Only a 429 is retried here (Jira refused, so nothing was created). After a
// timeout or a 5xx the issue may exist: the error is retryable
// (errors.Is(err, ErrUnavailable)), and whether to try again, at the risk of
// a second issue, is the caller's (the outbox's) decision.
//
// Errors: ErrNotConfigured (also when jira.project is not set); an error for
// an empty summary or an over-long description; an *Error otherwise:
// ErrCredentialsRejected (401/403: the bot may not create issues in the
// project), ErrUnavailable with RetryAfter, or a 400 whose Detail names the
// field Jira refused (e.g. "issuetype: Specify a valid issue type").
func (c *Client) CreateIssue(ctx context.Context, summary, description string) (string, error) {
	crash.Point("jira.create_issue.before")
	defer crash.Point("jira.create_issue.after")
	if !c.enabled || c.project == "" {
		return "", ErrNotConfigured
	}
	summary = strings.Join(strings.Fields(summary), " ")
	if summary == "" {
		return "", errors.New("jira: an issue needs a summary")
	}
	if utf8.RuneCountInString(summary) > MaxSummaryLength {
		r := []rune(summary)
		summary = strings.TrimSpace(string(r[:MaxSummaryLength-1])) + "…"
	}
	description = strings.TrimSpace(description)
	if utf8.RuneCountInString(description) > MaxDescriptionLength {
		return "", errors.New("jira: an issue description must have at most 32000 characters")
	}
	issueType := strings.TrimSpace(c.issueType)
	if issueType == "" {
		issueType = defaultIssueType
	}
	issue := &jira.Issue{Fields: &jira.IssueFields{
		Project:     jira.Project{Key: c.project},
		Type:        jira.IssueType{Name: issueType},
		Summary:     summary,
		Description: description,
	}}

	op := "create issue in " + c.project
	var created *jira.Issue
	err := c.retry(ctx, op, false, func(ctx context.Context) error {
		is, resp, err := c.api.Issue.CreateWithContext(ctx, issue)
		if err != nil {
			if resp != nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
				// Read Jira's JSON error body (it names the refused field).
				return jira.NewJiraError(resp, err)
			}
			return err
		}
		created = is
		return nil
	})
	if err != nil {
		return "", err
	}
	if created == nil || !ValidKey(c.project, created.Key) {
		detail := "Jira answered without an issue key of " + c.project
		if created != nil && created.Key != "" {
			detail += " (got " + c.clean(created.Key) + ")"
		}
		return "", &Error{Op: op, Status: http.StatusCreated, Detail: detail + "; the issue may exist"}
	}
	return created.Key, nil
}
