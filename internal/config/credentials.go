package config

import (
	"regexp"
	"strings"
)

// The file never holds a credential: these recognise one written there
// anyway, by the key's name or by the value's shape, so Load can refuse it
// and say which environment variable to use instead.

// credentialKey matches key names that say they hold a credential. Every
// such name is unknown to the schema (token_role is known and never gets
// here), so a match only changes the message.
var credentialKey = regexp.MustCompile(`(^|_)(tokens?|secrets?|secret_id|role_id|password|passwd|passphrase|pat|api_?key|audit_?key|private_?key|credentials?)(_|$)`)

// credentialValues are the shapes of the credentials secretbot uses. Slack
// and Vault prefixes are searched anywhere in the text (a token pasted into
// a description is still a leak); the legacy Vault "s." form only as a
// whole value, since "s." starts ordinary words.
var credentialValues = []struct {
	re  *regexp.Regexp
	env string
}{
	{regexp.MustCompile(`\bxapp-[0-9A-Za-z-]{4,}`), "SLACK_APP_TOKEN"},
	{regexp.MustCompile(`\bxox[a-z]-[0-9A-Za-z-]{4,}`), "SLACK_BOT_TOKEN"},
	{regexp.MustCompile(`\bhv[sbr]\.[0-9A-Za-z_-]{4,}`), "VAULT_TOKEN"},
	{regexp.MustCompile(`^[sb]\.[0-9A-Za-z]{20,}$`), "VAULT_TOKEN"},
	{regexp.MustCompile(`\bATATT[0-9A-Za-z_=-]{10,}`), "JIRA_API_TOKEN"},
}

// valueCredential reports the environment variable a value that looks like
// a credential belongs in, or "".
func valueCredential(v string) string {
	for _, c := range credentialValues {
		if c.re.MatchString(v) {
			return c.env
		}
	}
	return ""
}

// keyCredential reports, for a key named like a credential, the environment
// variable that carries it; "" when the name is not credential-like.
func keyCredential(path, key string) string {
	k := snake(key)
	if !credentialKey.MatchString(k) {
		return ""
	}
	where := strings.ToLower(join(path, k))
	switch {
	case strings.Contains(where, "audit"):
		return "SECRETBOT_AUDIT_KEY"
	case strings.Contains(where, "slack"):
		if strings.Contains(k, "app") {
			return "SLACK_APP_TOKEN"
		}
		return "SLACK_BOT_TOKEN"
	case strings.Contains(where, "vault"):
		switch {
		case strings.Contains(k, "secret_id"):
			return "VAULT_SECRET_ID"
		case strings.Contains(k, "role_id"):
			return "VAULT_ROLE_ID"
		}
		return "VAULT_TOKEN"
	case strings.Contains(where, "pagerduty"), strings.HasPrefix(where, "pd_"):
		return "PAGERDUTY_TOKEN"
	case strings.Contains(where, "jira"):
		if strings.Contains(k, "pat") {
			return "JIRA_PAT"
		}
		return "JIRA_API_TOKEN"
	}
	return "see docs/configuration.md, Environment"
}

// credentialMsg is the one message for a credential found in the file.
func credentialMsg(env string) string {
	return "credentials come only from the environment (" + env + ")"
}

// snake lower-cases a key and splits camelCase and dashes with "_", so
// "botToken" and "bot-token" read like "bot_token".
func snake(key string) string {
	var b strings.Builder
	var prev rune
	for _, r := range key {
		c := r
		switch {
		case r == '-':
			c = '_'
		case r >= 'A' && r <= 'Z':
			if (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9') {
				b.WriteByte('_')
			}
			c = r + 'a' - 'A'
		}
		b.WriteRune(c)
		prev = r
	}
	return b.String()
}
