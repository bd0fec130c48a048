package fakejira_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	jira "github.com/andygrunwald/go-jira"

	"github.com/secretbot/secretbot/e2e/fakejira"
)

var (
	lead  = fakejira.User{AccountID: "acc-sam-lead", DisplayName: "Sam Lead", Email: "sam@lumi.test"}
	alice = fakejira.User{AccountID: "acc-alice", DisplayName: "Alice", Email: "alice@lumi.test"}
)

func seeded(t *testing.T) (*fakejira.Server, *jira.Client) {
	s := fakejira.New(t)
	s.AddProject("SEC", "Security")
	s.AddUser(lead)
	s.AddIssue(fakejira.Issue{Key: "SEC-1", Summary: "platform-rw for alice", Reporter: alice,
		Fields: map[string]any{"customfield_10051": "platform-rw", "customfield_10053": "2030-01-01"}})
	tp := jira.BasicAuthTransport{Username: s.Email(), Password: s.APIToken()}
	c, err := jira.NewClient(tp.Client(), s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestIssueChangelogAndApprovals(t *testing.T) {
	s, c := seeded(t)
	ctx := context.Background()
	at := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	s.Transition("SEC-1", "Approved", "done", lead, at)

	me, _, err := c.User.GetSelfWithContext(ctx)
	if err != nil || me.EmailAddress != fakejira.DefaultEmail {
		t.Errorf("myself = %+v, %v", me, err)
	}
	p, _, err := c.Project.GetWithContext(ctx, "SEC")
	if err != nil || p.Key != "SEC" {
		t.Errorf("project = %+v, %v", p, err)
	}
	is, _, err := c.Issue.GetWithContext(ctx, "SEC-1", &jira.GetQueryOptions{Expand: "changelog"})
	if err != nil {
		t.Fatal(err)
	}
	if is.Fields.Status.Name != "Approved" || is.Fields.Status.StatusCategory.Key != "done" || is.Fields.Project.Key != "SEC" ||
		is.Fields.Reporter.AccountID != "acc-alice" || is.Fields.Unknowns["customfield_10051"] != "platform-rw" {
		t.Errorf("fields = %+v", is.Fields)
	}
	if is.Changelog == nil || len(is.Changelog.Histories) != 1 {
		t.Fatalf("changelog = %+v", is.Changelog)
	}
	h := is.Changelog.Histories[0]
	created, err := h.CreatedTime()
	if err != nil || !created.Equal(at) || h.Author.AccountID != lead.AccountID || h.Items[0].Field != "status" || h.Items[0].ToString != "Approved" {
		t.Errorf("history = %+v (%v, %v)", h, created, err)
	}

	// Approvals: 404 until the issue is a Service Management request.
	req, _ := c.NewRequestWithContext(ctx, http.MethodGet, "rest/servicedeskapi/request/SEC-1/approval", nil)
	if _, err := c.Do(req, nil); err == nil {
		t.Error("approvals of a plain issue answered")
	}
	s.SetApprovals("SEC-1", fakejira.Approval{Name: "Security Lead", FinalDecision: "approved", Completed: at,
		Approvers: []fakejira.Approver{{User: lead, Decision: "approved"}}})
	var out struct {
		Values []struct {
			FinalDecision string `json:"finalDecision"`
			Approvers     []struct {
				Approver         jira.User `json:"approver"`
				ApproverDecision string    `json:"approverDecision"`
			} `json:"approvers"`
			CompletedDate struct {
				EpochMillis int64 `json:"epochMillis"`
			} `json:"completedDate"`
		} `json:"values"`
	}
	req, _ = c.NewRequestWithContext(ctx, http.MethodGet, "rest/servicedeskapi/request/SEC-1/approval", nil)
	if _, err := c.Do(req, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Values) != 1 || out.Values[0].FinalDecision != "approved" || out.Values[0].Approvers[0].Approver.AccountID != lead.AccountID ||
		out.Values[0].CompletedDate.EpochMillis != at.UnixMilli() {
		t.Errorf("approvals = %+v", out)
	}
}

func TestCommentsCreateSearchAndErrors(t *testing.T) {
	s, c := seeded(t)
	ctx := context.Background()
	if _, _, err := c.Issue.AddCommentWithContext(ctx, "SEC-1", &jira.Comment{Body: "granted platform-rw"}); err != nil {
		t.Fatal(err)
	}
	if cm, err := s.WaitComment("SEC-1", nil, time.Second); err != nil || cm.Body != "granted platform-rw" {
		t.Errorf("comment = %+v, %v", cm, err)
	}
	created, _, err := c.Issue.CreateWithContext(ctx, &jira.Issue{Fields: &jira.IssueFields{
		Project: jira.Project{Key: "SEC"}, Summary: "post-incident review", Type: jira.IssueType{Name: "Task"}}})
	if err != nil || created.Key != "SEC-2" || len(s.CreatedIssues()) != 1 {
		t.Errorf("created = %+v, %v", created, err)
	}
	users, _, err := c.User.FindWithContext(ctx, "sam@")
	if err != nil || len(users) != 1 || users[0].AccountID != lead.AccountID {
		t.Errorf("users = %+v, %v", users, err)
	}

	_, resp, err := c.Issue.GetWithContext(ctx, "SEC-404", nil)
	if err == nil || resp.StatusCode != 404 {
		t.Errorf("missing issue: %v", err)
	}
	pat, _ := jira.NewClient((&jira.PATAuthTransport{Token: s.PAT()}).Client(), s.URL)
	if _, _, err := pat.User.GetSelfWithContext(ctx); err != nil {
		t.Errorf("PAT auth: %v", err)
	}
	bad, _ := jira.NewClient((&jira.BasicAuthTransport{Username: s.Email(), Password: "jira-test-wrong"}).Client(), s.URL)
	if _, resp, err := bad.User.GetSelfWithContext(ctx); err == nil || resp.StatusCode != 401 {
		t.Errorf("bad auth: %v", err)
	}
	s.SetFailure("/rest/api/2/issue/", 429)
	_, resp, err = c.Issue.GetWithContext(ctx, "SEC-1", nil)
	if err == nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("429: %v", err)
	}
}
