package jira

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/config"
)

// createIssue answers POST /rest/api/2/issue like Jira Cloud: 201 with id,
// key and self, or 400 with the refused fields. Called with f.mu held.
func (f *fakeJira) createIssue(w http.ResponseWriter, body string) {
	var in struct {
		Fields map[string]json.RawMessage `json:"fields"`
	}
	if err := json.Unmarshal([]byte(body), &in); err != nil || in.Fields == nil {
		jiraErr(w, 400, "Can not deserialize instance of com.atlassian.jira.rest.v2.issue.IssueUpdateBean out of START_ARRAY token")
		return
	}
	var project, issueType struct{ Key, Name, ID string }
	var summary, description string
	_ = json.Unmarshal(in.Fields["project"], &project)
	_ = json.Unmarshal(in.Fields["issuetype"], &issueType)
	_ = json.Unmarshal(in.Fields["summary"], &summary)
	_ = json.Unmarshal(in.Fields["description"], &description)
	errs := map[string]any{}
	if project.Key != "SEC" {
		errs["project"] = "valid project is required"
	}
	if issueType.Name != "Task" && issueType.Name != "Access Request" {
		errs["issuetype"] = "Specify a valid issue type"
	}
	switch {
	case summary == "":
		errs["summary"] = "You must specify a summary of the issue."
	case strings.ContainsAny(summary, "\r\n"):
		errs["summary"] = "The summary is invalid because it contains newline characters."
	case len([]rune(summary)) >= 255:
		errs["summary"] = "Summary must be less than 255 characters."
	}
	for k := range in.Fields {
		switch k {
		case "project", "issuetype", "summary", "description":
		default:
			errs[k] = fmt.Sprintf("Field '%s' cannot be set. It is not on the appropriate screen, or unknown.", k)
		}
	}
	if len(errs) > 0 {
		writeJSON(w, 400, map[string]any{"errorMessages": []string{}, "errors": errs})
		return
	}
	n := 13
	for f.issues[fmt.Sprintf("SEC-%d", n)] != nil {
		n++
	}
	key, id := fmt.Sprintf("SEC-%d", n), fmt.Sprint(10000+n)
	f.issues[key] = map[string]any{"id": id, "key": key, "self": f.srv.URL + "/rest/api/2/issue/" + id,
		"fields": map[string]any{"summary": summary, "description": description,
			"issuetype": map[string]any{"id": "10002", "name": issueType.Name},
			"project":   map[string]any{"id": "10000", "key": "SEC", "name": "Security Requests"},
			"status": map[string]any{"name": "Open", "id": "1",
				"statusCategory": map[string]any{"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"}},
			"created": "2025-03-06T12:00:00.000+0000", "updated": "2025-03-06T12:00:00.000+0000"}}
	writeJSON(w, 201, map[string]any{"id": id, "key": key, "self": f.srv.URL + "/rest/api/2/issue/" + id})
}

func TestCreateIssue(t *testing.T) {
	const path = "/rest/api/2/issue"
	long := strings.Repeat("é", 300)
	tests := []struct {
		name        string
		summary     string
		description string
		mod         func(*config.Config)
		replies     []reply
		wantKey     string
		wantSummary string
		wantType    string
		wantErr     error
		wantDetail  string
		wantCalls   int
		wantSleeps  []time.Duration
	}{
		{name: "created", summary: "Break-glass grant GK3D9QX2A: platform-ro for alice@lumi.test",
			description: "Incident PABC123.\nGranted by PagerDuty on-call.", wantKey: "SEC-13",
			wantSummary: "Break-glass grant GK3D9QX2A: platform-ro for alice@lumi.test", wantType: "Task", wantCalls: 1},
		{name: "configured issue type", summary: "x", mod: func(c *config.Config) { c.Jira.IssueType = "Access Request" },
			wantKey: "SEC-13", wantSummary: "x", wantType: "Access Request", wantCalls: 1},
		{name: "summary made one line", summary: "  Grant\nG1\r\n ended ", wantKey: "SEC-13", wantSummary: "Grant G1 ended",
			wantType: "Task", wantCalls: 1},
		{name: "long summary shortened", summary: long, wantKey: "SEC-13",
			wantSummary: strings.Repeat("é", MaxSummaryLength-1) + "…", wantType: "Task", wantCalls: 1},
		{name: "429 then 201", summary: "x", replies: []reply{{status: 429, retryAfter: "3",
			body: `{"errorMessages":["Rate limit exceeded."],"errors":{}}`}},
			wantKey: "SEC-13", wantSummary: "x", wantType: "Task", wantCalls: 2, wantSleeps: []time.Duration{3 * time.Second}},
		{name: "429 without Retry-After backs off", summary: "x", replies: []reply{{status: 429}, {status: 429}},
			wantKey: "SEC-13", wantSummary: "x", wantType: "Task", wantCalls: 3,
			wantSleeps: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
		{name: "429 three times", summary: "x", replies: []reply{{status: 429}, {status: 429}, {status: 429}},
			wantErr: ErrUnavailable, wantDetail: "jira: create issue in SEC: rate limited (HTTP 429)", wantCalls: 3,
			wantSleeps: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
		{name: "500 is not retried: the issue may exist", summary: "x",
			replies: []reply{{status: 500, body: `{"errorMessages":["Internal server error"],"errors":{}}`}},
			wantErr: ErrUnavailable, wantDetail: "jira: create issue in SEC: Jira server error (HTTP 500): Internal server error", wantCalls: 1},
		{name: "502 html is not retried", summary: "x",
			replies: []reply{{status: 502, body: "<html>Bad gateway</html>", contentTyp: "text/html"}},
			wantErr: ErrUnavailable, wantDetail: "Jira server error (HTTP 502)", wantCalls: 1},
		{name: "timeout is not retried", summary: "x", replies: []reply{{status: 201, delay: time.Second}},
			wantErr: ErrUnavailable, wantDetail: "timed out", wantCalls: 1},
		{name: "unknown issue type", summary: "x", mod: func(c *config.Config) { c.Jira.IssueType = "Bug Report" },
			wantDetail: "request refused (HTTP 400): issuetype: Specify a valid issue type", wantCalls: 1},
		{name: "forbidden", summary: "x",
			replies: []reply{{status: 403, body: `{"errorMessages":["You do not have permission to create issues in this project."],"errors":{}}`}},
			wantErr: ErrCredentialsRejected, wantDetail: "access denied (HTTP 403)", wantCalls: 1},
		{name: "credentials rejected", summary: "x", mod: func(c *config.Config) { c.Creds.JiraAPIToken = "jira-test-wr0ngT0ken" },
			wantErr: ErrCredentialsRejected, wantDetail: "credentials rejected (HTTP 401): check JIRA_EMAIL and JIRA_API_TOKEN", wantCalls: 1},
		{name: "reply without key", summary: "x", replies: []reply{{status: 201, body: `{"id":"10013","self":"x"}`}},
			wantDetail: "Jira answered without an issue key of SEC; the issue may exist", wantCalls: 1},
		{name: "reply not JSON", summary: "x", replies: []reply{{status: 201, body: `<html>`}},
			wantDetail: "unexpected reply", wantCalls: 1},
		{name: "empty summary", summary: " \n ", wantDetail: "an issue needs a summary"},
		{name: "huge description", summary: "x", description: strings.Repeat("x", MaxDescriptionLength+1), wantDetail: "at most 32000"},
		{name: "no project", summary: "x", mod: func(c *config.Config) { c.Jira.Project = "" }, wantErr: ErrNotConfigured},
		{name: "not configured", summary: "x", mod: func(c *config.Config) { c.Creds = config.Credentials{} }, wantErr: ErrNotConfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeJira(t)
			seedIssue(f)
			f.fail(path, tt.replies...)
			c, sleeps := testClient(t, f, tt.mod)
			c.attemptTimeout = 50 * time.Millisecond
			key, err := c.CreateIssue(context.Background(), tt.summary, tt.description)
			if tt.wantErr != nil || tt.wantDetail != "" {
				if err == nil {
					t.Fatalf("no error (key %q)", key)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantDetail) {
					t.Errorf("err %q, want %q", err, tt.wantDetail)
				}
				if key != "" {
					t.Errorf("key %q with an error", key)
				}
				noSecret(t, err.Error())
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if key != tt.wantKey {
					t.Errorf("key %q, want %q", key, tt.wantKey)
				}
			}
			calls := f.calls(path)
			if len(calls) != tt.wantCalls {
				t.Errorf("%d calls, want %d", len(calls), tt.wantCalls)
			}
			if tt.wantSummary != "" {
				last := calls[len(calls)-1]
				if last.method != http.MethodPost {
					t.Errorf("method %s", last.method)
				}
				var sent struct {
					Fields map[string]any `json:"fields"`
				}
				if err := json.Unmarshal([]byte(last.body), &sent); err != nil {
					t.Fatal(err)
				}
				want := map[string]any{
					"project":   map[string]any{"key": "SEC"},
					"issuetype": map[string]any{"name": tt.wantType},
					"summary":   tt.wantSummary,
				}
				if tt.description != "" {
					want["description"] = tt.description
				}
				if !reflect.DeepEqual(sent.Fields, want) {
					t.Errorf("sent fields %v, want %v", sent.Fields, want)
				}
				f.mu.Lock()
				is := f.issues[key]
				f.mu.Unlock()
				if key != "" && is == nil {
					t.Errorf("issue %s not in Jira", key)
				}
			}
			if !reflect.DeepEqual(*sleeps, tt.wantSleeps) {
				t.Errorf("sleeps %v, want %v", *sleeps, tt.wantSleeps)
			}
		})
	}
}

// The created issue reads back through Ticket, and comments go on it.
func TestCreateIssueRoundTrip(t *testing.T) {
	f := newFakeJira(t)
	c, _ := testClient(t, f, nil)
	ctx := context.Background()
	key, err := c.CreateIssue(ctx, "Break-glass grant G1", "Opened by secretbot.")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := c.Ticket(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Key != key || tk.Summary != "Break-glass grant G1" || tk.Status != "Open" {
		t.Errorf("ticket = %+v", tk)
	}
	if err := c.AddComment(ctx, key, "Grant G1 ended: incident-resolved"); err != nil {
		t.Error(err)
	}
	// Data Center (PAT) creates the same way.
	dc, _ := testClient(t, f, func(cfg *config.Config) { cfg.Creds = config.Credentials{JiraURL: f.srv.URL, JiraPAT: testPAT} })
	key2, err := dc.CreateIssue(ctx, "Break-glass grant G2", "")
	if err != nil || key2 == key || !ValidKey("SEC", key2) {
		t.Errorf("data center: %q, %v", key2, err)
	}
}
