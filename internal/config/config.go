// Package config loads secretbot's settings: non-secret values from a YAML
// file, credentials only from the environment.
package config

import "time"

// Config is the whole validated configuration. Credentials live in Creds and
// never come from the file.
type Config struct {
	Slack     Slack     `yaml:"slack"`
	Vault     Vault     `yaml:"vault"`
	PagerDuty PagerDuty `yaml:"pagerduty"`
	Jira      Jira      `yaml:"jira"`
	Storage   Storage   `yaml:"storage"`
	Ops       Ops       `yaml:"ops"`
	Runner    Runner    `yaml:"runner"`
	Scopes    []Scope   `yaml:"scopes"`
	Inventory Inventory `yaml:"inventory"`
	Rotation  Rotation  `yaml:"rotation"`
	Schedule  Schedule  `yaml:"schedule"`
	Backup    Backup    `yaml:"backup"`
	Limits    Limits    `yaml:"limits"`

	// Creds is filled from the environment by Load.
	Creds Credentials `yaml:"-"`
}

// Slack holds the workspace-facing names.
type Slack struct {
	// Command is the slash command, with its leading slash (default "/secrets").
	Command string `yaml:"command"`
	// SecurityChannel receives notices and audit checkpoints (ID like C0123 or #name).
	SecurityChannel string `yaml:"security_channel"`
	// ApprovalsChannel receives approval cards (defaults to SecurityChannel).
	ApprovalsChannel string `yaml:"approvals_channel"`
	// PlatformSecurityGroup is the Slack user group (handle or ID) of Platform Security.
	PlatformSecurityGroup string `yaml:"platform_security_group"`
}

// Vault holds where grants come from.
type Vault struct {
	// Namespace is sent as X-Vault-Namespace (VAULT_NAMESPACE overrides it).
	Namespace string `yaml:"namespace"`
	// TokenRole is the token role grants are issued through.
	TokenRole string `yaml:"token_role"`
	// TokenRoleMaxTTL is the role's token_explicit_max_ttl; no scope may exceed it.
	TokenRoleMaxTTL Duration `yaml:"token_role_max_ttl"`
	// KVMount is the KV v2 mount holding inventoried secrets.
	KVMount string `yaml:"kv_mount"`
	// WrapTTL is the lifetime of a response-wrapping token (default 10m).
	WrapTTL Duration `yaml:"wrap_ttl"`
	// DeliveryLease is how long a token issued but not yet confirmed
	// delivered is left to its delivery before the bot presumes the delivery
	// lost (a crash), revokes the token and issues a fresh one (default 2m).
	DeliveryLease Duration `yaml:"delivery_lease"`
	// EntityAuthMount is the auth mount path (e.g. "oidc/") whose entity aliases
	// identify people for entity-group delivery, matched by e-mail.
	EntityAuthMount string `yaml:"entity_auth_mount"`
	// Reconcile is the drift reconciler's schedule and opt-in full scan.
	Reconcile Reconcile `yaml:"reconcile"`
}

// PagerDuty is optional; without a token the scopes needing it are disabled.
type PagerDuty struct {
	EscalationPolicies []string `yaml:"escalation_policies"`
	// MaxEscalationLevel, when > 0, only counts on-call entries up to that level.
	MaxEscalationLevel int `yaml:"max_escalation_level"`
	// IncidentPollInterval is how often bound incidents are checked (default 1m).
	IncidentPollInterval Duration `yaml:"incident_poll_interval"`
}

// Jira is optional; without credentials the scopes needing it are disabled.
type Jira struct {
	Project string `yaml:"project"`
	// SecurityLeads are Jira account ids (Cloud) or usernames/e-mails (Data Center).
	SecurityLeads []string `yaml:"security_leads"`
	// ApprovedStatuses count as approval when Service Management approvals are absent.
	ApprovedStatuses []string `yaml:"approved_statuses"`
	// Fields maps the ticket's custom fields (e.g. customfield_10050) to meanings.
	Fields JiraFields `yaml:"fields"`
	// IssueType is used for tickets the bot opens itself (default "Task").
	IssueType string `yaml:"issue_type"`
}

// JiraFields names the Jira fields that carry the playbook's request data.
type JiraFields struct {
	Owner         string `yaml:"owner"`
	Scope         string `yaml:"scope"`
	Justification string `yaml:"justification"`
	Expiry        string `yaml:"expiry"`
}

// Storage is the embedded database.
type Storage struct {
	Path string `yaml:"path"`
}

// Ops is the health and metrics listener.
type Ops struct {
	// Listen is host:port (default 127.0.0.1:9090); empty host is refused
	// unless written explicitly as 0.0.0.0.
	Listen   string `yaml:"listen"`
	LogLevel string `yaml:"log_level"`
}

// Runner tunes the Socket Mode worker pool.
type Runner struct {
	Workers         int      `yaml:"workers"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	HandlerTimeout  Duration `yaml:"handler_timeout"`
}

// Evidence kinds a scope can require.
const (
	EvidenceJira     = "jira"
	EvidenceOnCall   = "oncall"
	EvidenceIncident = "incident"
	EvidenceApproval = "approval"
)

// Delivery kinds.
const (
	DeliveryWrappedToken = "wrapped-token"
	DeliveryEntityGroup  = "entity-group"
)

// Scope is a named bundle of access people request.
type Scope struct {
	Name          string   `yaml:"name"`
	Description   string   `yaml:"description"`
	Tier          string   `yaml:"tier"`
	VaultPolicies []string `yaml:"vault_policies"`
	MaxTTL        Duration `yaml:"max_ttl"`
	Eligible      People   `yaml:"eligible"`
	Approvers     People   `yaml:"approvers"`
	Evidence      []string `yaml:"evidence"`
	// EndsWithIncident revokes the grant when its incident resolves.
	EndsWithIncident bool   `yaml:"ends_with_incident"`
	Delivery         string `yaml:"delivery"`
	// KVPaths lists the KV paths the scope's policies cover (for exposure reports).
	KVPaths []string `yaml:"kv_paths"`

	// Disabled is set by Load when an evidence source is not configured.
	Disabled       bool   `yaml:"-"`
	DisabledReason string `yaml:"-"`
}

// People names Slack users by ID, e-mail, or user group (handle or ID).
type People struct {
	Users  []string `yaml:"users"`
	Emails []string `yaml:"emails"`
	Groups []string `yaml:"groups"`
}

// Empty reports whether nobody is named.
func (p People) Empty() bool { return len(p.Users)+len(p.Emails)+len(p.Groups) == 0 }

// Credentials come only from the environment. Their String methods never
// print values.
type Credentials struct {
	SlackAppToken string
	SlackBotToken string
	SlackAPIURL   string

	VaultAddr     string
	VaultToken    string
	VaultRoleID   string
	VaultSecretID string
	VaultCACert   string

	PagerDutyToken  string
	PagerDutyAPIURL string

	JiraURL      string
	JiraEmail    string
	JiraAPIToken string
	JiraPAT      string

	AuditKey string
}

// Secrets returns every credential value that is set, for log redaction.
func (c Credentials) Secrets() []string {
	var out []string
	for _, s := range []string{c.SlackAppToken, c.SlackBotToken, c.VaultToken, c.VaultSecretID,
		c.PagerDutyToken, c.JiraAPIToken, c.JiraPAT, c.AuditKey} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// String hides every value.
func (c Credentials) String() string { return "config.Credentials{<redacted>}" }

// GoString hides every value from %#v.
func (c Credentials) GoString() string { return c.String() }

// PagerDutyEnabled reports whether PagerDuty checks can be made.
func (c *Config) PagerDutyEnabled() bool { return c.Creds.PagerDutyToken != "" }

// JiraEnabled reports whether Jira checks can be made.
func (c *Config) JiraEnabled() bool {
	return c.Creds.JiraURL != "" && (c.Creds.JiraPAT != "" || (c.Creds.JiraEmail != "" && c.Creds.JiraAPIToken != ""))
}

// Duration is a time.Duration that also accepts days ("7d").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
