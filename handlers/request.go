package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

// request starts an access request: from flags, or with no arguments from a
// modal that offers only the scopes the person may request.
func (h *Handlers) request(ctx context.Context, r request) Result {
	if len(r.Args) == 0 {
		return h.openRequestModal(ctx, r)
	}
	a, err := access.ParseRequest(r.Args, h.Config, r.Person)
	if err != nil {
		return h.accessRefusal(r.Command, r.Person, "request", err)
	}
	if _, err := h.Access.Request(ctx, r.Person, a, r.ResponseURL); err != nil {
		return h.accessRefusal(r.Command, r.Person, "request", err)
	}
	return Result{} // the service answers as each check lands
}

// accessRefusal turns an error from the access service into a reply: a
// refusal says what is accepted; anything else is an internal error.
func (h *Handlers) accessRefusal(c Command, p policy.Person, action string, err error) Result {
	if ue, ok := access.IsUserError(err); ok {
		var res Result
		if !ue.Told { // the service may already have said it in the request's summary
			res.Replies = []outbox.Message{reply(c, ue.Msg)}
		}
		if !ue.Audited {
			res.Audit = []audit.Event{{Actor: p.SlackID, Action: action + ".refused", Outcome: audit.Refused,
				Reason: Truncate(ue.Msg, 300)}}
		}
		return res
	}
	ref := newRef()
	h.Log.Error(action+" failed", "ref", ref, "user", p.SlackID, "err", err)
	return Result{
		Replies: []outbox.Message{reply(c, fmt.Sprintf("Sorry, secretbot hit an internal error (ref %s). Nothing was granted; please try again.", ref))},
		Audit:   []audit.Event{{Actor: p.SlackID, Action: action + ".failed", Outcome: audit.Failed, Reason: "internal error", Links: map[string]string{"ref": ref}}},
	}
}

// Modal ids. Block and action ids of the request modal name the request
// field they carry, so a *access.UserError's Field points at its block.
const (
	RequestModal    = "request_modal"
	DenyModal       = "grant_deny_modal"
	fieldScope      = "scope"
	fieldTTL        = "ttl"
	fieldTicket     = "ticket"
	fieldIncident   = "incident"
	fieldReason     = "reason"
	denyReasonField = "deny_reason"
)

func (h *Handlers) openRequestModal(ctx context.Context, r request) Result {
	var options []map[string]any
	for _, s := range policy.EligibleScopes(h.Config, r.Person) {
		if s.Disabled {
			continue
		}
		options = append(options, map[string]any{
			"text":  plainText(Truncate(s.Name+" — "+s.Description, 75)),
			"value": s.Name,
		})
	}
	if len(options) == 0 {
		return Result{Replies: []outbox.Message{reply(r.Command, "There is no scope you may request. Ask Platform Security if you think there should be.")},
			Audit: []audit.Event{{Actor: r.Person.SlackID, Action: "request.refused", Outcome: audit.Refused, Reason: "no eligible scope"}}}
	}
	view := map[string]any{
		"type":             "modal",
		"callback_id":      RequestModal,
		"private_metadata": r.ChannelID,
		"title":            plainText("Request access"),
		"submit":           plainText("Request"),
		"close":            plainText("Cancel"),
		"blocks": []any{
			input(fieldScope, "Scope", map[string]any{"type": "static_select", "action_id": fieldScope, "options": options}, false),
			input(fieldTTL, "For how long", textInput(fieldTTL, "e.g. 30m, 2h, 1h30m, 1d (at most the scope's maximum)"), true),
			input(fieldTicket, "Jira ticket", textInput(fieldTicket, "e.g. SEC-123 (scopes that need one)"), true),
			input(fieldIncident, "PagerDuty incident", textInput(fieldIncident, "e.g. PABC123, #1234 or its URL (scopes that need one)"), true),
			input(fieldReason, "Reason", map[string]any{"type": "plain_text_input", "action_id": fieldReason, "multiline": true, "max_length": 500}, true),
		},
	}
	b, _ := json.Marshal(view)
	if err := h.Views.OpenView(ctx, r.TriggerID, b); err != nil {
		h.Log.Warn("opening the request modal failed", "user", r.Person.SlackID, "err", err)
		return Result{Replies: []outbox.Message{reply(r.Command,
			"I could not open the request form (Slack gives a form only a few seconds). Use `"+h.Config.Slack.Command+" "+access.RequestUsage+"` instead.")}}
	}
	return Result{}
}

func plainText(s string) map[string]any { return map[string]any{"type": "plain_text", "text": s} }

func textInput(actionID, placeholder string) map[string]any {
	return map[string]any{"type": "plain_text_input", "action_id": actionID, "placeholder": plainText(placeholder)}
}

func input(blockID, label string, element map[string]any, optional bool) map[string]any {
	return map[string]any{"type": "input", "block_id": blockID, "label": plainText(label), "element": element, "optional": optional}
}

// requestFields reads the request modal's values.
func requestFields(values map[string]map[string]string) access.RequestFields {
	get := func(f string) string { return values[f][f] }
	return access.RequestFields{Scope: get(fieldScope), TTL: get(fieldTTL), Ticket: get(fieldTicket),
		Incident: get(fieldIncident), Reason: get(fieldReason)}
}

// fieldBlock maps a refusal to the modal block it concerns.
func fieldBlock(ue *access.UserError) string {
	switch ue.Field {
	case fieldScope, fieldTTL, fieldTicket, fieldIncident, fieldReason:
		return ue.Field
	}
	return fieldScope
}

// userMention mentions a Slack user by id; anything not shaped like a user
// id is shown escaped, never put inside <@…>.
func userMention(id string) string {
	if uid, ok := mentionID(id); !ok || uid != id {
		return Escape(id)
	}
	return "<@" + id + ">"
}

// AckSummary is the answer to put in a slash command's ack, before any
// work: for a request, an ephemeral line saying it was received. nil for
// everything else. Pure: the ack must not wait for I/O.
func AckSummary(text string) json.RawMessage {
	args, err := SplitArgs(Unescape(text))
	if err != nil || len(args) < 2 || !strings.EqualFold(args[0], "request") {
		return nil
	}
	b, _ := json.Marshal(map[string]any{
		"response_type": "ephemeral",
		"text": fmt.Sprintf(":hourglass_flowing_sand: Request for `%s` received. Checking who you are and the evidence it needs; this message updates as each check lands.",
			Code(Truncate(args[1], 60))),
	})
	return b
}
