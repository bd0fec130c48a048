package rotation

import (
	"fmt"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
)

// Messages never carry a value: only names, paths, versions and people.

// fmtTime formats a time for people: UTC, to the minute.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// mention names a Slack user; text not shaped like a user id (an owner
// contact typed into a form, say) is shown as code, never inside <@…>.
func mention(id string) string {
	switch {
	case id == "" || id == actorBot:
		return "secretbot"
	case !userIDRe.MatchString(id):
		return access.Code(id)
	}
	return "<@" + id + ">"
}

func secretRef(sec Secret) string {
	return access.Code(sec.Name) + " (" + access.Code(sec.Mount+"/"+sec.Path) + ")"
}

// kindText says what kind of rotation r is.
func kindText(r Rotation) string {
	if r.Emergency {
		return "Emergency rotation"
	}
	return "Rotation"
}

func stateText(r Rotation) string {
	switch r.State {
	case StateStaging:
		if r.ToVersion == 0 {
			return "writing the new version"
		}
		return "waiting for *Staging verified*"
	case StateProduction:
		return "staging verified; waiting for *Production verified*"
	case StateCompleted:
		return "completed"
	case StateRolledBack:
		return "rolled back"
	case StateFailed:
		return "failed"
	}
	return string(r.State)
}

// rootLines are the facts shown on the thread's root message.
func rootLines(r Rotation, sec Secret) []string {
	head := fmt.Sprintf(":arrows_counterclockwise: *%s* %s of %s started by %s", kindText(r), access.Code(r.ID), secretRef(sec), mention(r.Operator))
	if r.Emergency {
		head = fmt.Sprintf(":rotating_light: *Emergency rotation* %s of %s started by %s", access.Code(r.ID), secretRef(sec), mention(r.Operator))
	}
	lines := []string{head}
	if r.Emergency {
		inc := "Incident " + access.Code(r.Incident)
		if r.Commander != "" {
			inc += ": incident commander " + mention(r.Commander) + ", please follow this thread"
		}
		lines = append(lines, inc)
	}
	if r.Ticket != "" {
		lines = append(lines, "Ticket "+access.Code(r.Ticket))
	}
	lines = append(lines, fmt.Sprintf("Owner: %s (%s), %s", access.Escape(sec.OwnerTeam), mention(sec.OwnerContact), access.Escape(sec.Environment)))
	ver := fmt.Sprintf("Vault: version %d → %d", r.FromVersion, r.ToVersion)
	if r.RollbackVersion > 0 {
		ver += fmt.Sprintf(", rolled back as version %d", r.RollbackVersion)
	}
	lines = append(lines, ver, "State: "+stateText(r))
	if r.StagingBy != "" {
		lines = append(lines, fmt.Sprintf("Staging verified by %s at %s", mention(r.StagingBy), fmtTime(r.StagingAt)))
	}
	if r.ProductionBy != "" {
		lines = append(lines, fmt.Sprintf("Production verified by %s at %s", mention(r.ProductionBy), fmtTime(r.ProductionAt)))
	}
	if r.RolledBackBy != "" {
		lines = append(lines, fmt.Sprintf("Rolled back by %s at %s", mention(r.RolledBackBy), fmtTime(r.CompletedAt)))
	}
	if r.Flagged && r.Active() {
		lines = append(lines, ":warning: Unconfirmed past its deadline: it stays open until someone verifies or rolls it back.")
	}
	return lines
}

// rootBlocks renders the root with the buttons the state allows.
func rootBlocks(r Rotation, sec Secret) []access.Block {
	lines := rootLines(r, sec)
	blocks := []access.Block{access.Section(strings.Join(lines, "\n"))}
	var buttons []access.Button
	switch {
	case r.State == StateStaging && r.ToVersion > 0:
		buttons = append(buttons, access.Button{Text: "Staging verified", ActionID: ActionStaging, Value: r.ID, Style: "primary"})
	case r.State == StateProduction:
		buttons = append(buttons, access.Button{Text: "Production verified", ActionID: ActionProduction, Value: r.ID, Style: "primary"})
	}
	if r.Active() && r.ToVersion > 0 {
		buttons = append(buttons, access.Button{Text: "Roll back", ActionID: ActionRollback, Value: r.ID, Style: "danger"})
	}
	if r.Emergency && r.State == StateCompleted {
		buttons = append(buttons, access.Button{Text: "Post-incident review", ActionID: ActionReview, Value: r.ID})
	}
	if len(buttons) > 0 {
		blocks = append(blocks, access.Actions("rotation_"+r.ID, buttons...))
		blocks = append(blocks, access.Context("Rotators: Platform Security. Each click is checked against Slack at the moment it is made."))
	}
	return blocks
}

// rootMessage is the thread's root (posted through Messenger by PostThread).
func rootMessage(channel string, r Rotation, sec Secret) outbox.Message {
	return outbox.Message{Kind: outbox.Post, Target: channel, Text: access.Plain(rootLines(r, sec)...),
		Blocks: access.Blocks(rootBlocks(r, sec)...)}
}

// rootUpdate redraws the root after a change (nothing when it is not posted yet).
func rootUpdate(r Rotation, sec Secret) (outbox.Message, bool) {
	if r.ThreadChannel == "" || r.ThreadTS == "" {
		return outbox.Message{}, false
	}
	m := rootMessage(r.ThreadChannel, r, sec)
	m.Kind, m.TS = outbox.Update, r.ThreadTS
	return m, true
}

// threadReply posts in the rollout thread (or, before the root is known,
// in the security channel).
func threadReply(channel string, r Rotation, text string) outbox.Message {
	m := outbox.Message{Kind: outbox.Post, Target: channel, Text: text}
	if r.ThreadChannel != "" && r.ThreadTS != "" {
		m.Target, m.Thread = r.ThreadChannel, r.ThreadTS
	}
	return m
}

func notice(channel, text string) outbox.Message {
	return outbox.Message{Kind: outbox.Post, Target: channel, Text: text}
}

func jiraComment(key, body string) outbox.Message {
	return outbox.Message{Kind: outbox.JiraComment, Target: key, Text: body}
}

// jiraEvidence is the rotation's evidence for its ticket: who, what, when,
// versions, each confirmation.
func jiraEvidence(r Rotation, sec Secret, retired string) string {
	lines := []string{
		fmt.Sprintf("secretbot: %s %s of secret %s (%s/%s, %s) completed.", strings.ToLower(kindText(r)), r.ID, sec.Name, sec.Mount, sec.Path, sec.Environment),
		fmt.Sprintf("- Started by Slack user %s at %s", r.Operator, fmtTime(r.StartedAt)),
		fmt.Sprintf("- Vault KV versions: %d replaced by %d (check-and-set against version %d)", r.FromVersion, r.ToVersion, r.FromVersion),
		fmt.Sprintf("- Staging verified by Slack user %s at %s", r.StagingBy, fmtTime(r.StagingAt)),
		fmt.Sprintf("- Production verified by Slack user %s at %s", r.ProductionBy, fmtTime(r.ProductionAt)),
		fmt.Sprintf("- Previous version %d %s", r.FromVersion, retired),
		fmt.Sprintf("- Next rotation due %s", fmtTime(r.CompletedAt.Add(sec.Interval))),
	}
	if r.Incident != "" {
		lines = append(lines, "- Incident "+r.Incident)
	}
	return strings.Join(lines, "\n")
}

// Metadata keys mirrored into the KV custom_metadata.
const (
	MetaOwnerTeam     = "owner_team"
	MetaOwnerContact  = "owner_contact"
	MetaEnvironment   = "environment"
	MetaInterval      = "interval"
	MetaLastRotatedAt = "last_rotated_at"
	MetaLastOperator  = "last_operator"
	MetaLastTicket    = "last_ticket"
	MetaRotationDue   = "rotation_due"
)

// MetadataKeys are the mirrored keys, in a fixed order.
var MetadataKeys = []string{MetaOwnerTeam, MetaOwnerContact, MetaEnvironment, MetaInterval,
	MetaLastRotatedAt, MetaLastOperator, MetaLastTicket, MetaRotationDue}

// Metadata is the KV custom_metadata mirroring a registry entry. Times are
// RFC 3339 UTC; never rotated: last_rotated_at is "".
func Metadata(sec Secret) map[string]string {
	rotated := ""
	if !sec.LastRotatedAt.IsZero() {
		rotated = sec.LastRotatedAt.UTC().Format(time.RFC3339)
	}
	m := map[string]string{
		MetaOwnerTeam:     sec.OwnerTeam,
		MetaOwnerContact:  sec.OwnerContact,
		MetaEnvironment:   sec.Environment,
		MetaInterval:      config.Duration(sec.Interval).String(),
		MetaLastRotatedAt: rotated,
		MetaLastOperator:  sec.LastOperator,
		MetaLastTicket:    sec.LastTicket,
		MetaRotationDue:   sec.Due().UTC().Format(time.RFC3339),
	}
	for k, v := range m {
		if v == "" {
			m[k] = MetaNone // Vault refuses empty custom_metadata values
		}
	}
	return m
}

// MetaNone stands in custom_metadata for a value not known yet (a secret
// never rotated by the bot has no last operator).
const MetaNone = "-"
