package slack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/secretbot/secretbot/internal/policy"
)

// ErrLookupFailed is wrapped by every Person error: Slack could not say who
// the user is, so callers must refuse (fail closed) and say which check
// could not be made.
var ErrLookupFailed = errors.New("slack user lookup failed")

// ErrEmailScope is wrapped (with ErrLookupFailed) when Slack returns a user
// without an e-mail address: the bot token lacks the users:read.email scope.
var ErrEmailScope = errors.New("no e-mail address from Slack: the bot token lacks the users:read.email scope")

// groupTTL is how long the usergroups.list answer is reused. Membership
// changes take up to this long to count, in both directions.
const groupTTL = 60 * time.Second

// Person asks Slack who userID is, now: users.info for the identity and
// flags, usergroups.list (cached for a minute) for group membership.
// Person.Groups holds each group's handle and its ID.
//
// Errors wrap ErrLookupFailed (and ErrEmailScope when the e-mail is
// missing). Deleted users and bots come back without error even without an
// e-mail, so policy.Refusal can name the precise reason.
func (c *Client) Person(ctx context.Context, userID string) (policy.Person, error) {
	return c.person(ctx, userID, time.Time{})
}

// PersonNow is Person for rights checked at the moment of an action (a
// button pressed, a form submitted): the user groups are read from Slack
// after the call began, never from the cache, so someone removed from an
// approvers' group a second ago is no longer an approver. Concurrent calls
// share a fetch begun after all of them, so a burst of clicks costs few
// usergroups.list calls.
func (c *Client) PersonNow(ctx context.Context, userID string) (policy.Person, error) {
	return c.person(ctx, userID, c.now())
}

// person looks userID up with group membership read at or after notBefore
// (zero: the cached answer while it is fresh).
func (c *Client) person(ctx context.Context, userID string, notBefore time.Time) (policy.Person, error) {
	u, err := c.api.GetUserInfoContext(ctx, userID, slackgo.GetUserInfoOptionIncludeLocale(false))
	if err != nil {
		return policy.Person{}, fmt.Errorf("%w: users.info %s: %s", ErrLookupFailed, c.redact(userID), c.describe(err))
	}
	p := policy.Person{
		SlackID: u.ID,
		Email:   u.Profile.Email,
		Name:    displayName(u),
		Deleted: u.Deleted,
		// Slackbot is not flagged is_bot, but is one.
		Bot: u.IsBot || u.IsWorkflowBot || u.ID == "USLACKBOT",
		// Someone from another organisation (Slack Connect) is no more a
		// member than a guest is.
		Guest: u.IsRestricted || u.IsUltraRestricted || u.IsStranger,
	}
	if p.SlackID == "" {
		p.SlackID = userID
	}
	if p.Deleted || p.Bot {
		return p, nil
	}
	if p.Email == "" {
		return policy.Person{}, fmt.Errorf("%w: users.info %s: %w", ErrLookupFailed, c.redact(userID), ErrEmailScope)
	}
	groups, err := c.groups.get(ctx, c.now, c.fetchGroups, notBefore)
	if err != nil {
		return policy.Person{}, fmt.Errorf("%w: usergroups.list: %s", ErrLookupFailed, c.describe(err))
	}
	for _, g := range groups {
		for _, m := range g.Users {
			if m == p.SlackID {
				p.Groups = append(p.Groups, g.Handle, g.ID)
				break
			}
		}
	}
	return p, nil
}

func displayName(u *slackgo.User) string {
	for _, s := range []string{u.RealName, u.Profile.RealName, u.Profile.DisplayName, u.Name} {
		if s != "" {
			return s
		}
	}
	return u.ID
}

func (c *Client) fetchGroups(ctx context.Context) ([]slackgo.UserGroup, error) {
	// Disabled groups are left out (the default): membership of a disabled
	// group grants nothing.
	return c.api.GetUserGroupsContext(ctx, slackgo.GetUserGroupsOptionIncludeUsers(true))
}

// groupCache holds the whole usergroups.list answer. Concurrent callers
// share one fetch; a failed fetch is not cached.
type groupCache struct {
	mu       sync.Mutex
	groups   []slackgo.UserGroup
	fetched  time.Time
	inflight *groupFetch
	gen      int // bumped by invalidate; a fetch begun before is not cached
}

// invalidate drops the cached answer, so the next lookup asks Slack (after
// the bot changed a group's members itself).
func (gc *groupCache) invalidate() {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	gc.groups, gc.fetched = nil, time.Time{}
	gc.gen++
}

type groupFetch struct {
	started time.Time
	done    chan struct{}
	groups  []slackgo.UserGroup
	err     error
}

// get returns the groups, from a fetch begun at or after notBefore (zero:
// any fetch younger than groupTTL).
func (gc *groupCache) get(ctx context.Context, now func() time.Time,
	fetch func(context.Context) ([]slackgo.UserGroup, error), notBefore time.Time) ([]slackgo.UserGroup, error) {
	for {
		gc.mu.Lock()
		if !gc.fetched.IsZero() && now().Sub(gc.fetched) < groupTTL && !gc.fetched.Before(notBefore) {
			g := gc.groups
			gc.mu.Unlock()
			return g, nil
		}
		if w := gc.inflight; w != nil && w.started.Before(notBefore) {
			// A fetch begun before we were asked may predate a change:
			// wait for it to end, then start our own.
			gc.mu.Unlock()
			select {
			case <-w.done:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if w := gc.inflight; w != nil {
			gc.mu.Unlock()
			select {
			case <-w.done:
				if w.err == nil {
					return w.groups, nil
				}
				// Another caller's fetch failed (perhaps only its context
				// ended): try again under our own context.
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		f := &groupFetch{started: now(), done: make(chan struct{})}
		gc.inflight = f
		gen := gc.gen
		gc.mu.Unlock()

		f.groups, f.err = fetch(ctx)

		gc.mu.Lock()
		if f.err == nil && gen == gc.gen {
			// Stamped with the fetch's start: what it read is no newer.
			gc.groups, gc.fetched = f.groups, f.started
		}
		gc.inflight = nil
		gc.mu.Unlock()
		close(f.done)
		return f.groups, f.err
	}
}
