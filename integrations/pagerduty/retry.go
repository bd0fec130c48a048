package pagerduty

import (
	"context"

	"github.com/secretbot/secretbot/integrations/internal/httpx"
)

// do runs fn up to three times while it fails in a retryable way, waiting a
// short backoff or the server's Retry-After (see httpx.Policy.Retry).
func (c *Client) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	p := httpx.Policy{
		Now:            c.now,
		Sleep:          c.sleep,
		AttemptTimeout: c.attemptTimeout,
		Secrets:        c.secrets,
		Wording:        wording,
		Message:        apiMessage,
	}
	if e := p.Retry(ctx, op, true, fn); e != nil {
		return (*Error)(e)
	}
	return nil
}

// clean removes every credential and bounds the length of text that came
// from outside.
func (c *Client) clean(s string) string { return c.secrets.Clean(s) }
