package config

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
)

// MinAuditKeyLen is the shortest SECRETBOT_AUDIT_KEY accepted, in bytes:
// the key of an HMAC-SHA256 chain should be as long as the hash.
const MinAuditKeyLen = 32

// Messages about environment variables never repeat a value: any of them
// may be a credential, and a URL may carry a password.

func checkCreds(c Credentials, p *collector) {
	if c.VaultAddr == "" {
		p.add("VAULT_ADDR", "required: the Vault server's address (it has no default)", "an http(s) URL such as https://vault.example.com:8200")
	}
	for _, u := range []struct{ name, v string }{
		{"VAULT_ADDR", c.VaultAddr}, {"SLACK_API_URL", c.SlackAPIURL},
		{"PAGERDUTY_API_URL", c.PagerDutyAPIURL}, {"JIRA_URL", c.JiraURL},
	} {
		if u.v != "" {
			checkURL(u.name, u.v, p)
		}
	}

	prefix("SLACK_APP_TOKEN", c.SlackAppToken, "xapp-", "the app-level token with connections:write, starting xapp-", p)
	prefix("SLACK_BOT_TOKEN", c.SlackBotToken, "xoxb-", "the bot token, starting xoxb-", p)

	switch {
	case c.VaultToken != "":
	case c.VaultRoleID != "" && c.VaultSecretID != "":
	case c.VaultRoleID != "":
		p.add("VAULT_SECRET_ID", "required with VAULT_ROLE_ID for AppRole login", "the AppRole secret ID")
	case c.VaultSecretID != "":
		p.add("VAULT_ROLE_ID", "required with VAULT_SECRET_ID for AppRole login", "the AppRole role ID")
	default:
		p.add("VAULT_TOKEN", "no Vault credentials: set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID",
			"a Vault token, or an AppRole role ID and secret ID")
	}
	if c.VaultCACert != "" {
		if _, err := os.Stat(c.VaultCACert); err != nil {
			p.add("VAULT_CACERT", "cannot read the CA certificate file "+c.VaultCACert, "a PEM file path")
		}
	}

	checkJira(c, p)
	checkAuditKey(c.AuditKey, p)
}

func checkURL(name, v string, p *collector) {
	u, err := url.Parse(v)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		p.add(name, "is not an http(s) URL", "an absolute URL starting https:// or http://")
	case u.User != nil:
		p.add(name, "must not carry a user name or password", "a URL without user:password@; credentials have their own variables")
	}
}

// prefix checks a required token by its prefix, naming a mix-up (such as
// the two Slack tokens swapped) by the well-known prefix only.
func prefix(name, v, want, what string, p *collector) {
	if v == "" {
		p.add(name, "required", what)
		return
	}
	if strings.HasPrefix(v, want) {
		return
	}
	msg := "does not start with " + want
	for _, k := range []struct{ pre, is string }{
		{"xapp-", "an app-level token (xapp-)"}, {"xoxb-", "a bot token (xoxb-)"},
		{"xoxp-", "a user token (xoxp-)"}, {"xoxe", "a token-rotation token (xoxe)"},
	} {
		if strings.HasPrefix(v, k.pre) {
			msg += "; it is " + k.is
			break
		}
	}
	p.add(name, msg, what)
}

func checkJira(c Credentials, p *collector) {
	basic := c.JiraEmail != "" || c.JiraAPIToken != ""
	switch {
	case c.JiraPAT != "" && basic:
		p.add("JIRA_PAT", "set either JIRA_PAT or JIRA_EMAIL and JIRA_API_TOKEN, not both",
			"JIRA_PAT (Data Center), or JIRA_EMAIL and JIRA_API_TOKEN (Cloud)")
	case c.JiraEmail != "" && c.JiraAPIToken == "":
		p.add("JIRA_API_TOKEN", "required with JIRA_EMAIL", "the API token of the JIRA_EMAIL account")
	case c.JiraAPIToken != "" && c.JiraEmail == "":
		p.add("JIRA_EMAIL", "required with JIRA_API_TOKEN", "the e-mail of the account the API token belongs to")
	}
	hasCreds := c.JiraPAT != "" || basic
	switch {
	case c.JiraURL == "" && hasCreds:
		p.add("JIRA_URL", "required when Jira credentials are set", "the Jira base URL such as https://example.atlassian.net")
	case c.JiraURL != "" && !hasCreds:
		p.add("JIRA_URL", "is set but no Jira credentials are", "JIRA_PAT, or JIRA_EMAIL and JIRA_API_TOKEN, beside JIRA_URL")
	}
}

func checkAuditKey(k string, p *collector) {
	switch {
	case k == "":
		p.add("SECRETBOT_AUDIT_KEY", "required: the key of the audit log's hash chain", "at least 32 bytes, e.g. from: openssl rand -hex 32")
	case len(k) < MinAuditKeyLen:
		p.add("SECRETBOT_AUDIT_KEY", fmt.Sprintf("is %d bytes; at least %d are needed", len(k), MinAuditKeyLen),
			"at least 32 bytes, e.g. from: openssl rand -hex 32")
	}
}

// validateSources disables scopes whose evidence needs an integration
// without credentials, and checks the settings of the integrations that are
// configured and used.
func validateSources(c *Config, p *collector) {
	var oncall, jira []string
	for i := range c.Scopes {
		s := &c.Scopes[i]
		var why []string
		if slices.Contains(s.Evidence, EvidenceJira) {
			jira = append(jira, show(s.Name))
			if !c.JiraEnabled() {
				why = append(why, "needs Jira: JIRA_URL with JIRA_PAT, or JIRA_EMAIL and JIRA_API_TOKEN, is not set")
			}
		}
		if slices.Contains(s.Evidence, EvidenceOnCall) || slices.Contains(s.Evidence, EvidenceIncident) {
			if slices.Contains(s.Evidence, EvidenceOnCall) {
				oncall = append(oncall, show(s.Name))
			}
			if !c.PagerDutyEnabled() {
				why = append(why, "needs PagerDuty: PAGERDUTY_TOKEN is not set")
			}
		}
		if len(why) > 0 {
			s.Disabled, s.DisabledReason = true, strings.Join(why, "; ")
		}
	}
	if c.PagerDutyEnabled() && len(oncall) > 0 && len(c.PagerDuty.EscalationPolicies) == 0 {
		p.add("pagerduty.escalation_policies", "required: on-call evidence is used by scope "+strings.Join(oncall, ", "),
			"a list of PagerDuty escalation policy IDs like PABC123")
	}
	if c.JiraEnabled() && len(jira) > 0 {
		if c.Jira.Project == "" {
			p.add("jira.project", "required: Jira evidence is used by scope "+strings.Join(jira, ", "), "a project key like SEC")
		}
		if len(c.Jira.SecurityLeads) == 0 {
			p.add("jira.security_leads", "required: Jira evidence is used by scope "+strings.Join(jira, ", "),
				"a list of Jira account IDs, usernames or e-mails")
		}
	}
}
