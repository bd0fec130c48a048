package fakepd

import (
	"fmt"
	"strings"
	"time"
)

// User is a PagerDuty user.
type User struct {
	ID    string
	Name  string
	Email string
}

// Policy is an escalation policy and the services it covers.
type Policy struct {
	ID         string
	Name       string
	ServiceIDs []string
}

// OnCall is one on-call entry: UserID is on call on PolicyID at Level
// between Start and End.
type OnCall struct {
	UserID   string
	PolicyID string
	Level    uint
	Start    time.Time
	End      time.Time
}

// Incident is a PagerDuty incident. Status is triggered, acknowledged or resolved.
type Incident struct {
	ID         string
	Number     uint
	Title      string
	Status     string
	ServiceID  string
	PolicyID   string
	Assignees  []string
	Urgency    string
	CreatedAt  time.Time
	ResolvedAt time.Time
}

// Incident statuses.
const (
	Triggered    = "triggered"
	Acknowledged = "acknowledged"
	Resolved     = "resolved"
)

// AddUser adds a user (an ID is made up when empty) and returns it.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == "" {
		u.ID = fmt.Sprintf("PU%05d", len(s.users)+1)
	}
	if u.Name == "" {
		u.Name = strings.Split(u.Email, "@")[0]
	}
	s.users = append(s.users, u)
	return u
}

// AddService names a service (used in references' summaries).
func (s *Server) AddService(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.services[id] = name
}

// AddEscalationPolicy adds or replaces an escalation policy.
func (s *Server) AddEscalationPolicy(id, name string, serviceIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policies[id] = &Policy{ID: id, Name: name, ServiceIDs: serviceIDs}
}

// AddOnCall puts a user on call now (a shift from an hour ago to twelve
// hours from now) on a policy at an escalation level. An unknown policy is
// created.
func (s *Server) AddOnCall(userID, policyID string, level uint) {
	now := s.now()
	s.AddOnCallWindow(userID, policyID, level, now.Add(-time.Hour), now.Add(12*time.Hour))
}

// AddOnCallWindow puts a user on call between start and end.
func (s *Server) AddOnCallWindow(userID, policyID string, level uint, start, end time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.policies[policyID]; !ok {
		s.policies[policyID] = &Policy{ID: policyID, Name: "Policy " + policyID}
	}
	s.oncalls = append(s.oncalls, OnCall{UserID: userID, PolicyID: policyID, Level: level, Start: start, End: end})
}

// EndOnCall ends the user's current shifts on a policy now.
func (s *Server) EndOnCall(userID, policyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for i, oc := range s.oncalls {
		if oc.UserID == userID && oc.PolicyID == policyID && oc.End.After(now) {
			s.oncalls[i].End = now
		}
	}
}

// AddIncident adds an incident (ID, number, status, urgency and creation
// time are filled in when empty) and returns it.
func (s *Server) AddIncident(in Incident) Incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := uint(len(s.incidents) + 1)
	if in.Number == 0 {
		in.Number = n
	}
	if in.ID == "" {
		in.ID = fmt.Sprintf("Q%06dINC", in.Number)
	}
	if in.Status == "" {
		in.Status = Triggered
	}
	if in.Urgency == "" {
		in.Urgency = "high"
	}
	if in.CreatedAt.IsZero() {
		in.CreatedAt = s.now().Add(-10 * time.Minute)
	}
	if in.Title == "" {
		in.Title = "Incident " + in.ID
	}
	c := in
	s.incidents = append(s.incidents, &c)
	return in
}

// ResolveIncident resolves an incident; it reports whether it exists.
func (s *Server) ResolveIncident(idOrNumber string) bool {
	return s.SetIncidentStatus(idOrNumber, Resolved)
}

// SetIncidentStatus changes an incident's status; it reports whether it exists.
func (s *Server) SetIncidentStatus(idOrNumber, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.findIncidentLocked(idOrNumber)
	if in == nil {
		return false
	}
	in.Status = status
	if status == Resolved {
		in.ResolvedAt = s.now()
	}
	return true
}

func (s *Server) findIncidentLocked(idOrNumber string) *Incident {
	for _, in := range s.incidents {
		if in.ID == idOrNumber || fmt.Sprint(in.Number) == idOrNumber {
			return in
		}
	}
	return nil
}

func (s *Server) userByIDLocked(id string) (User, bool) {
	for _, u := range s.users {
		if u.ID == id {
			return u, true
		}
	}
	return User{}, false
}

func (s *Server) ref(kind, id, summary string) map[string]any {
	return map[string]any{"id": id, "type": kind + "_reference", "summary": summary,
		"self": s.URL + "/" + kind + "s/" + id, "html_url": "https://lumi-test.pagerduty.com/" + kind + "s/" + id}
}

func (s *Server) userRefLocked(id string) map[string]any {
	u, _ := s.userByIDLocked(id)
	return s.ref("user", id, u.Name)
}

func (s *Server) userJSON(u User) map[string]any {
	return map[string]any{"id": u.ID, "type": "user", "summary": u.Name, "name": u.Name, "email": u.Email,
		"time_zone": "Europe/Amsterdam", "role": "user", "self": s.URL + "/users/" + u.ID,
		"html_url": "https://lumi-test.pagerduty.com/users/" + u.ID}
}

func (s *Server) policyJSONLocked(p *Policy) map[string]any {
	levels := map[uint][]any{}
	var max uint
	for _, oc := range s.oncalls {
		if oc.PolicyID == p.ID {
			levels[oc.Level] = append(levels[oc.Level], s.userRefLocked(oc.UserID))
			max = maxUint(max, oc.Level)
		}
	}
	rules := []any{}
	for l := uint(1); l <= max; l++ {
		targets := levels[l]
		if targets == nil {
			targets = []any{}
		}
		rules = append(rules, map[string]any{"id": fmt.Sprintf("R%s%d", p.ID, l), "escalation_delay_in_minutes": 30, "targets": targets})
	}
	services := []any{}
	for _, id := range p.ServiceIDs {
		services = append(services, s.ref("service", id, s.services[id]))
	}
	return map[string]any{"id": p.ID, "type": "escalation_policy", "summary": p.Name, "name": p.Name,
		"escalation_rules": rules, "services": services, "num_loops": 0, "teams": []any{},
		"self": s.URL + "/escalation_policies/" + p.ID}
}

func maxUint(a, b uint) uint {
	if a > b {
		return a
	}
	return b
}

func pdTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func (s *Server) incidentJSONLocked(in *Incident) map[string]any {
	assignments := []any{}
	if in.Status != Resolved {
		for _, a := range in.Assignees {
			assignments = append(assignments, map[string]any{"at": pdTime(in.CreatedAt), "assignee": s.userRefLocked(a)})
		}
	}
	out := map[string]any{
		"id": in.ID, "type": "incident", "summary": fmt.Sprintf("[#%d] %s", in.Number, in.Title),
		"incident_number": in.Number, "title": in.Title, "status": in.Status, "urgency": in.Urgency,
		"created_at": pdTime(in.CreatedAt), "last_status_change_at": pdTime(in.CreatedAt),
		"incident_key": strings.ToLower(in.ID), "assignments": assignments, "teams": []any{},
		"self": s.URL + "/incidents/" + in.ID, "html_url": "https://lumi-test.pagerduty.com/incidents/" + in.ID,
	}
	if in.ServiceID != "" {
		out["service"] = s.ref("service", in.ServiceID, s.services[in.ServiceID])
	}
	if in.PolicyID != "" {
		name := ""
		if p, ok := s.policies[in.PolicyID]; ok {
			name = p.Name
		}
		out["escalation_policy"] = s.ref("escalation_policy", in.PolicyID, name)
	}
	if in.Status == Resolved {
		out["resolved_at"] = pdTime(in.ResolvedAt)
		out["last_status_change_at"] = pdTime(in.ResolvedAt)
	}
	return out
}
