package config

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// What each kind of value accepts; messages and docs/configuration.md use
// the same words.
const (
	acceptChannel   = "a channel ID like C0123ABC, or #name (lower case, digits, - and _)"
	acceptCommand   = "a slash command like /secrets (lower case, digits, - and _, up to 32 characters)"
	acceptGroup     = "a user group handle like platform-security or @platform-security, or its ID like S0123ABC"
	acceptUser      = "a Slack member ID like U0123ABC"
	acceptEmail     = "an e-mail address like alice@example.com"
	acceptScopeName = "lower case letters, digits and -, starting with a letter, 2 to 41 characters"
	acceptName      = "letters, digits, _, . and -"
	acceptPath      = "letters, digits, _, ., - and / between parts"
	acceptKVPath    = "a path inside the KV mount such as platform/*, with the globs * and + of Vault policies"
	acceptListen    = "host:port such as 127.0.0.1:9090, or 0.0.0.0:9090 for every interface"
	acceptLogLevel  = "debug, info, warn, error"
)

var (
	reChannelID   = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
	reChannelName = regexp.MustCompile(`^#[a-z0-9][a-z0-9_-]{0,79}$`)
	reCommand     = regexp.MustCompile(`^/[a-z0-9][a-z0-9_-]{0,31}$`)
	reGroup       = regexp.MustCompile(`^@?[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`)
	reUser        = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	reEmail       = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	reScopeName   = regexp.MustCompile(`^[a-z][a-z0-9-]{1,40}$`)
	reName        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	rePath        = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)
	reKVPath      = regexp.MustCompile(`^[A-Za-z0-9_.*+-]+(/[A-Za-z0-9_.*+-]+)*/?$`)
	rePDID        = regexp.MustCompile(`^P[A-Z0-9]{5,13}$`)
	reJiraProject = regexp.MustCompile(`^[A-Z][A-Z0-9_]{1,}$`)
	reJiraField   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
)

var (
	evidenceKinds  = []string{EvidenceJira, EvidenceOnCall, EvidenceIncident, EvidenceApproval}
	deliveryKinds  = []string{DeliveryWrappedToken, DeliveryEntityGroup}
	logLevels      = []string{"debug", "info", "warn", "error"}
	acceptEvidence = strings.Join(evidenceKinds, ", ")
	acceptDelivery = strings.Join(deliveryKinds, ", ")
)

// validate checks the file's values after defaults, normalising the few that
// have equivalent spellings (mount paths, log level case).
func validate(c *Config, p *collector) {
	validateSlack(&c.Slack, p)
	validateVault(c, p)
	validatePagerDuty(&c.PagerDuty, p)
	validateJira(&c.Jira, p)
	if strings.TrimSpace(c.Storage.Path) == "" {
		p.add("storage.path", "must not be empty", "a file path such as "+DefaultStoragePath)
	}
	validateOps(&c.Ops, p)
	validateRunner(&c.Runner, p)
	names := map[string]int{}
	for i := range c.Scopes {
		validateScope(c, i, names, p)
	}
	validateInventory(c, p)
	validateReconcile(c, p)
	validateRotation(c, p)
	validateSchedule(&c.Schedule, p)
	validateBackup(&c.Backup, p)
	validateLimits(&c.Limits, p)
}

func validateSlack(s *Slack, p *collector) {
	if !reCommand.MatchString(s.Command) {
		p.add("slack.command", fmt.Sprintf("%s is not a slash command", show(s.Command)), acceptCommand)
	}
	if s.SecurityChannel == "" {
		p.add("slack.security_channel", "required", acceptChannel)
	} else {
		channel("slack.security_channel", s.SecurityChannel, p)
		channel("slack.approvals_channel", s.ApprovalsChannel, p)
	}
	if s.PlatformSecurityGroup != "" && !reGroup.MatchString(s.PlatformSecurityGroup) {
		p.add("slack.platform_security_group", show(s.PlatformSecurityGroup)+" is not a user group", acceptGroup)
	}
}

func channel(key, v string, p *collector) {
	if !reChannelID.MatchString(v) && !reChannelName.MatchString(v) {
		p.add(key, show(v)+" is not a channel", acceptChannel)
	}
}

func validateVault(c *Config, p *collector) {
	v := &c.Vault
	v.Namespace = strings.Trim(v.Namespace, "/")
	if v.Namespace != "" && !rePath.MatchString(v.Namespace) {
		p.add("vault.namespace", show(v.Namespace)+" is not a namespace path", acceptPath)
	}
	switch {
	case v.TokenRole == "":
		p.add("vault.token_role", "required: grants are issued through this token role", acceptName)
	case !reName.MatchString(v.TokenRole):
		p.add("vault.token_role", show(v.TokenRole)+" is not a role name", acceptName)
	}
	if v.TokenRoleMaxTTL <= 0 {
		p.add("vault.token_role_max_ttl", "required: the token role's token_explicit_max_ttl, more than 0", DurationAccepted)
	}
	v.KVMount = strings.Trim(v.KVMount, "/")
	if !rePath.MatchString(v.KVMount) {
		p.add("vault.kv_mount", show(v.KVMount)+" is not a mount path", acceptPath)
	}
	positive("vault.wrap_ttl", v.WrapTTL, p)
	positive("vault.delivery_lease", v.DeliveryLease, p)
	if m := strings.Trim(v.EntityAuthMount, "/"); m != "" {
		if !rePath.MatchString(m) {
			p.add("vault.entity_auth_mount", show(v.EntityAuthMount)+" is not a mount path", acceptPath)
		}
		v.EntityAuthMount = m + "/" // Vault lists auth mounts with a trailing slash
	}
	var needs []string
	for _, s := range c.Scopes {
		if s.Delivery == DeliveryEntityGroup {
			needs = append(needs, show(s.Name))
		}
	}
	if len(needs) > 0 && v.EntityAuthMount == "" {
		p.add("vault.entity_auth_mount", "required: entity-group delivery is used by scope "+strings.Join(needs, ", "),
			"the auth mount people log in with, such as oidc/")
	}
}

func validatePagerDuty(d *PagerDuty, p *collector) {
	for i, id := range d.EscalationPolicies {
		if !rePDID.MatchString(id) {
			p.add(fmt.Sprintf("pagerduty.escalation_policies[%d]", i), show(id)+" is not an escalation policy ID",
				"a PagerDuty ID like PABC123")
		}
	}
	if d.MaxEscalationLevel < 0 {
		p.add("pagerduty.max_escalation_level", "must not be negative", "0 (every level) or a level from 1")
	}
	positive("pagerduty.incident_poll_interval", d.IncidentPollInterval, p)
}

func validateJira(j *Jira, p *collector) {
	if j.Project != "" && !reJiraProject.MatchString(j.Project) {
		p.add("jira.project", show(j.Project)+" is not a project key", "upper case letters, digits and _, like SEC")
	}
	for i, l := range j.SecurityLeads {
		if strings.TrimSpace(l) == "" {
			p.add(fmt.Sprintf("jira.security_leads[%d]", i), "must not be empty", "a Jira account ID, username or e-mail")
		}
	}
	for i, s := range j.ApprovedStatuses {
		if strings.TrimSpace(s) == "" {
			p.add(fmt.Sprintf("jira.approved_statuses[%d]", i), "must not be empty", "a Jira status name such as Approved")
		}
	}
	for key, f := range map[string]string{"owner": j.Fields.Owner, "scope": j.Fields.Scope,
		"justification": j.Fields.Justification, "expiry": j.Fields.Expiry} {
		if f != "" && !reJiraField.MatchString(f) {
			p.add("jira.fields."+key, show(f)+" is not a field ID", "a field ID such as customfield_10050 or duedate")
		}
	}
	if strings.TrimSpace(j.IssueType) == "" {
		p.add("jira.issue_type", "must not be empty", "an issue type name such as Task")
	}
}

func validateOps(o *Ops, p *collector) {
	host, port, err := net.SplitHostPort(o.Listen)
	switch {
	case err != nil:
		p.add("ops.listen", show(o.Listen)+" is not host:port", acceptListen)
	case host == "":
		p.add("ops.listen", "an empty host listens on every interface; write 0.0.0.0 if that is meant", acceptListen)
	default:
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			p.add("ops.listen", show(port)+" is not a port number", acceptListen)
		}
	}
	o.LogLevel = strings.ToLower(o.LogLevel)
	if !slices.Contains(logLevels, o.LogLevel) {
		p.add("ops.log_level", show(o.LogLevel)+" is not a log level", acceptLogLevel)
	}
}

func validateRunner(r *Runner, p *collector) {
	if r.Workers < 1 || r.Workers > 256 {
		p.add("runner.workers", fmt.Sprintf("%d is out of range", r.Workers), "a whole number from 1 to 256")
	}
	positive("runner.shutdown_timeout", r.ShutdownTimeout, p)
	positive("runner.handler_timeout", r.HandlerTimeout, p)
}

func validateScope(c *Config, i int, names map[string]int, p *collector) {
	s := &c.Scopes[i]
	at := func(k string) string { return fmt.Sprintf("scopes[%d].%s", i, k) }
	switch {
	case !reScopeName.MatchString(s.Name):
		p.add(at("name"), show(s.Name)+" is not a scope name", acceptScopeName)
	case names[s.Name] > 0:
		p.add(at("name"), fmt.Sprintf("%s is already the name of scopes[%d]", show(s.Name), names[s.Name]-1), "a name used once")
	default:
		names[s.Name] = i + 1
	}

	if len(s.VaultPolicies) == 0 {
		p.add(at("vault_policies"), "required: the Vault policies a grant carries", "a list of policy names")
	}
	for j, pol := range s.VaultPolicies {
		switch {
		case pol == "root":
			p.add(fmt.Sprintf("%s[%d]", at("vault_policies"), j), "the root policy is never granted", "a policy with only what the scope needs")
		case !reName.MatchString(pol):
			p.add(fmt.Sprintf("%s[%d]", at("vault_policies"), j), show(pol)+" is not a policy name", acceptName)
		}
	}

	maxTTL := c.Vault.TokenRoleMaxTTL
	switch {
	case s.MaxTTL <= 0:
		p.add(at("max_ttl"), "required: how long a grant may last, more than 0", DurationAccepted)
	case maxTTL > 0 && s.MaxTTL > maxTTL:
		p.add(at("max_ttl"), fmt.Sprintf("%s is more than vault.token_role_max_ttl (%s)", s.MaxTTL, maxTTL),
			"a duration up to "+maxTTL.String())
	}

	people(at("eligible"), s.Eligible, p)
	if s.Eligible.Empty() {
		p.add(at("eligible"), "names nobody, so nobody could request the scope", "users, emails and/or groups")
	}
	people(at("approvers"), s.Approvers, p)

	if len(s.Evidence) == 0 {
		p.add(at("evidence"), "required: at least one kind of evidence", acceptEvidence)
	}
	for j, e := range s.Evidence {
		k := fmt.Sprintf("%s[%d]", at("evidence"), j)
		switch {
		case !slices.Contains(evidenceKinds, e):
			p.add(k, show(e)+" is not a kind of evidence", acceptEvidence)
		case slices.Index(s.Evidence, e) < j:
			p.add(k, show(e)+" is listed twice", acceptEvidence)
		}
	}
	if slices.Contains(s.Evidence, EvidenceApproval) && s.Approvers.Empty() {
		p.add(at("approvers"), "required: the scope needs approval but names no approvers", "users, emails and/or groups")
	}
	if s.EndsWithIncident && !slices.Contains(s.Evidence, EvidenceIncident) {
		p.add(at("ends_with_incident"), "needs incident in evidence, or there is no incident to end with",
			"false, or add incident to evidence")
	}
	if !slices.Contains(deliveryKinds, s.Delivery) {
		p.add(at("delivery"), show(s.Delivery)+" is not a delivery", acceptDelivery)
	}
	for j, kv := range s.KVPaths {
		if !reKVPath.MatchString(kv) {
			p.add(fmt.Sprintf("%s[%d]", at("kv_paths"), j), show(kv)+" is not a KV path", acceptKVPath)
		}
	}
}

func people(key string, pp People, p *collector) {
	for i, u := range pp.Users {
		if !reUser.MatchString(u) {
			p.add(fmt.Sprintf("%s.users[%d]", key, i), show(u)+" is not a Slack member ID", acceptUser)
		}
	}
	for i, e := range pp.Emails {
		if !reEmail.MatchString(e) {
			p.add(fmt.Sprintf("%s.emails[%d]", key, i), show(e)+" is not an e-mail address", acceptEmail)
		}
	}
	for i, g := range pp.Groups {
		if !reGroup.MatchString(g) {
			p.add(fmt.Sprintf("%s.groups[%d]", key, i), show(g)+" is not a user group", acceptGroup)
		}
	}
}

func positive(key string, d Duration, p *collector) {
	if d <= 0 {
		p.add(key, "must be more than 0", DurationAccepted)
	}
}

// show quotes a value from the file for a message. Values that looked like
// credentials were dropped before validation, so what is left can be shown.
func show(v string) string { return quote(v) }
