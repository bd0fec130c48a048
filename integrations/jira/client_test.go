package jira

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/secretbot/secretbot/internal/config"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		creds   config.Credentials
		wantErr string
	}{
		{name: "not configured", creds: config.Credentials{}},
		{name: "cloud", creds: config.Credentials{JiraURL: "https://acme.atlassian.net", JiraEmail: testEmail, JiraAPIToken: testToken}},
		{name: "data center with path", creds: config.Credentials{JiraURL: "https://jira.acme.example/jira", JiraPAT: testPAT}},
		{name: "not http", creds: config.Credentials{JiraURL: "ftp://acme", JiraPAT: testPAT}, wantErr: "JIRA_URL must be an http(s) URL"},
		{name: "no host", creds: config.Credentials{JiraURL: "https://", JiraPAT: testPAT}, wantErr: "JIRA_URL must be an http(s) URL"},
		{name: "credentials in URL", creds: config.Credentials{JiraURL: "https://bob:" + testToken + "@acme.atlassian.net", JiraPAT: testPAT},
			wantErr: "must not contain credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(&config.Config{Creds: tt.creds}, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				noSecret(t, err.Error())
				return
			}
			if err != nil || c == nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

func TestNotConfigured(t *testing.T) {
	c, err := New(&config.Config{Jira: config.Jira{Project: "SEC"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res := c.Check(ctx)
	if len(res) != 1 || res[0].Status != "SKIP" || res[0].Detail != "Jira not configured: scopes needing jira are disabled" {
		t.Errorf("Check = %+v", res)
	}
	if _, err := c.Ticket(ctx, "SEC-1"); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("Ticket: %v", err)
	}
	if err := c.AddComment(ctx, "SEC-1", "x"); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("AddComment: %v", err)
	}
	if _, err := c.UserByEmail(ctx, "a@b.example"); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("UserByEmail: %v", err)
	}
}

func TestCheck(t *testing.T) {
	jiraScope := config.Scope{Name: "platform-rw", Evidence: []string{config.EvidenceJira}}
	tests := []struct {
		name  string
		mod   func(*config.Config)
		setup func(*fakeJira)
		want  []string // "STATUS substring"
	}{
		{name: "cloud", want: []string{"OK authenticated as Secretbot", "OK project SEC (Security Requests) readable"}},
		{
			name: "data center PAT",
			mod:  func(c *config.Config) { c.Creds.JiraEmail, c.Creds.JiraAPIToken, c.Creds.JiraPAT = "", "", testPAT },
			want: []string{"OK authenticated as Secretbot", "OK project SEC"},
		},
		{
			name: "wrong API token",
			mod:  func(c *config.Config) { c.Creds.JiraAPIToken = "jira-test-wrong" },
			want: []string{"FAIL jira: get myself: credentials rejected (HTTP 401): check JIRA_EMAIL and JIRA_API_TOKEN"},
		},
		{
			name: "wrong PAT",
			mod: func(c *config.Config) {
				c.Creds.JiraEmail, c.Creds.JiraAPIToken, c.Creds.JiraPAT = "", "", "jira-test-nope"
			},
			want: []string{"FAIL credentials rejected (HTTP 401): check JIRA_PAT"},
		},
		{
			name: "unknown project",
			mod:  func(c *config.Config) { c.Jira.Project = "NOPE" },
			want: []string{"OK authenticated", "FAIL project NOPE not found or not readable by the bot (HTTP 404)"},
		},
		{
			name: "project not a key",
			mod:  func(c *config.Config) { c.Jira.Project = "sec/../x" },
			want: []string{"OK authenticated", `FAIL jira.project "sec/../x" is not a project key`},
		},
		{
			name: "no project, not needed",
			mod:  func(c *config.Config) { c.Jira.Project = "" },
			want: []string{"OK authenticated", "SKIP jira.project is not set"},
		},
		{
			name: "no project, needed",
			mod:  func(c *config.Config) { c.Jira.Project = ""; c.Scopes = []config.Scope{jiraScope} },
			want: []string{"OK authenticated", "FAIL jira.project is not set: tickets cannot be checked"},
		},
		{
			name: "project forbidden",
			setup: func(f *fakeJira) {
				f.fail("/rest/api/2/project/SEC", reply{status: 403, body: `{"errorMessages":["You do not have permission"],"errors":{}}`})
			},
			want: []string{"OK authenticated", "FAIL jira: get project SEC: access denied (HTTP 403): the bot's Jira user may not do this: You do not have permission"},
		},
		{
			name: "jira down",
			setup: func(f *fakeJira) {
				f.fail("/rest/api/2/myself", reply{status: 503}, reply{status: 503}, reply{status: 503})
			},
			want: []string{"FAIL jira: get myself: Jira server error (HTTP 503)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeJira(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			c, _ := testClient(t, f, tt.mod)
			got := c.Check(context.Background())
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %d results", got, len(tt.want))
			}
			for i, w := range tt.want {
				status, sub, _ := strings.Cut(w, " ")
				if got[i].Integration != "jira" || got[i].Status != status || !strings.Contains(got[i].Detail, sub) {
					t.Errorf("result %d = %+v, want %s containing %q", i, got[i], status, sub)
				}
				noSecret(t, got[i].Detail)
			}
		})
	}
}

func TestValidKey(t *testing.T) {
	tests := []struct {
		project, key string
		want         bool
	}{
		{"SEC", "SEC-1", true},
		{"SEC", "SEC-12345", true},
		{"SEC_OPS", "SEC_OPS-7", true},
		{"", "ABC-7", true},
		{"SEC", "OPS-1", false},
		{"SEC", "SECX-1", false},
		{"SEC", "sec-1", false},
		{"SEC", "SEC-0", false},
		{"SEC", "SEC-01", false},
		{"SEC", "SEC-", false},
		{"SEC", "SEC-1/../../myself", false},
		{"SEC", "SEC-1?x=1", false},
		{"SEC", " SEC-1", false},
		{"SEC", "SEC-1\n", false},
		{"SEC", "SEC-" + strings.Repeat("9", 70), false},
		{"S", "S-1", false},
	}
	for _, tt := range tests {
		if got := ValidKey(tt.project, tt.key); got != tt.want {
			t.Errorf("ValidKey(%q, %q) = %v, want %v", tt.project, tt.key, got, tt.want)
		}
	}
}

func TestClientPrintsNoCredential(t *testing.T) {
	f := newFakeJira(t)
	c, _ := testClient(t, f, nil)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", *c)} {
		noSecret(t, s)
	}
}
