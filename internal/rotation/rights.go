package rotation

import (
	"context"
	"strings"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/policy"
)

// IsRotator reports whether p is one of rotation.rotators (a full member).
func IsRotator(cfg *config.Config, p policy.Person) bool {
	rot := cfg.Rotators()
	if rot.Empty() {
		return false
	}
	return policy.Eligible(&config.Scope{Eligible: rot}, p)
}

// rotator checks, at the moment of acting, that p may do what (a phrase
// such as "rotate secrets"). With a Directory the person is looked up again
// in Slack (fail closed). A refusal is a *UserError, audited as refusedAct.
func (s *Service) rotator(ctx context.Context, p policy.Person, what, refusedAct, secret string) (policy.Person, error) {
	who := p
	if s.Directory != nil {
		if p.SlackID == "" {
			return p, s.audited(ctx, userErr("", "Slack did not say who you are, so nothing was done."),
				secretEvent(actorBot, refusedAct, audit.Refused, "no Slack user id", secret, nil))
		}
		fresh, err := s.Directory.Person(ctx, p.SlackID)
		if err != nil {
			ue := userErr("", "Slack could not say who you are right now (%s), so nothing was done. Try again in a moment.", access.Escape(errText(err)))
			return p, s.audited(ctx, ue, secretEvent(p.SlackID, refusedAct, audit.Refused, ue.Msg, secret, nil))
		}
		who = fresh
	}
	if err := policy.Refusal(who); err != nil {
		ue := userErr("", "%s: you cannot %s.", upperFirst(err.Error()), what)
		return who, s.audited(ctx, ue, secretEvent(who.SlackID, refusedAct, audit.Refused, ue.Msg, secret, nil))
	}
	if !IsRotator(s.Config, who) {
		ue := userErr("", "Only Platform Security may %s (rotation.rotators: %s).", what, peopleText(s.Config.Rotators()))
		return who, s.audited(ctx, ue, secretEvent(who.SlackID, refusedAct, audit.Refused, ue.Msg, secret, nil))
	}
	return who, nil
}

// peopleText names a People list for people: groups, users, e-mails.
func peopleText(p config.People) string {
	var parts []string
	for _, g := range p.Groups {
		parts = append(parts, "@"+access.Escape(strings.TrimPrefix(g, "@")))
	}
	for _, u := range p.Users {
		parts = append(parts, "<@"+u+">")
	}
	for _, e := range p.Emails {
		parts = append(parts, access.Escape(e))
	}
	if len(parts) == 0 {
		return "nobody is configured"
	}
	return strings.Join(parts, ", ")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
