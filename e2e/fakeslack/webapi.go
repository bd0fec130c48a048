package fakeslack

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/secretbot/secretbot/e2e/internal/fault"
)

type reply = map[string]any

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func slackError(code string) reply { return reply{"ok": false, "error": code} }

func errBody(status int) string {
	return fmt.Sprintf(`{"ok":false,"error":"http_%d"}`, status)
}

// parseCall reads a Web API request: form (body or query) or JSON, and the
// token from the Authorization header or the "token" field.
func parseCall(r *http.Request, method string) (Call, string) {
	c := Call{Method: method, Form: url.Values{}}
	token := ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		token = strings.TrimPrefix(h, "Bearer ")
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if len(body) > 0 {
			_ = json.Unmarshal(body, &c.JSON)
		}
		for k, v := range r.URL.Query() {
			c.Form[k] = v
		}
	} else {
		_ = r.ParseForm()
		for k, v := range r.Form {
			c.Form[k] = v
		}
	}
	if t := c.Form.Get("token"); t != "" && token == "" {
		token = t
	}
	c.Form.Del("token")
	if t, ok := c.JSON["token"].(string); ok && token == "" {
		token = t
	}
	delete(c.JSON, "token")
	return c, token
}

// authError checks a token against the one the method needs.
func (s *Server) authError(method, token string) string {
	want, other := s.cfg.botToken, s.cfg.appToken
	if method == "apps.connections.open" {
		want, other = other, want
	}
	switch token {
	case want:
		return ""
	case "":
		return "not_authed"
	case other:
		return "not_allowed_token_type"
	}
	return "invalid_auth"
}

func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, apiPathPrefix)
	call, token := parseCall(r, method)
	call.Time = s.now()
	f, faulted := s.faults.Take(method)
	if faulted {
		call.Status, call.RetryAfter = f.Status, f.RetryAfter
		if f.Status == http.StatusTooManyRequests && f.RetryAfter == "" {
			call.RetryAfter = "1" // fault.Apply's default
		}
	}
	s.record(call)
	if faulted && fault.Apply(w, r, f, errBody) {
		return
	}
	if code := s.authError(method, token); code != "" {
		writeJSON(w, slackError(code))
		return
	}
	if method == "auth.test" || method == "apps.connections.open" {
		s.mu.Lock()
		code := s.authFail
		s.mu.Unlock()
		if code != "" {
			writeJSON(w, slackError(code))
			return
		}
	}
	h, ok := webMethods[method]
	if !ok {
		writeJSON(w, slackError("unknown_method"))
		return
	}
	writeJSON(w, h(s, r, call))
}

var webMethods = map[string]func(*Server, *http.Request, Call) reply{
	"apps.connections.open": (*Server).connectionsOpen,
	"auth.test":             (*Server).authTest,
	"users.info":            (*Server).usersInfo,
	"usergroups.list":       (*Server).usergroupsList,
	"usergroups.users.list": (*Server).usergroupsUsersList,
	"chat.postMessage":      (*Server).chatPostMessage,
	"chat.postEphemeral":    (*Server).chatPostEphemeral,
	"chat.update":           (*Server).chatUpdate,
	"conversations.open":    (*Server).conversationsOpen,
	"views.open":            (*Server).viewsOpen,
	"views.push":            (*Server).viewsOpen,
	"views.update":          (*Server).viewsUpdate,
	"views.publish":         (*Server).viewsPublish,

	"files.getUploadURLExternal":   (*Server).filesGetUploadURLExternal,
	"files.completeUploadExternal": (*Server).filesCompleteUploadExternal,
	"usergroups.users.update":      (*Server).usergroupsUsersUpdate,
	"users.lookupByEmail":          (*Server).usersLookupByEmail,
}

func (s *Server) connectionsOpen(r *http.Request, _ Call) reply {
	s.mu.Lock()
	ticket := strconv.Itoa(s.nextID())
	s.tickets[ticket] = true
	s.mu.Unlock()
	return reply{"ok": true, "url": "ws://" + r.Host + socketPath + "?ticket=" + ticket}
}

func (s *Server) authTest(*http.Request, Call) reply {
	return reply{"ok": true, "url": "https://" + s.cfg.teamDomain + ".slack.com/", "team": "Lumi Test",
		"user": "secretbot", "team_id": s.cfg.teamID, "user_id": BotUserID, "bot_id": BotID, "is_enterprise_install": false}
}

func (s *Server) usersInfo(_ *http.Request, c Call) reply {
	u, ok := s.User(c.Param("user"))
	if !ok {
		return slackError("user_not_found")
	}
	return reply{"ok": true, "user": s.userJSON(u)}
}

func (s *Server) usergroupsList(_ *http.Request, c Call) reply {
	withUsers := c.Param("include_users") == "true"
	s.mu.Lock()
	defer s.mu.Unlock()
	groups := make([]map[string]any, 0, len(s.groups))
	for _, g := range s.groups {
		groups = append(groups, s.groupJSON(g, withUsers))
	}
	return reply{"ok": true, "usergroups": groups}
}

func (s *Server) usergroupsUsersList(_ *http.Request, c Call) reply {
	id := c.Param("usergroup")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		if g.ID == id {
			users := append([]string{}, g.Members...)
			return reply{"ok": true, "users": users}
		}
	}
	return slackError("no_such_subteam")
}

func (s *Server) chatPostMessage(_ *http.Request, c Call) reply {
	m, errCode := s.newMessage(c)
	if errCode != "" {
		return slackError(errCode)
	}
	m = s.addMessage(m)
	return reply{"ok": true, "channel": m.Channel, "ts": m.TS, "message": messageJSON(m)}
}

func (s *Server) chatPostEphemeral(_ *http.Request, c Call) reply {
	m, errCode := s.newMessage(c)
	if errCode != "" {
		return slackError(errCode)
	}
	if c.Param("user") == "" {
		return slackError("user_not_found")
	}
	m.Ephemeral, m.User = true, c.Param("user")
	m = s.addMessage(m)
	return reply{"ok": true, "message_ts": m.TS}
}

func (s *Server) chatUpdate(_ *http.Request, c Call) reply {
	channel, ts := normalizeChannel(c.Param("channel")), c.Param("ts")
	blocks, err := withBlockIDs(c.Param("blocks"))
	if err != nil {
		return slackError("invalid_blocks")
	}
	s.mu.Lock()
	var found *Message
	for _, m := range s.messages {
		if !m.Ephemeral && m.Channel == channel && m.TS == ts {
			found = m
		}
	}
	if found == nil {
		s.mu.Unlock()
		return slackError("message_not_found")
	}
	found.Text = c.Param("text")
	if blocks != nil {
		found.Blocks = blocks
	}
	found.Edits++
	found.EditedAt = s.now()
	out := *found
	s.mu.Unlock()
	s.changed.Fire()
	return reply{"ok": true, "channel": out.Channel, "ts": out.TS, "text": out.Text, "message": messageJSON(out)}
}

func (s *Server) conversationsOpen(_ *http.Request, c Call) reply {
	users := c.Param("users")
	if users == "" || strings.Contains(users, ",") {
		return slackError("users_list_not_supplied")
	}
	if _, ok := s.User(users); !ok {
		return slackError("user_not_found")
	}
	return reply{"ok": true, "no_op": true, "already_open": true, "channel": reply{"id": DMChannel(users)}}
}

// newMessage builds a message from a chat.post* call.
func (s *Server) newMessage(c Call) (Message, string) {
	channel := c.Param("channel")
	if channel == "" {
		return Message{}, "channel_not_found"
	}
	blocks, err := withBlockIDs(c.Param("blocks"))
	if err != nil {
		return Message{}, "invalid_blocks"
	}
	if c.Param("text") == "" && blocks == nil {
		return Message{}, "no_text"
	}
	return Message{Channel: normalizeChannel(channel), ThreadTS: c.Param("thread_ts"), Text: c.Param("text"), Blocks: blocks}, ""
}

func (s *Server) addMessage(m Message) Message {
	s.mu.Lock()
	s.tsSeq++
	m.TS = fmt.Sprintf("%d.%06d", 1700000000+s.tsSeq, s.tsSeq)
	m.PostedAt = s.now()
	s.messages = append(s.messages, &m)
	s.mu.Unlock()
	s.changed.Fire()
	return m
}

func messageJSON(m Message) reply {
	return reply{"type": "message", "user": BotUserID, "bot_id": BotID, "text": m.Text, "ts": m.TS}
}

// withBlockIDs gives every block a block_id, as Slack does for blocks posted without one.
func withBlockIDs(raw string) (json.RawMessage, error) {
	if raw == "" {
		return nil, nil
	}
	var blocks []map[string]any
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		return nil, err
	}
	for i, b := range blocks {
		if id, _ := b["block_id"].(string); id == "" {
			b["block_id"] = fmt.Sprintf("blk%d", i)
		}
	}
	return json.Marshal(blocks)
}
