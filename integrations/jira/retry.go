package jira

import (
	"context"

	"github.com/secretbot/secretbot/integrations/internal/httpx"
)

// do runs fn up to three times while it fails in a retryable way, waiting a
// short backoff or the server's Retry-After (see httpx.Policy.Retry).
func (c *Client) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	return c.retry(ctx, op, true, fn)
}

// retry is do; when idempotent is false only a 429 (refused, so nothing
// happened) is retried: a timeout or 5xx may have applied the change, and the
// caller's outbox decides whether to try again.
func (c *Client) retry(ctx context.Context, op string, idempotent bool, fn func(ctx context.Context) error) error {
	p := httpx.Policy{
		Now:            c.now,
		Sleep:          c.sleep,
		AttemptTimeout: c.attemptTimeout,
		Secrets:        c.secrets,
		Wording:        wording(c.credVars),
		Message:        jiraMessage,
	}
	if e := p.Retry(ctx, op, idempotent, fn); e != nil {
		return (*Error)(e)
	}
	return nil
}

// clean removes every credential and bounds the length of text that came
// from outside.
func (c *Client) clean(s string) string { return c.secrets.Clean(s) }
