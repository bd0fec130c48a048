package handlers

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/crash"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

var groupID = regexp.MustCompile(`^S[A-Z0-9]{6,}$`)

// whoami shows the identity the bot acts on: Slack's, never the typed text.
func (h *Handlers) whoami(ctx context.Context, r request) Result {
	crash.Panic("handler.whoami")
	p := r.Person
	var b strings.Builder
	fmt.Fprintf(&b, "*Who you are, as Slack reports it*\n")
	fmt.Fprintf(&b, "• Slack user: <@%s> (`%s`)\n", p.SlackID, Code(p.SlackID))
	fmt.Fprintf(&b, "• E-mail: %s\n", Escape(p.Email))
	fmt.Fprintf(&b, "• User groups: %s\n", h.groupList(p))
	fmt.Fprintf(&b, "• Scopes you may request: %s\n", h.scopeList(p))
	fmt.Fprintf(&b, "• PagerDuty: %s\n", h.onCallLine(ctx, p))
	return Result{
		Replies: []outbox.Message{reply(r.Command, b.String())},
		Audit:   []audit.Event{{Actor: p.SlackID, Action: "whoami", Outcome: "ok"}},
	}
}

func (h *Handlers) groupList(p policy.Person) string {
	var handles []string
	for _, g := range p.Groups {
		if !groupID.MatchString(g) { // Groups holds ids and handles; show handles
			handles = append(handles, "@"+Escape(strings.TrimPrefix(g, "@")))
		}
	}
	if len(handles) == 0 {
		return "none"
	}
	return strings.Join(handles, ", ")
}

func (h *Handlers) scopeList(p policy.Person) string {
	var items []string
	for _, s := range policy.EligibleScopes(h.Config, p) {
		item := fmt.Sprintf("`%s` (%s)", s.Name, Escape(s.Description))
		if s.Disabled {
			item += " — disabled: " + Escape(s.DisabledReason)
		}
		items = append(items, item)
	}
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

func (h *Handlers) onCallLine(ctx context.Context, p policy.Person) string {
	if h.OnCall == nil {
		return "not configured (PAGERDUTY_TOKEN is not set)"
	}
	on, detail, err := h.OnCall.OnCallNow(ctx, p.Email)
	switch {
	case err != nil:
		h.Log.WarnContext(ctx, "on-call check failed", "user", p.SlackID, "err", err)
		return "could not check PagerDuty just now: " + Escape(err.Error())
	case on:
		return "on call now: " + Escape(detail)
	default:
		return "not on call now on the configured escalation policies"
	}
}
