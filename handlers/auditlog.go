package handlers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

// auditShown bounds one answer; Slack messages are not a report tool.
const auditShown = 40

// audit shows the access log to Platform Security.
func (h *Handlers) audit(ctx context.Context, r request) Result {
	if !policy.PlatformSecurity(h.Config, r.Person) {
		return h.refuse(r.Command, "audit", "not platform security", "The access log is for Platform Security only.")
	}
	usage := "Usage: `" + h.Config.Slack.Command + " audit [--user @someone] [--since 7d]`"
	since, actor := h.Now().Add(-7*24*time.Hour), ""
	for i := 0; i < len(r.Args); i++ {
		if i+1 >= len(r.Args) {
			return h.refuse(r.Command, "audit", "bad arguments", usage)
		}
		switch r.Args[i] {
		case "--user":
			id, ok := mentionID(r.Args[i+1])
			if !ok {
				return h.refuse(r.Command, "audit", "bad arguments", "--user takes an @mention. "+usage)
			}
			actor = id
		case "--since":
			d, err := config.ParseDuration(r.Args[i+1])
			if err != nil {
				return h.refuse(r.Command, "audit", "bad arguments", "--since takes "+config.DurationAccepted+". "+usage)
			}
			since = h.Now().Add(-d)
		default:
			return h.refuse(r.Command, "audit", "bad arguments", usage)
		}
		i++
	}
	recs, err := h.Audit.AuditSince(ctx, since, actor, auditShown+1)
	if err != nil {
		return h.accessRefusal(r.Command, r.Person, "audit", err)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Seq > recs[j].Seq })
	var b strings.Builder
	fmt.Fprintf(&b, "*Access log since %s*\n", since.UTC().Format("2006-01-02 15:04 UTC"))
	if len(recs) == 0 {
		b.WriteString("No events.\n")
	}
	for i, e := range recs {
		if i == auditShown {
			fmt.Fprintf(&b, "… more: narrow with --user or --since.\n")
			break
		}
		fmt.Fprintf(&b, "• #%d %s %s `%s` %s", e.Seq, e.Time.UTC().Format("01-02 15:04"), userMention(e.Actor), Code(e.Action), e.Outcome)
		if e.Scope != "" {
			fmt.Fprintf(&b, " scope `%s`", Code(e.Scope))
		}
		if g := e.Links["grant"]; g != "" {
			fmt.Fprintf(&b, " grant `%s`", Code(g))
		}
		if e.Reason != "" {
			fmt.Fprintf(&b, " — %s", Escape(Truncate(e.Reason, 100)))
		}
		b.WriteString("\n")
	}
	return Result{
		Replies: []outbox.Message{reply(r.Command, b.String())},
		Audit:   []audit.Event{{Actor: r.Person.SlackID, Action: "audit.read", Outcome: audit.OK, Links: map[string]string{"subject": actor}}},
	}
}
