package handlers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
)

// grants lists the person's grants; approvers and security see every
// active one. A revoke that keeps failing is shown, never hidden.
func (h *Handlers) grants(ctx context.Context, r request) Result {
	gs, err := h.Access.Grants(ctx, r.Person)
	if err != nil {
		return h.accessRefusal(r.Command, r.Person, "grants", err)
	}
	if len(gs) == 0 {
		return Result{Replies: []outbox.Message{reply(r.Command, "No grants to show.")}}
	}
	now := h.Now()
	var b strings.Builder
	b.WriteString("*Grants*\n")
	for _, g := range gs {
		fmt.Fprintf(&b, "• `%s` %s `%s` — *%s*", g.ID, userMention(g.Requester), Code(g.Scope), g.State)
		if g.State == access.StateIssued && !g.ExpiresAt.IsZero() {
			fmt.Fprintf(&b, ", %s left (until %s)", left(g.ExpiresAt.Sub(now)), g.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))
		}
		if g.RevokePending {
			fmt.Fprintf(&b, " — :warning: revoke pending, retrying: %s", Escape(Truncate(g.LastError, 120)))
		}
		if why, ok := g.WaitingForVault(); ok {
			fmt.Fprintf(&b, " — :hourglass_flowing_sand: waiting for Vault, retrying: %s", Escape(Truncate(why, 120)))
		}
		b.WriteString("\n")
	}
	return Result{Replies: []outbox.Message{reply(r.Command, b.String())}}
}

// left renders a duration for people: "1h05m", "4m", "under a minute".
func left(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// revoke ends a grant now: its holder, or a security approver.
func (h *Handlers) revoke(ctx context.Context, r request) Result {
	if len(r.Args) != 1 {
		return h.refuse(r.Command, "revoke", "bad arguments", "Usage: `"+h.Config.Slack.Command+" revoke &lt;grant-id&gt;` (ids are listed by `"+h.Config.Slack.Command+" grants`).")
	}
	id, ok := access.NormalizeGrantID(r.Args[0])
	if !ok {
		return h.refuse(r.Command, "revoke", "malformed grant id",
			fmt.Sprintf("`%s` is not a grant id: ids look like GK3D9QX2A (see `%s grants`).", Code(Truncate(r.Args[0], 40)), h.Config.Slack.Command))
	}
	if err := h.Access.Revoke(ctx, id, r.Person.SlackID, access.RevokedBy(r.Person.SlackID)); err != nil {
		return h.accessRefusal(r.Command, r.Person, "revoke", err)
	}
	return Result{Replies: []outbox.Message{reply(r.Command, fmt.Sprintf("Grant `%s` is revoked.", id))}}
}

// mentionID reads a user id from an escaped mention (<@U123|name>), as
// Slack sends it with should_escape, or a bare id.
func mentionID(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "<@") && strings.HasSuffix(s, ">") {
		s = strings.TrimSuffix(strings.TrimPrefix(s, "<@"), ">")
		s, _, _ = strings.Cut(s, "|")
	}
	if len(s) < 2 || len(s) > 20 || (s[0] != 'U' && s[0] != 'W') {
		return "", false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return "", false
		}
	}
	return s, true
}

// explain is a dry run: what a request would need and whether it would
// pass now. Nothing is stored beyond the audit of the question.
func (h *Handlers) explain(ctx context.Context, r request) Result {
	usage := "Usage: `" + h.Config.Slack.Command + " explain @someone &lt;scope&gt;`"
	if len(r.Args) != 2 {
		return h.refuse(r.Command, "explain", "bad arguments", usage)
	}
	id, ok := mentionID(r.Args[0])
	if !ok {
		return h.refuse(r.Command, "explain", "not a user", "Name the person with an @mention. "+usage)
	}
	target, err := h.Directory.Person(ctx, id)
	if err != nil {
		return h.refuse(r.Command, "explain", "identity lookup failed", "I could not look that person up in Slack just now; nothing was checked.")
	}
	text, err := h.Access.Explain(ctx, r.Person, target, r.Args[1])
	if err != nil {
		return h.accessRefusal(r.Command, r.Person, "explain", err)
	}
	return Result{
		Replies: []outbox.Message{reply(r.Command, text)},
		Audit:   []audit.Event{{Actor: r.Person.SlackID, Action: "explain", Outcome: audit.OK, Scope: Truncate(r.Args[1], 60), Links: map[string]string{"subject": id}}},
	}
}
