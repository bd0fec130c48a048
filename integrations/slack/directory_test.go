package slack

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSlackIDByEmail(t *testing.T) {
	f := newFakeSlack(t)
	seedDirectory(f)
	c := f.client(t)
	ctx := context.Background()

	id, err := c.SlackIDByEmail(ctx, " ada@lumi.example ")
	if err != nil || id != "U1" {
		t.Fatalf("SlackIDByEmail(ada) = %q, %v", id, err)
	}
	if got := f.callsTo("users.lookupByEmail")[0].Form.Get("email"); got != "ada@lumi.example" {
		t.Errorf("email sent = %q", got)
	}
	for _, email := range []string{"nobody@lumi.example", "dee@lumi.example", "not-an-address", "Ada <ada@lumi.example>"} {
		id, err := c.SlackIDByEmail(ctx, email)
		if !errors.Is(err, ErrUserNotFound) || errors.Is(err, ErrLookupFailed) || id != "" {
			t.Errorf("SlackIDByEmail(%q) = %q, %v; want ErrUserNotFound only", email, id, err)
		}
	}
	if n := len(f.callsTo("users.lookupByEmail")); n != 3 {
		t.Errorf("%d lookups, want 3 (invalid addresses are not sent)", n)
	}
}

func TestSlackIDByEmailFailsClosed(t *testing.T) {
	tests := []struct {
		name string
		r    reply
		text string
	}{
		{"missing scope", reply{Body: `{"ok":false,"error":"missing_scope","needed":"users:read.email"}`}, "missing_scope (needs scope users:read.email)"},
		{"server error", reply{Status: 503}, "HTTP 503"},
		{"rate limited", reply{Status: 429, Header: map[string]string{"Retry-After": "4"}}, "retry after 4s"},
		{"garbage", reply{Body: "<html>"}, "cannot reach Slack"},
		{"invalid auth", reply{Body: `{"ok":false,"error":"invalid_auth"}`}, "invalid_auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t)
			seedDirectory(f)
			f.set("users.lookupByEmail", tt.r)
			id, err := f.client(t).SlackIDByEmail(context.Background(), "ada@lumi.example")
			if !errors.Is(err, ErrLookupFailed) || errors.Is(err, ErrUserNotFound) || id != "" || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("= %q, %v; want ErrLookupFailed mentioning %q", id, err, tt.text)
			}
			assertNoToken(t, err.Error(), testBot, testApp)
		})
	}
}

func TestGroupMembers(t *testing.T) {
	f := newFakeSlack(t)
	seedDirectory(f)
	c := f.client(t)
	ctx := context.Background()
	for _, g := range []string{"S1", "platform-security", "@platform-security", "Platform-Security"} {
		got, err := c.GroupMembers(ctx, g)
		if err != nil || !slices.Equal(got, []string{"U1", "U2"}) {
			t.Errorf("GroupMembers(%q) = %v, %v", g, got, err)
		}
	}
	// The caller's slice is its own.
	got, _ := c.GroupMembers(ctx, "S1")
	got[0] = "UX"
	if again, _ := c.GroupMembers(ctx, "S1"); again[0] != "U1" {
		t.Error("GroupMembers returned the cache's slice")
	}
	if n := len(f.callsTo("usergroups.list")); n != 1 {
		t.Errorf("usergroups.list called %d times, want 1 (shared cache)", n)
	}
	if _, err := c.GroupMembers(ctx, "no-such-group"); !errors.Is(err, ErrGroupNotFound) || errors.Is(err, ErrLookupFailed) {
		t.Errorf("unknown group: %v", err)
	}
	if _, err := c.GroupMembers(ctx, ""); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("empty group: %v", err)
	}

	f2 := newFakeSlack(t)
	f2.set("usergroups.list", reply{Body: `{"ok":false,"error":"missing_scope","needed":"usergroups:read"}`})
	if _, err := f2.client(t).GroupMembers(ctx, "S1"); !errors.Is(err, ErrLookupFailed) || !strings.Contains(err.Error(), "missing_scope") {
		t.Errorf("failed list: %v", err)
	}
}

func TestRemoveFromGroup(t *testing.T) {
	f := newFakeSlack(t)
	seedDirectory(f)
	f.addGroup("S5", "payments-eligible", "U1", "U2", "U3")
	c := f.client(t)
	ctx := context.Background()

	// Warm the cache, so the removal must clear it.
	if m, _ := c.GroupMembers(ctx, "S5"); len(m) != 3 {
		t.Fatalf("members = %v", m)
	}
	if err := c.RemoveFromGroup(ctx, "S5", "U2"); err != nil {
		t.Fatal(err)
	}
	if got := f.groupUsers("S5"); !slices.Equal(got, []string{"U1", "U3"}) {
		t.Errorf("group now %v, want [U1 U3]", got)
	}
	up := f.callsTo("usergroups.users.update")
	if len(up) != 1 || up[0].Form.Get("usergroup") != "S5" || up[0].Form.Get("users") != "U1,U3" {
		t.Fatalf("update calls = %+v", up)
	}
	if ls := f.callsTo("usergroups.users.list"); len(ls) != 1 || ls[0].Form.Get("usergroup") != "S5" {
		t.Errorf("members not read fresh before the update: %+v", ls)
	}
	if m, _ := c.GroupMembers(ctx, "S5"); !slices.Equal(m, []string{"U1", "U3"}) {
		t.Errorf("GroupMembers after removal = %v (stale cache)", m)
	}
	if p, _ := c.Person(ctx, "U2"); slices.Contains(p.Groups, "S5") {
		t.Errorf("Person still in the group after removal: %v", p.Groups)
	}

	// Not a member: nothing to do.
	if err := c.RemoveFromGroup(ctx, "S5", "U2"); err != nil {
		t.Errorf("second removal: %v", err)
	}
	if n := len(f.callsTo("usergroups.users.update")); n != 1 {
		t.Errorf("%d updates, want 1", n)
	}

	// By handle.
	if err := c.RemoveFromGroup(ctx, "payments-eligible", "U3"); err != nil {
		t.Fatal(err)
	}
	if got := f.groupUsers("S5"); !slices.Equal(got, []string{"U1"}) {
		t.Errorf("group now %v", got)
	}

	// The last member stays: Slack forbids an empty group.
	err := c.RemoveFromGroup(ctx, "S5", "U1")
	if !errors.Is(err, ErrLastMember) {
		t.Fatalf("last member: %v", err)
	}
	if got := f.groupUsers("S5"); !slices.Equal(got, []string{"U1"}) {
		t.Errorf("group now %v", got)
	}
	if n := len(f.callsTo("usergroups.users.update")); n != 2 {
		t.Errorf("%d updates, want 2", n)
	}

	if err := c.RemoveFromGroup(ctx, "S999", "U1"); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("unknown group id: %v", err)
	}
	if err := c.RemoveFromGroup(ctx, "no-such-handle", "U1"); !errors.Is(err, ErrGroupNotFound) {
		t.Errorf("unknown handle: %v", err)
	}
	var de *DeliveryError
	if err := c.RemoveFromGroup(ctx, "S5", ""); !errors.As(err, &de) || de.Code != "invalid_message" {
		t.Errorf("no user: %v", err)
	}
}

func TestRemoveFromGroupErrors(t *testing.T) {
	tests := []struct {
		name, method string
		r            reply
		op, code     string
		retryable    bool
	}{
		{"list missing scope", "usergroups.users.list", reply{Body: `{"ok":false,"error":"missing_scope","needed":"usergroups:read"}`}, "usergroups.users.list", "missing_scope", false},
		{"update missing scope", "usergroups.users.update", reply{Body: `{"ok":false,"error":"missing_scope","needed":"usergroups:write"}`}, "usergroups.users.update", "missing_scope", false},
		{"update not allowed", "usergroups.users.update", reply{Body: `{"ok":false,"error":"permission_denied"}`}, "usergroups.users.update", "permission_denied", false},
		{"update rate limited", "usergroups.users.update", reply{Status: 429, Header: map[string]string{"Retry-After": "2"}}, "usergroups.users.update", "rate_limited", true},
		{"update 502", "usergroups.users.update", reply{Status: 502}, "usergroups.users.update", "http_502", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t)
			seedDirectory(f)
			f.set(tt.method, tt.r)
			err := f.client(t).RemoveFromGroup(context.Background(), "S1", "U2")
			var de *DeliveryError
			if !errors.As(err, &de) || de.Op != tt.op || de.Code != tt.code || de.Retryable != tt.retryable {
				t.Fatalf("err = %v, want %s %s retryable %v", err, tt.op, tt.code, tt.retryable)
			}
			assertNoToken(t, err.Error(), testBot, testApp)
			if got := f.groupUsers("S1"); !slices.Equal(got, []string{"U1", "U2"}) {
				t.Errorf("group changed: %v", got)
			}
		})
	}
}
