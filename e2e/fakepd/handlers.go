package fakepd

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// page cuts items by PagerDuty's limit/offset parameters and adds the paging fields.
func page(key string, items []any, q url.Values) map[string]any {
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit > 100 {
		limit = 25
	}
	offset, _ := strconv.Atoi(q.Get("offset"))
	offset = min(max(offset, 0), len(items))
	end := min(offset+limit, len(items))
	out := map[string]any{key: items[offset:end], "limit": limit, "offset": offset, "more": end < len(items), "total": nil}
	if q.Get("total") == "true" {
		out["total"] = len(items)
	}
	return out
}

// list returns a bracketed array parameter, e.g. user_ids[].
func list(q url.Values, name string) []string { return q[name+"[]"] }

func matchAny(filter []string, v string) bool { return len(filter) == 0 || slices.Contains(filter, v) }

func (s *Server) getPolicy(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.policies[id]
	if !ok {
		writeError(w, http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"escalation_policy": s.policyJSONLocked(p)})
}

func (s *Server) listUsers(w http.ResponseWriter, q url.Values) {
	query := strings.ToLower(q.Get("query"))
	s.mu.Lock()
	items := []any{}
	for _, u := range s.users {
		// Like PagerDuty: a substring of the name or e-mail matches.
		if strings.Contains(strings.ToLower(u.Name), query) || strings.Contains(strings.ToLower(u.Email), query) {
			items = append(items, s.userJSON(u))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, page("users", items, q))
}

func (s *Server) getUser(w http.ResponseWriter, id string) {
	s.mu.Lock()
	u, ok := s.userByIDLocked(id)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": s.userJSON(u)})
}

func (s *Server) listOnCalls(w http.ResponseWriter, q url.Values) {
	since, until := s.now(), s.now()
	if t, err := time.Parse(time.RFC3339, q.Get("since")); err == nil {
		since = t
	}
	if t, err := time.Parse(time.RFC3339, q.Get("until")); err == nil {
		until = t
	}
	users, policies, schedules := list(q, "user_ids"), list(q, "escalation_policy_ids"), list(q, "schedule_ids")
	includeUsers := slices.Contains(list(q, "include"), "users")
	s.mu.Lock()
	items := []any{}
	for _, oc := range s.oncalls {
		active := !oc.Start.After(until) && oc.End.After(since)
		if !active || !matchAny(users, oc.UserID) || !matchAny(policies, oc.PolicyID) || !matchAny(schedules, "S"+oc.PolicyID) {
			continue
		}
		user := s.userRefLocked(oc.UserID)
		if u, ok := s.userByIDLocked(oc.UserID); ok && includeUsers {
			user = s.userJSON(u)
		}
		p := s.policies[oc.PolicyID]
		items = append(items, map[string]any{
			"escalation_policy": s.ref("escalation_policy", p.ID, p.Name),
			"escalation_level":  oc.Level,
			"schedule":          s.ref("schedule", "S"+oc.PolicyID, p.Name+" schedule"),
			"user":              user,
			"start":             pdTime(oc.Start),
			"end":               pdTime(oc.End),
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, page("oncalls", items, q))
}

func (s *Server) getIncident(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.findIncidentLocked(id)
	if in == nil {
		writeError(w, http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident": s.incidentJSONLocked(in)})
}

func (s *Server) listIncidents(w http.ResponseWriter, q url.Values) {
	statuses, services, users := list(q, "statuses"), list(q, "service_ids"), list(q, "user_ids")
	key := q.Get("incident_key")
	s.mu.Lock()
	items := []any{}
	for _, in := range s.incidents {
		assigned := len(users) == 0
		for _, a := range in.Assignees {
			assigned = assigned || (in.Status != Resolved && slices.Contains(users, a))
		}
		if !matchAny(statuses, in.Status) || !matchAny(services, in.ServiceID) || !assigned ||
			(key != "" && key != strings.ToLower(in.ID)) {
			continue
		}
		items = append(items, s.incidentJSONLocked(in))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, page("incidents", items, q))
}
