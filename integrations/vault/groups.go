package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/secretbot/secretbot/internal/crash"
)

// Entity-group delivery: the requester's own Vault entity (found through its
// alias on vault.entity_auth_mount, named by e-mail) is made the only member
// of a per-grant internal identity group that carries the scope's policies.
// Deleting the group ends the grant. Every call here is allowed by
// deploy/vault/secretbot-bot.hcl: read sys/auth, update
// identity/lookup/entity, create/update identity/group (name, type,
// policies, member_entity_ids, metadata only) and read/delete
// identity/group/name/secretbot-*.

var (
	// ErrNoEntity: the person has no Vault identity (entity alias) on
	// vault.entity_auth_mount; they must log in to Vault once first.
	ErrNoEntity = errors.New("no Vault identity")
	// ErrGroupTaken: a group with the grant's name exists with other members;
	// the bot does not change it.
	ErrGroupTaken = errors.New("group exists with other members")
)

// groupType is the only kind of group the bot makes (and its policy allows).
const groupType = "internal"

// JoinGroup makes the person whose entity alias on vault.entity_auth_mount is
// email the only member of the internal identity group named group, which
// carries policies and meta. Policies from group membership apply to the
// person's existing tokens at once. Idempotent: when the group already exists
// with that person as its only member it is written again (same policies and
// metadata), so a retry after a lost reply succeeds.
//
// Errors: an *Error with ErrNoEntity ("no Vault identity for <email> on
// <mount>: they must have logged in to Vault once"), ErrGroupTaken (the group
// exists with other members: nothing is changed), ErrNotFound (the auth mount
// does not exist), ErrPermissionDenied (the policy refuses: a group name not
// secretbot-*, or a policy outside the grant policies), ErrUnavailable, or a
// context error; plain errors for invalid arguments.
func (c *Client) JoinGroup(ctx context.Context, group string, policies []string, email string, meta map[string]string) error {
	if err := validGroupName(group); err != nil {
		return err
	}
	if len(policies) == 0 {
		return errors.New("vault: join group: no policies")
	}
	if strings.TrimSpace(email) == "" {
		return errors.New("vault: join group: empty e-mail")
	}
	entityID, err := c.EntityID(ctx, email)
	if err != nil {
		return err
	}
	g, err := c.readGroup(ctx, group)
	if err != nil {
		return err
	}
	if g != nil {
		if g.typ != "" && g.typ != groupType {
			return &Error{Op: "join group " + group, Detail: fmt.Sprintf("group %s exists and is of type %s, not internal", group, g.typ), kind: ErrGroupTaken}
		}
		for _, m := range g.members {
			if m != entityID {
				return &Error{Op: "join group " + group,
					Detail: fmt.Sprintf("group %s exists with another member (entity %s): not changing it", group, m), kind: ErrGroupTaken}
			}
		}
	}
	data := map[string]any{
		"name":              group,
		"type":              groupType,
		"policies":          slices.Clone(policies),
		"member_entity_ids": []string{entityID},
	}
	if len(meta) > 0 {
		data["metadata"] = meta
	}
	crash.Point("vault.join_group.before")
	_, err = c.api.Logical().WriteWithContext(ctx, "identity/group", data)
	crash.Point("vault.join_group.after")
	if err != nil {
		return c.fail(ctx, "create group "+group, err)
	}
	return nil
}

// DeleteGroup deletes the identity group named group, which takes its
// policies away from its members at once. A group already gone is success.
//
// Errors: *Error with ErrPermissionDenied, ErrUnavailable, or a context error.
func (c *Client) DeleteGroup(ctx context.Context, group string) error {
	if err := validGroupName(group); err != nil {
		return err
	}
	if err := c.ensureToken(ctx); err != nil {
		return err
	}
	crash.Point("vault.delete_group.before")
	_, err := c.api.Logical().DeleteWithContext(ctx, groupPath(group))
	crash.Point("vault.delete_group.after")
	if err == nil || isStatus(err, http.StatusNotFound) {
		return nil
	}
	return c.fail(ctx, "delete group "+group, err)
}

// GroupHasMember reports whether the identity group named group exists and
// has, among its direct members, the entity of the person whose alias on
// vault.entity_auth_mount is email (the drift check of entity-group grants).
// A missing group, or a person without a Vault identity, is false.
//
// Errors: *Error with ErrNotFound (the auth mount does not exist),
// ErrPermissionDenied, ErrUnavailable, or a context error.
func (c *Client) GroupHasMember(ctx context.Context, group, email string) (bool, error) {
	if err := validGroupName(group); err != nil {
		return false, err
	}
	g, err := c.readGroup(ctx, group)
	if err != nil || g == nil {
		return false, err
	}
	entityID, err := c.EntityID(ctx, email)
	if errors.Is(err, ErrNoEntity) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return slices.Contains(g.members, entityID), nil
}

// AccessorAlive reports whether a token with this accessor still exists (a
// wrapping token's accessor: false once it was unwrapped or expired).
//
// Errors: those of LookupAccessor other than ErrNotFound.
func (c *Client) AccessorAlive(ctx context.Context, accessor string) (bool, error) {
	_, err := c.LookupAccessor(ctx, accessor)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}

// EntityID returns the id of the Vault entity whose alias on
// vault.entity_auth_mount is named email.
//
// Errors: *Error with ErrNoEntity, ErrNotFound (the auth mount does not
// exist), ErrPermissionDenied, ErrUnavailable, or a context error.
func (c *Client) EntityID(ctx context.Context, email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", errors.New("vault: lookup entity: empty e-mail")
	}
	mount, accessor, err := c.entityMountAccessor(ctx)
	if err != nil {
		return "", err
	}
	sec, err := c.api.Logical().WriteWithContext(ctx, "identity/lookup/entity", map[string]any{
		"alias_name":           email,
		"alias_mount_accessor": accessor,
	})
	if err != nil {
		return "", c.fail(ctx, "lookup entity", err)
	}
	// Vault answers 204 (no secret) when no alias matches.
	if sec == nil || sec.Data == nil || str(sec.Data["id"]) == "" {
		return "", &Error{Op: "lookup entity",
			Detail: fmt.Sprintf("no Vault identity for %s on %s: they must have logged in to Vault once", email, mount), kind: ErrNoEntity}
	}
	if boolean(sec.Data["disabled"]) {
		return "", &Error{Op: "lookup entity",
			Detail: fmt.Sprintf("the Vault identity of %s on %s is disabled", email, mount), kind: ErrNoEntity}
	}
	return str(sec.Data["id"]), nil
}

// entityMountAccessor finds the accessor of vault.entity_auth_mount in
// sys/auth.
func (c *Client) entityMountAccessor(ctx context.Context) (mount, accessor string, err error) {
	mount = strings.Trim(c.cfg.Vault.EntityAuthMount, "/")
	if mount == "" {
		return "", "", errors.New("vault: vault.entity_auth_mount is not configured")
	}
	mount += "/"
	if err := c.ensureToken(ctx); err != nil {
		return mount, "", err
	}
	auths, err := c.api.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return mount, "", c.fail(ctx, "list auth mounts", err)
	}
	m, ok := auths[mount]
	if !ok || m == nil || m.Accessor == "" {
		return mount, "", &Error{Op: "list auth mounts",
			Detail: fmt.Sprintf("no auth mount %s in Vault (vault.entity_auth_mount)", mount), kind: ErrNotFound}
	}
	return mount, m.Accessor, nil
}

// vaultGroup is what the bot reads of a group.
type vaultGroup struct {
	typ     string
	members []string
}

// readGroup reads the group named name; nil when it does not exist.
func (c *Client) readGroup(ctx context.Context, name string) (*vaultGroup, error) {
	if err := c.ensureToken(ctx); err != nil {
		return nil, err
	}
	sec, err := c.api.Logical().ReadWithContext(ctx, groupPath(name))
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return nil, nil
		}
		return nil, c.fail(ctx, "read group "+name, err)
	}
	if sec == nil || sec.Data == nil {
		return nil, nil
	}
	return &vaultGroup{
		typ:     str(sec.Data["type"]),
		members: strs(sec.Data["member_entity_ids"]),
	}, nil
}

func groupPath(name string) string { return "identity/group/name/" + name }

// validGroupName refuses names that could not round-trip through the
// identity/group/name/<name> path.
func validGroupName(name string) error {
	if name == "" {
		return errors.New("vault: empty group name")
	}
	if len(name) > 128 {
		return fmt.Errorf("vault: group name %q is longer than 128 characters", name)
	}
	for _, r := range name {
		if !(r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			return fmt.Errorf("vault: %q is not a usable group name (letters, digits, -, _ and . only)", name)
		}
	}
	return nil
}

// isStatus reports whether err is a Vault reply with that HTTP status.
func isStatus(err error, status int) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}
