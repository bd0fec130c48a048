// Package fakejira is a fake Jira (REST API v2 and the Service Management
// approvals endpoint) for end-to-end tests, with the JSON shapes go-jira
// v1.16.0 decodes, seeded by the test, recording comments and created
// issues, with failure and latency injection.
package fakejira

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/internal/fault"
	"github.com/secretbot/secretbot/e2e/internal/watch"
)

// Default credentials the server accepts.
const (
	DefaultEmail    = "secretbot@lumi.test"
	DefaultAPIToken = "jira-test-0000-fakejira"
	DefaultPAT      = "jira-test-pat-0000-fakejira"
)

// TimeFormat is how Jira writes times (go-jira cannot parse RFC 3339's "Z").
const TimeFormat = "2006-01-02T15:04:05.000-0700"

// Call is one request the server received.
type Call struct {
	Method string
	Path   string
	Query  url.Values
	Body   []byte
	Time   time.Time
}

// Option configures a Server.
type Option func(*Server)

// WithBasic sets the e-mail and API token accepted as Basic auth (Cloud).
func WithBasic(email, apiToken string) Option {
	return func(s *Server) { s.email, s.apiToken = email, apiToken }
}

// WithPAT sets the personal access token accepted as Bearer auth (Data Center).
func WithPAT(pat string) Option { return func(s *Server) { s.pat = pat } }

// WithClock sets the clock used for comment and issue times.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// Server is a running fake Jira; its methods are safe for concurrent use.
type Server struct {
	// URL is the site base (JIRA_URL).
	URL string

	email, apiToken, pat string
	now                  func() time.Time
	srv                  *httptest.Server
	faults               fault.Set
	changed              watch.Notifier

	mu       sync.Mutex
	self     User
	calls    []Call
	users    []User
	projects map[string]string
	issues   map[string]*issue
	order    []string
	comments []Comment
	created  []Created
	seq      int
}

// New starts a fake Jira and closes it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	s := &Server{email: DefaultEmail, apiToken: DefaultAPIToken, pat: DefaultPAT, now: time.Now,
		projects: map[string]string{}, issues: map[string]*issue{}}
	for _, o := range opts {
		o(s)
	}
	s.self = User{AccountID: "acc-secretbot", Name: "secretbot", DisplayName: "secretbot", Email: s.email}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Email, APIToken and PAT return the accepted credentials.
func (s *Server) Email() string    { return s.email }
func (s *Server) APIToken() string { return s.apiToken }
func (s *Server) PAT() string      { return s.pat }

// Self is the account the credentials belong to (the bot).
func (s *Server) Self() User { return s.self }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetFault makes requests whose path starts with prefix
// ("/rest/api/2/issue/SEC-1") fail or slow down.
func (s *Server) SetFault(prefix string, f fault.Fault) { s.faults.Put(prefix, f) }

// SetFailure answers requests under prefix with status; 0 clears.
func (s *Server) SetFailure(prefix string, status int) {
	if status == 0 {
		s.faults.Clear(prefix)
		return
	}
	s.faults.Put(prefix, fault.Fault{Status: status})
}

// SetDelay delays answers under prefix; 0 clears.
func (s *Server) SetDelay(prefix string, d time.Duration) {
	if d == 0 {
		s.faults.Clear(prefix)
		return
	}
	s.faults.Put(prefix, fault.Fault{Delay: d})
}

// Calls returns every request so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallsTo returns the requests whose path starts with prefix.
func (s *Server) CallsTo(prefix string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if strings.HasPrefix(c.Path, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func jiraError(status int) string {
	msgs := map[int]string{
		401: "You are not authenticated. Authentication required to perform this operation.",
		403: "You do not have permission to perform this operation.",
		404: "Issue does not exist or you do not have permission to see it.",
		429: "Rate limit exceeded.",
	}
	msg, ok := msgs[status]
	if !ok {
		msg = "Internal server error"
	}
	b, _ := json.Marshal(map[string]any{"errorMessages": []string{msg}, "errors": map[string]string{}})
	return string(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msgs ...string) {
	body := jiraError(status)
	if len(msgs) > 0 {
		b, _ := json.Marshal(map[string]any{"errorMessages": msgs, "errors": map[string]string{}})
		body = string(b)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if s.pat != "" && h == "Bearer "+s.pat {
		return true
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(s.email+":"+s.apiToken))
	return s.apiToken != "" && h == want
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body := readBody(r)
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body, Time: s.now()})
	s.mu.Unlock()
	s.changed.Fire()
	if f, ok := s.faults.TakePrefix(r.URL.Path); ok && fault.Apply(w, r, f, jiraError) {
		return
	}
	if !s.authorized(r) {
		writeError(w, http.StatusUnauthorized)
		return
	}
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	get, post := r.Method == http.MethodGet, r.Method == http.MethodPost
	switch {
	case get && match(p, "rest", "api", "2", "myself"):
		writeJSON(w, http.StatusOK, s.userJSON(s.self))
	case get && match(p, "rest", "api", "2", "project", "*"):
		s.getProject(w, p[4])
	case get && match(p, "rest", "api", "2", "issue", "*"):
		s.getIssue(w, p[4], r.URL.Query())
	case post && match(p, "rest", "api", "2", "issue", "*", "comment"):
		s.addComment(w, p[4], body)
	case post && match(p, "rest", "api", "2", "issue"):
		s.createIssue(w, body)
	case get && match(p, "rest", "api", "2", "user", "search"):
		s.searchUsers(w, r.URL.Query())
	case get && match(p, "rest", "servicedeskapi", "request", "*", "approval"):
		s.getApprovals(w, p[3])
	default:
		writeError(w, http.StatusNotFound, "Not found: "+r.Method+" "+r.URL.Path)
	}
}

// match compares path segments with a pattern where "*" matches any one segment.
func match(p []string, pattern ...string) bool {
	if len(p) != len(pattern) {
		return false
	}
	for i := range p {
		if pattern[i] != "*" && pattern[i] != p[i] {
			return false
		}
	}
	return true
}

func readBody(r *http.Request) []byte {
	if r.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	return b
}
