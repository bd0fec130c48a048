package access

import (
	"fmt"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
)

// Messages the service owes people. All user-supplied text is escaped;
// none carries a credential except issuedDM, which only Messenger.SendNow
// ever sends.

var evidenceLabels = map[string]string{
	config.EvidenceJira:     "Jira ticket",
	config.EvidenceOnCall:   "PagerDuty on-call",
	config.EvidenceIncident: "PagerDuty incident",
	config.EvidenceApproval: "Approval",
}

func evidenceLabel(kind string) string {
	if l, ok := evidenceLabels[kind]; ok {
		return l
	}
	return kind
}

func evidenceLine(e Evidence) string {
	icon := map[string]string{
		EvidenceOK: ":white_check_mark:", EvidenceFailed: ":x:",
		EvidenceError: ":warning:", EvidenceChecking: ":hourglass_flowing_sand:",
	}[e.Status]
	status := map[string]string{
		EvidenceOK: "passed", EvidenceFailed: "failed",
		EvidenceError: "could not be checked", EvidenceChecking: "checking…",
	}[e.Status]
	line := fmt.Sprintf("%s *%s* %s", icon, evidenceLabel(e.Kind), status)
	if e.Detail != "" {
		line += ": " + Escape(e.Detail)
	}
	if l := safeLink(e.Link); l != "" {
		line += fmt.Sprintf(" (<%s|link>)", l)
	}
	return line
}

// safeLink returns an http(s) link fit for <url|text>, or "".
func safeLink(u string) string {
	if !(strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) || strings.ContainsAny(u, "<>| \n\r\t") {
		return ""
	}
	return u
}

// grantHeadline is "G… `scope` for <@U> (2h)".
func grantHeadline(g Grant) string {
	return fmt.Sprintf("%s %s for <@%s> (%s)", Code(g.ID), Code(g.Scope), g.Requester, config.Duration(g.TTL))
}

func grantFacts(g Grant) []string {
	var facts []string
	if g.Ticket != "" {
		facts = append(facts, "Ticket: "+Code(g.Ticket))
	}
	if g.Incident != "" {
		facts = append(facts, "Incident: "+Code(g.Incident))
	}
	if g.Reason != "" {
		facts = append(facts, "Reason: "+Escape(g.Reason))
	}
	return facts
}

// summary is the requester's view of a request: what was asked, each check,
// and final (already mrkdwn) when there is an outcome.
func summary(g Grant, final string) (string, []Block) {
	head := fmt.Sprintf("*Access request* %s %s (%s)", Code(g.ID), Code(g.Scope), config.Duration(g.TTL))
	lines := []string{head}
	lines = append(lines, grantFacts(g)...)
	for _, e := range g.Evidence {
		lines = append(lines, evidenceLine(e))
	}
	if final != "" {
		lines = append(lines, final)
	}
	blocks := []Block{Section(strings.Join(lines[:1+len(grantFacts(g))], "\n"))}
	if len(g.Evidence) > 0 {
		ev := make([]string, 0, len(g.Evidence))
		for _, e := range g.Evidence {
			ev = append(ev, evidenceLine(e))
		}
		blocks = append(blocks, Section(strings.Join(ev, "\n")))
	}
	if final != "" {
		blocks = append(blocks, Section(final))
	}
	return Plain(lines...), blocks
}

// requesterMessage sends the requester's summary: through response_url when
// there is one, else as a DM (first says whether it is the first message).
func requesterMessage(g Grant, final string, first bool) outbox.Message {
	text, blocks := summary(g, final)
	if g.ResponseURL == "" {
		return outbox.Message{Kind: outbox.DM, Target: g.Requester, Text: text, Blocks: Blocks(blocks...)}
	}
	return outbox.Message{Kind: outbox.Respond, Target: g.ResponseURL, Text: text, Blocks: Blocks(blocks...), ReplaceOriginal: !first}
}

func peopleText(p config.People) string {
	var parts []string
	for _, u := range p.Users {
		parts = append(parts, "<@"+Escape(u)+">")
	}
	for _, gr := range p.Groups {
		parts = append(parts, Code(gr))
	}
	for _, e := range p.Emails {
		parts = append(parts, Escape(e))
	}
	if len(parts) == 0 {
		return "nobody"
	}
	return strings.Join(parts, ", ")
}

// approvalCard is the approvals-channel message with Approve and Deny.
func approvalCard(g Grant, sc *config.Scope, channel string) outbox.Message {
	head := fmt.Sprintf(":key: *Access request* %s: <@%s> asks for %s for %s", Code(g.ID), g.Requester, Code(g.Scope), config.Duration(g.TTL))
	facts := grantFacts(g)
	var ev []string
	for _, e := range g.Evidence {
		ev = append(ev, evidenceLine(e))
	}
	blocks := []Block{Section(head)}
	if len(facts) > 0 {
		blocks = append(blocks, Section(strings.Join(facts, "\n")))
	}
	if len(ev) > 0 {
		blocks = append(blocks, Section(strings.Join(ev, "\n")))
	}
	blocks = append(blocks,
		Context("Approvers: "+peopleText(sc.Approvers)+". The requester cannot approve their own request; the first decision wins."),
		Actions("grant_decision",
			Button{Text: "Approve", ActionID: "grant_approve", Value: g.ID, Style: "primary"},
			Button{Text: "Deny", ActionID: "grant_deny", Value: g.ID, Style: "danger"}),
	)
	lines := append([]string{head}, facts...)
	lines = append(lines, ev...)
	return outbox.Message{Kind: outbox.Post, Target: channel, Text: Plain(lines...), Blocks: Blocks(blocks...)}
}

// decidedCard replaces the card's buttons with the outcome.
func decidedCard(g Grant, channel, ts string) outbox.Message {
	head := fmt.Sprintf("*Access request* %s: <@%s> asked for %s for %s", Code(g.ID), g.Requester, Code(g.Scope), config.Duration(g.TTL))
	outcome := outcomeLine(g)
	facts := grantFacts(g)
	var ev []string
	for _, e := range g.Evidence {
		ev = append(ev, evidenceLine(e))
	}
	blocks := []Block{Section(head)}
	if len(facts) > 0 {
		blocks = append(blocks, Section(strings.Join(facts, "\n")))
	}
	if len(ev) > 0 {
		blocks = append(blocks, Section(strings.Join(ev, "\n")))
	}
	blocks = append(blocks, Section(outcome))
	lines := append([]string{head}, facts...)
	lines = append(lines, ev...)
	lines = append(lines, outcome)
	return outbox.Message{Kind: outbox.Update, Target: channel, TS: ts, Text: Plain(lines...), Blocks: Blocks(blocks...)}
}

func actorText(id string) string {
	if id == "" || id == "secretbot" || strings.HasPrefix(id, "secretbot ") {
		return Escape(id)
	}
	return "<@" + Escape(id) + ">"
}

func outcomeLine(g Grant) string {
	switch g.State {
	case StateApproved, StateIssued:
		return fmt.Sprintf(":white_check_mark: *Approved* by %s at %s", actorText(g.Approver), fmtTime(g.DecidedAt))
	case StateDenied:
		s := fmt.Sprintf(":no_entry: *Denied* by %s at %s", actorText(g.Approver), fmtTime(g.DecidedAt))
		if g.DenyReason != "" {
			s += ": " + Escape(g.DenyReason)
		}
		return s
	case StateFailed:
		return fmt.Sprintf(":x: *Failed* at %s: %s", fmtTime(g.EndedAt), Escape(g.LastError))
	case StateRevoked, StateExpired:
		return fmt.Sprintf(":lock: *Ended* (%s) at %s", Escape(endText(g.EndReason)), fmtTime(g.EndedAt))
	}
	return string(g.State)
}

func endText(reason string) string {
	switch {
	case reason == EndExpired:
		return "expired"
	case reason == EndTicketExpired:
		return "the ticket expired"
	case reason == EndDone:
		return "the holder was done"
	case reason == EndIncidentResolved:
		return "the incident resolved"
	case reason == EndWrapUnused:
		return "the wrapping token was never unwrapped"
	case reason == EndGone:
		return "Vault no longer had it (revoked or deleted outside secretbot)"
	case strings.HasPrefix(reason, endRevokedBy):
		return "revoked by " + "<@" + strings.TrimPrefix(reason, endRevokedBy) + ">"
	}
	return reason
}

// dm is a plain direct message to the requester.
func dm(g Grant, lines ...string) outbox.Message {
	return outbox.Message{Kind: outbox.DM, Target: g.Requester, Text: Plain(lines...), Blocks: Blocks(Section(Plain(lines...)))}
}

func decisionDM(g Grant) outbox.Message {
	switch g.State {
	case StateDenied:
		return dm(g, fmt.Sprintf("Your access request %s for %s was *denied* by %s.", Code(g.ID), Code(g.Scope), actorText(g.Approver)),
			reasonLine(g.DenyReason))
	case StateFailed:
		return dm(g, fmt.Sprintf("Your access request %s for %s *failed*: %s", Code(g.ID), Code(g.Scope), Escape(g.LastError)))
	}
	return dm(g, fmt.Sprintf("Your access request %s for %s was *approved* by %s. It is being delivered: watch for the next message.",
		Code(g.ID), Code(g.Scope), actorText(g.Approver)))
}

func reasonLine(r string) string {
	if r == "" {
		return ""
	}
	return "Reason: " + Escape(r)
}

func doneButton(g Grant) Block {
	return Actions("grant_done", Button{Text: "I'm done", ActionID: "grant_done", Value: g.ID, Style: "danger"})
}

// issuedDM carries the wrapping token. Only Messenger.SendNow sends it.
func issuedDM(g Grant, wrapToken, vaultAddr, namespace string) outbox.Message {
	env := "VAULT_ADDR=" + vaultAddr
	if namespace != "" {
		env += " VAULT_NAMESPACE=" + namespace
	}
	cmd := env + " vault unwrap " + wrapToken
	head := fmt.Sprintf(":key: Your access %s to %s is ready. It ends at *%s*.", Code(g.ID), Code(g.Scope), fmtTime(g.ExpiresAt))
	how := fmt.Sprintf("Unwrap it once, before %s (the wrapping token works one time only):", fmtTime(g.WrapExpires))
	after := "Use the `token` it prints as `VAULT_TOKEN`. Press *I'm done* when you no longer need it."
	text := Plain(head, how, "```"+cmd+"```", after)
	blocks := Blocks(Section(head), Section(how+"\n```"+cmd+"```"), Section(after), doneButton(g))
	return outbox.Message{Kind: outbox.DM, Target: g.Requester, Text: text, Blocks: blocks}
}

func groupDM(g Grant, sc *config.Scope) outbox.Message {
	head := fmt.Sprintf(":key: Your access %s to %s is active until *%s*.", Code(g.ID), Code(g.Scope), fmtTime(g.ExpiresAt))
	how := fmt.Sprintf("Log in to Vault as usual, with your own MFA: your identity is in the group %s, which carries %s. No token is sent through Slack. Press *I'm done* when you no longer need it.",
		Code(g.VaultGroup), policiesText(sc.VaultPolicies))
	return outbox.Message{Kind: outbox.DM, Target: g.Requester, Text: Plain(head, how), Blocks: Blocks(Section(head), Section(how), doneButton(g))}
}

func dryRunDM(g Grant, sc *config.Scope) outbox.Message {
	var what string
	if g.Delivery == config.DeliveryEntityGroup {
		what = fmt.Sprintf("your Vault identity would have joined the group %s, carrying %s", Code("secretbot-"+g.ID), policiesText(sc.VaultPolicies))
	} else {
		what = fmt.Sprintf("a response-wrapped token with %s, valid for %s, would have been issued", policiesText(sc.VaultPolicies), config.Duration(g.ExpiresAt.Sub(g.IssuedAt)))
	}
	head := fmt.Sprintf(":test_tube: *Dry run*: your access %s to %s was approved and %s. Nothing was written to Vault.", Code(g.ID), Code(g.Scope), what)
	return outbox.Message{Kind: outbox.DM, Target: g.Requester, Text: head, Blocks: Blocks(Section(head), doneButton(g))}
}

func policiesText(ps []string) string {
	if len(ps) == 0 {
		return "no policies"
	}
	cs := make([]string, len(ps))
	for i, p := range ps {
		cs[i] = Code(p)
	}
	return "the polic" + map[bool]string{true: "y ", false: "ies "}[len(ps) == 1] + strings.Join(cs, ", ")
}

func endedDM(g Grant) outbox.Message {
	line := fmt.Sprintf(":lock: Your access %s to %s has ended: %s.", Code(g.ID), Code(g.Scope), endText(g.EndReason))
	if g.EndReason == EndWrapUnused {
		line += " The wrapping token was not unwrapped before it expired; request again if you still need access."
	}
	return dm(g, line)
}

func securityNotice(channel string, g Grant, what string) outbox.Message {
	line := fmt.Sprintf("%s %s", what, grantHeadline(g))
	var ctx []string
	if g.Ticket != "" {
		ctx = append(ctx, "Ticket "+Code(g.Ticket))
	}
	if g.Incident != "" {
		ctx = append(ctx, "Incident "+Code(g.Incident))
	}
	if g.TokenAccessor != "" {
		ctx = append(ctx, "Accessor "+Code(g.TokenAccessor))
	}
	if g.VaultGroup != "" {
		ctx = append(ctx, "Group "+Code(g.VaultGroup))
	}
	blocks := []Block{Section(line)}
	if len(ctx) > 0 {
		blocks = append(blocks, Context(strings.Join(ctx, " · ")))
	}
	return outbox.Message{Kind: outbox.Post, Target: channel, Text: Plain(line, strings.Join(ctx, " · ")), Blocks: Blocks(blocks...)}
}

func issuedNotice(channel string, g Grant) outbox.Message {
	what := fmt.Sprintf(":key: *Issued* until %s:", fmtTime(g.ExpiresAt))
	return securityNotice(channel, g, what)
}

func endedNotice(channel string, g Grant) outbox.Message {
	if g.EndReason == EndGone {
		return securityNotice(channel, g, ":warning: *Vault drift*: marked revoked, "+endText(g.EndReason)+":")
	}
	return securityNotice(channel, g, fmt.Sprintf(":lock: *Ended* (%s):", Escape(endText(g.EndReason))))
}

// Jira comment bodies (plain text; Jira renders its own markup, so only
// line breaks structure them).

func jiraLine(g Grant, event string, at time.Time) string {
	return fmt.Sprintf("secretbot: grant %s (scope %s, %s) for %s <%s>: %s at %s.",
		g.ID, g.Scope, config.Duration(g.TTL), g.Requester, g.Email, event, fmtTime(at))
}

func jiraDecision(g Grant) string {
	switch g.State {
	case StateDenied:
		s := jiraLine(g, "denied by "+g.Approver, g.DecidedAt)
		if g.DenyReason != "" {
			s += "\nReason: " + g.DenyReason
		}
		return s
	case StateFailed:
		return jiraLine(g, "failed ("+g.LastError+")", g.EndedAt)
	}
	return jiraLine(g, "approved by "+g.Approver, g.DecidedAt)
}

func jiraIssued(g Grant) string {
	how := "a response-wrapped Vault token (accessor " + g.TokenAccessor + ")"
	if g.Delivery == config.DeliveryEntityGroup {
		how = "membership of the Vault group " + g.VaultGroup
	}
	return jiraLine(g, fmt.Sprintf("issued as %s, until %s", how, fmtTime(g.ExpiresAt)), g.IssuedAt)
}

func jiraEnded(g Grant) string {
	return jiraLine(g, "ended ("+g.EndReason+")", g.EndedAt)
}

func jiraOpenBody(g Grant) (summary, body string) {
	summary = fmt.Sprintf("Access grant %s: %s for %s", g.ID, g.Scope, g.Email)
	lines := []string{
		"Opened by secretbot to record a grant that needed no ticket.",
		"Grant: " + g.ID,
		"Scope: " + g.Scope,
		"Requester: " + g.Requester + " <" + g.Email + ">",
		"Approved by: " + g.Approver + " at " + fmtTime(g.DecidedAt),
	}
	if g.Incident != "" {
		lines = append(lines, "Incident: "+g.Incident)
	}
	if g.Reason != "" {
		lines = append(lines, "Reason: "+g.Reason)
	}
	for _, e := range g.Evidence {
		lines = append(lines, fmt.Sprintf("Evidence %s: %s %s %s", e.Kind, e.Status, e.Detail, e.Link))
	}
	if !g.IssuedAt.IsZero() {
		lines = append(lines, jiraIssued(g))
	}
	if g.State.Final() {
		lines = append(lines, jiraEnded(g))
	}
	return summary, strings.Join(lines, "\n")
}

func jiraComment(key, body string) outbox.Message {
	return outbox.Message{Kind: outbox.JiraComment, Target: key, Text: body}
}
