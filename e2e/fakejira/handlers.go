package fakejira

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/secretbot/secretbot/e2e/internal/watch"
)

var categoryIDs = map[string]struct {
	id   int
	name string
}{
	"new": {2, "To Do"}, "indeterminate": {4, "In Progress"}, "done": {3, "Done"},
}

func jiraTime(t time.Time) string { return t.Format(TimeFormat) }

func (s *Server) userJSON(u User) map[string]any {
	return map[string]any{
		"self": s.URL + "/rest/api/2/user?accountId=" + url.QueryEscape(u.AccountID), "accountId": u.AccountID,
		"accountType": "atlassian", "name": u.Name, "key": u.Name, "emailAddress": u.Email,
		"displayName": u.DisplayName, "active": true, "timeZone": "Europe/Amsterdam",
	}
}

func (s *Server) getProject(w http.ResponseWriter, key string) {
	s.mu.Lock()
	name, ok := s.projects[key]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("No project could be found with key '%s'.", key))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"self": s.URL + "/rest/api/2/project/" + key, "id": "1" + fmt.Sprint(len(key)),
		"key": key, "name": name, "projectTypeKey": "service_desk", "simplified": false, "style": "classic"})
}

func (s *Server) getIssue(w http.ResponseWriter, key string, q url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.issues[key]
	if !ok {
		writeError(w, http.StatusNotFound)
		return
	}
	cat := categoryIDs[in.StatusCategory]
	fields := map[string]any{}
	maps.Copy(fields, in.Fields)
	maps.Copy(fields, map[string]any{
		"summary":     in.Summary,
		"description": in.Description,
		"issuetype":   map[string]any{"id": "10002", "name": in.IssueType},
		"project":     map[string]any{"id": "10000", "key": in.project, "name": s.projects[in.project], "self": s.URL + "/rest/api/2/project/" + in.project},
		"status": map[string]any{"self": s.URL + "/rest/api/2/status/1", "description": "", "iconUrl": "", "name": in.Status, "id": "1",
			"statusCategory": map[string]any{"self": s.URL + "/rest/api/2/statuscategory/" + fmt.Sprint(cat.id), "id": cat.id,
				"key": in.StatusCategory, "colorName": "blue-gray", "name": cat.name}},
		"reporter": s.userJSON(in.Reporter),
		"creator":  s.userJSON(in.Reporter),
		"created":  jiraTime(in.Created),
		"updated":  jiraTime(in.Created),
	})
	out := map[string]any{"expand": "renderedFields,names,schema,operations,editmeta,changelog", "id": in.id,
		"self": s.URL + "/rest/api/2/issue/" + in.id, "key": in.Key, "fields": fields}
	if strings.Contains(q.Get("expand"), "changelog") {
		histories := []any{}
		for _, h := range in.histories {
			histories = append(histories, map[string]any{"id": h.id, "author": s.userJSON(h.author), "created": jiraTime(h.at),
				"items": []any{map[string]any{"field": "status", "fieldtype": "jira", "from": "1", "fromString": h.from, "to": "2", "toString": h.to}}})
		}
		out["changelog"] = map[string]any{"startAt": 0, "maxResults": len(histories), "total": len(histories), "histories": histories}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) addComment(w http.ResponseWriter, key string, body []byte) {
	var req struct {
		Body string `json:"body"`
	}
	if json.Unmarshal(body, &req) != nil || req.Body == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{}, "errors": map[string]string{"comment": "Comment body can not be empty!"}})
		return
	}
	s.mu.Lock()
	if _, ok := s.issues[key]; !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound)
		return
	}
	s.seq++
	c := Comment{ID: fmt.Sprint(30000 + s.seq), Issue: key, Body: req.Body, Author: s.self, Created: s.now()}
	s.comments = append(s.comments, c)
	s.mu.Unlock()
	s.changed.Fire()
	writeJSON(w, http.StatusCreated, map[string]any{"self": s.URL + "/rest/api/2/issue/" + key + "/comment/" + c.ID, "id": c.ID,
		"author": s.userJSON(c.Author), "body": c.Body, "updateAuthor": s.userJSON(c.Author),
		"created": jiraTime(c.Created), "updated": jiraTime(c.Created)})
}

func (s *Server) createIssue(w http.ResponseWriter, body []byte) {
	var req struct {
		Fields map[string]any `json:"fields"`
	}
	_ = json.Unmarshal(body, &req)
	project, _ := req.Fields["project"].(map[string]any)
	key, _ := project["key"].(string)
	summary, _ := req.Fields["summary"].(string)
	s.mu.Lock()
	_, known := s.projects[key]
	s.mu.Unlock()
	problems := map[string]string{}
	if !known {
		problems["project"] = "valid project is required"
	}
	if summary == "" {
		problems["summary"] = "You must specify a summary of the issue."
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{}, "errors": problems})
		return
	}
	desc, _ := req.Fields["description"].(string)
	s.mu.Lock()
	n := 1
	for _, k := range s.order {
		if strings.HasPrefix(k, key+"-") {
			n++
		}
	}
	issueKey := fmt.Sprintf("%s-%d", key, n)
	custom := map[string]any{}
	for k, v := range req.Fields {
		if strings.HasPrefix(k, "customfield_") {
			custom[k] = v
		}
	}
	in := s.addIssueLocked(Issue{Key: issueKey, Summary: summary, Description: desc, Status: "Open", StatusCategory: "new",
		Reporter: s.self, Created: s.now(), Fields: custom})
	s.created = append(s.created, Created{Key: issueKey, Fields: req.Fields, Time: s.now()})
	s.mu.Unlock()
	s.changed.Fire()
	writeJSON(w, http.StatusCreated, map[string]any{"id": in.id, "key": issueKey, "self": s.URL + "/rest/api/2/issue/" + in.id})
}

func (s *Server) searchUsers(w http.ResponseWriter, q url.Values) {
	query := strings.ToLower(q.Get("query") + q.Get("username"))
	s.mu.Lock()
	out := []any{}
	for _, u := range s.users {
		if query != "" && (strings.Contains(strings.ToLower(u.DisplayName), query) ||
			strings.Contains(strings.ToLower(u.Email), query) || strings.Contains(strings.ToLower(u.Name), query)) {
			out = append(out, s.userJSON(u))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func sdDate(t time.Time) map[string]any {
	return map[string]any{"iso8601": t.Format("2006-01-02T15:04:05-0700"), "jira": jiraTime(t),
		"friendly": t.Format("02/Jan/06 3:04 PM"), "epochMillis": t.UnixMilli()}
}

func (s *Server) getApprovals(w http.ResponseWriter, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.issues[key]
	if !ok || !in.desk {
		writeJSON(w, http.StatusNotFound, map[string]any{"errorMessage": "The request could not be found or you do not have permission to view it.",
			"i18nErrorMessage": map[string]any{"i18nKey": "sd.customer.request.error.not.found", "parameters": []string{}}})
		return
	}
	values := []any{}
	for i, a := range in.approvals {
		approvers := []any{}
		for _, ap := range a.Approvers {
			approvers = append(approvers, map[string]any{"approver": s.userJSON(ap.User), "approverDecision": ap.Decision})
		}
		id := a.ID
		if id == "" {
			id = fmt.Sprint(i + 1)
		}
		created := a.Created
		if created.IsZero() {
			created = in.Created
		}
		v := map[string]any{"id": id, "name": a.Name, "finalDecision": a.FinalDecision, "canAnswerApproval": false,
			"approvers": approvers, "createdDate": sdDate(created),
			"_links": map[string]any{"self": s.URL + "/rest/servicedeskapi/request/" + in.id + "/approval/" + id}}
		if !a.Completed.IsZero() {
			v["completedDate"] = sdDate(a.Completed)
		}
		values = append(values, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"size": len(values), "start": 0, "limit": 50, "isLastPage": true,
		"values": values, "_links": map[string]any{"base": s.URL, "context": ""}})
}

// WaitComment waits for a comment on key that match accepts (nil accepts any).
func (s *Server) WaitComment(key string, match func(Comment) bool, timeout time.Duration) (Comment, error) {
	var got Comment
	ok := watch.Until(&s.changed, timeout, func() bool {
		for _, c := range s.Comments(key) {
			if match == nil || match(c) {
				got = c
				return true
			}
		}
		return false
	})
	if !ok {
		return Comment{}, fmt.Errorf("fakejira: no matching comment on %s within %v", key, timeout)
	}
	return got, nil
}
