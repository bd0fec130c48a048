package access_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/policy"
)

func pendingGrant() access.Grant {
	return access.Grant{ID: "GK3D9QX2A", Requester: "UANA", Email: "ana@lumi.example", Scope: "payments-rw",
		TTL: 2 * time.Hour, Ticket: "SEC-12", State: access.StatePending, Version: 1,
		Evidence: []access.Evidence{{Kind: "jira", Status: "ok"}}, CreatedAt: t0, UpdatedAt: t0}
}

func TestTransitions(t *testing.T) {
	cfg := accesstest.Lumi()
	sc, _ := cfg.Scope("payments-rw")
	at := t0.Add(time.Minute)
	approved, err := pendingGrant().Approve(accesstest.Lee, sc, at)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := approved.Issued(access.Wrapped{TokenAccessor: "acc", WrapAccessor: "wacc", WrapExpires: at.Add(10 * time.Minute)}, "", at)
	if err != nil {
		t.Fatal(err)
	}
	type tr func(access.Grant) (access.Grant, error)
	approve := func(p policy.Person) tr {
		return func(g access.Grant) (access.Grant, error) { return g.Approve(p, sc, at) }
	}
	deny := func(p policy.Person) tr {
		return func(g access.Grant) (access.Grant, error) { return g.Deny(p, sc, "no", at) }
	}
	end := func(r string) tr { return func(g access.Grant) (access.Grant, error) { return g.End(r, at) } }
	withEvidence := func(status string) access.Grant {
		g := pendingGrant()
		g.Evidence = []access.Evidence{{Kind: "jira", Status: status}}
		return g
	}
	tests := []struct {
		name    string
		from    access.Grant
		do      tr
		want    access.State
		wantErr error
	}{
		{"approve by an approver", pendingGrant(), approve(accesstest.Lee), access.StateApproved, nil},
		{"approve by the requester", pendingGrant(), approve(accesstest.Ana), "", access.ErrSelfApproval},
		{"approve by the requester under another id, same e-mail", pendingGrant(),
			approve(policy.Person{SlackID: "UOTHER", Email: "ANA@lumi.example", Groups: []string{"security-leads"}}), "", access.ErrSelfApproval},
		{"approve by a non-approver", pendingGrant(), approve(accesstest.Bob), "", access.ErrNotApprover},
		{"approve by a deactivated approver", pendingGrant(), approve(policy.Person{SlackID: "ULEE", Deleted: true, Groups: []string{"security-leads"}}), "", access.ErrNotApprover},
		{"approve while a check is running", withEvidence("checking"), approve(accesstest.Lee), "", access.ErrWrongState},
		{"approve after a failed check", withEvidence("failed"), approve(accesstest.Lee), "", access.ErrWrongState},
		{"approve twice", approved, approve(accesstest.Kim), "", access.ErrWrongState},
		{"deny by an approver", pendingGrant(), deny(accesstest.Kim), access.StateDenied, nil},
		{"deny by the requester", pendingGrant(), deny(accesstest.Ana), "", access.ErrSelfApproval},
		{"deny after approval", approved, deny(accesstest.Kim), "", access.ErrWrongState},
		{"auto-approve", pendingGrant(), func(g access.Grant) (access.Grant, error) { return g.AutoApprove(at) }, access.StateApproved, nil},
		{"auto-approve with a check failed", withEvidence("error"), func(g access.Grant) (access.Grant, error) { return g.AutoApprove(at) }, "", access.ErrWrongState},
		{"fail pending", pendingGrant(), func(g access.Grant) (access.Grant, error) { return g.Fail("x", at) }, access.StateFailed, nil},
		{"fail issued", issued, func(g access.Grant) (access.Grant, error) { return g.Fail("x", at) }, "", access.ErrWrongState},
		{"issue pending", pendingGrant(), func(g access.Grant) (access.Grant, error) { return g.Issued(access.Wrapped{}, "", at) }, "", access.ErrWrongState},
		{"issue approved", approved, func(g access.Grant) (access.Grant, error) { return g.Issued(access.Wrapped{}, "g", at) }, access.StateIssued, nil},
		{"deliver issued", issued, func(g access.Grant) (access.Grant, error) { return g.Delivered(at) }, access.StateIssued, nil},
		{"deliver approved", approved, func(g access.Grant) (access.Grant, error) { return g.Delivered(at) }, "", access.ErrWrongState},
		{"undeliver issued", issued, func(g access.Grant) (access.Grant, error) { return g.Undelivered(at) }, access.StateApproved, nil},
		{"undeliver approved", approved, func(g access.Grant) (access.Grant, error) { return g.Undelivered(at) }, "", access.ErrWrongState},
		{"expire issued", issued, end(access.EndExpired), access.StateExpired, nil},
		{"ticket-expire issued", issued, end(access.EndTicketExpired), access.StateExpired, nil},
		{"done issued", issued, end(access.EndDone), access.StateRevoked, nil},
		{"revoke by someone", issued, end(access.RevokedBy("USEC")), access.StateRevoked, nil},
		{"cancel pending", pendingGrant(), end(access.EndDone), access.StateRevoked, nil},
		{"end denied", func() access.Grant { g, _ := pendingGrant().Deny(accesstest.Lee, sc, "x", at); return g }(), end(access.EndDone), "", access.ErrWrongState},
		{"revoke failed on issued", issued, func(g access.Grant) (access.Grant, error) { return g.RevokeFailed(access.EndExpired, "down", at) }, access.StateIssued, nil},
		{"revoke failed on approved", approved, func(g access.Grant) (access.Grant, error) { return g.RevokeFailed(access.EndExpired, "down", at) }, "", access.ErrWrongState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.do(tt.from)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if got.Version != tt.from.Version || got.State != tt.from.State {
					t.Fatalf("a refused transition changed the grant: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tt.want || got.Version != tt.from.Version+1 || !got.UpdatedAt.Equal(at) {
				t.Fatalf("got state %s version %d updated %s", got.State, got.Version, got.UpdatedAt)
			}
		})
	}

	// Details of the records the transitions keep.
	if approved.Approver != "ULEE" || !approved.DecidedAt.Equal(at) {
		t.Errorf("approved: %+v", approved)
	}
	if issued.TokenAccessor != "acc" || issued.WrapAccessor != "wacc" || !issued.ExpiresAt.Equal(at.Add(2*time.Hour)) {
		t.Errorf("issued: %+v", issued)
	}
	back, _ := issued.Undelivered(at)
	if back.TokenAccessor != "" || back.WrapAccessor != "" || !back.IssuedAt.IsZero() || !back.ExpiresAt.IsZero() {
		t.Errorf("undelivered kept the old delivery: %+v", back)
	}
	pend, _ := issued.RevokeFailed(access.EndExpired, "vault down", at)
	ended, _ := pend.End(access.EndExpired, at)
	if !pend.RevokePending || pend.LastError != "vault down" || ended.RevokePending || ended.LastError != "" || ended.EndReason != "expired" {
		t.Errorf("revoke pending then end: %+v / %+v", pend, ended)
	}
	// Transitions copy: the original's evidence is not shared.
	a2, _ := pendingGrant().AutoApprove(at)
	a2.Evidence[0].Status = "failed"
	if pendingGrant().Evidence[0].Status != "ok" {
		t.Error("evidence shared")
	}
}

func TestExpiry(t *testing.T) {
	g := pendingGrant()
	if got := g.Expiry(t0); !got.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("no cap: %s", got)
	}
	g.NotAfter = t0.Add(time.Hour)
	if got := g.Expiry(t0); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("capped: %s", got)
	}
	g.NotAfter = t0.Add(3 * time.Hour)
	if got := g.Expiry(t0); !got.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("cap later than ttl: %s", got)
	}
	g.IssuedAt, g.ExpiresAt, g.NotAfter = t0, t0.Add(time.Hour), t0.Add(time.Hour)
	if g.ExpiryReason() != access.EndTicketExpired {
		t.Errorf("reason %s", g.ExpiryReason())
	}
	g.ExpiresAt, g.NotAfter = t0.Add(2*time.Hour), t0.Add(5*time.Hour)
	if g.ExpiryReason() != access.EndExpired {
		t.Errorf("reason %s", g.ExpiryReason())
	}
}

func TestGrantID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := access.NewGrantID()
		if n, ok := access.NormalizeGrantID(strings.ToLower(id)); !ok || n != id || len(id) != 9 {
			t.Fatalf("id %q not valid", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "G123", "GK3D9QX2AA", "XK3D9QX2A", "GK3D9QX2I", "G<@U1>abc"} {
		if _, ok := access.NormalizeGrantID(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestWrappedNeverPrintsTheToken(t *testing.T) {
	const tok = "hvs.CAESIsecretwrappingtoken0123456789"
	w := access.Wrapped{WrapToken: tok, WrapAccessor: "wacc", TokenAccessor: "acc", WrapExpires: t0}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("issued", "wrapped", w)
	j, _ := json.Marshal(w)
	jp, _ := json.Marshal(&w)
	outs := []string{fmt.Sprint(w), fmt.Sprintf("%v %+v %#v %s %q", w, w, w, w, w), fmt.Sprintf("%v", &w),
		fmt.Sprint(fmt.Errorf("x: %v", w)), logs.String(), string(j), string(jp)}
	for _, o := range outs {
		if strings.Contains(o, tok) || strings.Contains(o, "secretwrapping") {
			t.Errorf("token printed: %s", o)
		}
		if !strings.Contains(o, "wacc") && !strings.Contains(o, "wrap") {
			t.Errorf("accessor not shown: %s", o)
		}
	}
}

func TestBlocks(t *testing.T) {
	b := access.Blocks(
		access.Section("hi *there*"),
		access.Context("a", "b"),
		access.Actions("bid", access.Button{Text: "Approve", ActionID: "grant_approve", Value: "G1", Style: "primary"},
			access.Button{Text: "Deny", ActionID: "grant_deny", Value: "G1", Style: "weird"}),
	)
	var got []map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0]["type"] != "section" || got[1]["type"] != "context" || got[2]["block_id"] != "bid" {
		t.Fatalf("%s", b)
	}
	els := got[2]["elements"].([]any)
	b0, b1 := els[0].(map[string]any), els[1].(map[string]any)
	if b0["action_id"] != "grant_approve" || b0["value"] != "G1" || b0["style"] != "primary" || b1["style"] != nil {
		t.Fatalf("buttons: %s", b)
	}
	long := access.Section(strings.Repeat("x", 5000))
	if n := len([]rune(long["text"].(map[string]any)["text"].(string))); n > 3000 {
		t.Fatalf("section text %d chars", n)
	}
	if got := access.Escape("<!channel> & <@U1>"); got != "&lt;!channel&gt; &amp; &lt;@U1&gt;" {
		t.Fatalf("escape: %s", got)
	}
	if got := access.Code("a`b\nc<d>"); got != "`a b c&lt;d&gt;`" {
		t.Fatalf("code: %s", got)
	}
}
