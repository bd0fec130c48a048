package access

import (
	"context"
	"fmt"
	"strings"

	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/policy"
)

// Grants lists what p may see, oldest first: their own active grants; for
// approvers also the active grants of the scopes they approve; for Platform
// Security every active grant. (A grant with a revoke pending is issued,
// hence active.)
func (s *Service) Grants(ctx context.Context, p policy.Person) ([]Grant, error) {
	var all []Grant
	err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		all, err = tx.GrantsByState(ctx, ActiveStates...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("access: grants: %w", err)
	}
	security := policy.PlatformSecurity(s.Config, p)
	var out []Grant
	for _, g := range all {
		sc, _ := s.scope(g.Scope)
		if g.Requester == p.SlackID || security || (sc != nil && policy.CanApprove(sc, p)) {
			out = append(out, g)
		}
	}
	return out, nil
}

// Explain is a dry run for target on scope, in mrkdwn: whether target may
// request it, the evidence needed, who approves, how it is delivered, and
// whether the checks that need no argument (on call) pass now. Nothing is
// stored. asker may explain themself; approvers of the scope and Platform
// Security may explain anyone.
func (s *Service) Explain(ctx context.Context, asker, target policy.Person, scope string) (string, error) {
	sc, ok := s.scope(strings.TrimSpace(scope))
	if !ok {
		names := make([]string, 0, len(s.Config.Scopes))
		for _, c := range s.Config.Scopes {
			names = append(names, c.Name)
		}
		return "", userErr("scope", "%s is not a scope. Scopes: %s", Code(Truncate(scope, 40)), strings.Join(names, ", "))
	}
	self := asker.SlackID != "" && asker.SlackID == target.SlackID
	if !self && !policy.CanApprove(sc, asker) && !policy.PlatformSecurity(s.Config, asker) {
		return "", userErr("", "You may explain %s for yourself; only its approvers and Platform Security may explain it for others.", Code(sc.Name))
	}
	lines := []string{fmt.Sprintf("*%s for <@%s>*", Code(sc.Name), Escape(target.SlackID))}
	if sc.Description != "" {
		lines = append(lines, Escape(sc.Description))
	}
	wouldPass := true
	switch {
	case policy.Refusal(target) != nil:
		lines = append(lines, ":x: Cannot request: "+Escape(policy.Refusal(target).Error()))
		wouldPass = false
	case !policy.Eligible(sc, target):
		lines = append(lines, ":x: Not eligible: not among "+peopleText(sc.Eligible))
		wouldPass = false
	default:
		lines = append(lines, ":white_check_mark: Eligible")
	}
	if sc.Disabled {
		lines = append(lines, ":x: Switched off: "+Escape(sc.DisabledReason))
		wouldPass = false
	}
	lines = append(lines, fmt.Sprintf("Maximum TTL %s; delivered as %s%s.", config.Duration(sc.MaxTTL.D()), sc.Delivery,
		map[bool]string{true: "; ends when its incident resolves", false: ""}[sc.EndsWithIncident]))
	var needsArg []string
	for _, kind := range sc.Evidence {
		switch kind {
		case config.EvidenceJira:
			lines = append(lines, fmt.Sprintf("• *Jira*: `--ticket %s-123`, in project %s, with owner, scope (naming %s), justification and a future expiry, approved by a Security Lead other than the requester.",
				projectOr(s.Config), projectOr(s.Config), Code(sc.Name)))
			needsArg = append(needsArg, "an approved ticket")
		case config.EvidenceIncident:
			lines = append(lines, "• *PagerDuty incident*: `--incident`, triggered or acknowledged, on a service of the configured escalation policies or assigned to the requester.")
			needsArg = append(needsArg, "an open incident")
		case config.EvidenceApproval:
			lines = append(lines, "• *Approval*: a click by one of "+peopleText(sc.Approvers)+" (never the requester).")
			needsArg = append(needsArg, "an approver's click")
		case config.EvidenceOnCall:
			line := "• *PagerDuty on-call*: on call now on a configured escalation policy. "
			switch {
			case s.OnCall == nil:
				line += ":warning: PagerDuty is not configured: cannot be checked."
				wouldPass = false
			case target.Email == "":
				line += ":x: Slack shows no e-mail for this person."
				wouldPass = false
			default:
				cctx, cancel := context.WithTimeout(ctx, s.checkTimeout())
				on, detail, _, err := s.OnCall.OnCallNow(cctx, target.Email)
				cancel()
				switch {
				case err != nil:
					line += ":warning: PagerDuty could not be checked: " + Escape(errText(err))
					wouldPass = false
				case on:
					line += ":white_check_mark: on call now"
				default:
					line += ":x: not on call now"
					wouldPass = false
				}
				if detail != "" {
					line += " (" + Escape(detail) + ")"
				}
			}
			lines = append(lines, line)
		}
	}
	if !hasEvidence(sc, config.EvidenceApproval) {
		lines = append(lines, "No approver click: the evidence is the approval.")
	}
	verdict := "*Would pass now*: "
	switch {
	case !wouldPass:
		verdict += "no."
	case len(needsArg) > 0:
		verdict += "yes, given " + strings.Join(needsArg, ", ") + "."
	default:
		verdict += "yes."
	}
	lines = append(lines, verdict)
	return strings.Join(lines, "\n"), nil
}
