package policy

import (
	"errors"
	"regexp"
	"strings"

	"github.com/secretbot/secretbot/internal/config"
)

// Refusals for people who may never request or approve, whatever the
// configuration says. Callers tell them apart with errors.Is.
var (
	ErrDeletedUser = errors.New("the Slack account is deactivated")
	ErrBot         = errors.New("bots and apps cannot request or approve access")
	ErrGuest       = errors.New("guest accounts cannot request or approve access")
)

// Refusal returns nil for a full member of the workspace, and otherwise
// ErrDeletedUser, ErrBot or ErrGuest (checked in that order).
func Refusal(p Person) error {
	switch {
	case p.Deleted:
		return ErrDeletedUser
	case p.Bot:
		return ErrBot
	case p.Guest:
		return ErrGuest
	}
	return nil
}

// Eligible reports whether p may request scope s: a full member named in the
// scope's eligible users, e-mails or groups. It does not look at s.Disabled,
// so callers can tell "not for you" from "switched off".
func Eligible(s *config.Scope, p Person) bool {
	return s != nil && Refusal(p) == nil && named(s.Eligible, p)
}

// CanApprove reports whether p is one of the scope's approvers (and a full
// member). Whether p is the requester is the caller's check: nobody approves
// their own request.
func CanApprove(s *config.Scope, p Person) bool {
	return s != nil && Refusal(p) == nil && named(s.Approvers, p)
}

// EligibleScopes lists the scopes p may request, in configuration order,
// including disabled ones (each says why in DisabledReason). The pointers
// point into cfg.Scopes.
func EligibleScopes(cfg *config.Config, p Person) []*config.Scope {
	var out []*config.Scope
	for i := range cfg.Scopes {
		if Eligible(&cfg.Scopes[i], p) {
			out = append(out, &cfg.Scopes[i])
		}
	}
	return out
}

// PlatformSecurity reports whether p is in the configured Platform Security
// group (a full member; false when no group is configured).
func PlatformSecurity(cfg *config.Config, p Person) bool {
	g := cfg.Slack.PlatformSecurityGroup
	return g != "" && Refusal(p) == nil && inGroup(p, g)
}

// named matches p against a People list: Slack ID exactly, e-mail without
// regard to case, groups by handle (with or without @, any case) or by ID
// (exactly). An empty e-mail or ID never matches.
func named(pp config.People, p Person) bool {
	if p.SlackID != "" {
		for _, u := range pp.Users {
			if u == p.SlackID {
				return true
			}
		}
	}
	if email := strings.TrimSpace(p.Email); email != "" {
		for _, e := range pp.Emails {
			if strings.EqualFold(strings.TrimSpace(e), email) {
				return true
			}
		}
	}
	for _, g := range pp.Groups {
		if inGroup(p, g) {
			return true
		}
	}
	return false
}

func inGroup(p Person, group string) bool {
	want := strings.TrimPrefix(strings.TrimSpace(group), "@")
	if want == "" {
		return false
	}
	for _, g := range p.Groups {
		g = strings.TrimPrefix(strings.TrimSpace(g), "@")
		if g == want || (!groupID.MatchString(want) && strings.EqualFold(g, want)) {
			return true
		}
	}
	return false
}

// groupID is the shape of a user group ID. An ID is matched exactly: were it
// matched without regard to case, anyone able to create a group with the
// handle "s0123abc" would pass for a member of group S0123ABC.
var groupID = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
