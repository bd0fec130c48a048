package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIdentity serves sys/auth and the identity endpoints the bot calls, in
// the JSON shapes of Vault 1.21 (checked against its identity store and the
// in-process Vault of the e2e tests). It enforces what
// deploy/vault/secretbot-bot.hcl allows on identity/group.
type fakeIdentity struct {
	mu       sync.Mutex
	mounts   map[string]string         // auth mount path -> accessor
	entities map[string]string         // "<accessor>|<alias name>" -> entity id
	disabled map[string]bool           // entity id -> disabled
	groups   map[string]map[string]any // by name
	writes   []map[string]any          // identity/group bodies
	seq      int
	allowed  []string // grant policies the bot policy allows
}

func newFakeIdentity() *fakeIdentity {
	return &fakeIdentity{
		mounts:   map[string]string{"token/": "auth_token_5b2f1a3c", "oidc/": "auth_oidc_8d41e0c7", "approle/": "auth_approle_1f0e9a2b"},
		entities: map[string]string{},
		disabled: map[string]bool{},
		groups:   map[string]map[string]any{},
		allowed:  []string{"platform-ro", "platform-rw"},
	}
}

// addPerson gives email an entity with an alias on mount; returns its id.
func (fi *fakeIdentity) addPerson(mount, email string) string {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.seq++
	id := fmt.Sprintf("6f1c2b9e-0000-4000-8000-%012d", fi.seq)
	fi.entities[fi.mounts[mount]+"|"+strings.ToLower(email)] = id
	return id
}

func (fi *fakeIdentity) group(name string) map[string]any {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return fi.groups[name]
}

func (fi *fakeIdentity) groupWrites() []map[string]any {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return slices.Clone(fi.writes)
}

func permissionDenied(w http.ResponseWriter) {
	errReply(w, http.StatusForbidden, "1 error occurred:\n\t* permission denied\n\n")
}

func (fi *fakeIdentity) serve(w http.ResponseWriter, r *http.Request, p string, body map[string]any) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	switch {
	case p == "sys/auth" && r.Method == http.MethodGet:
		data := map[string]any{}
		for m, acc := range fi.mounts {
			typ := strings.TrimSuffix(m, "/")
			data[m] = map[string]any{"accessor": acc, "type": typ, "description": "", "local": false, "seal_wrap": false,
				"external_entropy_access": false, "options": nil, "uuid": "0d8f3a6e-" + typ, "plugin_version": "",
				"running_plugin_version": "v1.21.4+builtin.vault", "running_sha256": "", "deprecation_status": "supported",
				"config": map[string]any{"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false, "token_type": "default-service"}}
		}
		out := envelope(data, nil, nil)
		for k, v := range data { // sys/auth also repeats the mounts at the top level
			out[k] = v
		}
		reply(w, http.StatusOK, out)
	case p == "identity/lookup/entity" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		id, ok := fi.entities[fmt.Sprint(body["alias_mount_accessor"])+"|"+strings.ToLower(fmt.Sprint(body["alias_name"]))]
		if !ok {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		reply(w, http.StatusOK, envelope(map[string]any{
			"id": id, "name": "entity_" + id[:8], "disabled": fi.disabled[id], "policies": nil, "metadata": nil,
			"aliases": []any{map[string]any{"canonical_id": id, "id": "alias-" + id, "mount_accessor": body["alias_mount_accessor"],
				"mount_type": "oidc", "mount_path": "auth/oidc/", "name": body["alias_name"]}},
			"direct_group_ids": []any{}, "group_ids": []any{}, "inherited_group_ids": []any{}, "merged_entity_ids": nil,
			"namespace_id": "root", "creation_time": "2026-02-01T10:00:00Z", "last_update_time": "2026-02-01T10:00:00Z",
		}, nil, nil))
	case p == "identity/group" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		fi.writes = append(fi.writes, body)
		// allowed_parameters of secretbot-bot.hcl.
		for k := range body {
			if !slices.Contains([]string{"name", "type", "policies", "member_entity_ids", "metadata"}, k) {
				permissionDenied(w)
				return
			}
		}
		name := fmt.Sprint(body["name"])
		if ok, _ := path.Match("secretbot-*", name); !ok || body["type"] != "internal" {
			permissionDenied(w)
			return
		}
		for _, pol := range anyStrings(body["policies"]) {
			if !slices.Contains(fi.allowed, pol) {
				permissionDenied(w)
				return
			}
		}
		g, exists := fi.groups[name]
		if !exists {
			fi.seq++
			g = map[string]any{"id": fmt.Sprintf("9a7e5c3d-0000-4000-8000-%012d", fi.seq), "name": name, "type": "internal",
				"parent_group_ids": nil, "member_group_ids": nil, "alias": map[string]any{}, "namespace_id": "root",
				"creation_time": time.Now().UTC().Format(time.RFC3339Nano), "modify_index": 0, "metadata": nil, "policies": nil, "member_entity_ids": nil}
			fi.groups[name] = g
		}
		g["policies"] = anyStrings(body["policies"])
		g["member_entity_ids"] = anyStrings(body["member_entity_ids"])
		if md, ok := body["metadata"].(map[string]any); ok {
			g["metadata"] = md
		}
		g["last_update_time"] = time.Now().UTC().Format(time.RFC3339Nano)
		g["modify_index"] = g["modify_index"].(int) + 1
		if exists {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		reply(w, http.StatusOK, envelope(map[string]any{"id": g["id"], "name": name}, nil, nil))
	case strings.HasPrefix(p, "identity/group/name/"):
		name := strings.TrimPrefix(p, "identity/group/name/")
		if ok, _ := path.Match("secretbot-*", name); !ok {
			permissionDenied(w)
			return
		}
		switch r.Method {
		case http.MethodGet:
			g, ok := fi.groups[name]
			if !ok {
				errReply(w, http.StatusNotFound)
				return
			}
			reply(w, http.StatusOK, envelope(g, nil, nil))
		case http.MethodDelete:
			delete(fi.groups, name)
			w.WriteHeader(http.StatusNoContent)
		default:
			permissionDenied(w)
		}
	default:
		permissionDenied(w)
	}
}

func TestJoinGroup(t *testing.T) {
	f := newFakeVault(t)
	c := loggedIn(t, f)
	ctx := context.Background()
	alice := f.ident.addPerson("oidc/", "alice@lumi.test")
	f.ident.addPerson("approle/", "bob@lumi.test") // wrong mount: not found on oidc/

	meta := map[string]string{"grant": "GK3D9QX2A", "user": "U123", "email": "alice@lumi.test", "scope": "platform-rw"}
	if err := c.JoinGroup(ctx, "secretbot-GK3D9QX2A", []string{"platform-rw"}, "Alice@lumi.test", meta); err != nil {
		t.Fatal(err)
	}
	g := f.ident.group("secretbot-GK3D9QX2A")
	if g == nil || fmt.Sprint(g["member_entity_ids"]) != "["+alice+"]" || fmt.Sprint(g["policies"]) != "[platform-rw]" ||
		fmt.Sprint(g["metadata"]) != "map[email:alice@lumi.test grant:GK3D9QX2A scope:platform-rw user:U123]" || g["type"] != "internal" {
		t.Fatalf("group = %v", g)
	}
	// The lookup went to the oidc/ mount's accessor, with the bot's token.
	var lookup fakeReq
	for _, r := range f.requests() {
		if r.Path == "identity/lookup/entity" {
			lookup = r
		}
		if strings.HasPrefix(r.Path, "identity/") && r.Token == "" {
			t.Errorf("%s without a token", r.Path)
		}
	}
	if lookup.Body["alias_mount_accessor"] != "auth_oidc_8d41e0c7" || lookup.Body["alias_name"] != "Alice@lumi.test" || lookup.Method != http.MethodPut {
		t.Errorf("lookup = %+v", lookup)
	}

	// Idempotent: a retry (e.g. after a lost reply) succeeds and leaves one member.
	if err := c.JoinGroup(ctx, "secretbot-GK3D9QX2A", []string{"platform-rw"}, "alice@lumi.test", meta); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if g := f.ident.group("secretbot-GK3D9QX2A"); fmt.Sprint(g["member_entity_ids"]) != "["+alice+"]" {
		t.Errorf("after retry: %v", g)
	}
	if ok, err := c.GroupHasMember(ctx, "secretbot-GK3D9QX2A", "alice@lumi.test"); !ok || err != nil {
		t.Errorf("GroupHasMember alice = %v, %v", ok, err)
	}

	// Someone else's group is not taken over.
	carol := f.ident.addPerson("oidc/", "carol@lumi.test")
	writes := len(f.ident.groupWrites())
	err := c.JoinGroup(ctx, "secretbot-GK3D9QX2A", []string{"platform-rw"}, "carol@lumi.test", nil)
	if !errors.Is(err, ErrGroupTaken) || !strings.Contains(err.Error(), "exists with another member") {
		t.Errorf("carol joining alice's group: %v", err)
	}
	if len(f.ident.groupWrites()) != writes {
		t.Error("the group was written")
	}
	if ok, err := c.GroupHasMember(ctx, "secretbot-GK3D9QX2A", "carol@lumi.test"); ok || err != nil {
		t.Errorf("GroupHasMember carol (%s) = %v, %v", carol, ok, err)
	}

	// Nobody without a Vault identity on the mount.
	err = c.JoinGroup(ctx, "secretbot-G2", []string{"platform-rw"}, "bob@lumi.test", nil)
	if !errors.Is(err, ErrNoEntity) || err.Error() != "vault: lookup entity: no Vault identity for bob@lumi.test on oidc/: they must have logged in to Vault once" {
		t.Errorf("bob: %v", err)
	}
	if f.ident.group("secretbot-G2") != nil {
		t.Error("a group was made for bob")
	}
	if ok, err := c.GroupHasMember(ctx, "secretbot-GK3D9QX2A", "bob@lumi.test"); ok || err != nil {
		t.Errorf("GroupHasMember bob = %v, %v", ok, err)
	}
	if ok, err := c.GroupHasMember(ctx, "secretbot-nope", "alice@lumi.test"); ok || err != nil {
		t.Errorf("GroupHasMember of a missing group = %v, %v", ok, err)
	}

	// Delete, and delete again.
	if err := c.DeleteGroup(ctx, "secretbot-GK3D9QX2A"); err != nil {
		t.Fatal(err)
	}
	if f.ident.group("secretbot-GK3D9QX2A") != nil {
		t.Error("group still there")
	}
	if err := c.DeleteGroup(ctx, "secretbot-GK3D9QX2A"); err != nil {
		t.Errorf("deleting a deleted group: %v", err)
	}
	if ok, err := c.GroupHasMember(ctx, "secretbot-GK3D9QX2A", "alice@lumi.test"); ok || err != nil {
		t.Errorf("GroupHasMember after delete = %v, %v", ok, err)
	}
}

func TestJoinGroupRefuses(t *testing.T) {
	tests := []struct {
		name     string
		group    string
		policies []string
		email    string
		setup    func(f *fakeVault, c *Client)
		wantErr  error
		want     string
	}{
		{name: "empty group", group: "", policies: []string{"platform-rw"}, email: "alice@lumi.test", want: "empty group name"},
		{name: "path in name", group: "secretbot-x/../admins", policies: []string{"platform-rw"}, email: "alice@lumi.test", want: "not a usable group name"},
		{name: "no policies", group: "secretbot-G1", email: "alice@lumi.test", want: "no policies"},
		{name: "no email", group: "secretbot-G1", policies: []string{"platform-rw"}, email: " ", want: "empty e-mail"},
		{name: "name outside the policy", group: "admins", policies: []string{"platform-rw"}, email: "alice@lumi.test",
			wantErr: ErrPermissionDenied, want: "HTTP 403: permission denied"},
		{name: "policy outside the grant policies", group: "secretbot-G1", policies: []string{"secretbot-bot"}, email: "alice@lumi.test",
			wantErr: ErrPermissionDenied, want: "create group secretbot-G1: HTTP 403: permission denied"},
		{name: "no such auth mount", group: "secretbot-G1", policies: []string{"platform-rw"}, email: "alice@lumi.test",
			setup:   func(_ *fakeVault, c *Client) { c.cfg.Vault.EntityAuthMount = "okta" },
			wantErr: ErrNotFound, want: "no auth mount okta/ in Vault (vault.entity_auth_mount)"},
		{name: "mount not configured", group: "secretbot-G1", policies: []string{"platform-rw"}, email: "alice@lumi.test",
			setup: func(_ *fakeVault, c *Client) { c.cfg.Vault.EntityAuthMount = "" }, want: "vault.entity_auth_mount is not configured"},
		{name: "disabled entity", group: "secretbot-G1", policies: []string{"platform-rw"}, email: "alice@lumi.test",
			setup: func(f *fakeVault, _ *Client) {
				f.ident.mu.Lock()
				defer f.ident.mu.Unlock()
				for _, id := range f.ident.entities {
					f.ident.disabled[id] = true
				}
			},
			wantErr: ErrNoEntity, want: "is disabled"},
		{name: "sys/auth refused", group: "secretbot-G1", policies: []string{"platform-rw"}, email: "alice@lumi.test",
			setup:   func(f *fakeVault, _ *Client) { f.status["sys/auth"] = http.StatusForbidden },
			wantErr: ErrPermissionDenied, want: "list auth mounts: HTTP 403"},
		{name: "vault down", group: "secretbot-G1", policies: []string{"platform-rw"}, email: "alice@lumi.test",
			setup:   func(f *fakeVault, _ *Client) { f.status["identity/group"] = http.StatusServiceUnavailable },
			wantErr: ErrUnavailable, want: "HTTP 503"},
		{name: "group read fails", group: "secretbot-G1", policies: []string{"platform-rw"}, email: "alice@lumi.test",
			setup: func(f *fakeVault, _ *Client) {
				f.status["identity/group/name/secretbot-G1"] = http.StatusInternalServerError
			},
			wantErr: ErrUnavailable, want: "read group secretbot-G1: HTTP 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVault(t)
			c := loggedIn(t, f)
			f.ident.addPerson("oidc/", "alice@lumi.test")
			if tt.setup != nil {
				f.mu.Lock()
				tt.setup(f, c)
				f.mu.Unlock()
			}
			err := c.JoinGroup(context.Background(), tt.group, tt.policies, tt.email, map[string]string{"grant": "G1"})
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want %q", err, tt.want)
			}
			assertNoCredential(t, "error", err.Error())
		})
	}
}

func TestDeleteGroupErrors(t *testing.T) {
	f := newFakeVault(t)
	c := loggedIn(t, f)
	ctx := context.Background()
	if err := c.DeleteGroup(ctx, "a/b"); err == nil {
		t.Error("a path was accepted as a group name")
	}
	err := c.DeleteGroup(ctx, "admins") // outside secretbot-*: the policy refuses
	if !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("admins: %v", err)
	}
	f.mu.Lock()
	f.status["identity/group/name/secretbot-G1"] = http.StatusServiceUnavailable
	f.mu.Unlock()
	if err := c.DeleteGroup(ctx, "secretbot-G1"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("503: %v", err)
	}
	if _, err := c.GroupHasMember(ctx, "secretbot-G1", "alice@lumi.test"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("GroupHasMember 503: %v", err)
	}
}

func TestAccessorAlive(t *testing.T) {
	f := newFakeVault(t)
	c := loggedIn(t, f)
	ctx := context.Background()
	wt, err := c.IssueWrapped(ctx, IssueRequest{Policies: []string{"platform-ro"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.AccessorAlive(ctx, wt.WrapAccessor); !ok || err != nil {
		t.Errorf("unused wrapping token: %v, %v", ok, err)
	}
	if err := c.RevokeAccessor(ctx, wt.WrapAccessor); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.AccessorAlive(ctx, wt.WrapAccessor); ok || err != nil {
		t.Errorf("gone wrapping token: %v, %v", ok, err)
	}
	// Just unwrapped: Vault still finds it, with num_uses -1, for a moment.
	f.mu.Lock()
	f.addToken(&fakeToken{accessor: "acc-unwrapped", policies: []string{"response-wrapping"}, ttl: 600, orphan: true, numUses: -1})
	f.mu.Unlock()
	if ok, err := c.AccessorAlive(ctx, "acc-unwrapped"); ok || err != nil {
		t.Errorf("wrapping token being revoked: %v, %v", ok, err)
	}
	if _, err := c.AccessorAlive(ctx, ""); err == nil {
		t.Error("empty accessor accepted")
	}
	f.mu.Lock()
	f.status["auth/token/lookup-accessor"] = http.StatusServiceUnavailable
	f.mu.Unlock()
	if ok, err := c.AccessorAlive(ctx, wt.TokenAccessor); ok || !errors.Is(err, ErrUnavailable) {
		t.Errorf("vault down: %v, %v", ok, err)
	}
}
