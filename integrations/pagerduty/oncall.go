package pagerduty

import (
	"cmp"
	"context"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/secretbot/secretbot/internal/crash"
)

// maxPages bounds pagination: a runaway "more": true must not loop forever.
const maxPages = 10

// OnCallStatus is whether a person is on call now on a configured escalation
// policy.
type OnCallStatus struct {
	UserID, Name string
	OnCall       bool
	// Policies names each policy they are on call for, with the level, e.g.
	// "Platform (level 1)"; sorted.
	Policies []string
	// Entries carries the same facts for code: one per policy, at the lowest
	// level they hold on it.
	Entries []OnCallEntry
}

// OnCallEntry is one current on-call shift on a configured escalation policy.
type OnCallEntry struct {
	PolicyID, PolicyName string
	Level                int
	Start, End           time.Time // End is zero for a permanent on-call
}

// OnCallStatus finds the PagerDuty user whose e-mail is exactly email (case
// does not matter; the API's query is a substring search, so the match is
// re-checked here) and lists their current on-calls on the configured
// escalation policies, counting only levels up to max_escalation_level when
// it is > 0.
//
// Errors: ErrUnknownUser when no user has that e-mail; ErrNotConfigured
// without a token or without escalation policies; otherwise an *Error meaning
// PagerDuty could not answer (fail closed). OnCall false with a nil error is
// a definite "not on call".
func (c *Client) OnCallStatus(ctx context.Context, email string) (OnCallStatus, error) {
	crash.Point("pagerduty.oncall.before")
	defer crash.Point("pagerduty.oncall.after")
	if !c.enabled {
		return OnCallStatus{}, ErrNotConfigured
	}
	email = strings.TrimSpace(email)
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return OnCallStatus{}, ErrUnknownUser
	}
	user, err := c.userByEmail(ctx, email)
	if err != nil {
		return OnCallStatus{}, err
	}
	st := OnCallStatus{UserID: user.ID, Name: user.Name}
	if len(c.policies) == 0 {
		return st, fmt.Errorf("%w: pagerduty.escalation_policies is empty", ErrNotConfigured)
	}
	var calls []pagerduty.OnCall
	err = c.do(ctx, "list on-calls", func(ctx context.Context) error {
		calls = calls[:0]
		o := pagerduty.ListOnCallOptions{Limit: 100, UserIDs: []string{user.ID}, EscalationPolicyIDs: c.policies}
		for range maxPages {
			r, err := c.api.ListOnCallsWithContext(ctx, o)
			if err != nil {
				return err
			}
			calls = append(calls, r.OnCalls...)
			if !r.More || len(r.OnCalls) == 0 {
				break
			}
			o.Offset += uint(len(r.OnCalls))
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	st.Entries = c.currentEntries(user.ID, calls)
	for _, e := range st.Entries {
		st.Policies = append(st.Policies, fmt.Sprintf("%s (level %d)", e.PolicyName, e.Level))
	}
	slices.Sort(st.Policies)
	st.OnCall = len(st.Entries) > 0
	return st, nil
}

func (c *Client) userByEmail(ctx context.Context, email string) (pagerduty.User, error) {
	var found *pagerduty.User
	err := c.do(ctx, "list users", func(ctx context.Context) error {
		found = nil
		o := pagerduty.ListUsersOptions{Limit: 100, Query: email}
		for range maxPages {
			r, err := c.api.ListUsersWithContext(ctx, o)
			if err != nil {
				return err
			}
			for i := range r.Users {
				if strings.EqualFold(r.Users[i].Email, email) {
					found = &r.Users[i]
					return nil
				}
			}
			if !r.More || len(r.Users) == 0 {
				return nil
			}
			o.Offset += uint(len(r.Users))
		}
		return nil
	})
	if err != nil {
		return pagerduty.User{}, err
	}
	if found == nil || found.ID == "" {
		return pagerduty.User{}, ErrUnknownUser
	}
	return *found, nil
}

// currentEntries keeps the entries that are this user's, on a configured
// policy, within the level limit and current now (the API already filters;
// this is defence against a reply that does not), one per policy.
func (c *Client) currentEntries(userID string, calls []pagerduty.OnCall) []OnCallEntry {
	now := c.now()
	best := map[string]OnCallEntry{}
	for _, oc := range calls {
		pid := oc.EscalationPolicy.ID
		if (oc.User.ID != "" && oc.User.ID != userID) || !slices.Contains(c.policies, pid) {
			continue
		}
		level := int(oc.EscalationLevel)
		if c.maxLevel > 0 && level > c.maxLevel {
			continue
		}
		start, _ := time.Parse(time.RFC3339, oc.Start)
		end, _ := time.Parse(time.RFC3339, oc.End)
		if (!start.IsZero() && start.After(now)) || (!end.IsZero() && !end.After(now)) {
			continue
		}
		name := cmp.Or(oc.EscalationPolicy.Name, oc.EscalationPolicy.Summary, pid)
		e := OnCallEntry{PolicyID: pid, PolicyName: c.clean(name), Level: level, Start: start, End: end}
		if prev, ok := best[pid]; !ok || level < prev.Level {
			best[pid] = e
		}
	}
	out := make([]OnCallEntry, 0, len(best))
	for _, e := range best {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b OnCallEntry) int {
		return cmp.Or(cmp.Compare(a.Level, b.Level), strings.Compare(a.PolicyID, b.PolicyID))
	})
	return out
}
