package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/secretbot/secretbot/internal/config"
)

type checkResult struct {
	ev         Evidence
	notAfter   time.Time
	incidentID string
}

// pdUser looks the requester up in PagerDuty once for both PagerDuty checks.
type pdUser struct {
	once   sync.Once
	on     bool
	detail string
	id     string
	err    error
}

func (u *pdUser) get(ctx context.Context, oc OnCall, email string) (bool, string, string, error) {
	u.once.Do(func() { u.on, u.detail, u.id, u.err = oc.OnCallNow(ctx, email) })
	return u.on, u.detail, u.id, u.err
}

// runChecks starts one goroutine per check; each result arrives on the
// returned channel (buffered: nobody blocks).
func (s *Service) runChecks(ctx context.Context, g Grant) <-chan checkResult {
	out := make(chan checkResult, len(g.Evidence))
	pd := &pdUser{}
	pdCtx, cancelPD := context.WithTimeout(context.WithoutCancel(ctx), s.checkTimeout())
	var wg sync.WaitGroup
	for _, e := range g.Evidence {
		wg.Add(1)
		go func(kind string) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, s.checkTimeout())
			defer cancel()
			var r checkResult
			func() {
				defer func() {
					if p := recover(); p != nil {
						s.log().Error("access: evidence check panicked", "kind", kind, "grant", g.ID, "panic", fmt.Sprint(p))
						r = checkResult{ev: Evidence{Kind: kind, Status: EvidenceError, Detail: "internal error while checking"}}
					}
				}()
				switch kind {
				case config.EvidenceJira:
					r = s.checkJira(cctx, g)
				case config.EvidenceOnCall:
					r = s.checkOnCall(cctx, pdCtx, g, pd)
				case config.EvidenceIncident:
					r = s.checkIncident(cctx, pdCtx, g, pd)
				default:
					r = checkResult{ev: Evidence{Kind: kind, Status: EvidenceError, Detail: "unknown kind of evidence " + kind}}
				}
			}()
			if r.ev.Status == EvidenceError && cctx.Err() != nil && ctx.Err() == nil {
				r.ev.Detail = fmt.Sprintf("%s (no answer within %s)", r.ev.Detail, s.checkTimeout())
			}
			out <- r
		}(e.Kind)
	}
	go func() { wg.Wait(); cancelPD() }()
	return out
}

func (s *Service) checkJira(ctx context.Context, g Grant) checkResult {
	ev := Evidence{Kind: config.EvidenceJira, Status: EvidenceError}
	if s.Tickets == nil {
		ev.Detail = "Jira could not be checked: Jira is not configured"
		return checkResult{ev: ev}
	}
	var (
		wg           sync.WaitGroup
		facts        TicketFacts
		ferr         error
		account      string
		aerr         error
		ticketTarget = g.Ticket
	)
	wg.Add(2)
	go func() { defer wg.Done(); facts, ferr = s.Tickets.Ticket(ctx, ticketTarget) }()
	go func() { defer wg.Done(); account, aerr = s.Tickets.AccountByEmail(ctx, g.Email) }()
	wg.Wait()
	switch {
	case errors.Is(ferr, ErrTicketNotFound):
		ev.Status, ev.Detail = EvidenceFailed, g.Ticket+" does not exist, or the bot may not see it"
		return checkResult{ev: ev}
	case ferr != nil:
		ev.Detail = "Jira could not be checked (reading " + g.Ticket + "): " + errText(ferr)
		return checkResult{ev: ev}
	case errors.Is(aerr, ErrUnknownJiraUser):
		ev.Status = EvidenceFailed
		ev.Detail = "no Jira account with your e-mail " + g.Email + " is visible to the bot, so self-approval cannot be ruled out"
		return checkResult{ev: ev}
	case aerr != nil:
		ev.Detail = "Jira could not be checked (finding your Jira account): " + errText(aerr)
		return checkResult{ev: ev}
	case strings.TrimSpace(account) == "":
		ev.Status, ev.Detail = EvidenceFailed, "your Jira account could not be identified, so self-approval cannot be ruled out"
		return checkResult{ev: ev}
	}
	if facts.Key == "" {
		facts.Key = g.Ticket
	}
	v := JiraVerdict(facts, s.Config, JiraUser{AccountID: account, Email: g.Email}, g.Scope, s.now())
	r := checkResult{ev: v}
	if v.Status == EvidenceOK {
		r.notAfter = facts.Expiry
	}
	return r
}

func (s *Service) checkOnCall(ctx, pdCtx context.Context, g Grant, pd *pdUser) checkResult {
	ev := Evidence{Kind: config.EvidenceOnCall, Status: EvidenceError}
	if s.OnCall == nil {
		ev.Detail = "PagerDuty could not be checked: PagerDuty is not configured"
		return checkResult{ev: ev}
	}
	on, detail, _, err := awaitPD(ctx, pdCtx, s.OnCall, g.Email, pd)
	switch {
	case err != nil:
		ev.Detail = "PagerDuty could not be checked: " + errText(err)
	case !on:
		ev.Status, ev.Detail = EvidenceFailed, "you are not on call now"
		if detail != "" {
			ev.Detail += ": " + detail
		}
	default:
		ev.Status, ev.Detail = EvidenceOK, "on call now"
		if detail != "" {
			ev.Detail += ": " + detail
		}
	}
	return checkResult{ev: ev}
}

// awaitPD runs the shared PagerDuty user look-up under pdCtx (shared by both
// checks) but gives up when this check's own ctx ends.
func awaitPD(ctx, pdCtx context.Context, oc OnCall, email string, pd *pdUser) (bool, string, string, error) {
	type res struct {
		on         bool
		detail, id string
		err        error
	}
	ch := make(chan res, 1)
	go func() {
		on, d, id, err := pd.get(pdCtx, oc, email)
		ch <- res{on, d, id, err}
	}()
	select {
	case r := <-ch:
		return r.on, r.detail, r.id, r.err
	case <-ctx.Done():
		return false, "", "", ctx.Err()
	}
}

func (s *Service) checkIncident(ctx, pdCtx context.Context, g Grant, pd *pdUser) checkResult {
	ev := Evidence{Kind: config.EvidenceIncident, Status: EvidenceError}
	if s.OnCall == nil {
		ev.Detail = "PagerDuty could not be checked: PagerDuty is not configured"
		return checkResult{ev: ev}
	}
	inc, err := s.OnCall.Incident(ctx, g.Incident)
	switch {
	case errors.Is(err, ErrIncidentNotFound):
		ev.Status, ev.Detail = EvidenceFailed, "no PagerDuty incident "+g.Incident
		return checkResult{ev: ev}
	case err != nil:
		ev.Detail = "PagerDuty could not be checked (incident " + g.Incident + "): " + errText(err)
		return checkResult{ev: ev}
	}
	ev.Link = inc.URL
	name := incidentName(inc, g.Incident)
	if !inc.Open() {
		ev.Status, ev.Detail = EvidenceFailed, fmt.Sprintf("incident %s is %s, not triggered or acknowledged", name, orUnknown(inc.Status))
		return checkResult{ev: ev}
	}
	if inc.InPolicyServices {
		ev.Status, ev.Detail = EvidenceOK, fmt.Sprintf("incident %s is %s on a service of the configured escalation policies", name, inc.Status)
		return checkResult{ev: ev, incidentID: inc.ID}
	}
	_, _, userID, err := awaitPD(ctx, pdCtx, s.OnCall, g.Email, pd)
	if err != nil {
		ev.Detail = "PagerDuty could not be checked (your PagerDuty user): " + errText(err)
		return checkResult{ev: ev}
	}
	for _, a := range inc.AssigneeIDs {
		if userID != "" && a == userID {
			ev.Status, ev.Detail = EvidenceOK, fmt.Sprintf("incident %s is %s and assigned to you", name, inc.Status)
			return checkResult{ev: ev, incidentID: inc.ID}
		}
	}
	ev.Status = EvidenceFailed
	ev.Detail = fmt.Sprintf("incident %s is neither on a service of the configured escalation policies nor assigned to you", name)
	return checkResult{ev: ev}
}

func incidentName(inc Incident, ref string) string {
	n := ref
	if inc.Number != "" && inc.Number != "0" {
		n = "#" + strings.TrimPrefix(inc.Number, "#")
	} else if inc.ID != "" {
		n = inc.ID
	}
	if inc.Title != "" {
		n += " (" + Truncate(inc.Title, 80) + ")"
	}
	return n
}

func orUnknown(s string) string {
	if s == "" {
		return "in an unknown state"
	}
	return s
}
