package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
)

// Action ids of the buttons the bot posts.
const (
	ActionApprove = "grant_approve"
	ActionDeny    = "grant_deny"
	ActionDone    = "grant_done"
)

// Click is a button press (block_actions), reduced to what handling needs.
type Click struct {
	UserID      string
	ActionID    string
	Value       string
	ChannelID   string
	MessageTS   string
	ResponseURL string
	TriggerID   string
}

// Submission is a modal submitted (view_submission).
type Submission struct {
	UserID          string
	CallbackID      string
	PrivateMetadata string
	// Values holds the inputs by block id, then action id.
	Values map[string]map[string]string
}

// Click handles a button press. Rights are checked now, against Slack's
// current view of the person, never against what they had at request time.
func (h *Handlers) Click(ctx context.Context, c Click) Result {
	person, err := h.Directory.PersonNow(ctx, c.UserID)
	cmd := Command{UserID: c.UserID, ChannelID: c.ChannelID, ResponseURL: ""}
	if err != nil {
		return h.refuseClick(c, "identity lookup failed", "I could not confirm who you are with Slack, so nothing was done. Please try again in a minute.")
	}
	if res, ok := h.rotationClick(ctx, c, person); ok {
		return res
	}
	id, ok := access.NormalizeGrantID(c.Value)
	if !ok {
		h.Log.Warn("click with an unknown value", "action", c.ActionID)
		return Result{}
	}
	switch c.ActionID {
	case ActionApprove:
		err = h.Access.Decide(ctx, person, id, true, "", access.CardRef{Channel: c.ChannelID, TS: c.MessageTS})
	case ActionDeny:
		return h.openDenyModal(ctx, c, id)
	case ActionDone:
		err = h.Access.Revoke(ctx, id, person.SlackID, access.EndDone)
	default:
		h.Log.Debug("click not handled", "action", c.ActionID)
		return Result{}
	}
	if err != nil {
		res := h.accessRefusal(cmd, person, strings.TrimPrefix(c.ActionID, "grant_"), err)
		for i := range res.Replies {
			res.Replies[i] = clickReply(c, res.Replies[i].Text)
		}
		return res
	}
	return Result{}
}

func (h *Handlers) refuseClick(c Click, reason, text string) Result {
	return Result{
		Replies: []outbox.Message{clickReply(c, text)},
		Audit:   []audit.Event{{Actor: c.UserID, Action: "click.refused", Outcome: audit.Refused, Reason: reason}},
	}
}

// clickReply answers only the person who clicked.
func clickReply(c Click, text string) outbox.Message {
	if c.ChannelID != "" {
		return outbox.Message{Kind: outbox.Ephemeral, Target: c.ChannelID, User: c.UserID, Text: text}
	}
	return outbox.Message{Kind: outbox.DM, Target: c.UserID, Text: text}
}

// denyMeta travels in the deny modal's private_metadata.
type denyMeta struct {
	Grant   string `json:"grant"`
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

func (h *Handlers) openDenyModal(ctx context.Context, c Click, grantID string) Result {
	meta, _ := json.Marshal(denyMeta{Grant: grantID, Channel: c.ChannelID, TS: c.MessageTS})
	view, _ := json.Marshal(map[string]any{
		"type":             "modal",
		"callback_id":      DenyModal,
		"private_metadata": string(meta),
		"title":            plainText("Deny request"),
		"submit":           plainText("Deny"),
		"close":            plainText("Cancel"),
		"blocks": []any{
			input(denyReasonField, "Why (the requester sees this)", map[string]any{"type": "plain_text_input",
				"action_id": denyReasonField, "multiline": true, "max_length": 500}, false),
		},
	})
	if err := h.Views.OpenView(ctx, c.TriggerID, view); err != nil {
		h.Log.Warn("opening the deny modal failed", "user", c.UserID, "err", err)
		return Result{Replies: []outbox.Message{clickReply(c, "I could not open the deny form in time; please press Deny again.")}}
	}
	return Result{}
}

// Validate checks a submitted modal before it is acked: field errors go back
// in the ack, keyed by block id, and the modal stays open. nil means valid.
func (h *Handlers) Validate(ctx context.Context, s Submission) map[string]string {
	switch s.CallbackID {
	case RequestModal:
		person, err := h.Directory.Person(ctx, s.UserID)
		if err != nil {
			return nil // checked again, fully, when processed
		}
		if _, err := access.ParseRequestFields(h.Config, person, requestFields(s.Values)); err != nil {
			if ue, ok := access.IsUserError(err); ok {
				return map[string]string{fieldBlock(ue): Truncate(ue.Msg, 150)}
			}
		}
	case DenyModal:
		if strings.TrimSpace(s.Values[denyReasonField][denyReasonField]) == "" {
			return map[string]string{denyReasonField: "Say why, so the requester can fix it."}
		}
	default:
		return h.validateRotation(s)
	}
	return nil
}

// Submit handles a modal that passed validation.
func (h *Handlers) Submit(ctx context.Context, s Submission) Result {
	person, err := h.Directory.PersonNow(ctx, s.UserID)
	dm := Command{UserID: s.UserID}
	if err != nil {
		return Result{Replies: []outbox.Message{reply(dm, "I could not confirm who you are with Slack, so nothing was done. Please try again in a minute.")},
			Audit: []audit.Event{{Actor: s.UserID, Action: "submit.refused", Outcome: audit.Refused, Reason: "identity lookup failed"}}}
	}
	if res, ok := h.rotationSubmit(ctx, s, person); ok {
		return res
	}
	switch s.CallbackID {
	case RequestModal:
		a, err := access.ParseRequestFields(h.Config, person, requestFields(s.Values))
		if err == nil {
			_, err = h.Access.Request(ctx, person, a, "")
		}
		if err != nil {
			return dmAll(h.accessRefusal(dm, person, "request", err), s.UserID)
		}
	case DenyModal:
		var m denyMeta
		if json.Unmarshal([]byte(s.PrivateMetadata), &m) != nil || m.Grant == "" {
			return Result{}
		}
		reason := strings.TrimSpace(s.Values[denyReasonField][denyReasonField])
		if err := h.Access.Decide(ctx, person, m.Grant, false, reason, access.CardRef{Channel: m.Channel, TS: m.TS}); err != nil {
			return dmAll(h.accessRefusal(dm, person, "deny", err), s.UserID)
		}
	}
	return Result{}
}

// dmAll sends a result's replies by DM: a modal has no response_url.
func dmAll(res Result, user string) Result {
	for i := range res.Replies {
		res.Replies[i] = outbox.Message{Kind: outbox.DM, Target: user, Text: res.Replies[i].Text}
	}
	return res
}

func newRef() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
