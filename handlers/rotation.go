package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
	"github.com/secretbot/secretbot/internal/rotation"
)

// Rotation is the inventory and rotation service (internal/rotation.Service).
// Refusals are *access.UserError; any other error is internal.
type Rotation interface {
	Inventory(ctx context.Context, f rotation.Filter) ([]rotation.Item, error)
	ExportCSV(ctx context.Context, p policy.Person, f rotation.Filter) ([]byte, error)
	Register(ctx context.Context, p policy.Person, sec rotation.Secret) (rotation.Secret, error)
	Provision(ctx context.Context, p policy.Person, sec rotation.Secret, ticket, value string) (rotation.Secret, error)
	Secret(ctx context.Context, name string) (rotation.Secret, error)
	StartRotation(ctx context.Context, p policy.Person, secret, ticket string, emergency bool, incident, value string) (rotation.Rotation, error)
	Confirm(ctx context.Context, p policy.Person, rotationID, stage string) (rotation.Rotation, error)
	RollBack(ctx context.Context, p policy.Person, rotationID string) (rotation.Rotation, error)
	SaveReview(ctx context.Context, p policy.Person, rotationID, cause, blast, followups string) (rotation.JournalEntry, error)
	Exposure(ctx context.Context, p policy.Person, secret string) (rotation.Exposure, error)
	Journal(ctx context.Context, p policy.Person, kind, outcome, notes string) (rotation.JournalEntry, error)
	JournalList(ctx context.Context, kind string, limit int) ([]rotation.JournalEntry, error)
	Awaiting(ctx context.Context) ([]rotation.Rotation, error)
	Drift(ctx context.Context) ([]rotation.Drift, error)
}

// Files sends a file to a person (the inventory's CSV export).
type Files interface {
	UploadCSV(ctx context.Context, userID, filename string, data []byte, comment string) error
}

// Groups changes Slack user groups (the access review's Remove button).
type Groups interface {
	RemoveFromGroup(ctx context.Context, group, userID string) error
}

// Modal callback ids of the rotation flows. A secret value is typed only
// into a modal, in the block and action rotation.ValueKey, which the app
// never stores.
const (
	RegisterModal    = "register_modal"
	ProvisionModal   = "provision_modal"
	RotateValueModal = "rotate_value_modal"
	ReviewModal      = "incident_review_modal"
)

// inventoryShown bounds the inventory answer: a Slack message shows at most
// 50 blocks of 3000 characters (about 1,000 lines; the rest was cut off),
// and rendering 10,000 lines nobody would see was most of the answer's time.
const inventoryShown = 500

func (h *Handlers) inventory(ctx context.Context, r request) Result {
	f, export, err := rotation.ParseInventoryArgs(r.Args)
	if err != nil {
		return h.accessRefusal(r.Command, r.Person, "inventory", err)
	}
	if export {
		data, err := h.Rotation.ExportCSV(ctx, r.Person, f)
		if err != nil {
			return h.accessRefusal(r.Command, r.Person, "inventory.export", err)
		}
		name := "secret-inventory-" + h.Now().UTC().Format("2006-01-02") + ".csv"
		if err := h.Files.UploadCSV(ctx, r.Person.SlackID, name, data, "The secret inventory, as the playbook's spreadsheet wants it."); err != nil {
			return h.accessRefusal(r.Command, r.Person, "inventory.export", err)
		}
		return Result{Replies: []outbox.Message{reply(r.Command, "I sent you `"+name+"` as a direct message.")},
			Audit: []audit.Event{{Actor: r.Person.SlackID, Action: "inventory.exported", Outcome: audit.OK}}}
	}
	items, err := h.Rotation.Inventory(ctx, f)
	if err != nil {
		return h.accessRefusal(r.Command, r.Person, "inventory", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*Secret inventory* (%d, by due date)\n", len(items))
	for i, it := range items {
		if i == inventoryShown {
			fmt.Fprintf(&b, "… and %d more: narrow with `--overdue`, `--env` or `--owner`, or get them all with `--export`.\n", len(items)-i)
			break
		}
		mark := ""
		switch {
		case it.Overdue:
			mark = ":red_circle: *overdue* "
		case it.DueSoon:
			mark = ":large_yellow_circle: due soon "
		}
		fmt.Fprintf(&b, "• %s`%s` (%s) — owner %s %s — due %s", mark, Code(it.Name), Escape(it.Environment),
			Escape(it.OwnerTeam), userMention(it.OwnerContact), it.Due.UTC().Format("2006-01-02"))
		if !it.LastRotatedAt.IsZero() {
			fmt.Fprintf(&b, ", last rotated %s (v%d)", it.LastRotatedAt.UTC().Format("2006-01-02"), it.LastVersion)
		}
		b.WriteString("\n")
	}
	return Result{Replies: []outbox.Message{reply(r.Command, b.String())}}
}

func (h *Handlers) rotate(ctx context.Context, r request) Result {
	a, err := rotation.ParseRotateArgs(r.Args)
	if err != nil {
		return h.accessRefusal(r.Command, r.Person, "rotate", err)
	}
	sec, err := h.Rotation.Secret(ctx, a.Secret)
	if err != nil {
		return h.accessRefusal(r.Command, r.Person, "rotate", err)
	}
	if sec.Provided {
		// A provider made the value: it is pasted into a modal, never a channel.
		meta, _ := json.Marshal(a)
		return h.openModal(ctx, r.Command, r.TriggerID, RotateValueModal, string(meta), "Rotate "+Truncate(sec.Name, 16), "Rotate",
			input(rotation.ValueKey, "New value (from the provider)", map[string]any{"type": "plain_text_input", "action_id": rotation.ValueKey}, false))
	}
	if _, err := h.Rotation.StartRotation(ctx, r.Person, a.Secret, a.Ticket, a.Emergency, a.Incident, ""); err != nil {
		return h.accessRefusal(r.Command, r.Person, "rotate", err)
	}
	return Result{Replies: []outbox.Message{reply(r.Command, fmt.Sprintf("Rotation of `%s` started: a new version is in Vault. Follow the rollout in the security channel's thread.", Code(sec.Name)))}}
}

func (h *Handlers) exposure(ctx context.Context, r request) Result {
	if len(r.Args) != 1 {
		return h.refuse(r.Command, "exposure", "bad arguments", "Usage: `"+h.Config.Slack.Command+" exposure &lt;secret&gt;`")
	}
	ex, err := h.Rotation.Exposure(ctx, r.Person, r.Args[0])
	if err != nil {
		return h.accessRefusal(r.Command, r.Person, "exposure", err)
	}
	var b strings.Builder
	since := "ever (never rotated by the bot)"
	if !ex.Since.IsZero() {
		since = ex.Since.UTC().Format("2006-01-02 15:04 UTC") + " (last rotation)"
	}
	fmt.Fprintf(&b, "*Who could read `%s` since %s*\nScopes covering `%s`: %s\n", Code(ex.Secret.Name), since,
		Code(ex.Secret.Path), Escape(strings.Join(ex.Scopes, ", ")))
	if len(ex.Grants) == 0 {
		b.WriteString("No grant of those scopes was live in that time.\n")
	}
	for _, g := range ex.Grants {
		fmt.Fprintf(&b, "• %s `%s` grant `%s`, issued %s, %s\n", userMention(g.Requester), Code(g.Scope), g.ID,
			g.IssuedAt.UTC().Format("2006-01-02 15:04"), g.State)
	}
	return Result{Replies: []outbox.Message{reply(r.Command, b.String())},
		Audit: []audit.Event{{Actor: r.Person.SlackID, Action: "exposure", Outcome: audit.OK, Secret: ex.Secret.Name}}}
}

func (h *Handlers) journal(ctx context.Context, r request) Result {
	a, err := rotation.ParseJournalArgs(r.Args)
	if err != nil {
		return h.accessRefusal(r.Command, r.Person, "journal", err)
	}
	if !a.List {
		e, err := h.Rotation.Journal(ctx, r.Person, rotation.KindRestoreTest, a.Outcome, a.Notes)
		if err != nil {
			return h.accessRefusal(r.Command, r.Person, "journal", err)
		}
		return Result{Replies: []outbox.Message{reply(r.Command, fmt.Sprintf("Recorded restore test `%s`: %s.", e.ID, e.Outcome))}}
	}
	es, err := h.Rotation.JournalList(ctx, a.Kind, 30)
	if err != nil {
		return h.accessRefusal(r.Command, r.Person, "journal", err)
	}
	var b strings.Builder
	b.WriteString("*Security operations journal*\n")
	if len(es) == 0 {
		b.WriteString("No entries yet.\n")
	}
	for _, e := range es {
		fmt.Fprintf(&b, "• `%s` %s *%s* %s by %s", e.ID, e.At.UTC().Format("2006-01-02"), Escape(e.Kind), Escape(e.Outcome), userMention(e.Author))
		if e.Notes != "" {
			fmt.Fprintf(&b, " — %s", Escape(Truncate(e.Notes, 200)))
		}
		b.WriteString("\n")
	}
	return Result{Replies: []outbox.Message{reply(r.Command, b.String())}}
}

// register and provision open their forms; the submit does the work.
func (h *Handlers) register(ctx context.Context, r request) Result {
	return h.openModal(ctx, r.Command, r.TriggerID, RegisterModal, "", "Register a secret", "Register", secretFields(false)...)
}

func (h *Handlers) provision(ctx context.Context, r request) Result {
	return h.openModal(ctx, r.Command, r.TriggerID, ProvisionModal, "", "Provision a secret", "Provision", secretFields(true)...)
}

const (
	fName, fEnv, fTeam, fContact, fPath, fInterval, fLength, fAlphabet, fProvided, fSecTicket = "name", "environment", "owner_team", "owner_contact", "path", "interval", "length", "alphabet", "provided", "ticket"
	fCause, fBlast, fFollowUps                                                                = "cause", "blast_radius", "follow_ups"
)

func secretFields(provision bool) []map[string]any {
	f := []map[string]any{
		input(fName, "Name", textInput(fName, "e.g. payments-db (lower case, digits, dashes)"), false),
		input(fEnv, "Environment", textInput(fEnv, "e.g. prod, staging"), false),
		input(fTeam, "Owning team", textInput(fTeam, "e.g. payments"), false),
		input(fContact, "Owner contact", map[string]any{"type": "users_select", "action_id": fContact}, false),
		input(fPath, "Vault KV v2 path", textInput(fPath, "e.g. platform/payments-db (under the configured mount)"), false),
		input(fInterval, "Rotation interval", textInput(fInterval, "default 90d; e.g. 30d, 90d"), true),
		input(fLength, "Generated length", textInput(fLength, "e.g. 32 (leave empty for a provider-made secret)"), true),
		input(fAlphabet, "Generated alphabet", textInput(fAlphabet, "e.g. A-Za-z0-9"), true),
		input(fProvided, "Made by a provider?", textInput(fProvided, "yes for Stripe, cloud KMS …; empty for generated"), true),
	}
	if provision {
		f = append(f,
			input(fSecTicket, "Jira ticket (owner, scope, justification, expiry)", textInput(fSecTicket, "e.g. SEC-123"), false),
			input(rotation.ValueKey, "Value, for a provider-made secret", map[string]any{"type": "plain_text_input", "action_id": rotation.ValueKey}, true))
	}
	return f
}

func (h *Handlers) openModal(ctx context.Context, c Command, triggerID, callback, meta, title, submit string, blocks ...map[string]any) Result {
	view, _ := json.Marshal(map[string]any{
		"type": "modal", "callback_id": callback, "private_metadata": meta,
		"title": plainText(Truncate(title, 24)), "submit": plainText(submit), "close": plainText("Cancel"), "blocks": blocks,
	})
	if err := h.Views.OpenView(ctx, triggerID, view); err != nil {
		h.Log.Warn("opening a modal failed", "callback", callback, "err", err)
		return Result{Replies: []outbox.Message{reply(c, "I could not open the form in time (Slack gives a form only a few seconds); please try again.")}}
	}
	return Result{}
}

// secretFromForm reads the register/provision form.
func (h *Handlers) secretFromForm(v map[string]map[string]string) (rotation.Secret, error) {
	get := func(k string) string { return strings.TrimSpace(v[k][k]) }
	sec := rotation.Secret{Name: strings.ToLower(get(fName)), Environment: get(fEnv), OwnerTeam: get(fTeam),
		OwnerContact: get(fContact), Path: get(fPath)}
	if s := get(fInterval); s != "" {
		d, err := config.ParseDuration(s)
		if err != nil {
			return sec, &access.UserError{Field: fInterval, Msg: "The interval must be " + config.DurationAccepted + "."}
		}
		sec.Interval = d
	}
	switch strings.ToLower(get(fProvided)) {
	case "", "no", "n", "false":
	case "yes", "y", "true":
		sec.Provided = true
	default:
		return sec, &access.UserError{Field: fProvided, Msg: "Answer yes (a provider makes the value) or leave it empty (the bot generates it)."}
	}
	if !sec.Provided {
		sec.Generate.Alphabet = get(fAlphabet)
		if s := get(fLength); s != "" {
			var n int
			if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n <= 0 {
				return sec, &access.UserError{Field: fLength, Msg: "The length is a whole number of characters, e.g. 32."}
			}
			sec.Generate.Length = n
		}
	}
	return rotation.ValidateSecret(h.Config, sec)
}

// rotationClick handles the buttons of a rotation thread and of the
// monthly access review.
func (h *Handlers) rotationClick(ctx context.Context, c Click, p policy.Person) (Result, bool) {
	var err error
	switch c.ActionID {
	case rotation.ActionStaging:
		_, err = h.Rotation.Confirm(ctx, p, c.Value, rotation.StageStaging)
	case rotation.ActionProduction:
		_, err = h.Rotation.Confirm(ctx, p, c.Value, rotation.StageProduction)
	case rotation.ActionRollback:
		_, err = h.Rotation.RollBack(ctx, p, c.Value)
	case rotation.ActionReview:
		return h.openModal(ctx, Command{UserID: c.UserID, ChannelID: c.ChannelID}, c.TriggerID, ReviewModal, c.Value, "Post-incident review", "Save",
			input(fCause, "Cause", map[string]any{"type": "plain_text_input", "action_id": fCause, "multiline": true}, false),
			input(fBlast, "Blast radius", map[string]any{"type": "plain_text_input", "action_id": fBlast, "multiline": true}, false),
			input(fFollowUps, "Follow-up actions", map[string]any{"type": "plain_text_input", "action_id": fFollowUps, "multiline": true}, false)), true
	case ActionReviewRevoke:
		if !policy.PlatformSecurity(h.Config, p) {
			return h.refuseClick(c, "not platform security", "Only Platform Security acts on the access review."), true
		}
		id, ok := access.NormalizeGrantID(c.Value)
		if !ok {
			return Result{}, true
		}
		err = h.Access.Revoke(ctx, id, p.SlackID, access.RevokedBy(p.SlackID))
	case ActionReviewRemove:
		return h.reviewRemove(ctx, c, p), true
	default:
		return Result{}, false
	}
	if err != nil {
		res := h.accessRefusal(Command{UserID: c.UserID, ChannelID: c.ChannelID}, p, strings.TrimPrefix(c.ActionID, "rotation_"), err)
		for i := range res.Replies {
			res.Replies[i] = clickReply(c, res.Replies[i].Text)
		}
		return res, true
	}
	return Result{}, true
}

// Access review buttons (internal/schedule posts them).
const (
	ActionReviewRevoke = "review_revoke"
	ActionReviewRemove = "review_remove"
)

func (h *Handlers) reviewRemove(ctx context.Context, c Click, p policy.Person) Result {
	if !policy.PlatformSecurity(h.Config, p) {
		return h.refuseClick(c, "not platform security", "Only Platform Security acts on the access review.")
	}
	group, user, ok := strings.Cut(c.Value, ":")
	if uid, isUser := mentionID(user); !ok || group == "" || !isUser || uid != user {
		h.Log.Warn("review: a remove button with an unexpected value; ignored", "user", c.UserID)
		return Result{}
	}
	if err := h.Groups.RemoveFromGroup(ctx, group, user); err != nil {
		h.Log.Warn("review: removing from a user group failed", "group", group, "user", user, "err", err)
		return Result{Replies: []outbox.Message{clickReply(c, "Slack refused to change the user group: "+Escape(err.Error()))},
			Audit: []audit.Event{{Actor: p.SlackID, Action: "review.remove", Outcome: audit.Failed, Reason: Truncate(err.Error(), 200),
				Links: map[string]string{"group": group, "subject": user}}}}
	}
	return Result{
		Replies: []outbox.Message{{Kind: outbox.Post, Target: h.Config.Slack.SecurityChannel,
			Text: fmt.Sprintf(":scissors: %s removed %s from @%s (unused permission, monthly review).", userMention(p.SlackID), userMention(user), Escape(group))}},
		Audit: []audit.Event{{Actor: p.SlackID, Action: "review.remove", Outcome: audit.OK, Links: map[string]string{"group": group, "subject": user}}},
	}
}

// rotationSubmit handles the rotation flows' modals. ok is false for a
// callback that is not theirs.
func (h *Handlers) rotationSubmit(ctx context.Context, s Submission, p policy.Person) (Result, bool) {
	dm := Command{UserID: s.UserID}
	var err error
	switch s.CallbackID {
	case RegisterModal, ProvisionModal:
		var sec rotation.Secret
		if sec, err = h.secretFromForm(s.Values); err == nil {
			if s.CallbackID == RegisterModal {
				_, err = h.Rotation.Register(ctx, p, sec)
			} else {
				_, err = h.Rotation.Provision(ctx, p, sec, strings.TrimSpace(s.Values[fSecTicket][fSecTicket]), s.Values[rotation.ValueKey][rotation.ValueKey])
			}
		}
	case RotateValueModal:
		var a rotation.RotateArgs
		if json.Unmarshal([]byte(s.PrivateMetadata), &a) != nil {
			return Result{}, true
		}
		value, ok := s.Values[rotation.ValueKey][rotation.ValueKey], true
		if value == "" {
			// The value lives only in memory between the submit and the write:
			// a restart in between loses it, and the person is asked again.
			return Result{Replies: []outbox.Message{reply(dm, "The bot restarted before your value was written; nothing was changed. Please run the rotation again.")}}, ok
		}
		_, err = h.Rotation.StartRotation(ctx, p, a.Secret, a.Ticket, a.Emergency, a.Incident, value)
	case ReviewModal:
		get := func(k string) string { return s.Values[k][k] }
		_, err = h.Rotation.SaveReview(ctx, p, s.PrivateMetadata, get(fCause), get(fBlast), get(fFollowUps))
	default:
		return Result{}, false
	}
	if err != nil {
		return dmAll(h.accessRefusal(dm, p, strings.TrimSuffix(s.CallbackID, "_modal"), err), s.UserID), true
	}
	return Result{}, true
}

// validateRotation checks a rotation form before it is acked.
func (h *Handlers) validateRotation(s Submission) map[string]string {
	switch s.CallbackID {
	case RegisterModal, ProvisionModal:
		if _, err := h.secretFromForm(s.Values); err != nil {
			if ue, ok := access.IsUserError(err); ok {
				field := ue.Field
				if field == "" {
					field = fName
				}
				return map[string]string{field: Truncate(ue.Msg, 150)}
			}
		}
	case RotateValueModal:
		if strings.TrimSpace(s.Values[rotation.ValueKey][rotation.ValueKey]) == "" {
			return map[string]string{rotation.ValueKey: "Paste the new value the provider made."}
		}
	}
	return nil
}

// securityHome is the App Home part for Platform Security: overdue and
// due-soon rotations, and rollouts waiting for a confirmation.
func (h *Handlers) securityHome(ctx context.Context) []access.Block {
	items, err := h.Rotation.Inventory(ctx, rotation.Filter{})
	if err != nil {
		h.Log.Warn("home: inventory failed", "err", err)
		return nil
	}
	var due []string
	for _, it := range items {
		switch {
		case it.Overdue:
			due = append(due, fmt.Sprintf(":red_circle: `%s` overdue since %s", Code(it.Name), it.Due.UTC().Format("2006-01-02")))
		case it.DueSoon:
			due = append(due, fmt.Sprintf(":large_yellow_circle: `%s` due %s", Code(it.Name), it.Due.UTC().Format("2006-01-02")))
		}
	}
	blocks := []access.Block{access.Divider(), access.Section("*Rotations due*")}
	if len(due) == 0 {
		blocks = append(blocks, access.Context("Nothing overdue or due soon."))
	} else {
		blocks = append(blocks, access.Section(strings.Join(due, "\n")))
	}
	waiting, err := h.Rotation.Awaiting(ctx)
	if err != nil {
		h.Log.Warn("home: rotations awaiting confirmation failed", "err", err)
		return blocks
	}
	if len(waiting) > 0 {
		var lines []string
		for _, r := range waiting {
			line := fmt.Sprintf("`%s` `%s` — %s, started %s by %s", r.ID, Code(r.Secret), r.State, r.StartedAt.UTC().Format("2006-01-02 15:04"), userMention(r.Operator))
			if r.Flagged {
				line = ":warning: " + line + " — unconfirmed too long"
			}
			lines = append(lines, line)
		}
		blocks = append(blocks, access.Section("*Rotations awaiting confirmation*"), access.Section(strings.Join(lines, "\n")))
	}
	return blocks
}

// drift compares the registry with what Vault's custom_metadata says.
func (h *Handlers) drift(ctx context.Context, r request) Result {
	if !policy.PlatformSecurity(h.Config, r.Person) {
		return h.refuse(r.Command, "drift", "not platform security", "The drift report is for Platform Security only.")
	}
	ds, err := h.Rotation.Drift(ctx)
	if err != nil {
		return h.accessRefusal(r.Command, r.Person, "drift", err)
	}
	var b strings.Builder
	b.WriteString("*Registry vs Vault custom_metadata*\n")
	if len(ds) == 0 {
		b.WriteString("Every entry agrees with Vault.\n")
	}
	for _, d := range ds {
		switch {
		case d.Missing:
			fmt.Fprintf(&b, "• `%s`: not in Vault\n", Code(d.Secret))
		case d.Err != "":
			fmt.Fprintf(&b, "• `%s`: could not read Vault: %s\n", Code(d.Secret), Escape(d.Err))
		default:
			for k, v := range d.Fields {
				fmt.Fprintf(&b, "• `%s` %s: registry `%s`, Vault `%s`\n", Code(d.Secret), Code(k), Code(v[0]), Code(v[1]))
			}
		}
	}
	return Result{Replies: []outbox.Message{reply(r.Command, b.String())},
		Audit: []audit.Event{{Actor: r.Person.SlackID, Action: "drift.read", Outcome: audit.OK}}}
}
