package handlers

import (
	"context"
	"fmt"
	"strings"

	"github.com/secretbot/secretbot/internal/outbox"
)

func (h *Handlers) help(_ context.Context, r request) Result {
	return Result{Replies: []outbox.Message{reply(r.Command, h.helpText())}}
}

// helpText lists every subcommand with a one-line example.
func (h *Handlers) helpText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s* runs the secret-operations playbook. Subcommands:\n", h.Config.Slack.Command)
	for _, s := range subcommands() {
		fmt.Fprintf(&b, "• `%s %s` — %s\n", h.Config.Slack.Command, s.example, s.summary)
	}
	return b.String()
}
