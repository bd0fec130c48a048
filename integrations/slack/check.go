package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	slackgo "github.com/slack-go/slack"

	"github.com/secretbot/secretbot/internal/check"
)

// integration names this package's lines in `secretbot check`.
const integration = "slack"

// RequiredScopes are the bot token scopes secretbot uses (manifest.yaml).
var RequiredScopes = []string{"chat:write", "commands", "files:write", "im:write", "usergroups:read", "usergroups:write", "users:read", "users:read.email"}

// authCodes are auth.test errors that mean the token itself is refused.
var authCodes = map[string]bool{"invalid_auth": true, "not_authed": true, "token_revoked": true, "account_inactive": true, "token_expired": true}

// Check makes one harmless call (auth.test with the bot token) and looks at
// the app-level token's shape. It never opens a Socket Mode connection:
// apps.connections.open hands out a URL, and `check` may run beside a live bot.
func (c *Client) Check(ctx context.Context) []check.Result {
	var rs []check.Result
	// The app token is never printed, not even in part: a bot token pasted
	// in the wrong variable is still a credential.
	if strings.HasPrefix(c.appToken, "xapp-") {
		rs = append(rs, check.Result{Integration: integration, Status: check.OK,
			Detail: "SLACK_APP_TOKEN is an app-level token (xapp-); Socket Mode is not tried by check"})
	} else {
		rs = append(rs, check.Result{Integration: integration, Status: check.Fail,
			Detail: "SLACK_APP_TOKEN is not an app-level token (expected xapp-...)"})
	}

	resp, err := c.api.AuthTestContext(ctx)
	if err != nil {
		return append(rs, check.Result{Integration: integration, Status: check.Fail, Detail: c.authTestProblem(err)})
	}
	rs = append(rs, check.Result{Integration: integration, Status: check.OK,
		Detail: fmt.Sprintf("bot %s in team %s", resp.User, resp.Team)})
	if r, ok := scopeResult(resp.Header); ok {
		rs = append(rs, r)
	}
	return rs
}

func (c *Client) authTestProblem(err error) string {
	var se slackgo.SlackErrorResponse
	if errors.As(err, &se) && authCodes[se.Err] {
		return fmt.Sprintf("bot token rejected (%s)", c.redact(se.Err))
	}
	return "auth.test: " + c.describe(err)
}

// scopeResult reports missing bot scopes when Slack lists the granted ones
// (header X-OAuth-Scopes); without the header there is nothing to say.
func scopeResult(h http.Header) (check.Result, bool) {
	raw := h.Get("X-OAuth-Scopes")
	if raw == "" {
		return check.Result{}, false
	}
	granted := map[string]bool{}
	for _, s := range strings.Split(raw, ",") {
		granted[strings.TrimSpace(s)] = true
	}
	var missing []string
	for _, s := range RequiredScopes {
		if !granted[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return check.Result{Integration: integration, Status: check.OK, Detail: "bot token has every scope secretbot needs"}, true
	}
	sort.Strings(missing)
	return check.Result{Integration: integration, Status: check.Fail,
		Detail: "bot token lacks scopes " + strings.Join(missing, ", ") + " (reinstall the app from manifest.yaml)"}, true
}

// describe turns a slack-go error into a short, credential-free phrase.
func (c *Client) describe(err error) string {
	var (
		rl *slackgo.RateLimitedError
		sc slackgo.StatusCodeError
		se slackgo.SlackErrorResponse
	)
	switch {
	case errors.As(err, &rl):
		return fmt.Sprintf("rate limited by Slack, retry after %s", rl.RetryAfter)
	case errors.As(err, &sc):
		return fmt.Sprintf("Slack answered HTTP %d", sc.Code)
	case errors.As(err, &se):
		msg := se.Err
		if se.Needed != "" {
			msg += " (needs scope " + se.Needed + ")"
		}
		return c.redact(msg)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "no answer from Slack: " + err.Error()
	default:
		return "cannot reach Slack at " + c.redact(c.base) + ": " + c.scrub(err).Error()
	}
}
