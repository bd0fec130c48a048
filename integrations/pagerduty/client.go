// Package pagerduty answers the on-call and incident questions secretbot asks
// PagerDuty, through github.com/PagerDuty/go-pagerduty. It retries briefly on
// rate limits and server errors and never puts the API key in an error.
package pagerduty

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/secretbot/secretbot/integrations/internal/httpx"
	"github.com/secretbot/secretbot/internal/check"
	"github.com/secretbot/secretbot/internal/config"
)

// DefaultAPIURL is used when PAGERDUTY_API_URL is not set (EU accounts set
// https://api.eu.pagerduty.com).
const DefaultAPIURL = "https://api.pagerduty.com"

const integration = "pagerduty"

// idRe is the shape of PagerDuty object ids; it also keeps user and config
// input from changing the request path.
var idRe = regexp.MustCompile(`^[A-Z0-9]{2,32}$`)

// Client talks to the PagerDuty REST API. It is safe for concurrent use.
type Client struct {
	api      *pagerduty.Client
	enabled  bool
	policies []string
	maxLevel int
	needed   bool           // an enabled scope requires oncall or incident evidence
	secrets  *httpx.Secrets // a pointer, so printing a Client value shows no credential

	now            func() time.Time
	sleep          func(context.Context, time.Duration) error
	attemptTimeout time.Duration
}

// New builds the client: token from cfg.Creds.PagerDutyToken, base URL from
// cfg.Creds.PagerDutyAPIURL (default DefaultAPIURL). httpClient may be nil.
// No network I/O. Without a token every call returns ErrNotConfigured and
// Check reports SKIP.
func New(cfg *config.Config, httpClient *http.Client) *Client {
	c := &Client{
		enabled:        cfg.PagerDutyEnabled(),
		policies:       slices.Clone(cfg.PagerDuty.EscalationPolicies),
		maxLevel:       cfg.PagerDuty.MaxEscalationLevel,
		now:            time.Now,
		sleep:          httpx.Sleep,
		attemptTimeout: httpx.AttemptTimeout,
	}
	for _, s := range cfg.Scopes {
		if !s.Disabled && (slices.Contains(s.Evidence, config.EvidenceOnCall) || slices.Contains(s.Evidence, config.EvidenceIncident)) {
			c.needed = true
		}
	}
	if !c.enabled {
		return c
	}
	base := strings.TrimRight(cfg.Creds.PagerDutyAPIURL, "/")
	if base == "" {
		base = DefaultAPIURL
	}
	c.secrets = &httpx.Secrets{cfg.Creds.PagerDutyToken}
	c.api = pagerduty.NewClient(cfg.Creds.PagerDutyToken, pagerduty.WithAPIEndpoint(base))
	c.api.HTTPClient = httpx.RecordingDoer{Client: httpx.GuardRedirects(httpClient)}
	return c
}

// String keeps the API key out of logs that print the client.
func (c *Client) String() string { return "pagerduty.Client{<redacted>}" }

// GoString keeps the API key out of %#v.
func (c *Client) GoString() string { return c.String() }

// Check makes the harmless calls `secretbot check` reports: GET /abilities
// (the key is accepted; it works for account-level keys, unlike /users/me)
// and GET /escalation_policies/{id} for each configured policy.
func (c *Client) Check(ctx context.Context) []check.Result {
	if !c.enabled {
		return []check.Result{{Integration: integration, Status: check.Skip,
			Detail: "PagerDuty not configured: scopes needing oncall/incident are disabled"}}
	}
	var n int
	err := c.do(ctx, "list abilities", func(ctx context.Context) error {
		r, err := c.api.ListAbilitiesWithContext(ctx)
		if err == nil {
			n = len(r.Abilities)
		}
		return err
	})
	if err != nil {
		// Nothing else can be checked without a working key.
		return []check.Result{{Integration: integration, Status: check.Fail, Detail: err.Error()}}
	}
	out := []check.Result{{Integration: integration, Status: check.OK,
		Detail: fmt.Sprintf("API key accepted (%d abilities)", n)}}
	if len(c.policies) == 0 {
		r := check.Result{Integration: integration, Status: check.Skip,
			Detail: "no escalation policies configured (pagerduty.escalation_policies)"}
		if c.needed {
			r.Status = check.Fail
			r.Detail += ": nobody can pass an on-call check"
		}
		return append(out, r)
	}
	for _, id := range c.policies {
		out = append(out, c.checkPolicy(ctx, id))
	}
	return out
}

func (c *Client) checkPolicy(ctx context.Context, id string) check.Result {
	r := check.Result{Integration: integration, Status: check.Fail}
	if !idRe.MatchString(id) {
		r.Detail = fmt.Sprintf("escalation policy %q is not a PagerDuty id (like PABC123)", id)
		return r
	}
	var name string
	err := c.do(ctx, "get escalation policy "+id, func(ctx context.Context) error {
		p, err := c.api.GetEscalationPolicyWithContext(ctx, id, &pagerduty.GetEscalationPolicyOptions{})
		if err == nil {
			name = p.Name
		}
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		r.Detail = fmt.Sprintf("escalation policy %s not found (HTTP 404): check pagerduty.escalation_policies", id)
	case err != nil:
		r.Detail = err.Error()
	default:
		r.Status = check.OK
		r.Detail = fmt.Sprintf("escalation policy %s (%s) readable", id, c.clean(name))
	}
	return r
}
