package config

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"time"
)

// Defaults applied by Load to keys left out of the file.
const (
	DefaultCommand              = "/secrets"
	DefaultWrapTTL              = 10 * time.Minute
	DefaultDeliveryLease        = 2 * time.Minute
	DefaultKVMount              = "kv"
	DefaultIncidentPollInterval = time.Minute
	DefaultStoragePath          = "secretbot.db"
	DefaultListen               = "127.0.0.1:9090"
	DefaultLogLevel             = "info"
	DefaultWorkers              = 8
	DefaultShutdownTimeout      = 20 * time.Second
	DefaultHandlerTimeout       = 60 * time.Second
	DefaultJiraIssueType        = "Task"
	DefaultSlackAPIURL          = "https://slack.com/api"
	DefaultPagerDutyAPIURL      = "https://api.pagerduty.com"
)

// Load reads the YAML file at path (strictly: unknown keys are problems),
// applies defaults, reads credentials from getenv and validates everything
// `run` and `check` need. An empty path falls back to SECRETBOT_CONFIG; a nil
// getenv means os.Getenv.
//
// Any problem makes Load return a *Problems listing all of them (each with
// its key path or variable name and what is accepted) and a nil Config.
// Scopes whose evidence needs an integration without credentials are
// returned with Disabled set and DisabledReason saying what is missing.
func Load(path string, getenv func(string) string) (*Config, error) {
	return load(path, getenv, true)
}

// LoadForAudit is Load for `audit verify`: the file is read as strictly,
// but only storage.path and SECRETBOT_AUDIT_KEY must be valid, so the audit
// log can be checked on a machine without Slack or Vault credentials.
func LoadForAudit(path string, getenv func(string) string) (*Config, error) {
	return load(path, getenv, false)
}

func load(path string, getenv func(string) string, full bool) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	p := &collector{}
	cfg := &Config{}
	seen, ok := readFile(path, getenv, cfg, p)
	return finish(cfg, seen, ok, p, getenv, full)
}

// finish completes a load once the file is decoded (ok false: nothing
// usable was read): credentials, defaults, validation.
func finish(cfg *Config, seen map[string]bool, ok bool, p *collector, getenv func(string) string, full bool) (*Config, error) {
	cfg.Creds = readCreds(getenv)
	if ns := strings.TrimSpace(getenv("VAULT_NAMESPACE")); ns != "" {
		cfg.Vault.Namespace = ns
	}
	if ok {
		applyDefaults(cfg, seen)
	}
	if full {
		if ok {
			validate(cfg, p)
		}
		checkCreds(cfg.Creds, p)
		if ok {
			validateSources(cfg, p)
		}
	} else {
		if ok && strings.TrimSpace(cfg.Storage.Path) == "" {
			p.add("storage.path", "must not be empty", "a file path such as "+DefaultStoragePath)
		}
		checkAuditKey(cfg.Creds.AuditKey, p)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// readFile reads and decodes the file; ok is false when there was nothing
// usable to validate (missing, unreadable, not YAML).
func readFile(path string, getenv func(string) string, cfg *Config, p *collector) (map[string]bool, bool) {
	if path == "" {
		path = getenv("SECRETBOT_CONFIG")
	}
	if path == "" {
		p.add("", "no config file given (set --config or SECRETBOT_CONFIG)", "")
		return nil, false
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.add("", "config file not found: "+path+" (set --config or SECRETBOT_CONFIG)", "")
		return nil, false
	case err != nil:
		p.add("", "cannot read config file: "+err.Error(), "")
		return nil, false
	}
	return parseFile(path, data, cfg, p)
}

// applyDefaults fills keys left out. Text keys written empty also get their
// default; numbers and durations written as 0 are kept so that validation
// refuses them rather than silently replacing them.
func applyDefaults(c *Config, seen map[string]bool) {
	str := func(s *string, def string) {
		if strings.TrimSpace(*s) == "" {
			*s = def
		}
	}
	dur := func(key string, d *Duration, def time.Duration) {
		if !seen[key] {
			*d = Duration(def)
		}
	}
	str(&c.Slack.Command, DefaultCommand)
	str(&c.Slack.ApprovalsChannel, c.Slack.SecurityChannel)
	str(&c.Vault.KVMount, DefaultKVMount)
	dur("vault.wrap_ttl", &c.Vault.WrapTTL, DefaultWrapTTL)
	dur("vault.delivery_lease", &c.Vault.DeliveryLease, DefaultDeliveryLease)
	dur("pagerduty.incident_poll_interval", &c.PagerDuty.IncidentPollInterval, DefaultIncidentPollInterval)
	str(&c.Jira.IssueType, DefaultJiraIssueType)
	if !seen["jira.approved_statuses"] {
		c.Jira.ApprovedStatuses = []string{"Approved"}
	}
	str(&c.Storage.Path, DefaultStoragePath)
	str(&c.Ops.Listen, DefaultListen)
	str(&c.Ops.LogLevel, DefaultLogLevel)
	if !seen["runner.workers"] {
		c.Runner.Workers = DefaultWorkers
	}
	dur("runner.shutdown_timeout", &c.Runner.ShutdownTimeout, DefaultShutdownTimeout)
	dur("runner.handler_timeout", &c.Runner.HandlerTimeout, DefaultHandlerTimeout)
	defaultLimits(&c.Limits, seen)
	for i := range c.Scopes {
		str(&c.Scopes[i].Delivery, DeliveryWrappedToken)
	}
	applyInventoryDefaults(c, seen)
	applyBackupDefaults(c, seen)
	applyReconcileDefaults(c, seen)
}

// readCreds takes every credential from the environment. Surrounding
// whitespace is dropped: values read from mounted files often end in a
// newline. URLs lose a trailing slash so callers can append paths.
func readCreds(getenv func(string) string) Credentials {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	url := func(k, def string) string {
		v := env(k)
		if v == "" {
			v = def
		}
		return strings.TrimRight(v, "/")
	}
	return Credentials{
		SlackAppToken:   env("SLACK_APP_TOKEN"),
		SlackBotToken:   env("SLACK_BOT_TOKEN"),
		SlackAPIURL:     url("SLACK_API_URL", DefaultSlackAPIURL),
		VaultAddr:       url("VAULT_ADDR", ""),
		VaultToken:      env("VAULT_TOKEN"),
		VaultRoleID:     env("VAULT_ROLE_ID"),
		VaultSecretID:   env("VAULT_SECRET_ID"),
		VaultCACert:     env("VAULT_CACERT"),
		PagerDutyToken:  env("PAGERDUTY_TOKEN"),
		PagerDutyAPIURL: url("PAGERDUTY_API_URL", DefaultPagerDutyAPIURL),
		JiraURL:         url("JIRA_URL", ""),
		JiraEmail:       env("JIRA_EMAIL"),
		JiraAPIToken:    env("JIRA_API_TOKEN"),
		JiraPAT:         env("JIRA_PAT"),
		AuditKey:        env("SECRETBOT_AUDIT_KEY"),
	}
}

// Scope returns the scope with the given name.
func (c *Config) Scope(name string) (*Scope, bool) {
	for i := range c.Scopes {
		if c.Scopes[i].Name == name {
			return &c.Scopes[i], true
		}
	}
	return nil, false
}
