package harness

import (
	"os"

	"gopkg.in/yaml.v3"
)

// configDoc is the bot's configuration: the Lumi example pointed at the
// fakes, with a short incident poll so tests do not wait.
func (h *Harness) configDoc() map[string]any {
	people := func(groups ...string) map[string]any { return map[string]any{"groups": groups} }
	return map[string]any{
		"slack": map[string]any{
			"command":                 "/secrets",
			"security_channel":        SecurityChannel,
			"platform_security_group": PlatformSecurityGroup,
		},
		"vault": map[string]any{
			"token_role":         "secretbot",
			"token_role_max_ttl": "12h",
			"kv_mount":           "kv",
			"wrap_ttl":           "10m",
			"entity_auth_mount":  "userpass/",
		},
		"pagerduty": map[string]any{
			"escalation_policies":    []string{EscalationPolicy},
			"max_escalation_level":   1,
			"incident_poll_interval": "2s",
		},
		"jira": map[string]any{
			"project":           JiraProject,
			"security_leads":    []string{Sam.Jira},
			"approved_statuses": []string{"Approved"},
			"fields": map[string]any{"owner": FieldOwner, "scope": FieldScope,
				"justification": FieldJustification, "expiry": FieldExpiry},
			"issue_type": "Task",
		},
		"storage": map[string]any{"path": h.DBPath},
		"ops":     map[string]any{"listen": h.OpsAddr, "log_level": "debug"},
		"runner":  map[string]any{"workers": 4, "shutdown_timeout": "5s", "handler_timeout": "30s"},
		"scopes": []any{
			map[string]any{
				"name":           "platform-rw",
				"description":    "Read/write on the platform secrets",
				"tier":           "read-write",
				"vault_policies": []string{"platform-rw"},
				"max_ttl":        "8h",
				"eligible":       people(PlatformSecurityGroup),
				"approvers":      people(PlatformSecurityGroup),
				"evidence":       []string{"jira", "approval"},
				"delivery":       "entity-group",
				"kv_paths":       []string{"platform/*"},
			},
			map[string]any{
				"name":               "platform-ro",
				"description":        "Read-only on the platform secrets during an incident",
				"tier":               "read-only",
				"vault_policies":     []string{"platform-ro"},
				"max_ttl":            "4h",
				"eligible":           people(SREGroup),
				"evidence":           []string{"oncall", "incident"},
				"ends_with_incident": true,
				"delivery":           "wrapped-token",
				"kv_paths":           []string{"platform/*"},
			},
		},
	}
}

// writeConfig writes the document (after Options.EditConfig) to ConfigPath.
func (h *Harness) writeConfig(edit func(map[string]any)) error {
	doc := h.configDoc()
	if edit != nil {
		edit(doc)
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(h.ConfigPath, b, 0o600)
}

// WriteConfig rewrites the configuration file (applied at the next start).
func (h *Harness) WriteConfig(edit func(doc map[string]any)) {
	h.t.Helper()
	if err := h.writeConfig(edit); err != nil {
		h.t.Fatalf("harness: write config: %v", err)
	}
}
