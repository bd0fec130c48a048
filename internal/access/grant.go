package access

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/policy"
)

// Crockford base32: no I, L, O or U, so ids read aloud unambiguously.
const idAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

var grantIDRe = regexp.MustCompile(`^G[0-9A-HJKMNP-TV-Z]{8}$`)

// NewGrantID returns "G" + 8 random Crockford base32 characters (40 bits).
func NewGrantID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("access: crypto/rand: " + err.Error()) // never returns an error on supported platforms
	}
	out := make([]byte, 9)
	out[0] = 'G'
	for i, c := range b {
		out[i+1] = idAlphabet[int(c)%len(idAlphabet)] // 256 is a multiple of 32: no bias
	}
	return string(out)
}

// NormalizeGrantID upper-cases s and reports whether it is a grant id.
func NormalizeGrantID(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	return s, grantIDRe.MatchString(s)
}

// ---- Transitions. Pure: each returns the changed copy with Version bumped
// and UpdatedAt set, or ErrWrongState (wrapped, naming the state). ----

func (g Grant) next(at time.Time) Grant {
	g.Version++
	g.UpdatedAt = at
	g.Evidence = append([]Evidence(nil), g.Evidence...)
	return g
}

func wrongState(g Grant, want ...State) error {
	ws := make([]string, len(want))
	for i, w := range want {
		ws[i] = string(w)
	}
	return fmt.Errorf("%w: grant %s is %s, not %s", ErrWrongState, g.ID, g.State, strings.Join(ws, " or "))
}

// IsRequester reports whether p is the person who asked for g (by Slack id,
// or by e-mail, compared without case).
func (g Grant) IsRequester(p policy.Person) bool {
	if p.SlackID != "" && p.SlackID == g.Requester {
		return true
	}
	return p.Email != "" && g.Email != "" && strings.EqualFold(strings.TrimSpace(p.Email), strings.TrimSpace(g.Email))
}

// checkDecider refuses the requester and anybody who may not approve sc.
func (g Grant) checkDecider(by policy.Person, sc *config.Scope) error {
	if g.IsRequester(by) {
		return ErrSelfApproval
	}
	if !policy.CanApprove(sc, by) {
		return ErrNotApprover
	}
	return nil
}

// Approve moves a pending grant to approved by an approver of sc who is not
// the requester. ErrWrongState, ErrSelfApproval or ErrNotApprover otherwise.
func (g Grant) Approve(by policy.Person, sc *config.Scope, at time.Time) (Grant, error) {
	if g.State != StatePending {
		return g, wrongState(g, StatePending)
	}
	if err := g.checkDecider(by, sc); err != nil {
		return g, err
	}
	if err := g.evidenceOK(); err != nil {
		return g, err
	}
	g = g.next(at)
	g.State, g.Approver, g.DecidedAt = StateApproved, by.SlackID, at
	return g, nil
}

// evidenceOK refuses approval while any check has not passed.
func (g Grant) evidenceOK() error {
	for _, e := range g.Evidence {
		if e.Status != EvidenceOK {
			return fmt.Errorf("%w: grant %s: the %s check is %s", ErrWrongState, g.ID, e.Kind, e.Status)
		}
	}
	return nil
}

// AutoApprover is the approver recorded when the evidence is the approval.
const AutoApprover = "secretbot (PagerDuty on-call)"

// AutoApprove moves a pending grant to approved without a click: for scopes
// that do not require "approval", once their evidence passed.
func (g Grant) AutoApprove(at time.Time) (Grant, error) {
	if g.State != StatePending {
		return g, wrongState(g, StatePending)
	}
	if err := g.evidenceOK(); err != nil {
		return g, err
	}
	g = g.next(at)
	g.State, g.Approver, g.DecidedAt = StateApproved, AutoApprover, at
	return g, nil
}

// Deny moves a pending grant to denied, by an approver who is not the requester.
func (g Grant) Deny(by policy.Person, sc *config.Scope, reason string, at time.Time) (Grant, error) {
	if g.State != StatePending {
		return g, wrongState(g, StatePending)
	}
	if err := g.checkDecider(by, sc); err != nil {
		return g, err
	}
	g = g.next(at)
	g.State, g.Approver, g.DenyReason, g.DecidedAt = StateDenied, by.SlackID, reason, at
	return g, nil
}

// Fail moves a pending or approved grant to failed (evidence refused it, or
// it could not be delivered for good).
func (g Grant) Fail(why string, at time.Time) (Grant, error) {
	if g.State != StatePending && g.State != StateApproved {
		return g, wrongState(g, StatePending, StateApproved)
	}
	g = g.next(at)
	g.State, g.LastError, g.EndedAt = StateFailed, why, at
	return g, nil
}

// Expiry is when a grant issued at issuedAt ends: min(issuedAt+TTL, NotAfter).
func (g Grant) Expiry(issuedAt time.Time) time.Time {
	end := issuedAt.Add(g.TTL)
	if !g.NotAfter.IsZero() && g.NotAfter.Before(end) {
		end = g.NotAfter
	}
	return end
}

// Issued records a delivery: state issued with the accessors (or the
// group), IssuedAt and ExpiresAt (Expiry(at)).
func (g Grant) Issued(w Wrapped, group string, at time.Time) (Grant, error) {
	if g.State != StateApproved {
		return g, wrongState(g, StateApproved)
	}
	g = g.next(at)
	g.State, g.IssuedAt, g.ExpiresAt = StateIssued, at, g.Expiry(at)
	g.TokenAccessor, g.WrapAccessor, g.WrapExpires, g.VaultGroup = w.TokenAccessor, w.WrapAccessor, w.WrapExpires, group
	g.WrapStatus, g.DeliveredAt, g.EndReason, g.RevokePending, g.LastError = WrapUnknown, time.Time{}, "", false, ""
	return g, nil
}

// Delivered records that the DM went out.
func (g Grant) Delivered(at time.Time) (Grant, error) {
	if g.State != StateIssued {
		return g, wrongState(g, StateIssued)
	}
	g = g.next(at)
	g.DeliveredAt = at
	return g, nil
}

// Undelivered takes an issued grant whose DM did not go out (and whose token
// has been revoked) back to approved, so a retry issues a fresh one.
func (g Grant) Undelivered(at time.Time) (Grant, error) {
	if g.State != StateIssued {
		return g, wrongState(g, StateIssued)
	}
	g = g.next(at)
	g.State = StateApproved
	g.TokenAccessor, g.WrapAccessor, g.VaultGroup, g.WrapStatus = "", "", "", WrapUnknown
	g.WrapExpires, g.IssuedAt, g.ExpiresAt, g.DeliveredAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	g.EndReason, g.RevokePending = "", false
	return g, nil
}

// RevokeFailed records a revoke that did not succeed: RevokePending, with
// the reason it was attempted (EndReason) and the error. The state does not
// change; Sweep retries.
func (g Grant) RevokeFailed(endReason, errText string, at time.Time) (Grant, error) {
	if g.State != StateIssued {
		return g, wrongState(g, StateIssued)
	}
	g = g.next(at)
	g.RevokePending, g.EndReason, g.LastError = true, endReason, errText
	return g, nil
}

// End finishes a grant: issued (once its access is taken back), or pending
// or approved (nothing was issued yet). The state is expired for the end
// reasons "expired" and "ticket-expired", revoked otherwise.
func (g Grant) End(endReason string, at time.Time) (Grant, error) {
	if g.State != StateIssued && g.State != StatePending && g.State != StateApproved {
		return g, wrongState(g, StatePending, StateApproved, StateIssued)
	}
	g = g.next(at)
	g.State = StateRevoked
	if endReason == EndExpired || endReason == EndTicketExpired {
		g.State = StateExpired
	}
	g.EndedAt, g.EndReason, g.RevokePending, g.LastError = at, endReason, false, ""
	return g, nil
}

// WithWrapStatus records what the last look-up of the wrapping token said.
func (g Grant) WithWrapStatus(status string, at time.Time) (Grant, error) {
	if g.State != StateIssued {
		return g, wrongState(g, StateIssued)
	}
	g = g.next(at)
	g.WrapStatus = status
	return g, nil
}

// ExpiryReason is the end reason of an expiry: "ticket-expired" when the
// ticket's expiry cut the grant short, "expired" otherwise.
func (g Grant) ExpiryReason() string {
	if !g.NotAfter.IsZero() && !g.ExpiresAt.IsZero() && g.ExpiresAt.Equal(g.NotAfter) && g.ExpiresAt.Before(g.IssuedAt.Add(g.TTL)) {
		return EndTicketExpired
	}
	return EndExpired
}
