package pagerduty

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/config"
)

const testToken = "pd-test-5ecr3tT0ken"

// reply is one canned answer; a queued reply is served once, before the
// seeded data answers.
type reply struct {
	status     int
	body       string
	retryAfter string
	contentTyp string // default application/json
	delay      time.Duration
}

// fakePD speaks the PagerDuty REST API v2 JSON shapes for the endpoints the
// client uses.
type fakePD struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	queue    map[string][]reply // by path
	requests []*http.Request
	users    []map[string]any
	oncalls  []map[string]any
	policies map[string]string // id -> name
	incident map[string]map[string]any
	pageSize int // oncalls per page; 0 = all in one
}

func newFakePD(t *testing.T) *fakePD {
	f := &fakePD{
		t:        t,
		queue:    map[string][]reply{},
		policies: map[string]string{"PEP0001": "Platform", "PEP0002": "Payments"},
		incident: map[string]map[string]any{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePD) fail(path string, rs ...reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue[path] = append(f.queue[path], rs...)
}

func (f *fakePD) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r.URL.Path == path {
			n++
		}
	}
	return n
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func pdError(w http.ResponseWriter, status int, msg string, code int) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "code": code}})
}

func (f *fakePD) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r)
	var q *reply
	if rs := f.queue[r.URL.Path]; len(rs) > 0 {
		q = &rs[0]
		f.queue[r.URL.Path] = rs[1:]
	}
	f.mu.Unlock()

	if r.Header.Get("Authorization") != "Token token="+testToken {
		pdError(w, http.StatusUnauthorized, "Unauthorized", 2006)
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
	case p == "/abilities":
		writeJSON(w, 200, map[string]any{"abilities": []string{"teams", "read_only_users"}})
	case strings.HasPrefix(p, "/escalation_policies/"):
		id := strings.TrimPrefix(p, "/escalation_policies/")
		name, ok := f.policies[id]
		if !ok {
			pdError(w, 404, "Not Found", 2100)
			return
		}
		writeJSON(w, 200, map[string]any{"escalation_policy": map[string]any{
			"id": id, "type": "escalation_policy", "summary": name, "name": name, "num_loops": 0,
			"escalation_rules": []any{}, "services": []any{}, "teams": []any{},
		}})
	case p == "/users":
		qv := strings.ToLower(r.URL.Query().Get("query"))
		var out []map[string]any
		for _, u := range f.users {
			if strings.Contains(strings.ToLower(u["email"].(string)), qv) {
				out = append(out, u)
			}
		}
		writeJSON(w, 200, map[string]any{"users": out, "limit": 100, "offset": 0, "more": false, "total": nil})
	case strings.HasPrefix(p, "/users/"):
		id := strings.TrimPrefix(p, "/users/")
		for _, u := range f.users {
			if u["id"] == id {
				writeJSON(w, 200, map[string]any{"user": u})
				return
			}
		}
		pdError(w, 404, "Not Found", 2100)
	case p == "/oncalls":
		uids := r.URL.Query()["user_ids[]"]
		pids := r.URL.Query()["escalation_policy_ids[]"]
		var out []map[string]any
		for _, oc := range f.oncalls {
			uid := oc["user"].(map[string]any)["id"].(string)
			pid := oc["escalation_policy"].(map[string]any)["id"].(string)
			if contains(uids, uid) && contains(pids, pid) {
				out = append(out, oc)
			}
		}
		off := 0
		fmt.Sscan(r.URL.Query().Get("offset"), &off)
		more := false
		if f.pageSize > 0 {
			out = out[min(off, len(out)):]
			if len(out) > f.pageSize {
				out, more = out[:f.pageSize], true
			}
		}
		writeJSON(w, 200, map[string]any{"oncalls": out, "limit": 100, "offset": off, "more": more, "total": nil})
	case strings.HasPrefix(p, "/incidents/"):
		key := strings.TrimPrefix(p, "/incidents/")
		for _, in := range f.incident {
			if in["id"] == key || fmt.Sprint(in["incident_number"]) == key {
				writeJSON(w, 200, map[string]any{"incident": in})
				return
			}
		}
		pdError(w, 404, "Not Found", 2100)
	default:
		pdError(w, 404, "Not Found", 2100)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func pdUser(id, name, email string) map[string]any {
	return map[string]any{"id": id, "type": "user", "summary": name, "name": name, "email": email,
		"time_zone": "Europe/Helsinki", "role": "user", "html_url": "https://acme.pagerduty.com/users/" + id}
}

func pdOnCall(userID, policyID, policyName string, level int, start, end string) map[string]any {
	oc := map[string]any{
		"escalation_policy": map[string]any{"id": policyID, "type": "escalation_policy_reference", "summary": policyName,
			"self": "https://api.pagerduty.com/escalation_policies/" + policyID, "html_url": "https://acme.pagerduty.com/escalation_policies/" + policyID},
		"escalation_level": level,
		"schedule":         nil,
		"user":             map[string]any{"id": userID, "type": "user_reference", "summary": "someone"},
		"start":            start,
		"end":              end,
	}
	return oc
}

// testClient returns a client pointed at f, with no real sleeping: waits are
// recorded in *sleeps.
func testClient(f *fakePD, mod func(*config.Config)) (*Client, *[]time.Duration) {
	cfg := &config.Config{
		PagerDuty: config.PagerDuty{EscalationPolicies: []string{"PEP0001", "PEP0002"}},
		Creds:     config.Credentials{PagerDutyToken: testToken, PagerDutyAPIURL: f.srv.URL + "/"},
	}
	if mod != nil {
		mod(cfg)
	}
	c := New(cfg, f.srv.Client())
	var sleeps []time.Duration
	var mu sync.Mutex
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		sleeps = append(sleeps, d)
		mu.Unlock()
		return ctx.Err()
	}
	c.now = func() time.Time { return time.Date(2025, 3, 6, 12, 0, 0, 0, time.UTC) }
	return c, &sleeps
}

// noSecret fails the test when s holds the API key in any form.
func noSecret(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, testToken) || strings.Contains(s, "5ecr3tT0ken") {
		t.Errorf("credential leaked: %q", s)
	}
}
