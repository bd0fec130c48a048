// Package fakepd is a fake PagerDuty REST API v2 for end-to-end tests: the
// few read endpoints secretbot uses, seeded by the test, with the JSON
// shapes go-pagerduty v1.8.0 decodes, and failure and latency injection.
package fakepd

import (
	"encoding/json"
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

// DefaultToken is the API key the server accepts unless WithToken says otherwise.
const DefaultToken = "pd-test-0000-fakepd"

// Call is one request the server received.
type Call struct {
	Method string
	Path   string
	Query  url.Values
	Time   time.Time
}

// Option configures a Server.
type Option func(*Server)

// WithToken sets the accepted API key.
func WithToken(token string) Option { return func(s *Server) { s.token = token } }

// WithClock sets the clock deciding who is on call now.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// Server is a running fake PagerDuty; its methods are safe for concurrent use.
type Server struct {
	// URL is the API base (PAGERDUTY_API_URL).
	URL string

	token   string
	now     func() time.Time
	srv     *httptest.Server
	faults  fault.Set
	changed watch.Notifier

	mu        sync.Mutex
	calls     []Call
	users     []User
	policies  map[string]*Policy
	oncalls   []OnCall
	incidents []*Incident
	services  map[string]string
}

// New starts a fake PagerDuty and closes it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	s := &Server{token: DefaultToken, now: time.Now, policies: map[string]*Policy{}, services: map[string]string{}}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Token returns the accepted API key.
func (s *Server) Token() string { return s.token }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetFault makes requests whose path starts with prefix ("/oncalls",
// "/incidents/") fail or slow down; Fault{} with Times 0 lasts until cleared.
func (s *Server) SetFault(prefix string, f fault.Fault) { s.faults.Put(prefix, f) }

// SetFailure answers requests under prefix with status (429 with Retry-After: 1); 0 clears.
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

// WaitCalls waits until at least n requests under prefix were received.
func (s *Server) WaitCalls(prefix string, n int, timeout time.Duration) bool {
	return watch.Until(&s.changed, timeout, func() bool { return len(s.CallsTo(prefix)) >= n })
}

// apiError is PagerDuty's error object.
func apiError(status int) string {
	msgs := map[int]string{401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Rate Limit Exceeded"}
	codes := map[int]int{401: 2006, 403: 2010, 404: 2100, 429: 2020}
	msg, ok := msgs[status]
	if !ok {
		msg = "Internal Server Error"
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "code": codes[status]}})
	return string(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(apiError(status)))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Time: s.now()})
	s.mu.Unlock()
	s.changed.Fire()
	if f, ok := s.faults.TakePrefix(r.URL.Path); ok && fault.Apply(w, r, f, apiError) {
		return
	}
	if r.Header.Get("Authorization") != "Token token="+s.token {
		writeError(w, http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusNotFound)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	switch {
	case len(parts) == 1 && parts[0] == "abilities":
		writeJSON(w, http.StatusOK, map[string]any{"abilities": []string{"teams", "read_only_users", "service_support_hours", "urgencies"}})
	case len(parts) == 2 && parts[0] == "escalation_policies":
		s.getPolicy(w, parts[1])
	case len(parts) == 1 && parts[0] == "users":
		s.listUsers(w, q)
	case len(parts) == 2 && parts[0] == "users":
		s.getUser(w, parts[1])
	case len(parts) == 1 && parts[0] == "oncalls":
		s.listOnCalls(w, q)
	case len(parts) == 2 && parts[0] == "incidents":
		s.getIncident(w, parts[1])
	case len(parts) == 1 && parts[0] == "incidents":
		s.listIncidents(w, q)
	default:
		writeError(w, http.StatusNotFound)
	}
}
