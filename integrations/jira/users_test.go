package jira

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/config"
)

func TestAddComment(t *testing.T) {
	const path = "/rest/api/2/issue/SEC-12/comment"
	tests := []struct {
		name       string
		key, body  string
		replies    []reply
		wantErr    error
		wantDetail string
		wantCalls  int
		wantSleeps []time.Duration
	}{
		{name: "posted", key: "SEC-12", body: "Grant g-1 issued to <@U1> until 18:00", wantCalls: 1},
		{name: "429 then 201", key: "SEC-12", body: "x", replies: []reply{{status: 429, retryAfter: "2"}},
			wantCalls: 2, wantSleeps: []time.Duration{2 * time.Second}},
		{name: "500 is not retried: the comment may exist", key: "SEC-12", body: "x", replies: []reply{{status: 500}},
			wantErr: ErrUnavailable, wantDetail: "jira: comment on SEC-12: Jira server error (HTTP 500)", wantCalls: 1},
		{name: "timeout is not retried", key: "SEC-12", body: "x", replies: []reply{{status: 201, delay: time.Second}},
			wantErr: ErrUnavailable, wantDetail: "timed out", wantCalls: 1},
		{name: "429 asking too long", key: "SEC-12", body: "x", replies: []reply{{status: 429, retryAfter: "120"}},
			wantErr: ErrUnavailable, wantDetail: "rate limited (HTTP 429) (retry after 2m0s)", wantCalls: 1},
		{name: "unknown issue", key: "SEC-99", body: "x", wantErr: ErrNotFound},
		{name: "empty body", key: "SEC-12", body: "  ", wantDetail: "a comment must have 1 to 32000 characters"},
		{name: "huge body", key: "SEC-12", body: strings.Repeat("é", MaxCommentLength+1), wantDetail: "1 to 32000"},
		{name: "bad key", key: "SEC-12/comment", body: "x", wantErr: ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeJira(t)
			seedIssue(f)
			f.fail(path, tt.replies...)
			c, sleeps := testClient(t, f, nil)
			c.attemptTimeout = 50 * time.Millisecond
			err := c.AddComment(context.Background(), tt.key, tt.body)
			if tt.wantErr != nil || tt.wantDetail != "" {
				if err == nil {
					t.Fatal("no error")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantDetail) {
					t.Errorf("err %q, want %q", err, tt.wantDetail)
				}
				noSecret(t, err.Error())
			} else if err != nil {
				t.Fatal(err)
			}
			calls := f.calls(path)
			if len(calls) != tt.wantCalls {
				t.Errorf("%d calls, want %d", len(calls), tt.wantCalls)
			}
			if tt.wantCalls > 0 && tt.wantErr == nil {
				var posted struct{ Body string }
				if err := json.Unmarshal([]byte(calls[0].body), &posted); err != nil || posted.Body != tt.body {
					t.Errorf("posted %q", calls[0].body)
				}
			}
			if !reflect.DeepEqual(*sleeps, tt.wantSleeps) {
				t.Errorf("sleeps %v, want %v", *sleeps, tt.wantSleeps)
			}
		})
	}
}

func TestUserByEmail(t *testing.T) {
	seed := func(f *fakeJira) {
		hidden := jiraUser("A-HIDDEN", "Hilda Hidden", "")
		inactive := jiraUser("A-OLD", "Lena Lead (old)", "lena@acme.example")
		inactive["active"] = false
		dc := map[string]any{"name": "bob.plus", "key": "JIRAUSER100", "displayName": "Bob Plus", "emailAddress": "bob+sec@acme.example", "active": true}
		f.users = []map[string]any{
			jiraUser("A-MAL", "Malena", "malena@acme.example"),
			inactive,
			jiraUser("A-LEAD", "Lena Lead", "Lena@Acme.example"),
			hidden, dc,
		}
	}
	tests := []struct {
		name      string
		email     string
		mod       func(*config.Config)
		setup     func(*fakeJira)
		want      string
		wantErr   error
		wantQuery url.Values
	}{
		{name: "exact, case-insensitive, active preferred", email: "lena@acme.example", want: "A-LEAD",
			wantQuery: url.Values{"query": {"lena@acme.example"}, "maxResults": {"50"}}},
		{name: "substring is not a match", email: "ena@acme.example", wantErr: ErrUnknownUser},
		{name: "hidden e-mail is not a match", email: "hilda@acme.example", wantErr: ErrUnknownUser},
		{name: "not an address", email: "Lena <lena@acme.example>", wantErr: ErrUnknownUser},
		{name: "data center uses username and returns it", email: "bob+sec@acme.example", want: "bob.plus",
			mod:       func(c *config.Config) { c.Creds.JiraEmail, c.Creds.JiraAPIToken, c.Creds.JiraPAT = "", "", testPAT },
			wantQuery: url.Values{"username": {"bob+sec@acme.example"}, "maxResults": {"50"}}},
		{name: "jira down", email: "lena@acme.example", wantErr: ErrUnavailable, setup: func(f *fakeJira) {
			f.fail("/rest/api/2/user/search", reply{status: 502}, reply{status: 502}, reply{status: 502})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeJira(t)
			seed(f)
			if tt.setup != nil {
				tt.setup(f)
			}
			c, _ := testClient(t, f, tt.mod)
			got, err := c.UserByEmail(context.Background(), tt.email)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %q, %v; want %v", got, err, tt.wantErr)
				}
				noSecret(t, err.Error())
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
			calls := f.calls("/rest/api/2/user/search")
			if q, _ := url.ParseQuery(calls[0].rawQuery); !reflect.DeepEqual(q, tt.wantQuery) {
				t.Errorf("query %v, want %v", q, tt.wantQuery)
			}
		})
	}
}

// TestNoCredentialInErrors drives every failure through every call with a
// server that quotes the Authorization header back.
func TestNoCredentialInErrors(t *testing.T) {
	for _, mod := range []func(*config.Config){
		func(c *config.Config) { c.Creds.JiraAPIToken = testToken + "x" }, // rejected: the fake echoes the header
		func(c *config.Config) { c.Creds.JiraEmail, c.Creds.JiraAPIToken, c.Creds.JiraPAT = "", "", testPAT+"x" },
	} {
		f := newFakeJira(t)
		seedIssue(f)
		c, _ := testClient(t, f, mod)
		ctx := context.Background()
		var errs []error
		for _, r := range c.Check(ctx) {
			errs = append(errs, errors.New(r.Detail))
		}
		_, err := c.Ticket(ctx, "SEC-12")
		errs = append(errs, err)
		errs = append(errs, c.AddComment(ctx, "SEC-12", "x"))
		_, err = c.UserByEmail(ctx, "a@acme.example")
		errs = append(errs, err)
		for _, err := range errs {
			if err == nil {
				t.Fatal("expected an error")
			}
			if !strings.Contains(err.Error(), "credentials rejected") {
				t.Errorf("err %q", err)
			}
			noSecret(t, err.Error())
		}
	}
	// A server error body that quotes the token.
	f := newFakeJira(t)
	f.fail("/rest/api/2/myself", reply{status: 400, body: `{"errorMessages":["bad header Basic ` +
		"c2VjcmV0Ym90QGFjbWUuZXhhbXBsZTpqaXJhLXRlc3QtYXAxVDBrZW4=" + ` / ` + testToken + `"]}`})
	c, _ := testClient(t, f, nil)
	res := c.Check(context.Background())
	if !strings.Contains(res[0].Detail, "bad header Basic [redacted] / [redacted]") {
		t.Errorf("detail %q", res[0].Detail)
	}
	noSecret(t, res[0].Detail)
}
