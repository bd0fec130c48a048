// Package slack is secretbot's adapter to the Slack Web API: the bot's health
// check, the user directory (Slack ID -> e-mail, guest/bot flags, user
// groups, e-mail -> Slack ID, removal from a user group), delivery of the
// messages held in the outbox, and file uploads to a user's DM.
//
// The library github.com/slack-go/slack is imported as slackgo so this
// package can keep the short name callers expect.
package slack

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/secretbot/secretbot/internal/config"
)

// DefaultAPIURL is used when SLACK_API_URL is not set.
const DefaultAPIURL = "https://slack.com/api"

// Client talks to one Slack workspace with the bot token. The app-level
// token is only handed to slack-go for Socket Mode (see API).
type Client struct {
	api      *slackgo.Client
	http     *http.Client
	base     string // API base URL without trailing slash
	botToken string
	appToken string
	now      func() time.Time
	groups   groupCache
}

// New builds the client; it does no network I/O. httpClient may be nil.
func New(cfg *config.Config, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	base := strings.TrimRight(cfg.Creds.SlackAPIURL, "/")
	if base == "" {
		base = DefaultAPIURL
	}
	c := &Client{
		http:     httpClient,
		base:     base,
		botToken: cfg.Creds.SlackBotToken,
		appToken: cfg.Creds.SlackAppToken,
		now:      time.Now,
	}
	// slack-go joins base and method by plain concatenation: the trailing
	// slash is required.
	c.api = slackgo.New(cfg.Creds.SlackBotToken,
		slackgo.OptionAppLevelToken(cfg.Creds.SlackAppToken),
		slackgo.OptionAPIURL(base+"/"),
		slackgo.OptionHTTPClient(httpClient),
	)
	return c
}

// API returns the underlying slack-go client (for Socket Mode, views, and
// calls this package does not wrap).
func (c *Client) API() *slackgo.Client { return c.api }

// tokenLike matches Slack credentials of any kind, in case a value other than
// our own (or a mangled copy of ours) shows up in an error text.
var tokenLike = regexp.MustCompile(`x(ox[a-z]|app)-[A-Za-z0-9-]+`)

// redact removes the client's credentials, as is and URL-encoded, and
// anything shaped like a Slack token from s.
func (c *Client) redact(s string) string {
	for _, tok := range []string{c.botToken, c.appToken} {
		if tok == "" {
			continue
		}
		for _, form := range []string{tok, url.QueryEscape(tok), url.PathEscape(tok)} {
			s = strings.ReplaceAll(s, form, "[redacted]")
		}
	}
	return tokenLike.ReplaceAllString(s, "[redacted]")
}

// scrubbed carries a cause whose text went through redact. The cause stays
// reachable through Unwrap so callers can still use errors.Is/As on it.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// scrub returns err with a redacted message and, for transport errors, the
// request URL dropped: a response_url is itself a short-lived credential.
func (c *Client) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Op + ": " + ue.Err.Error()
	}
	return &scrubbed{msg: c.redact(msg), err: err}
}
