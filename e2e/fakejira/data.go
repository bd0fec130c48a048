package fakejira

import (
	"fmt"
	"strings"
	"time"
)

// User is a Jira account. AccountID is Cloud's id; Name is Data Center's username.
type User struct {
	AccountID   string
	Name        string
	DisplayName string
	Email       string
}

// Issue is a ticket as seeded by a test.
type Issue struct {
	Key     string // PROJECT-N
	Summary string
	// Description is the issue's plain-text description.
	Description string
	// Status is the status name ("Approved"); StatusCategory is new,
	// indeterminate or done (default indeterminate).
	Status         string
	StatusCategory string
	IssueType      string
	Reporter       User
	Created        time.Time
	// Fields holds custom fields, e.g. "customfield_10050": "alice@lumi.test".
	Fields map[string]any
}

// Approver is one approver of a Service Management approval and their decision.
type Approver struct {
	User     User
	Decision string // pending | approved | declined
}

// Approval is a Service Management approval on a request.
type Approval struct {
	ID            string
	Name          string
	FinalDecision string // pending | approved | declined
	Approvers     []Approver
	Created       time.Time
	Completed     time.Time
}

// Comment is a comment the bot (or a test) added.
type Comment struct {
	ID      string
	Issue   string
	Body    string
	Author  User
	Created time.Time
}

// Created is an issue the bot created through POST /rest/api/2/issue.
type Created struct {
	Key    string
	Fields map[string]any
	Time   time.Time
}

type history struct {
	id     string
	author User
	at     time.Time
	from   string
	to     string
}

type issue struct {
	Issue
	id        string
	project   string
	histories []history
	approvals []Approval
	desk      bool
}

// AddUser adds an account (found by user search).
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = append(s.users, u)
}

// AddProject adds a project.
func (s *Server) AddProject(key, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.projects[key] = name
}

// AddIssue adds or replaces an issue; its project is created if missing.
func (s *Server) AddIssue(is Issue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addIssueLocked(is)
}

func (s *Server) addIssueLocked(is Issue) *issue {
	project, _, _ := strings.Cut(is.Key, "-")
	if _, ok := s.projects[project]; !ok {
		s.projects[project] = project + " project"
	}
	if is.Status == "" {
		is.Status = "Open"
	}
	if is.StatusCategory == "" {
		is.StatusCategory = "indeterminate"
	}
	if is.IssueType == "" {
		is.IssueType = "Task"
	}
	if is.Created.IsZero() {
		is.Created = s.now().Add(-time.Hour)
	}
	s.seq++
	in := &issue{Issue: is, id: fmt.Sprint(10000 + s.seq), project: project}
	if old, ok := s.issues[is.Key]; ok {
		in.id, in.histories, in.approvals, in.desk = old.id, old.histories, old.approvals, old.desk
	} else {
		s.order = append(s.order, is.Key)
	}
	s.issues[is.Key] = in
	return in
}

// Transition moves an issue to status (category new, indeterminate or done),
// recording a changelog entry by author at time at. It reports whether the
// issue exists.
func (s *Server) Transition(key, status, category string, author User, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.issues[key]
	if !ok {
		return false
	}
	s.seq++
	in.histories = append(in.histories, history{id: fmt.Sprint(20000 + s.seq), author: author, at: at, from: in.Status, to: status})
	in.Status, in.StatusCategory = status, category
	return true
}

// SetApprovals makes the issue a Service Management request with these approvals.
func (s *Server) SetApprovals(key string, approvals ...Approval) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.issues[key]
	if !ok {
		return false
	}
	in.desk = true
	in.approvals = append([]Approval(nil), approvals...)
	return true
}

// Comments returns the comments on an issue ("" for all issues).
func (s *Server) Comments(key string) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.comments {
		if key == "" || c.Issue == key {
			out = append(out, c)
		}
	}
	return out
}

// CreatedIssues returns the issues created through the API.
func (s *Server) CreatedIssues() []Created {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Created(nil), s.created...)
}
