package jira

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/config"
)

const (
	testEmail = "secretbot@acme.example"
	testToken = "jira-test-ap1T0ken"
	testPAT   = "jira-test-pAtT0ken"
)

// reply is one canned answer, served once before the seeded data answers.
type reply struct {
	status     int
	body       string
	retryAfter string
	contentTyp string // default application/json
	delay      time.Duration
}

type recorded struct {
	method, path, rawQuery, body string
	header                       http.Header
}

// fakeJira speaks the Jira REST v2 and Service Management JSON shapes for the
// endpoints the client uses. Dates are formatted 2006-01-02T15:04:05.000-0700
// like Jira's.
type fakeJira struct {
	srv *httptest.Server

	mu        sync.Mutex
	queue     map[string][]reply // by path
	requests  []recorded
	issues    map[string]map[string]any
	approvals map[string][]map[string]any // missing key = 404
	users     []map[string]any
	pageSize  int // approvals per page; 0 = all
	// before, when set (before any request), runs first for every request.
	before func(r *http.Request)
}

func newFakeJira(t *testing.T) *fakeJira {
	f := &fakeJira{
		queue:     map[string][]reply{},
		issues:    map[string]map[string]any{},
		approvals: map[string][]map[string]any{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeJira) fail(path string, rs ...reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue[path] = append(f.queue[path], rs...)
}

func (f *fakeJira) calls(path string) []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recorded
	for _, r := range f.requests {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func jiraErr(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"errorMessages": []string{msg}, "errors": map[string]any{}})
}

func (f *fakeJira) serve(w http.ResponseWriter, r *http.Request) {
	if f.before != nil {
		f.before(r)
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, recorded{r.Method, r.URL.Path, r.URL.RawQuery, string(body), r.Header.Clone()})
	var q *reply
	if rs := f.queue[r.URL.Path]; len(rs) > 0 {
		q = &rs[0]
		f.queue[r.URL.Path] = rs[1:]
	}
	f.mu.Unlock()

	user, pass, basic := r.BasicAuth()
	if !(basic && user == testEmail && pass == testToken) && r.Header.Get("Authorization") != "Bearer "+testPAT {
		// Worst case: a server that quotes the credentials back.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "<html>Client must be authenticated (%s)</html>", r.Header.Get("Authorization"))
		return
	}
	if q != nil {
		if q.delay > 0 {
			select {
			case <-time.After(q.delay):
			case <-r.Context().Done():
				return
			}
		}
		if q.retryAfter != "" {
			w.Header().Set("Retry-After", q.retryAfter)
		}
		ct := q.contentTyp
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(q.status)
		fmt.Fprint(w, q.body)
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	p := r.URL.Path
	switch {
	case p == "/rest/api/2/myself":
		writeJSON(w, 200, map[string]any{"self": f.srv.URL + "/rest/api/2/user?accountId=5b10bot", "accountId": "5b10bot",
			"emailAddress": testEmail, "displayName": "Secretbot", "active": true, "timeZone": "Europe/Helsinki", "accountType": "app"})
	case p == "/rest/api/2/project/SEC":
		writeJSON(w, 200, map[string]any{"id": "10000", "key": "SEC", "name": "Security Requests", "projectTypeKey": "service_desk"})
	case strings.HasPrefix(p, "/rest/api/2/project/"):
		jiraErr(w, 404, fmt.Sprintf("No project could be found with key '%s'.", strings.TrimPrefix(p, "/rest/api/2/project/")))
	case p == "/rest/api/2/issue" && r.Method == http.MethodPost:
		f.createIssue(w, string(body))
	case strings.HasPrefix(p, "/rest/api/2/issue/") && strings.HasSuffix(p, "/comment") && r.Method == http.MethodPost:
		key := strings.TrimSuffix(strings.TrimPrefix(p, "/rest/api/2/issue/"), "/comment")
		if _, ok := f.issues[key]; !ok {
			jiraErr(w, 404, "Issue does not exist or you do not have permission to see it.")
			return
		}
		var c map[string]any
		_ = json.Unmarshal(body, &c)
		writeJSON(w, 201, map[string]any{"id": "10500", "body": c["body"], "created": "2025-03-06T12:00:00.000+0000",
			"author": map[string]any{"accountId": "5b10bot", "displayName": "Secretbot"}})
	case strings.HasPrefix(p, "/rest/api/2/issue/"):
		is, ok := f.issues[strings.TrimPrefix(p, "/rest/api/2/issue/")]
		if !ok {
			jiraErr(w, 404, "Issue does not exist or you do not have permission to see it.")
			return
		}
		writeJSON(w, 200, is)
	case strings.HasPrefix(p, "/rest/servicedeskapi/request/") && strings.HasSuffix(p, "/approval"):
		key := strings.TrimSuffix(strings.TrimPrefix(p, "/rest/servicedeskapi/request/"), "/approval")
		vals, ok := f.approvals[key]
		if !ok {
			jiraErr(w, 404, "The request could not be found.")
			return
		}
		start := 0
		fmt.Sscan(r.URL.Query().Get("start"), &start)
		vals = vals[min(start, len(vals)):]
		last := true
		if f.pageSize > 0 && len(vals) > f.pageSize {
			vals, last = vals[:f.pageSize], false
		}
		writeJSON(w, 200, map[string]any{"size": len(vals), "start": start, "limit": 50, "isLastPage": last, "values": vals,
			"_links": map[string]any{"base": f.srv.URL}})
	case p == "/rest/api/2/user/search":
		qv := strings.ToLower(r.URL.Query().Get("query") + r.URL.Query().Get("username"))
		out := []map[string]any{}
		for _, u := range f.users {
			if strings.Contains(strings.ToLower(fmt.Sprint(u["emailAddress"], " ", u["displayName"])), qv) {
				out = append(out, u)
			}
		}
		writeJSON(w, 200, out)
	default:
		jiraErr(w, 404, "not found")
	}
}

// testClient points a client at f (Cloud credentials unless mod changes
// them); waits are recorded in *sleeps, not slept.
func testClient(t *testing.T, f *fakeJira, mod func(*config.Config)) (*Client, *[]time.Duration) {
	t.Helper()
	cfg := &config.Config{
		Jira: config.Jira{Project: "SEC", Fields: config.JiraFields{
			Owner: "customfield_10050", Scope: "customfield_10051", Justification: "customfield_10052", Expiry: "customfield_10053"}},
		Creds: config.Credentials{JiraURL: f.srv.URL, JiraEmail: testEmail, JiraAPIToken: testToken},
	}
	if mod != nil {
		mod(cfg)
	}
	c, err := New(cfg, f.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sleeps []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		sleeps = append(sleeps, d)
		mu.Unlock()
		return ctx.Err()
	}
	c.now = func() time.Time { return time.Date(2025, 3, 6, 12, 0, 0, 0, time.UTC) }
	return c, &sleeps
}

// noSecret fails the test when s holds a credential in any form.
func noSecret(t *testing.T, s string) {
	t.Helper()
	for _, sec := range []string{testToken, testPAT, "ap1T0ken", "pAtT0ken",
		base64.StdEncoding.EncodeToString([]byte(testEmail + ":" + testToken))} {
		if strings.Contains(s, sec) {
			t.Errorf("credential leaked in %q", s)
		}
	}
}

func jiraUser(id, name, email string) map[string]any {
	return map[string]any{"self": "https://acme.atlassian.net/rest/api/2/user?accountId=" + id, "accountId": id,
		"emailAddress": email, "displayName": name, "active": true, "accountType": "atlassian"}
}

func statusItem(from, to string) map[string]any {
	return map[string]any{"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "1", "fromString": from, "to": "2", "toString": to}
}

// seedIssue is SEC-12 as Jira Cloud returns it with expand=changelog.
func seedIssue(f *fakeJira) map[string]any {
	is := map[string]any{
		"expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
		"id":     "10012", "self": f.srv.URL + "/rest/api/2/issue/10012", "key": "SEC-12",
		"fields": map[string]any{
			"summary": "Access to platform-rw",
			"project": map[string]any{"id": "10000", "key": "SEC", "name": "Security Requests", "projectTypeKey": "service_desk"},
			"status": map[string]any{"name": "Approved", "id": "10005",
				"statusCategory": map[string]any{"id": 3, "key": "done", "colorName": "green", "name": "Done"}},
			"created":           "2025-03-05T09:00:00.000+0200",
			"updated":           "2025-03-06T10:00:00.000+0200",
			"customfield_10050": jiraUser("A-OWNER", "Olga Owner", "olga@acme.example"),
			"customfield_10051": map[string]any{"self": "x", "value": "platform-rw", "id": "10100"},
			"customfield_10052": "Rotate the payments DB credentials after INC-7",
			"customfield_10053": "2025-03-10T18:00:00.000+0200",
			"customfield_99999": nil,
		},
		"changelog": map[string]any{"startAt": 0, "maxResults": 2, "total": 2, "histories": []any{
			map[string]any{"id": "100", "author": jiraUser("A-REQ", "Alice Ops", "alice@acme.example"),
				"created": "2025-03-05T09:05:00.000+0200",
				"items":   []any{statusItem("Open", "Waiting for approval")}},
			map[string]any{"id": "101", "author": jiraUser("A-LEAD", "Lena Lead", "lena@acme.example"),
				"created": "2025-03-06T10:00:00.000+0200",
				"items": []any{
					map[string]any{"field": "assignee", "fieldtype": "jira", "fromString": nil, "toString": "Lena Lead"},
					statusItem("Waiting for approval", "Approved"),
				}},
		}},
	}
	f.issues["SEC-12"] = is
	return is
}

func seedApproval(id, decision string, approvers ...map[string]any) map[string]any {
	a := map[string]any{"id": id, "name": "Security Lead approval", "finalDecision": decision,
		"canAnswerApproval": false, "approvers": approvers,
		"createdDate": map[string]any{"iso8601": "2025-03-05T09:05:00+0200", "jira": "2025-03-05T09:05:00.000+0200",
			"friendly": "Yesterday 9:05 AM", "epochMillis": 1741158300000}}
	if decision != "pending" {
		a["completedDate"] = map[string]any{"iso8601": "2025-03-06T10:00:00+0200", "jira": "2025-03-06T10:00:00.000+0200",
			"friendly": "Today 10:00 AM", "epochMillis": 1741248000000}
	}
	return a
}

func approver(id, name, email, decision string) map[string]any {
	return map[string]any{"approver": map[string]any{"accountId": id, "displayName": name, "emailAddress": email, "active": true},
		"approverDecision": decision}
}
