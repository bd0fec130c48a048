// Package handlers turns what people do in Slack (a slash command, a click)
// into domain calls, and domain results into replies. It knows Slack only
// through the small types below, and outside systems only through the
// interfaces it declares; internal/app wires the real ones in.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

// Command is a slash command, reduced to what handling needs.
type Command struct {
	UserID      string
	ChannelID   string
	Command     string // e.g. "/secrets"
	Text        string
	ResponseURL string
	TriggerID   string
}

// Result is what handling produced. The app stores all of it in the same
// transaction that marks the envelope done, so a crash never leaves a reply
// owed but forgotten, or an audit event missing for a reply sent.
type Result struct {
	Replies []outbox.Message
	Audit   []audit.Event
}

// Directory tells who a Slack user is, from Slack itself.
type Directory interface {
	// Person returns the user as Slack reports them now. Any error means the
	// identity could not be confirmed; callers fail closed.
	Person(ctx context.Context, userID string) (policy.Person, error)
	// PersonNow is Person with the user groups read from Slack after the
	// call began (no cache): for rights checked at the moment of a click
	// or a submitted form.
	PersonNow(ctx context.Context, userID string) (policy.Person, error)
}

// OnCall tells whether a person is on call now.
type OnCall interface {
	// OnCallNow returns a one-line description of the person's current on-call
	// shifts on the configured escalation policies ("" when not on call).
	// An error means the check could not be made.
	OnCallNow(ctx context.Context, email string) (onCall bool, detail string, err error)
}

// Handlers answers commands and clicks. A nil OnCall means PagerDuty is not
// configured.
type Handlers struct {
	Config    *config.Config
	Directory Directory
	OnCall    OnCall
	Access    Access
	Rotation  Rotation
	Files     Files
	Groups    Groups
	Views     Views
	Audit     AuditLog
	Log       *slog.Logger
	Now       func() time.Time

	limiter commandLimiter // limits.commands_per_user
}

// request is one command from one confirmed person.
type request struct {
	Command
	Person policy.Person
	Args   []string
}

type subcommand struct {
	name    string
	example string
	summary string
	run     func(h *Handlers, ctx context.Context, r request) Result
}

// subcommands lists what `/secrets` understands, in the order help shows.
// A function, not a variable: help refers back to the list.
func subcommands() []subcommand {
	return []subcommand{
		{"help", "help", "this list", (*Handlers).help},
		{"whoami", "whoami", "who Slack says you are, your groups, the scopes you may request, your on-call status", (*Handlers).whoami},
		{"request", "request platform-ro --ttl 2h --incident PABC123 --reason \"db failover\"", "ask for time-bound Vault access (no arguments: a form)", (*Handlers).request},
		{"grants", "grants", "your grants (approvers and security: every active one), with time left", (*Handlers).grants},
		{"revoke", "revoke GK3D9QX2A", "end a grant now (its holder, or a security approver)", (*Handlers).revoke},
		{"explain", "explain @someone platform-ro", "dry run: what a request would need, who approves, whether it would pass now", (*Handlers).explain},
		{"audit", "audit --user @someone --since 7d", "the access log (Platform Security)", (*Handlers).audit},
		{"inventory", "inventory --overdue --env prod --owner payments [--export]", "the secret inventory by due date; --export sends you the CSV", (*Handlers).inventory},
		{"rotate", "rotate payments-db --ticket SEC-123", "rotate a secret (Platform Security); --emergency --incident PABC123 when compromise is suspected", (*Handlers).rotate},
		{"register", "register", "add a secret to the inventory (a form)", (*Handlers).register},
		{"provision", "provision", "create a secret in Vault from an approved Jira ticket and register it (a form)", (*Handlers).provision},
		{"exposure", "exposure payments-db", "who held a grant covering a secret since its last rotation", (*Handlers).exposure},
		{"drift", "drift", "where the inventory and Vault's custom_metadata disagree (Platform Security)", (*Handlers).drift},
		{"journal", `journal restore-test passed "restored hourly snapshot to staging"`, "record a restore test; with no arguments, list the journal", (*Handlers).journal},
	}
}

// Command answers one slash command. It never returns an error: every
// outcome, refusals included, is a reply and an audit event.
func (h *Handlers) Command(ctx context.Context, c Command) Result {
	args, err := SplitArgs(Unescape(c.Text))
	sub := ""
	if len(args) > 0 {
		sub = strings.ToLower(args[0])
	}
	if res, limited := h.commandLimit(c, sub); limited {
		return res
	}
	person, perr := h.Directory.Person(ctx, c.UserID)
	if perr != nil {
		h.Log.WarnContext(ctx, "identity lookup failed", "user", c.UserID, "err", perr)
		return h.refuse(c, sub, "identity lookup failed",
			"I could not confirm who you are with Slack (users.info did not answer), so nothing was done. Please try again in a minute.")
	}
	if rerr := policy.Refusal(person); rerr != nil {
		return h.refuse(c, sub, rerr.Error(), refusalText(rerr))
	}
	if err != nil {
		return h.refuse(c, sub, "unparsable arguments", err.Error()+"\n\n"+h.helpText())
	}
	r := request{Command: c, Person: person}
	if len(args) > 1 {
		r.Args = args[1:]
	}
	if sub == "" {
		sub = "help"
	}
	for _, s := range subcommands() {
		if s.name == sub {
			return s.run(h, ctx, r)
		}
	}
	return h.refuse(c, sub, "unknown subcommand",
		fmt.Sprintf("I don't know `%s`.\n\n%s", Code(sub), h.helpText()))
}

func (h *Handlers) refuse(c Command, sub, reason, text string) Result {
	return Result{
		Replies: []outbox.Message{reply(c, text)},
		Audit: []audit.Event{{
			Actor: c.UserID, Action: "command.refused", Outcome: "refused",
			Reason: reason, Links: map[string]string{"subcommand": Truncate(sub, 40)},
		}},
	}
}

func refusalText(err error) string {
	switch {
	case errors.Is(err, policy.ErrDeletedUser):
		return "This Slack account is deactivated; secretbot serves active members only."
	case errors.Is(err, policy.ErrBot):
		return "Bots cannot use secretbot; it serves people, identified by Slack."
	case errors.Is(err, policy.ErrGuest):
		return "Guest accounts cannot use secretbot; it serves full members of the workspace only."
	}
	return "secretbot cannot serve this account: " + err.Error()
}

// reply answers the person privately: through the command's response_url
// when there is one, otherwise as an ephemeral message in the channel.
func reply(c Command, text string) outbox.Message {
	if c.ResponseURL != "" {
		return outbox.Message{Kind: outbox.Respond, Target: c.ResponseURL, Text: text}
	}
	return outbox.Message{Kind: outbox.Ephemeral, Target: c.ChannelID, User: c.UserID, Text: text}
}
