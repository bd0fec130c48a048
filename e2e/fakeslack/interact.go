package fakeslack

import (
	"encoding/json"
	"fmt"
	"strings"
)

// SlashCommand is what a user typed; empty fields get defaults.
type SlashCommand struct {
	User        string
	Channel     string // default C0GENERAL
	ChannelName string
	Command     string // default: the server's command
	Text        string
}

// SendSlashCommand sends "/secrets <text>" typed by user in C0GENERAL and
// returns the envelope id and the command's response_url.
func (s *Server) SendSlashCommand(user, text string) (envID, responseURL string) {
	return s.SendCommand(SlashCommand{User: user, Text: text})
}

// SendCommand sends a slash command envelope.
func (s *Server) SendCommand(c SlashCommand) (envID, responseURL string) {
	if c.Channel == "" {
		c.Channel, c.ChannelName = DefaultChannel, defaultChannelName
	}
	if c.ChannelName == "" {
		c.ChannelName = strings.ToLower(c.Channel)
	}
	if c.Command == "" {
		c.Command = s.cfg.command
	}
	s.mu.Lock()
	responseURL = s.newResponseURLLocked(respondTarget{})
	triggerID := s.newTriggerLocked(c.User)
	s.mu.Unlock()
	payload := map[string]string{
		"token":                 VerificationToken,
		"team_id":               s.cfg.teamID,
		"team_domain":           s.cfg.teamDomain,
		"channel_id":            c.Channel,
		"channel_name":          c.ChannelName,
		"user_id":               c.User,
		"user_name":             s.userName(c.User),
		"command":               c.Command,
		"text":                  c.Text,
		"api_app_id":            DefaultAppID,
		"is_enterprise_install": "false",
		"response_url":          responseURL,
		"trigger_id":            triggerID,
	}
	return s.Send(TypeSlashCommands, payload, true), responseURL
}

func (s *Server) userName(id string) string {
	if u, ok := s.User(id); ok {
		return u.Name
	}
	return strings.ToLower(id)
}

func (s *Server) userRef(id string) map[string]any {
	name := s.userName(id)
	return map[string]any{"id": id, "username": name, "name": name, "team_id": s.cfg.teamID}
}

// SendInteractive sends an "interactive" envelope with a payload the test built.
func (s *Server) SendInteractive(payload any) string {
	return s.Send(TypeInteractive, payload, false)
}

// ClickButton has user press the button (or any element) with actionID in
// message m. It returns the envelope id and the interaction's response_url.
func (s *Server) ClickButton(user string, m Message, actionID string) (envID, responseURL string, err error) {
	el, blockID, err := findElement(m.Blocks, actionID)
	if err != nil {
		return "", "", err
	}
	s.mu.Lock()
	responseURL = s.newResponseURLLocked(respondTarget{channel: m.Channel, ts: m.TS, ephemeral: m.Ephemeral, user: m.User})
	triggerID := s.newTriggerLocked(user)
	actionTS := fmt.Sprintf("%d.%06d", 1700000000+s.nextID(), s.seq)
	s.mu.Unlock()

	action := map[string]any{"action_id": actionID, "block_id": blockID, "type": el["type"], "action_ts": actionTS}
	for _, k := range []string{"text", "value", "style"} {
		if v, ok := el[k]; ok {
			action[k] = v
		}
	}
	payload := map[string]any{
		"type":                  "block_actions",
		"token":                 VerificationToken,
		"user":                  s.userRef(user),
		"api_app_id":            DefaultAppID,
		"team":                  map[string]any{"id": s.cfg.teamID, "domain": s.cfg.teamDomain},
		"enterprise":            nil,
		"is_enterprise_install": false,
		"container":             map[string]any{"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": m.Ephemeral},
		"trigger_id":            triggerID,
		"channel":               map[string]any{"id": m.Channel, "name": strings.ToLower(m.Channel)},
		"state":                 map[string]any{"values": map[string]any{}},
		"response_url":          responseURL,
		"actions":               []any{action},
	}
	if !m.Ephemeral { // Slack leaves the message out of clicks on ephemeral messages
		var blocks any
		_ = json.Unmarshal(m.Blocks, &blocks)
		payload["message"] = map[string]any{"type": "message", "user": BotUserID, "bot_id": BotID,
			"ts": m.TS, "text": m.Text, "blocks": blocks}
	}
	return s.SendInteractive(payload), responseURL, nil
}

// SubmitView has user submit modal v with values[block_id][action_id]
// (text inputs get "value", selects "selected_option"). The envelope
// accepts a response payload (response_action).
func (s *Server) SubmitView(user string, v View, values map[string]map[string]string) string {
	state := map[string]any{}
	for blockID, actions := range values {
		block := map[string]any{}
		for actionID, value := range actions {
			typ := "plain_text_input"
			if el, _, err := findElement(v.Blocks, actionID); err == nil {
				if t, ok := el["type"].(string); ok {
					typ = t
				}
			}
			switch typ {
			// Slack reports the pick of a users/conversations/channels
			// select by id, in its own field, not as a selected_option.
			case "users_select":
				block[actionID] = map[string]any{"type": typ, "selected_user": value}
				continue
			case "conversations_select":
				block[actionID] = map[string]any{"type": typ, "selected_conversation": value}
				continue
			case "channels_select":
				block[actionID] = map[string]any{"type": typ, "selected_channel": value}
				continue
			}
			if strings.HasSuffix(typ, "_select") {
				block[actionID] = map[string]any{"type": typ, "selected_option": map[string]any{
					"value": value, "text": map[string]any{"type": "plain_text", "text": value}}}
			} else {
				block[actionID] = map[string]any{"type": typ, "value": value}
			}
		}
		state[blockID] = block
	}
	s.mu.Lock()
	triggerID := s.newTriggerLocked(user)
	s.mu.Unlock()
	var blocks any
	_ = json.Unmarshal(v.Blocks, &blocks)
	view := s.viewJSON(v)
	view["blocks"] = blocks
	view["state"] = map[string]any{"values": state}
	payload := map[string]any{
		"type":                  "view_submission",
		"token":                 VerificationToken,
		"team":                  map[string]any{"id": s.cfg.teamID, "domain": s.cfg.teamDomain},
		"user":                  s.userRef(user),
		"api_app_id":            DefaultAppID,
		"trigger_id":            triggerID,
		"view":                  view,
		"response_urls":         []any{},
		"is_enterprise_install": false,
		"enterprise":            nil,
	}
	return s.Send(TypeInteractive, payload, true)
}

// SendEvent wraps an Events API inner event in an event_callback with a
// fresh event_id and sends it; it returns the envelope id and the event id.
func (s *Server) SendEvent(event map[string]any) (envID, eventID string) {
	s.mu.Lock()
	n := s.nextID()
	s.mu.Unlock()
	eventID = fmt.Sprintf("Ev%08d", n)
	payload := map[string]any{
		"token":                 VerificationToken,
		"team_id":               s.cfg.teamID,
		"api_app_id":            DefaultAppID,
		"event":                 event,
		"type":                  "event_callback",
		"event_id":              eventID,
		"event_time":            s.now().Unix(),
		"is_ext_shared_channel": false,
		"event_context":         fmt.Sprintf("4-fake-%d", n),
		"authorizations": []any{map[string]any{"enterprise_id": nil, "team_id": s.cfg.teamID,
			"user_id": BotUserID, "is_bot": true, "is_enterprise_install": false}},
	}
	return s.Send(TypeEventsAPI, payload, false), eventID
}

// OpenHome sends app_home_opened for user's Home tab.
func (s *Server) OpenHome(user string) (envID, eventID string) {
	return s.SendEvent(map[string]any{"type": "app_home_opened", "user": user, "channel": DMChannel(user),
		"tab": "home", "event_ts": fmt.Sprintf("%d.000100", s.now().Unix())})
}

type element struct {
	blockID string
	el      map[string]any
}

// elements lists the interactive elements in a block list: actions
// elements, section accessories and input elements.
func elements(rawBlocks json.RawMessage) ([]element, error) {
	var blocks []map[string]any
	if err := json.Unmarshal(rawBlocks, &blocks); err != nil {
		return nil, fmt.Errorf("fakeslack: blocks do not decode: %w", err)
	}
	var out []element
	for _, b := range blocks {
		blockID, _ := b["block_id"].(string)
		var candidates []any
		if els, ok := b["elements"].([]any); ok {
			candidates = append(candidates, els...)
		}
		for _, k := range []string{"accessory", "element"} {
			if el, ok := b[k]; ok {
				candidates = append(candidates, el)
			}
		}
		for _, c := range candidates {
			if el, ok := c.(map[string]any); ok {
				if _, ok := el["action_id"].(string); ok {
					out = append(out, element{blockID: blockID, el: el})
				}
			}
		}
	}
	return out, nil
}

func findElement(rawBlocks json.RawMessage, actionID string) (map[string]any, string, error) {
	els, err := elements(rawBlocks)
	if err != nil {
		return nil, "", err
	}
	for _, e := range els {
		if e.el["action_id"] == actionID {
			return e.el, e.blockID, nil
		}
	}
	return nil, "", fmt.Errorf("fakeslack: no element with action_id %q (have %v)", actionID, ActionIDs(rawBlocks))
}

// ActionIDs lists the action_ids of the interactive elements in blocks.
func ActionIDs(rawBlocks json.RawMessage) []string {
	els, _ := elements(rawBlocks)
	out := make([]string, 0, len(els))
	for _, e := range els {
		out = append(out, e.el["action_id"].(string))
	}
	return out
}
