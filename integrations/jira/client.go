// Package jira reads the tickets and approvals secretbot's access requests
// rest on, and writes access-log comments, through
// github.com/andygrunwald/go-jira. It retries briefly on rate limits and
// server errors and never puts a credential in an error.
package jira

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	jira "github.com/andygrunwald/go-jira"

	"github.com/secretbot/secretbot/integrations/internal/httpx"
	"github.com/secretbot/secretbot/internal/check"
	"github.com/secretbot/secretbot/internal/config"
)

const integration = "jira"

var (
	projectRe = regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)
	keyRe     = regexp.MustCompile(`^[A-Z][A-Z0-9_]+-[1-9][0-9]*$`)
)

// ValidKey reports whether key looks like a ticket key (PROJ-123) of project.
// An empty project checks the shape only.
func ValidKey(project, key string) bool {
	if len(key) > 64 || !keyRe.MatchString(key) {
		return false
	}
	return project == "" || strings.HasPrefix(key, project+"-")
}

// Client talks to Jira Cloud (e-mail + API token, Basic auth) or Jira Data
// Center (personal access token). It is safe for concurrent use.
type Client struct {
	api        *jira.Client
	base       *url.URL
	enabled    bool
	dataCenter bool // PAT auth: Data Center API (usernames, not account ids)
	project    string
	issueType  string // for tickets the bot opens (CreateIssue)
	fields     config.JiraFields
	needed     bool // an enabled scope requires jira evidence
	credVars   string
	secrets    *httpx.Secrets // a pointer, so printing a Client value shows no credential

	now            func() time.Time
	sleep          func(context.Context, time.Duration) error
	attemptTimeout time.Duration
}

// New builds the client from JIRA_URL and either JIRA_EMAIL+JIRA_API_TOKEN
// (Cloud, preferred when both kinds are set) or JIRA_PAT (Data Center). The
// auth transport wraps httpClient's transport (nil means a plain client). No
// network I/O. Without credentials every call returns ErrNotConfigured and
// Check reports SKIP. The error is about JIRA_URL only.
func New(cfg *config.Config, httpClient *http.Client) (*Client, error) {
	c := &Client{
		enabled:        cfg.JiraEnabled(),
		project:        cfg.Jira.Project,
		issueType:      cfg.Jira.IssueType,
		fields:         cfg.Jira.Fields,
		now:            time.Now,
		sleep:          httpx.Sleep,
		attemptTimeout: httpx.AttemptTimeout,
	}
	for _, s := range cfg.Scopes {
		if !s.Disabled && slices.Contains(s.Evidence, config.EvidenceJira) {
			c.needed = true
		}
	}
	if !c.enabled {
		return c, nil
	}
	u, err := url.Parse(cfg.Creds.JiraURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("jira: JIRA_URL must be an http(s) URL like https://acme.atlassian.net")
	}
	if u.User != nil {
		return nil, errors.New("jira: JIRA_URL must not contain credentials (use JIRA_EMAIL+JIRA_API_TOKEN or JIRA_PAT)")
	}
	u.RawQuery, u.Fragment = "", ""
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	c.base = u

	hc := httpx.GuardRedirects(httpClient)
	cr := cfg.Creds
	if cr.JiraEmail != "" && cr.JiraAPIToken != "" {
		hc.Transport = &jira.BasicAuthTransport{Username: cr.JiraEmail, Password: cr.JiraAPIToken, Transport: hc.Transport}
		c.credVars = "JIRA_EMAIL and JIRA_API_TOKEN"
		c.secrets = &httpx.Secrets{cr.JiraAPIToken, base64.StdEncoding.EncodeToString([]byte(cr.JiraEmail + ":" + cr.JiraAPIToken))}
	} else {
		hc.Transport = &jira.PATAuthTransport{Token: cr.JiraPAT, Transport: hc.Transport}
		c.dataCenter = true
		c.credVars = "JIRA_PAT"
		c.secrets = &httpx.Secrets{cr.JiraPAT}
	}
	c.api, err = jira.NewClient(httpx.RecordingDoer{Client: hc}, u.String())
	if err != nil {
		return nil, errors.New("jira: JIRA_URL must be an http(s) URL like https://acme.atlassian.net")
	}
	return c, nil
}

// String keeps credentials out of logs that print the client.
func (c *Client) String() string { return "jira.Client{<redacted>}" }

// GoString keeps credentials out of %#v.
func (c *Client) GoString() string { return c.String() }

// Check makes the harmless calls `secretbot check` reports: GET
// /rest/api/2/myself (the credentials work) and GET /rest/api/2/project/{key}
// (the configured project is readable).
func (c *Client) Check(ctx context.Context) []check.Result {
	if !c.enabled {
		return []check.Result{{Integration: integration, Status: check.Skip,
			Detail: "Jira not configured: scopes needing jira are disabled"}}
	}
	var me *jira.User
	err := c.do(ctx, "get myself", func(ctx context.Context) error {
		var err error
		me, _, err = c.api.User.GetSelfWithContext(ctx)
		return err
	})
	if err != nil {
		// Nothing else can be checked without working credentials.
		return []check.Result{{Integration: integration, Status: check.Fail, Detail: err.Error()}}
	}
	who := c.clean(firstNonEmpty(me.DisplayName, me.Name, me.AccountID, "an unnamed user"))
	out := []check.Result{{Integration: integration, Status: check.OK, Detail: "authenticated as " + who}}
	return append(out, c.checkProject(ctx))
}

func (c *Client) checkProject(ctx context.Context) check.Result {
	r := check.Result{Integration: integration, Status: check.Fail}
	switch {
	case c.project == "" && !c.needed:
		r.Status, r.Detail = check.Skip, "jira.project is not set"
		return r
	case c.project == "":
		r.Detail = "jira.project is not set: tickets cannot be checked"
		return r
	case !projectRe.MatchString(c.project):
		r.Detail = fmt.Sprintf("jira.project %q is not a project key (like SEC)", c.project)
		return r
	}
	var p *jira.Project
	err := c.do(ctx, "get project "+c.project, func(ctx context.Context) error {
		var err error
		p, _, err = c.api.Project.GetWithContext(ctx, c.project)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		r.Detail = fmt.Sprintf("project %s not found or not readable by the bot (HTTP 404): check jira.project and the bot's project permissions", c.project)
	case err != nil:
		r.Detail = err.Error()
	default:
		r.Status = check.OK
		r.Detail = fmt.Sprintf("project %s (%s) readable", c.project, c.clean(p.Name))
	}
	return r
}

// doJSON sends a request the library has no helper for and decodes the reply
// into v. Failed replies are turned into the library's *jira.Error (which
// also closes the body).
func (c *Client) doJSON(ctx context.Context, method, path string, header http.Header, v any) error {
	req, err := c.api.NewRequestWithContext(ctx, method, path, nil)
	if err != nil {
		return err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.api.Do(req, v)
	if err != nil && resp != nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		return jira.NewJiraError(resp, err)
	}
	return err
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}
