package vaulttest

import (
	"fmt"
	"testing"

	"github.com/hashicorp/vault/api"
)

// personRole is a test-only token role that binds tokens to a person's
// entity, standing in for the person's own (MFA) login.
const personRole = "vaulttest-person"

// AddPerson creates a Vault entity for a person, with an alias named by
// their e-mail on EntityMount (what secretbot looks up for entity-group
// delivery), and returns the entity id.
func (v *Vault) AddPerson(t testing.TB, email string) string {
	t.Helper()
	sec, err := v.Root.Logical().Write("identity/entity", map[string]any{"name": email})
	if err != nil {
		t.Fatalf("vaulttest: create entity: %v", err)
	}
	id := sec.Data["id"].(string)
	for _, mount := range []string{EntityMount, "token/"} {
		acc, err := v.mountAccessor(mount)
		if err != nil {
			t.Fatalf("vaulttest: %v", err)
		}
		if _, err := v.Root.Logical().Write("identity/entity-alias", map[string]any{
			"name": email, "canonical_id": id, "mount_accessor": acc}); err != nil {
			t.Fatalf("vaulttest: create alias on %s: %v", mount, err)
		}
	}
	return id
}

// LoginAs returns a client whose token belongs to the person's entity (see
// AddPerson), so it carries the policies of the groups the entity is in.
func (v *Vault) LoginAs(t testing.TB, email string) *api.Client {
	t.Helper()
	v.personRole.Do(func() {
		_, v.personRoleErr = v.Root.Logical().Write("auth/token/roles/"+personRole, map[string]any{
			"allowed_entity_aliases": []string{"*"}, "allowed_policies": []string{"default"}, "orphan": true})
	})
	if v.personRoleErr != nil {
		t.Fatalf("vaulttest: person token role: %v", v.personRoleErr)
	}
	sec, err := v.Root.Logical().Write("auth/token/create/"+personRole, map[string]any{
		"entity_alias": email, "policies": []string{"default"}, "ttl": "1h"})
	if err != nil {
		t.Fatalf("vaulttest: login as %s: %v", email, err)
	}
	return v.Client(t, sec.Auth.ClientToken)
}

func (v *Vault) mountAccessor(mount string) (string, error) {
	auths, err := v.Root.Sys().ListAuth()
	if err != nil {
		return "", err
	}
	m, ok := auths[mount]
	if !ok {
		return "", fmt.Errorf("no auth mount %s", mount)
	}
	return m.Accessor, nil
}
