package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/policy"
)

// Home publishes the App Home tab when someone opens it: their active
// grants with time left and an I'm done button, and for approvers the
// requests waiting for them. A view, not a message: nothing is owed if it
// fails, the next open publishes it again.
func (h *Handlers) Home(ctx context.Context, userID string) {
	p, err := h.Directory.Person(ctx, userID)
	if err != nil || policy.Refusal(p) != nil {
		return
	}
	gs, err := h.Access.Grants(ctx, p)
	if err != nil {
		h.Log.Warn("home: listing grants failed", "user", userID, "err", err)
		return
	}
	now := h.Now()
	var mine, waiting, stuck []access.Block
	for _, g := range gs {
		switch {
		case g.Requester == p.SlackID && g.State == access.StateIssued && g.RevokePending:
			// Ended as far as the holder is concerned, but Vault has not
			// confirmed it yet: shown until it does.
			mine = append(mine, access.Section(fmt.Sprintf("`%s` *%s* — :warning: revoke pending, retrying: %s",
				g.ID, Code(g.Scope), Escape(Truncate(g.LastError, 120)))))
		case g.Requester == p.SlackID && g.State == access.StateIssued:
			mine = append(mine,
				access.Section(fmt.Sprintf("`%s` *%s* — %s left (until %s)", g.ID, Code(g.Scope), left(g.ExpiresAt.Sub(now)),
					g.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))),
				access.Actions("home_"+g.ID, access.Button{Text: "I'm done", ActionID: ActionDone, Value: g.ID, Style: "danger"}))
		case g.Requester == p.SlackID && g.State == access.StateApproved:
			if why, ok := g.WaitingForVault(); ok {
				mine = append(mine, access.Section(fmt.Sprintf("`%s` *%s* — approved; :hourglass_flowing_sand: waiting for Vault, retrying: %s",
					g.ID, Code(g.Scope), Escape(Truncate(why, 120)))))
			}
		case g.Requester != p.SlackID && g.RevokePending:
			stuck = append(stuck, access.Section(fmt.Sprintf("`%s` %s *%s* — :warning: revoke pending, retrying: %s",
				g.ID, userMention(g.Requester), Code(g.Scope), Escape(Truncate(g.LastError, 120)))))
		case g.Requester != p.SlackID && g.State == access.StatePending && h.mayApprove(g, p):
			waiting = append(waiting, access.Section(fmt.Sprintf("`%s` %s asks for *%s* for %s: %s", g.ID, userMention(g.Requester),
				Code(g.Scope), g.TTL, Escape(Truncate(g.Reason, 200)))))
		}
	}
	blocks := []access.Block{access.Section("*Your active grants*")}
	if len(mine) == 0 {
		blocks = append(blocks, access.Context("None. Ask with `"+h.Config.Slack.Command+" request`."))
	}
	blocks = append(blocks, mine...)
	if len(waiting) > 0 {
		blocks = append(blocks, access.Divider(), access.Section("*Waiting for an approver* (decide on the card in the approvals channel)"))
		blocks = append(blocks, waiting...)
	}
	if len(stuck) > 0 {
		blocks = append(blocks, access.Divider(), access.Section("*Revokes pending* (Vault has not confirmed them yet; retried until it does)"))
		blocks = append(blocks, stuck...)
	}
	if h.Rotation != nil && policy.PlatformSecurity(h.Config, p) {
		blocks = append(blocks, h.securityHome(ctx)...)
	}
	view, _ := json.Marshal(map[string]any{"type": "home", "blocks": blocks})
	if err := h.Views.PublishHome(ctx, userID, view); err != nil {
		h.Log.Warn("home: publishing failed", "user", userID, "err", err)
	}
}

func (h *Handlers) mayApprove(g access.Grant, p policy.Person) bool {
	sc, ok := h.Config.Scope(g.Scope)
	return ok && policy.CanApprove(sc, p)
}
