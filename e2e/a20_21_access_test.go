package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

// Access requests, issue 3: A20 (the request modal) and A21 (entity-group
// delivery checked with the engineer's own Vault login).

// modalAck is a view_submission's ack: field errors keep the modal open.
type modalAck struct {
	ResponseAction string            `json:"response_action"`
	Errors         map[string]string `json:"errors"`
}

func submitRequestModal(t *testing.T, w *world, who harness.Person, v fakeslack.View, ttl string) modalAck {
	t.Helper()
	env := w.Slack.SubmitView(who.Slack, v, map[string]map[string]string{
		"scope":    {"scope": "platform-ro"},
		"ttl":      {"ttl": ttl},
		"ticket":   {"ticket": ""},
		"incident": {"incident": harness.OpenIncident},
		"reason":   {"reason": "platform-api 5xx"},
	})
	raw, latency, err := w.Slack.WaitAck(env, wait)
	if err != nil {
		t.Fatalf("the modal submission was not acked: %v", err)
	}
	if latency > ackLimit {
		t.Errorf("the modal submission was acked after %v", latency)
	}
	var a modalAck
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("ack payload %s: %v", raw, err)
		}
	}
	return a
}

func TestA20_RequestModalFieldErrorThenCreated(t *testing.T) {
	w := startA(t, "A20", harness.Options{})

	// No arguments: a modal.
	url := w.ask(harness.Carol, "request")
	v, err := w.Slack.WaitView(func(v fakeslack.View) bool {
		return v.CallbackID == "request_modal" && v.User == harness.Carol.Slack
	}, wait)
	if err != nil {
		t.Fatalf("no request modal: %v (answers: %+v)", err, w.Slack.Responses(url))
	}
	// Its picker offers the scopes Carol may request, and only those.
	var blocks []struct {
		BlockID string `json:"block_id"`
		Element struct {
			Type    string `json:"type"`
			Options []struct {
				Value string `json:"value"`
			} `json:"options"`
		} `json:"element"`
	}
	if err := json.Unmarshal(v.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	var fields, scopes []string
	for _, b := range blocks {
		fields = append(fields, b.BlockID)
		if b.BlockID == "scope" {
			for _, o := range b.Element.Options {
				scopes = append(scopes, o.Value)
			}
		}
	}
	if !slices.Equal(scopes, []string{"platform-ro"}) {
		t.Errorf("the picker offers %v, want Carol's one scope platform-ro", scopes)
	}
	for _, f := range []string{"scope", "ttl", "ticket", "incident", "reason"} {
		if !slices.Contains(fields, f) {
			t.Errorf("the modal has no %s field (fields %v)", f, fields)
		}
	}

	// A bad TTL, then one over the maximum: field errors, nothing stored.
	for _, c := range []struct{ ttl, want string }{
		{"two hours", "30m"},
		{"5h", "at most 4h"},
	} {
		a := submitRequestModal(t, w, harness.Carol, v, c.ttl)
		if a.ResponseAction != "errors" || len(a.Errors) != 1 || !strings.Contains(a.Errors["ttl"], c.want) {
			t.Errorf("TTL %q: ack %+v, want one error on the ttl field saying %q", c.ttl, a, c.want)
		}
	}
	if gs := w.grants(); len(gs) != 0 {
		t.Fatalf("a submission with a field error was stored: %+v", gs)
	}

	// Corrected: the request is created and runs.
	if a := submitRequestModal(t, w, harness.Carol, v, "1h30m"); a.ResponseAction != "" || len(a.Errors) != 0 {
		t.Fatalf("the corrected submission was refused: %+v", a)
	}
	sum := w.dm(harness.Carol, sayCardHead, sayAutoOK)
	id := grantID(t, sum.Text)
	mustContain(t, "the summary", sum.Text, "`platform-ro`", "1h30m")
	d := w.tokenDM(harness.Carol, id)
	checkGrantToken(t, w.lookupSelf(w.unwrap(d.wrapToken)), "platform-ro", 90*time.Minute, map[string]string{"grant": id,
		"user": harness.Carol.Slack, "email": harness.Carol.Email, "scope": "platform-ro", "incident": harness.OpenIncident},
		harness.Carol.Name)
	if gs := w.grants(); len(gs) != 1 {
		t.Errorf("%d grants stored, want the one corrected request", len(gs))
	}
}

// platformPath is a read/write secret path under the platform-rw policy.
const platformPath = "kv/data/platform/payments-db"

func capabilities(t *testing.T, c *api.Client) []string {
	t.Helper()
	caps, err := c.Sys().CapabilitiesSelf(platformPath)
	if err != nil {
		t.Fatalf("sys/capabilities-self on %s: %v", platformPath, err)
	}
	slices.Sort(caps)
	return caps
}

func canWrite(caps []string) bool {
	return slices.Contains(caps, "create") && slices.Contains(caps, "update") && slices.Contains(caps, "read")
}

func TestA21_EntityGroupDeliveryWithOwnLogin(t *testing.T) {
	w := startA(t, "A21", harness.Options{})
	// Alice's own Vault login (userpass here, OIDC in production), bound to
	// her entity.
	alice := w.Vault.LoginAs(t, harness.Alice.Email)
	w.addToken(alice.Token())

	if caps := capabilities(t, alice); canWrite(caps) {
		t.Fatalf("before any grant Alice already has %v on %s", caps, platformPath)
	}
	if _, err := alice.Logical().Write(platformPath, map[string]any{"data": map[string]any{"password": "fake-before"}}); err == nil {
		t.Fatal("before any grant Alice could write a platform secret")
	}

	w.AddApprovedTicket("SEC-121", harness.Alice, "platform-rw", ticketExpiry())
	r := w.outcome(w.ask(harness.Alice, "request platform-rw --ttl 1h --ticket SEC-121"))
	if !strings.Contains(r.Text, sayWaiting) {
		t.Fatalf("the request did not reach an approver:\n%s", r.Text)
	}
	id := grantID(t, r.Text)
	w.click(harness.Sam, w.card(id), "grant_approve")
	dm := w.dm(harness.Alice, id, "Log in to Vault as usual")
	mustContain(t, "the DM", dm.Text, "No token is sent through Slack", "secretbot-"+id, "`platform-rw`")

	// With her own token, she now has read/write.
	var caps []string
	if !until(wait, func() bool { caps = capabilities(t, alice); return canWrite(caps) }) {
		t.Fatalf("after the grant Alice has %v on %s, want create, read, update", caps, platformPath)
	}
	if _, err := alice.Logical().Write(platformPath, map[string]any{"data": map[string]any{"password": "fake-rotated"}}); err != nil {
		t.Errorf("with the grant Alice cannot write: %v", err)
	}
	group := "secretbot-" + id
	sec, err := w.Vault.Root.Logical().Read("identity/group/name/" + group)
	if err != nil || sec == nil {
		t.Fatalf("no Vault group %s: %v", group, err)
	}
	if pol := fmt.Sprint(sec.Data["policies"]); pol != "[platform-rw]" {
		t.Errorf("group %s carries %s, want [platform-rw]", group, pol)
	}
	if g := w.grant(id); g.State != "issued" || g.VaultGroup != group || g.TokenAccessor != "" {
		t.Errorf("stored grant %+v, want issued through %s, no accessor", g, group)
	}

	// Revoked: she lacks it again, with the very same token.
	mustContain(t, "the revoke answer", answer(t, w.Harness, w.ask(harness.Alice, "revoke "+id)).Text, "is revoked")
	if !until(wait, func() bool { caps = capabilities(t, alice); return !canWrite(caps) }) {
		t.Fatalf("after the revoke Alice still has %v on %s", caps, platformPath)
	}
	if _, err := alice.Logical().Write(platformPath, map[string]any{"data": map[string]any{"password": "fake-after"}}); err == nil {
		t.Error("after the revoke Alice could still write")
	}
	if sec, err := w.Vault.Root.Logical().Read("identity/group/name/" + group); err != nil || sec != nil {
		t.Errorf("the group %s is still there after the revoke (%v)", group, err)
	}
	if g := w.grant(id); g.State != "revoked" || g.EndReason != "done" {
		t.Errorf("stored grant state %s, end reason %q; want revoked, done", g.State, g.EndReason)
	}

	// No token travelled through Slack: Vault handed the bot none, and no
	// message carries an unwrap line.
	w.settled()
	if n := w.issuedTokens(); n != 0 {
		t.Errorf("Vault handed the bot %d tokens for an entity-group grant", n)
	}
	if dms := w.tokenDMs(); len(dms) != 0 {
		t.Errorf("a message carries a token: %s", dms[0].Text)
	}
}
