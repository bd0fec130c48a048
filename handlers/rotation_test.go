package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/policy"
	"github.com/secretbot/secretbot/internal/rotation"
)

type fakeRotation struct {
	calls []string
	items []rotation.Item
}

func (f *fakeRotation) Inventory(context.Context, rotation.Filter) ([]rotation.Item, error) {
	return f.items, nil
}
func (f *fakeRotation) ExportCSV(context.Context, policy.Person, rotation.Filter) ([]byte, error) {
	return []byte("name,environment\n"), nil
}
func (f *fakeRotation) Register(_ context.Context, _ policy.Person, s rotation.Secret) (rotation.Secret, error) {
	f.calls = append(f.calls, "register "+s.Name)
	return s, nil
}
func (f *fakeRotation) Provision(_ context.Context, _ policy.Person, s rotation.Secret, ticket, value string) (rotation.Secret, error) {
	f.calls = append(f.calls, "provision "+s.Name+" "+ticket+" "+value)
	return s, nil
}
func (f *fakeRotation) Secret(_ context.Context, name string) (rotation.Secret, error) {
	return rotation.Secret{Name: name, Provided: name == "stripe-key"}, nil
}
func (f *fakeRotation) StartRotation(_ context.Context, p policy.Person, secret, ticket string, emergency bool, incident, value string) (rotation.Rotation, error) {
	f.calls = append(f.calls, "rotate "+secret+" "+ticket+" "+incident+" "+value)
	return rotation.Rotation{}, nil
}
func (f *fakeRotation) Confirm(_ context.Context, p policy.Person, id, stage string) (rotation.Rotation, error) {
	f.calls = append(f.calls, "confirm "+id+" "+stage)
	return rotation.Rotation{}, nil
}
func (f *fakeRotation) RollBack(_ context.Context, p policy.Person, id string) (rotation.Rotation, error) {
	f.calls = append(f.calls, "rollback "+id)
	return rotation.Rotation{}, nil
}
func (f *fakeRotation) SaveReview(_ context.Context, p policy.Person, id, cause, blast, fu string) (rotation.JournalEntry, error) {
	f.calls = append(f.calls, "review "+id+" "+cause)
	return rotation.JournalEntry{}, nil
}
func (f *fakeRotation) Exposure(context.Context, policy.Person, string) (rotation.Exposure, error) {
	return rotation.Exposure{}, nil
}
func (f *fakeRotation) Journal(_ context.Context, _ policy.Person, kind, outcome, notes string) (rotation.JournalEntry, error) {
	f.calls = append(f.calls, "journal "+kind+" "+outcome+" "+notes)
	return rotation.JournalEntry{ID: "JAAAAAAA1", Outcome: outcome}, nil
}
func (f *fakeRotation) JournalList(context.Context, string, int) ([]rotation.JournalEntry, error) {
	return []rotation.JournalEntry{{ID: "JAAAAAAA1", Kind: "restore-test", Outcome: "passed", Notes: "<!here> ok"}}, nil
}
func (f *fakeRotation) Awaiting(context.Context) ([]rotation.Rotation, error) { return nil, nil }
func (f *fakeRotation) Drift(context.Context) ([]rotation.Drift, error) {
	return []rotation.Drift{{Secret: "db", Fields: map[string][2]string{"owner_team": {"payments", "someone-else"}}}, {Secret: "gone", Missing: true}}, nil
}

type fakeFiles struct{ sent []string }

func (f *fakeFiles) UploadCSV(_ context.Context, user, name string, data []byte, _ string) error {
	f.sent = append(f.sent, user+" "+name+" "+string(data))
	return nil
}

func TestRotationCommands(t *testing.T) {
	h, _, fv := accessHandlers()
	fr, ff := &fakeRotation{}, &fakeFiles{}
	h.Rotation, h.Files = fr, ff
	now := h.Now()
	fr.items = []rotation.Item{
		{Secret: rotation.Secret{Name: "db", Environment: "prod", OwnerTeam: "payments", OwnerContact: "U1"}, Due: now.Add(-time.Hour), Overdue: true},
		{Secret: rotation.Secret{Name: "api", Environment: "prod"}, Due: now.Add(24 * time.Hour), DueSoon: true},
	}
	ctx := context.Background()
	run := func(text string) string {
		r := h.Command(ctx, Command{UserID: "U2", ChannelID: "C1", Text: text, TriggerID: "T"})
		if len(r.Replies) == 0 {
			return ""
		}
		return r.Replies[0].Text
	}
	if got := run("inventory"); !strings.Contains(got, "*overdue* `db`") || !strings.Contains(got, "due soon `api`") {
		t.Errorf("inventory: %s", got)
	}
	run("inventory --export")
	if len(ff.sent) != 1 || !strings.HasPrefix(ff.sent[0], "U2 secret-inventory-2026-11-29.csv name,environment") {
		t.Errorf("export: %v", ff.sent)
	}
	run("rotate db --ticket SEC-1")
	if fr.calls[len(fr.calls)-1] != "rotate db SEC-1  " {
		t.Errorf("generated rotation: %v", fr.calls)
	}
	run("rotate stripe-key --ticket SEC-2")
	if len(fv.opened) != 1 || !strings.Contains(string(fv.opened[0]), RotateValueModal) {
		t.Fatalf("a provided secret's value is asked for in a modal: %s", fv.opened)
	}
	var view struct {
		PrivateMetadata string `json:"private_metadata"`
	}
	_ = json.Unmarshal(fv.opened[0], &view)
	sub := Submission{UserID: "U2", CallbackID: RotateValueModal, PrivateMetadata: view.PrivateMetadata, Values: map[string]map[string]string{}}
	if errs := h.Validate(ctx, sub); errs[rotation.ValueKey] == "" {
		t.Error("an empty value must be a field error")
	}
	if r := h.Submit(ctx, sub); len(r.Replies) != 1 || !strings.Contains(r.Replies[0].Text, "restarted") {
		t.Errorf("a value lost to a restart must be asked again: %+v", r.Replies)
	}
	sub.Values[rotation.ValueKey] = map[string]string{rotation.ValueKey: "sk_test_new"}
	h.Submit(ctx, sub)
	if got := fr.calls[len(fr.calls)-1]; got != "rotate stripe-key SEC-2  sk_test_new" {
		t.Errorf("provided rotation: %q", got)
	}
	if got := run(`journal restore-test passed "restored to staging"`); !strings.Contains(got, "Recorded restore test") {
		t.Errorf("journal record: %q", got)
	}
	if got := run("journal"); !strings.Contains(got, "&lt;!here&gt; ok") {
		t.Errorf("journal list must escape notes: %q", got)
	}
	if got := run("drift"); !strings.Contains(got, "registry `payments`, Vault `someone-else`") || !strings.Contains(got, "`gone`: not in Vault") {
		t.Errorf("drift: %q", got)
	}
	if r := h.Command(ctx, Command{UserID: "U1", Text: "drift"}); !strings.Contains(r.Replies[0].Text, "Platform Security only") {
		t.Errorf("drift by a non-member: %q", r.Replies[0].Text)
	}
	h.Click(ctx, Click{UserID: "U2", ActionID: rotation.ActionProduction, Value: "RAAAAAAA1", ChannelID: "CSEC"})
	if got := fr.calls[len(fr.calls)-1]; got != "confirm RAAAAAAA1 production" {
		t.Errorf("production click: %q", got)
	}
	r := h.Click(ctx, Click{UserID: "U1", ActionID: ActionReviewRemove, Value: "S1:U9", ChannelID: "CSEC"})
	if len(r.Replies) != 1 || !strings.Contains(r.Replies[0].Text, "Only Platform Security") {
		t.Errorf("review remove by a non-member of security: %+v", r.Replies)
	}
}

// A large inventory answer counts every secret but lists only what a Slack
// message can show, in due order, and says how to see the rest.
func TestInventoryAnswerIsBounded(t *testing.T) {
	h, _, _ := accessHandlers()
	fr := &fakeRotation{}
	h.Rotation = fr
	now := h.Now()
	for i := range inventoryShown + 7 {
		fr.items = append(fr.items, rotation.Item{Secret: rotation.Secret{Name: fmt.Sprintf("s%04d", i), Environment: "prod"},
			Due: now.Add(time.Duration(i) * time.Hour)})
	}
	r := h.Command(context.Background(), Command{UserID: "U2", ChannelID: "C1", Text: "inventory"})
	got := r.Replies[0].Text
	if !strings.HasPrefix(got, fmt.Sprintf("*Secret inventory* (%d, by due date)\n", inventoryShown+7)) {
		t.Errorf("header: %.80s", got)
	}
	last := fmt.Sprintf("`s%04d`", inventoryShown-1)
	if n := strings.Count(got, "\n• "); n != inventoryShown || !strings.Contains(got, last) || strings.Contains(got, fmt.Sprintf("`s%04d`", inventoryShown)) {
		t.Errorf("%d lines listed (want %d, up to %s)", n, inventoryShown, last)
	}
	if !strings.HasSuffix(got, "… and 7 more: narrow with `--overdue`, `--env` or `--owner`, or get them all with `--export`.\n") {
		t.Errorf("tail: %q", got[len(got)-120:])
	}
	if len(got) > 50*3000 {
		t.Errorf("answer of %d bytes is more than a Slack message shows", len(got))
	}
}
