package fakeslack

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/secretbot/secretbot/e2e/internal/fault"
)

// maxResponseURLUses is how often Slack accepts posts to one response_url.
const maxResponseURLUses = 5

type trigger struct {
	user   string
	issued time.Time
	used   bool
}

// respondTarget is what a response_url can replace: the message the
// interaction came from, if any.
type respondTarget struct {
	uses      int
	channel   string
	ts        string
	ephemeral bool
	user      string
}

// newTrigger issues a trigger_id for user; callers hold s.mu.
func (s *Server) newTriggerLocked(user string) string {
	id := fmt.Sprintf("%d.%d.fake%08x", 1700000000+s.nextID(), 4242, s.seq)
	s.triggers[id] = &trigger{user: user, issued: s.now()}
	return id
}

// newResponseURLLocked issues a response_url; callers hold s.mu.
func (s *Server) newResponseURLLocked(t respondTarget) string {
	n := fmt.Sprint(s.nextID())
	s.respond[n] = &t
	return s.publicURL() + responseURLPathPrefix + n
}

func (s *Server) useTrigger(id string) (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.triggers[id]
	switch {
	case id == "":
		return "", "invalid_arguments"
	case !ok:
		return "", "invalid_trigger_id"
	case t.used || s.now().Sub(t.issued) > s.cfg.triggerLife:
		return "", "expired_trigger_id"
	}
	t.used = true
	return t.user, ""
}

func (s *Server) storeView(raw map[string]any, typ, user, id string) View {
	blocks, _ := json.Marshal(raw["blocks"])
	cb, _ := raw["callback_id"].(string)
	pm, _ := raw["private_metadata"].(string)
	s.mu.Lock()
	if id == "" {
		id = fmt.Sprintf("V%08d", s.nextID())
	}
	v := View{ID: id, Type: typ, User: user, CallbackID: cb, PrivateMetadata: pm, Blocks: blocks, Raw: raw, At: s.now()}
	if typ == "home" {
		s.homes[user] = v
	} else {
		s.views = append(s.views, v)
	}
	s.mu.Unlock()
	s.changed.Fire()
	return v
}

func (s *Server) viewJSON(v View) reply {
	return reply{"id": v.ID, "team_id": s.cfg.teamID, "type": v.Type, "callback_id": v.CallbackID,
		"private_metadata": v.PrivateMetadata, "hash": "h" + v.ID, "app_id": DefaultAppID,
		"bot_id": BotID, "root_view_id": v.ID}
}

func (s *Server) viewsOpen(_ *http.Request, c Call) reply {
	user, code := s.useTrigger(c.Param("trigger_id"))
	if code != "" {
		return slackError(code)
	}
	raw, ok := c.JSON["view"].(map[string]any)
	if !ok {
		return slackError("invalid_arguments")
	}
	return reply{"ok": true, "view": s.viewJSON(s.storeView(raw, "modal", user, ""))}
}

func (s *Server) viewsUpdate(_ *http.Request, c Call) reply {
	raw, ok := c.JSON["view"].(map[string]any)
	if !ok {
		return slackError("invalid_arguments")
	}
	id := c.Param("view_id")
	var prev *View
	for _, v := range s.Views() {
		if v.ID == id {
			prev = &v
		}
	}
	if prev == nil {
		return slackError("not_found")
	}
	return reply{"ok": true, "view": s.viewJSON(s.storeView(raw, "modal", prev.User, id))}
}

func (s *Server) viewsPublish(_ *http.Request, c Call) reply {
	raw, ok := c.JSON["view"].(map[string]any)
	user := c.Param("user_id")
	if !ok || user == "" {
		return slackError("invalid_arguments")
	}
	return reply{"ok": true, "view": s.viewJSON(s.storeView(raw, "home", user, ""))}
}

func (s *Server) handleRespond(w http.ResponseWriter, r *http.Request) {
	n := strings.TrimPrefix(r.URL.Path, responseURLPathPrefix)
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if f, ok := s.faults.Take("respond"); ok && fault.Apply(w, r, f, errBody) {
		return
	}
	var parsed map[string]any
	if r.Method != http.MethodPost || json.Unmarshal(body, &parsed) != nil {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, slackError("invalid_payload"))
		return
	}
	s.mu.Lock()
	t, ok := s.respond[n]
	if !ok || t.uses >= maxResponseURLUses {
		s.mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
		writeJSON(w, slackError("used_url"))
		return
	}
	t.uses++
	resp := Response{URL: s.publicURL() + r.URL.Path, Body: parsed, Raw: body, At: s.now()}
	resp.ResponseType, _ = parsed["response_type"].(string)
	resp.Text, _ = parsed["text"].(string)
	resp.ReplaceOriginal, _ = parsed["replace_original"].(bool)
	resp.DeleteOriginal, _ = parsed["delete_original"].(bool)
	if b, ok := parsed["blocks"]; ok && b != nil {
		resp.Blocks, _ = json.Marshal(b)
	}
	s.responses = append(s.responses, resp)
	if resp.ReplaceOriginal || resp.DeleteOriginal {
		s.editFromResponseLocked(t, resp)
	}
	s.mu.Unlock()
	s.changed.Fire()
	writeJSON(w, reply{"ok": true})
}

// editFromResponseLocked replaces or deletes the message an interaction came from.
func (s *Server) editFromResponseLocked(t *respondTarget, resp Response) {
	for _, m := range s.messages {
		if m.Channel != t.channel || m.TS != t.ts || m.Ephemeral != t.ephemeral || (t.ephemeral && m.User != t.user) {
			continue
		}
		if resp.DeleteOriginal {
			m.Deleted = true
		} else {
			m.Text = resp.Text
			if resp.Blocks != nil {
				m.Blocks, _ = withBlockIDs(string(resp.Blocks))
			}
		}
		m.Edits++
		m.EditedAt = resp.At
	}
}
