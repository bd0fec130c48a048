package accesstest

import (
	"time"

	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/policy"
)

// People of the Lumi fixture.
var (
	// Ana is a Platform Security engineer and SRE: eligible for every scope.
	Ana = policy.Person{SlackID: "UANA", Email: "ana@lumi.example", Name: "ana", Groups: []string{"platsec", "sre"}}
	// Lee is a Security Lead and an approver of the read/write scopes.
	Lee = policy.Person{SlackID: "ULEE", Email: "lee@lumi.example", Name: "lee", Groups: []string{"security-leads"}}
	// Kim is another approver.
	Kim = policy.Person{SlackID: "UKIM", Email: "kim@lumi.example", Name: "kim", Groups: []string{"security-leads"}}
	// Bob is an SRE: eligible for platform-ro only, approves nothing.
	Bob = policy.Person{SlackID: "UBOB", Email: "bob@lumi.example", Name: "bob", Groups: []string{"sre"}}
	// Sec is in Platform Security (may revoke and see every grant).
	Sec = policy.Person{SlackID: "USEC", Email: "sec@lumi.example", Name: "sec", Groups: []string{"platform-security"}}
	// Gus is a guest account.
	Gus = policy.Person{SlackID: "UGUS", Email: "gus@partner.example", Name: "gus", Guest: true, Groups: []string{"platsec"}}
)

// Jira identities of the fixture (account ids).
const (
	JiraAna = "acc-ana"
	JiraLee = "acc-lee"
	JiraBob = "acc-bob"
)

// VaultAddr is the fixture's VAULT_ADDR.
const VaultAddr = "https://vault.lumi.example:8200"

// Lumi returns a configuration like Lumi's playbook:
//   - platform-rw: Jira + approver click, 8h, entity-group delivery;
//   - payments-rw: Jira + approver click, 8h, wrapped token;
//   - platform-ro: on call + incident, 4h, wrapped token, ends with the incident;
//   - legacy-ro: switched off (as Load does when an integration is missing).
func Lumi() *config.Config {
	cfg := &config.Config{
		Slack: config.Slack{Command: "/secrets", SecurityChannel: "CSEC", ApprovalsChannel: "CAPPROVALS",
			PlatformSecurityGroup: "platform-security"},
		Vault: config.Vault{TokenRole: "secretbot", TokenRoleMaxTTL: config.Duration(24 * time.Hour),
			WrapTTL: config.Duration(10 * time.Minute), EntityAuthMount: "oidc/"},
		PagerDuty: config.PagerDuty{EscalationPolicies: []string{"PPOLICY"}, IncidentPollInterval: config.Duration(time.Minute)},
		Jira: config.Jira{Project: "SEC", SecurityLeads: []string{JiraLee, "kim@lumi.example"},
			ApprovedStatuses: []string{"Approved"},
			Fields: config.JiraFields{Owner: "customfield_10001", Scope: "customfield_10002",
				Justification: "customfield_10003", Expiry: "customfield_10004"},
			IssueType: "Task"},
		Scopes: []config.Scope{
			{Name: "platform-rw", Description: "Platform read/write", Tier: "rw", VaultPolicies: []string{"platform-rw"},
				MaxTTL: config.Duration(8 * time.Hour), Eligible: config.People{Groups: []string{"platsec"}},
				Approvers: config.People{Users: []string{"ULEE", "UKIM"}},
				Evidence:  []string{config.EvidenceJira, config.EvidenceApproval}, Delivery: config.DeliveryEntityGroup},
			{Name: "payments-rw", Description: "Payments read/write", Tier: "rw", VaultPolicies: []string{"payments-rw", "payments-audit"},
				MaxTTL: config.Duration(8 * time.Hour), Eligible: config.People{Emails: []string{"ana@lumi.example"}},
				Approvers: config.People{Groups: []string{"security-leads"}},
				Evidence:  []string{config.EvidenceJira, config.EvidenceApproval}, Delivery: config.DeliveryWrappedToken},
			{Name: "platform-ro", Description: "Platform read-only during an incident", Tier: "ro", VaultPolicies: []string{"platform-ro"},
				MaxTTL: config.Duration(4 * time.Hour), Eligible: config.People{Groups: []string{"sre"}},
				Approvers: config.People{Groups: []string{"security-leads"}},
				Evidence:  []string{config.EvidenceOnCall, config.EvidenceIncident}, EndsWithIncident: true,
				Delivery: config.DeliveryWrappedToken},
			{Name: "legacy-ro", VaultPolicies: []string{"legacy"}, MaxTTL: config.Duration(time.Hour),
				Eligible: config.People{Groups: []string{"sre"}}, Evidence: []string{config.EvidenceOnCall},
				Delivery: config.DeliveryWrappedToken, Disabled: true, DisabledReason: "PagerDuty is not configured (PAGERDUTY_TOKEN)"},
		},
	}
	cfg.Creds.VaultAddr = VaultAddr
	return cfg
}
