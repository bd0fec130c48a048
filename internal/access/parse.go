package access

import (
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/policy"
)

// MaxReasonLen is the longest reason accepted, in characters.
const MaxReasonLen = 500

// MinTTL is the shortest grant accepted.
const MinTTL = time.Minute

// RequestArgs is a validated request. TTL is never zero after validation
// (an absent --ttl means the scope's maximum).
type RequestArgs struct {
	Scope    string
	TTL      time.Duration
	Ticket   string // "SEC-123", upper case
	Incident string // a PagerDuty id ("PABC123") or a number ("#1234")
	Reason   string
}

// RequestFields is a request as typed into the modal (or as flag values).
type RequestFields struct {
	Scope, TTL, Ticket, Incident, Reason string
}

// Accepted forms, repeated by the error messages. They are mrkdwn: Slack
// reads anything between angle brackets as a link or mention, so the
// placeholders' brackets are written as entities.
const (
	RequestUsage     = "request &lt;scope&gt; [--ttl 2h] [--ticket SEC-123] [--incident PABC123|#1234|URL] [--reason \"…\"]"
	acceptedFlags    = "--ttl, --ticket, --incident, --reason"
	acceptedIncident = "a PagerDuty incident id like PABC123, its number like #1234, or its URL (https://&lt;account&gt;.pagerduty.com/incidents/PABC123)"
)

var (
	incidentID = regexp.MustCompile(`^[A-Z0-9]{2,32}$`)
	incidentNo = regexp.MustCompile(`^#?([1-9][0-9]{0,11})$`)
	incPath    = regexp.MustCompile(`^/incidents/([A-Z0-9]{2,32})/?$`)
	digitsOnly = regexp.MustCompile(`^[0-9]+$`)
)

// ParseRequest reads the words after `request`:
//
//	<scope> [--ttl 2h] [--ticket SEC-123] [--incident PABC123|#1234|URL] [--reason "…"]
//
// Flags may come in any order, as "--flag value" or "--flag=value". Every
// refusal is a *UserError saying what is accepted (an unknown scope lists
// the scopes p may request).
func ParseRequest(args []string, cfg *config.Config, p policy.Person) (RequestArgs, error) {
	var f RequestFields
	seen := map[string]bool{}
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		name = strings.ToLower(name)
		var dst *string
		switch name {
		case "ttl":
			dst = &f.TTL
		case "ticket":
			dst = &f.Ticket
		case "incident":
			dst = &f.Incident
		case "reason":
			dst = &f.Reason
		default:
			return RequestArgs{}, userErr("", "unknown flag %s: accepted flags are %s (usage: %s)",
				Code(Truncate(a, 40)), acceptedFlags, RequestUsage)
		}
		if seen[name] {
			return RequestArgs{}, userErr(name, "--%s is given twice: give it once", name)
		}
		seen[name] = true
		if !hasValue {
			if i+1 >= len(args) {
				return RequestArgs{}, userErr(name, "--%s needs a value (usage: %s)", name, RequestUsage)
			}
			i++
			value = args[i]
		}
		*dst = value
	}
	switch len(positional) {
	case 0:
	case 1:
		f.Scope = positional[0]
	default:
		return RequestArgs{}, userErr("", "unexpected %s after the scope: name one scope, and put a reason with spaces in --reason \"…\" (usage: %s)",
			Code(Truncate(positional[1], 40)), RequestUsage)
	}
	return ParseRequestFields(cfg, p, f)
}

// ParseRequestFields validates a request typed as text (the modal's fields).
// The *UserError's Field names the field at fault.
func ParseRequestFields(cfg *config.Config, p policy.Person, f RequestFields) (RequestArgs, error) {
	a := RequestArgs{Scope: strings.TrimSpace(f.Scope), Reason: f.Reason}
	if s := strings.TrimSpace(f.TTL); s != "" {
		d, err := config.ParseDuration(s)
		if err != nil {
			return RequestArgs{}, userErr("ttl", "--ttl %s is not a duration: give %s", Code(Truncate(s, 40)), config.DurationAccepted)
		}
		if d == 0 {
			return RequestArgs{}, userErr("ttl", "--ttl must be at least %s", config.Duration(MinTTL))
		}
		a.TTL = d
	}
	a.Ticket = strings.TrimSpace(f.Ticket)
	a.Incident = strings.TrimSpace(f.Incident)
	return ValidateRequest(cfg, p, a)
}

// ValidateRequest checks a request against the configuration and the
// requester, and returns it normalised (ticket key upper case, incident
// reference reduced to an id or #number, TTL defaulted to the scope's
// maximum). Service.Request calls it again: a request is never trusted.
func ValidateRequest(cfg *config.Config, p policy.Person, a RequestArgs) (RequestArgs, error) {
	if err := policy.Refusal(p); err != nil {
		return RequestArgs{}, userErr("", "%s.", upperFirst(err.Error()))
	}
	sc, err := eligibleScope(cfg, p, a.Scope)
	if err != nil {
		return RequestArgs{}, err
	}
	a.Scope = sc.Name
	maxTTL := sc.MaxTTL.D()
	switch {
	case a.TTL == 0:
		a.TTL = maxTTL
	case a.TTL < 0 || a.TTL < MinTTL:
		return RequestArgs{}, userErr("ttl", "--ttl must be at least %s", config.Duration(MinTTL))
	case a.TTL > maxTTL:
		return RequestArgs{}, userErr("ttl", "--ttl %s is over the maximum for %s: at most %s",
			config.Duration(a.TTL), Code(sc.Name), config.Duration(maxTTL))
	}
	needs := func(kind string) bool { return hasEvidence(sc, kind) }

	a.Ticket = strings.ToUpper(strings.TrimSpace(a.Ticket))
	switch {
	case a.Ticket == "" && needs(config.EvidenceJira):
		return RequestArgs{}, userErr("ticket", "%s needs an approved Jira ticket: add --ticket %s-123", Code(sc.Name), projectOr(cfg))
	case a.Ticket != "" && !needs(config.EvidenceJira):
		return RequestArgs{}, userErr("ticket", "%s does not take a ticket: leave out --ticket", Code(sc.Name))
	case a.Ticket != "":
		if a.Ticket, err = ParseTicketKey(a.Ticket, cfg.Jira.Project); err != nil {
			return RequestArgs{}, err
		}
	}

	inc := strings.TrimSpace(a.Incident)
	switch {
	case inc == "" && needs(config.EvidenceIncident):
		return RequestArgs{}, userErr("incident", "%s needs an active PagerDuty incident: add --incident with %s", Code(sc.Name), acceptedIncident)
	case inc != "" && !needs(config.EvidenceIncident):
		return RequestArgs{}, userErr("incident", "%s is not bound to an incident: leave out --incident", Code(sc.Name))
	case inc != "":
		ref, ok := ParseIncidentRef(inc)
		if !ok {
			return RequestArgs{}, userErr("incident", "%s is not an incident reference: give %s", Code(Truncate(inc, 60)), acceptedIncident)
		}
		a.Incident = ref
	}

	a.Reason = strings.TrimSpace(a.Reason)
	if err := checkReason(a.Reason); err != nil {
		return RequestArgs{}, err
	}
	return a, nil
}

// ParseIncidentRef reduces an incident id ("PABC123"), number ("#1234",
// "1234") or URL (".../incidents/PABC123") to an id or "#number".
func ParseIncidentRef(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 300 {
		return "", false
	}
	if m := incidentNo.FindStringSubmatch(s); m != nil {
		return "#" + m[1], true
	}
	if strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.User != nil {
			return "", false
		}
		m := incPath.FindStringSubmatch(u.Path)
		if m == nil || digitsOnly.MatchString(m[1]) {
			// All digits is a number, never an id: refused here as it is
			// bare, so a reference always parses to itself.
			return "", false
		}
		return m[1], true
	}
	if !incidentID.MatchString(s) || digitsOnly.MatchString(s) {
		return "", false
	}
	return s, true
}

// checkReason refuses an over-long reason, control characters and invisible
// formatting characters (bidirectional overrides, zero-width characters).
func checkReason(r string) error {
	if !utf8.ValidString(r) {
		return userErr("reason", "the reason is not valid text: use plain characters")
	}
	if audit.LooksLikeCredential(r) {
		return userErr("reason", "the reason looks like it contains a token or key: never paste credentials into Slack (revoke that one now), and give the reason in words")
	}
	if n := utf8.RuneCountInString(r); n > MaxReasonLen {
		return userErr("reason", "the reason is %d characters long: at most %d are accepted", n, MaxReasonLen)
	}
	for _, c := range r {
		if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) {
			return userErr("reason", "the reason contains a control or invisible formatting character (%U): use one line of plain text, at most %d characters", c, MaxReasonLen)
		}
	}
	return nil
}

// eligibleScope finds scope name for p, refusing unknown, ineligible and
// disabled scopes with the list of what p may request.
func eligibleScope(cfg *config.Config, p policy.Person, name string) (*config.Scope, error) {
	var mine []string
	for _, s := range policy.EligibleScopes(cfg, p) {
		if !s.Disabled {
			mine = append(mine, s.Name)
		}
	}
	list := "none (ask Platform Security to make you eligible for a scope)"
	if len(mine) > 0 {
		list = strings.Join(mine, ", ")
	}
	if name == "" {
		return nil, userErr("scope", "name a scope. You may request: %s", list)
	}
	sc, ok := cfg.Scope(name)
	if !ok {
		sc, ok = cfg.Scope(strings.ToLower(name))
	}
	if !ok || !policy.Eligible(sc, p) {
		return nil, userErr("scope", "%s is not a scope you may request. You may request: %s", Code(Truncate(name, 40)), list)
	}
	if sc.Disabled {
		return nil, userErr("scope", "%s is switched off: %s. You may request: %s", Code(sc.Name), sc.DisabledReason, list)
	}
	return sc, nil
}

func hasEvidence(sc *config.Scope, kind string) bool {
	for _, e := range sc.Evidence {
		if e == kind {
			return true
		}
	}
	return false
}

func projectOr(cfg *config.Config) string {
	if cfg.Jira.Project != "" {
		return cfg.Jira.Project
	}
	return "PROJ"
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}
