package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/policy"
)

// fakeAccess records what handlers asked of the access service.
type fakeAccess struct {
	calls  []string
	err    error
	grants []access.Grant
}

func (f *fakeAccess) Request(_ context.Context, p policy.Person, a access.RequestArgs, url string) (access.Grant, error) {
	f.calls = append(f.calls, "request "+p.SlackID+" "+a.Scope+" "+a.TTL.String()+" "+url)
	return access.Grant{}, f.err
}

func (f *fakeAccess) Decide(_ context.Context, p policy.Person, id string, approve bool, reason string, c access.CardRef) error {
	f.calls = append(f.calls, strings.Join([]string{"decide", p.SlackID, id, map[bool]string{true: "approve", false: "deny"}[approve], reason, c.Channel, c.TS}, " "))
	return f.err
}

func (f *fakeAccess) Revoke(_ context.Context, id, by, why string) error {
	f.calls = append(f.calls, "revoke "+id+" "+by+" "+why)
	return f.err
}

func (f *fakeAccess) Grants(context.Context, policy.Person) ([]access.Grant, error) {
	return f.grants, f.err
}

func (f *fakeAccess) Explain(_ context.Context, _, target policy.Person, scope string) (string, error) {
	f.calls = append(f.calls, "explain "+target.SlackID+" "+scope)
	return "would pass", f.err
}

type fakeViews struct{ opened, published []json.RawMessage }

func (v *fakeViews) OpenView(_ context.Context, _ string, view json.RawMessage) error {
	v.opened = append(v.opened, view)
	return nil
}

func (v *fakeViews) PublishHome(_ context.Context, _ string, view json.RawMessage) error {
	v.published = append(v.published, view)
	return nil
}

type fakeAudit []audit.Record

func (a fakeAudit) AuditSince(context.Context, time.Time, string, int) ([]audit.Record, error) {
	return a, nil
}

func accessHandlers() (*Handlers, *fakeAccess, *fakeViews) {
	h := testHandlers(nil)
	h.Config.Scopes[0].MaxTTL = config.Duration(4 * time.Hour)
	h.Config.Scopes[0].Evidence = []string{config.EvidenceApproval}
	h.Config.Scopes[0].Approvers = config.People{Groups: []string{"platform-security"}}
	h.Config.Slack.PlatformSecurityGroup = "platform-security"
	fa, fv := &fakeAccess{}, &fakeViews{}
	h.Access, h.Views, h.Now = fa, fv, func() time.Time { return time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC) }
	h.Audit = fakeAudit{{Seq: 3, Actor: "U1", Action: "whoami", Outcome: "ok"}}
	h.Directory = directory{
		"U1": {SlackID: "U1", Email: "ana@example.test", Groups: []string{"sre-oncall"}},
		"U2": {SlackID: "U2", Email: "sec@example.test", Groups: []string{"platform-security"}},
	}
	return h, fa, fv
}

func TestRequestCommand(t *testing.T) {
	h, fa, fv := accessHandlers()
	ctx := context.Background()
	cmd := func(text string) Result {
		return h.Command(ctx, Command{UserID: "U1", ChannelID: "C1", Text: text, ResponseURL: "https://hooks.example.test/r", TriggerID: "T1"})
	}
	if r := cmd("request platform-ro --ttl 2h"); len(r.Replies) != 0 || len(fa.calls) != 1 ||
		fa.calls[0] != "request U1 platform-ro 2h0m0s https://hooks.example.test/r" {
		t.Errorf("request: replies %v, calls %v", r.Replies, fa.calls)
	}
	for text, want := range map[string]string{
		"request platform-ro --ttl 9h":      "4h",
		"request nosuch":                    "platform-ro",
		"request platform-ro --bogus x":     "--ttl",
		"request platform-ro --ttl forever": "30m",
	} {
		r := cmd(text)
		if len(r.Replies) != 1 || !strings.Contains(r.Replies[0].Text, want) {
			t.Errorf("%q: reply %+v, want it to mention %q", text, r.Replies, want)
		}
		if len(r.Audit) != 1 || r.Audit[0].Outcome != audit.Refused {
			t.Errorf("%q: refusal not audited: %+v", text, r.Audit)
		}
	}
	if len(fa.calls) != 1 {
		t.Errorf("bad requests reached the service: %v", fa.calls)
	}
	cmd("request")
	if len(fv.opened) != 1 || !strings.Contains(string(fv.opened[0]), `"value":"platform-ro"`) ||
		strings.Contains(string(fv.opened[0]), "platform-rw") {
		t.Errorf("modal must offer exactly the eligible, enabled scopes: %s", fv.opened)
	}
	fa.err = errors.New("database is locked")
	r := cmd("request platform-ro")
	if len(r.Replies) != 1 || !strings.Contains(r.Replies[0].Text, "internal error (ref ") {
		t.Errorf("internal error not reported with a ref: %+v", r.Replies)
	}
}

func TestRevokeExplainAudit(t *testing.T) {
	h, fa, _ := accessHandlers()
	ctx := context.Background()
	run := func(user, text string) string {
		r := h.Command(ctx, Command{UserID: user, ChannelID: "C1", Text: text})
		if len(r.Replies) == 0 {
			return ""
		}
		return r.Replies[0].Text
	}
	if got := run("U1", "revoke not-an-id!"); !strings.Contains(got, "not a grant id") {
		t.Errorf("bad id: %q", got)
	}
	if got := run("U1", "revoke"); !strings.Contains(got, "Usage") {
		t.Errorf("no id: %q", got)
	}
	if got := run("U2", "explain <@U1|ana> platform-ro"); got != "would pass" || fa.calls[len(fa.calls)-1] != "explain U1 platform-ro" {
		t.Errorf("explain: %q %v", got, fa.calls)
	}
	if got := run("U2", "explain ana platform-ro"); !strings.Contains(got, "@mention") {
		t.Errorf("explain without a mention: %q", got)
	}
	if got := run("U1", "audit"); !strings.Contains(got, "Platform Security only") {
		t.Errorf("audit by a non-security member: %q", got)
	}
	if got := run("U2", "audit --since 2d"); !strings.Contains(got, "#3") {
		t.Errorf("audit: %q", got)
	}
	if got := run("U2", "audit --since soon"); !strings.Contains(got, "--since takes") {
		t.Errorf("audit bad since: %q", got)
	}
}

func TestClicksAndModals(t *testing.T) {
	h, fa, fv := accessHandlers()
	ctx := context.Background()
	id := access.NewGrantID()
	h.Click(ctx, Click{UserID: "U2", ActionID: ActionApprove, Value: id, ChannelID: "CAPPROVE", MessageTS: "1.2"})
	h.Click(ctx, Click{UserID: "U1", ActionID: ActionDone, Value: id})
	if len(fa.calls) != 2 || fa.calls[0] != "decide U2 "+id+" approve  CAPPROVE 1.2" || fa.calls[1] != "revoke "+id+" U1 "+access.EndDone {
		t.Errorf("calls %v", fa.calls)
	}
	h.Click(ctx, Click{UserID: "U2", ActionID: ActionDeny, Value: id, ChannelID: "CAPPROVE", MessageTS: "1.2", TriggerID: "T"})
	if len(fv.opened) != 1 || !strings.Contains(string(fv.opened[0]), DenyModal) {
		t.Fatalf("deny must open the reason modal: %s", fv.opened)
	}
	var view struct {
		PrivateMetadata string `json:"private_metadata"`
	}
	_ = json.Unmarshal(fv.opened[0], &view)
	deny := Submission{UserID: "U2", CallbackID: DenyModal, PrivateMetadata: view.PrivateMetadata,
		Values: map[string]map[string]string{denyReasonField: {denyReasonField: ""}}}
	if errs := h.Validate(ctx, deny); errs[denyReasonField] == "" {
		t.Error("an empty deny reason must be a field error")
	}
	deny.Values[denyReasonField][denyReasonField] = "no ticket"
	if h.Validate(ctx, deny) != nil {
		t.Error("a deny with a reason is valid")
	}
	h.Submit(ctx, deny)
	if got := fa.calls[len(fa.calls)-1]; got != "decide U2 "+id+" deny no ticket CAPPROVE 1.2" {
		t.Errorf("deny submit: %q", got)
	}
	req := Submission{UserID: "U1", CallbackID: RequestModal, Values: map[string]map[string]string{
		fieldScope: {fieldScope: "platform-ro"}, fieldTTL: {fieldTTL: "soon"}}}
	if errs := h.Validate(ctx, req); errs[fieldTTL] == "" {
		t.Errorf("a bad TTL must be a field error on the ttl block: %v", errs)
	}
	req.Values[fieldTTL][fieldTTL] = "1h30m"
	if errs := h.Validate(ctx, req); errs != nil {
		t.Errorf("valid request refused: %v", errs)
	}
	h.Submit(ctx, req)
	if got := fa.calls[len(fa.calls)-1]; got != "request U1 platform-ro 1h30m0s " {
		t.Errorf("request submit: %q", got)
	}
	fa.err = &access.UserError{Msg: "already decided by <@U3>"}
	r := h.Click(ctx, Click{UserID: "U2", ActionID: ActionApprove, Value: id, ChannelID: "CAPPROVE"})
	if len(r.Replies) != 1 || r.Replies[0].User != "U2" || !strings.Contains(r.Replies[0].Text, "already decided") {
		t.Errorf("stale click must be answered to the clicker only: %+v", r.Replies)
	}
}

func TestAckSummary(t *testing.T) {
	if AckSummary("whoami") != nil || AckSummary("request") != nil {
		t.Error("only a request with a scope gets an ack summary")
	}
	if got := string(AckSummary("request <!channel>")); !strings.Contains(got, `\u0026lt;!channel\u0026gt;`) || !strings.Contains(got, `"ephemeral"`) {
		t.Errorf("ack summary = %s", got)
	}
}

func TestHomeShowsMyGrantsAndWhatWaitsForMe(t *testing.T) {
	h, fa, fv := accessHandlers()
	now := h.Now()
	fa.grants = []access.Grant{
		{ID: "GAAAAAAA1", Requester: "U2", Scope: "platform-ro", State: access.StateIssued, ExpiresAt: now.Add(90 * time.Minute)},
		{ID: "GAAAAAAA2", Requester: "U1", Scope: "platform-ro", State: access.StatePending, TTL: time.Hour, Reason: "<!channel> db"},
		{ID: "GAAAAAAA3", Requester: "U2", Scope: "platform-ro", State: access.StateExpired},
	}
	h.Home(context.Background(), "U2")
	if len(fv.published) != 1 {
		t.Fatalf("published %d views", len(fv.published))
	}
	v := string(fv.published[0])
	for _, want := range []string{"GAAAAAAA1", "1h30m left", ActionDone, "GAAAAAAA2", `\u0026lt;!channel\u0026gt; db`} {
		if !strings.Contains(v, want) {
			t.Errorf("home lacks %q: %s", want, v)
		}
	}
	if strings.Contains(v, "GAAAAAAA3") {
		t.Errorf("an ended grant is on the home tab: %s", v)
	}
}

func TestOutagesVisibleInGrantsAndHome(t *testing.T) {
	h, fa, fv := accessHandlers()
	now := h.Now()
	fa.grants = []access.Grant{
		{ID: "GAAAAAAA1", Requester: "U2", Scope: "platform-ro", State: access.StateIssued, ExpiresAt: now.Add(time.Hour),
			RevokePending: true, EndReason: access.EndDone, LastError: "vault: revoke accessor: connection refused"},
		{ID: "GAAAAAAA2", Requester: "U2", Scope: "platform-ro", State: access.StateApproved,
			LastError: "waiting for Vault: vault: create token: HTTP 503: Vault is sealed"},
		{ID: "GAAAAAAA3", Requester: "U1", Scope: "platform-ro", State: access.StateIssued, ExpiresAt: now.Add(time.Hour),
			RevokePending: true, EndReason: access.EndExpired, LastError: "vault: revoke accessor: <!channel> down"},
	}
	r := h.Command(context.Background(), Command{UserID: "U2", ChannelID: "C1", Text: "grants", ResponseURL: "https://hooks.example.test/r"})
	if len(r.Replies) != 1 {
		t.Fatalf("replies %+v", r.Replies)
	}
	list := r.Replies[0].Text
	for _, want := range []string{"GAAAAAAA1` <@U2> `platform-ro` — *issued*", "revoke pending, retrying: vault: revoke accessor: connection refused",
		"GAAAAAAA2` <@U2> `platform-ro` — *approved* — :hourglass_flowing_sand: waiting for Vault, retrying: vault: create token: HTTP 503: Vault is sealed",
		"&lt;!channel&gt; down"} {
		if !strings.Contains(list, want) {
			t.Errorf("grants lacks %q:\n%s", want, list)
		}
	}
	h.Home(context.Background(), "U2")
	if len(fv.published) != 1 {
		t.Fatalf("published %d views", len(fv.published))
	}
	v := string(fv.published[0])
	for _, want := range []string{"GAAAAAAA1` *platform-ro* — :warning: revoke pending", "GAAAAAAA2` *platform-ro* — approved; :hourglass_flowing_sand: waiting for Vault",
		"*Revokes pending*", "GAAAAAAA3` " + `\u003c@U1\u003e` + " *platform-ro* — :warning: revoke pending"} {
		if !strings.Contains(v, want) {
			t.Errorf("home lacks %q: %s", want, v)
		}
	}
	if strings.Count(v, ActionDone) != 0 {
		t.Errorf("a grant whose revoke is pending still offers I'm done: %s", v)
	}
}
