package slack

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"
)

var (
	// ErrUserNotFound: no active Slack user has that e-mail address
	// (users.lookupByEmail said users_not_found, or the user is deactivated).
	// It is an answer, unlike ErrLookupFailed, which means Slack could not
	// be asked.
	ErrUserNotFound = errors.New("no active Slack user has that e-mail address")
	// ErrGroupNotFound: no enabled user group has that ID or handle.
	ErrGroupNotFound = errors.New("no such Slack user group")
	// ErrLastMember: removing the user would leave the group empty, which
	// Slack does not allow (usergroups.users.update needs at least one user).
	// Nothing was changed; disabling the group is a workspace admin's call.
	ErrLastMember = errors.New("the user is the group's only member: Slack does not allow an empty user group")
)

// SlackIDByEmail returns the ID of the Slack user whose e-mail address is
// email (users.lookupByEmail, scope users:read.email).
//
// Errors: ErrUserNotFound when there is no such user, or only a deactivated
// one; otherwise an error wrapping ErrLookupFailed (Slack could not answer:
// the caller must not treat it as "nobody"). No token in the text.
func (c *Client) SlackIDByEmail(ctx context.Context, email string) (string, error) {
	email = strings.TrimSpace(email)
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return "", fmt.Errorf("%w: not an e-mail address", ErrUserNotFound)
	}
	u, err := c.api.GetUserByEmailContext(ctx, email)
	if err != nil {
		var se slackgo.SlackErrorResponse
		if errors.As(err, &se) && se.Err == "users_not_found" {
			return "", ErrUserNotFound
		}
		return "", fmt.Errorf("%w: users.lookupByEmail: %s", ErrLookupFailed, c.describe(err))
	}
	if u == nil || u.ID == "" {
		return "", fmt.Errorf("%w: users.lookupByEmail: no user in the reply", ErrLookupFailed)
	}
	if u.Deleted {
		return "", fmt.Errorf("%w: the account %s is deactivated", ErrUserNotFound, u.ID)
	}
	return u.ID, nil
}

// GroupMembers returns the user IDs in the enabled user group whose ID
// ("S0123") or handle ("platform-security", with or without "@") is group.
// It reads the usergroups.list answer Person uses, cached for up to a
// minute (the bot's own RemoveFromGroup clears the cache).
//
// Errors: ErrGroupNotFound when no enabled group matches; otherwise an error
// wrapping ErrLookupFailed.
func (c *Client) GroupMembers(ctx context.Context, group string) ([]string, error) {
	g, err := c.findGroup(ctx, group)
	if err != nil {
		return nil, err
	}
	return slices.Clone(g.Users), nil
}

func (c *Client) findGroup(ctx context.Context, group string) (slackgo.UserGroup, error) {
	key := strings.TrimPrefix(strings.TrimSpace(group), "@")
	if key == "" {
		return slackgo.UserGroup{}, fmt.Errorf("%w: empty group", ErrGroupNotFound)
	}
	groups, err := c.groups.get(ctx, c.now, c.fetchGroups, time.Time{})
	if err != nil {
		return slackgo.UserGroup{}, fmt.Errorf("%w: usergroups.list: %s", ErrLookupFailed, c.describe(err))
	}
	for _, g := range groups {
		if g.ID == key || strings.EqualFold(g.Handle, key) {
			return g, nil
		}
	}
	return slackgo.UserGroup{}, fmt.Errorf("%w: %s", ErrGroupNotFound, c.redact(key))
}

// RemoveFromGroup takes userID out of the user group groupID (an ID; a
// handle is resolved through usergroups.list): usergroups.users.list for the
// current members, then usergroups.users.update with the others (scope
// usergroups:write). A user who is not a member is success: nothing is
// changed. Slack has no "remove one" call, so a member added by someone else
// between the two calls would be dropped; the window is one round trip.
//
// Errors: ErrLastMember (nothing changed), ErrGroupNotFound (a handle
// matching no group, or Slack's no_such_subteam), or a *DeliveryError (Op
// "usergroups.users.list" or "usergroups.users.update") classified as for
// Deliver. No token in the text.
func (c *Client) RemoveFromGroup(ctx context.Context, groupID, userID string) error {
	groupID, userID = strings.TrimSpace(groupID), strings.TrimSpace(userID)
	if userID == "" {
		return &DeliveryError{Op: "usergroups.users.update", Code: "invalid_message", Err: errors.New("no user to remove")}
	}
	if !looksLikeGroupID(groupID) {
		g, err := c.findGroup(ctx, groupID)
		if err != nil {
			return err
		}
		groupID = g.ID
	}
	members, err := c.api.GetUserGroupMembersContext(ctx, groupID)
	if err != nil {
		return c.groupError("usergroups.users.list", groupID, err)
	}
	rest := slices.DeleteFunc(slices.Clone(members), func(m string) bool { return m == userID })
	if len(rest) == len(members) {
		return nil
	}
	if len(rest) == 0 {
		return fmt.Errorf("slack: remove %s from %s: %w", c.redact(userID), c.redact(groupID), ErrLastMember)
	}
	_, err = c.api.UpdateUserGroupMembersContext(ctx, groupID, strings.Join(rest, ","))
	// Whatever happened, Slack may have changed the group: ask again next time.
	c.groups.invalidate()
	if err != nil {
		return c.groupError("usergroups.users.update", groupID, err)
	}
	return nil
}

func (c *Client) groupError(op, groupID string, err error) error {
	var se slackgo.SlackErrorResponse
	if errors.As(err, &se) && se.Err == "no_such_subteam" {
		return fmt.Errorf("%w: %s (%s)", ErrGroupNotFound, c.redact(groupID), op)
	}
	return c.deliveryError(op, err)
}

// looksLikeGroupID reports whether s has the shape of a user group ID (S…).
func looksLikeGroupID(s string) bool {
	if len(s) < 2 || s[0] != 'S' {
		return false
	}
	for _, r := range s[1:] {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
