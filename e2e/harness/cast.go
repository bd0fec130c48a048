package harness

import (
	"fmt"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakejira"
	"github.com/secretbot/secretbot/e2e/fakepd"
	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/vaulttest"
)

// Person is someone seeded in every harness, in the systems they appear in.
type Person struct {
	Slack string // Slack user id
	Name  string
	Email string
	PD    string // PagerDuty user id, if any
	Jira  string // Jira account id, if any
}

// The people every harness knows. Platform Security (user group
// platform-security) is Alice, Bob and Sam; the SREs (sre-oncall) are Carol,
// on call on PLUMI01 at level 1, and Dave, not on call. Sam is the Security
// Lead in Jira. Eve is a plain member, Gus a guest, Zed deactivated; Paula
// (harness/inventory.go) owns the payments secrets of the rotation scenarios.
var (
	Alice = Person{Slack: "U0ALICE", Name: "alice", Email: "alice@lumi.test", Jira: "acc-alice"}
	Bob   = Person{Slack: "U0BOB", Name: "bob", Email: "bob@lumi.test", Jira: "acc-bob"}
	Sam   = Person{Slack: "U0SAM", Name: "sam", Email: "sam@lumi.test", Jira: "acc-sam-lead"}
	Carol = Person{Slack: "U0CAROL", Name: "carol", Email: "carol@lumi.test", PD: "PCAROL"}
	Dave  = Person{Slack: "U0DAVE", Name: "dave", Email: "dave@lumi.test", PD: "PDAVE"}
	Eve   = Person{Slack: "U0EVE", Name: "eve", Email: "eve@lumi.test"}
	Gus   = Person{Slack: "U0GUS", Name: "gus", Email: "gus@partner.test"}
	Zed   = Person{Slack: "U0ZED", Name: "zed", Email: "zed@lumi.test"}
)

// Seeded names and ids.
const (
	SecurityChannel       = "C0SECURITY"
	PlatformSecurityGroup = "platform-security"
	PlatformSecurityID    = "S0PLATSEC"
	SREGroup              = "sre-oncall"
	SREGroupID            = "S0SREONCALL"
	EscalationPolicy      = "PLUMI01"
	PlatformService       = "PSVCPLAT"
	// OpenIncident is a triggered incident on the platform service, assigned to Carol.
	OpenIncident = "PINC0001"
	JiraProject  = "SEC"
	// Jira custom fields the config maps (owner, scope, justification, expiry).
	FieldOwner         = "customfield_10050"
	FieldScope         = "customfield_10051"
	FieldJustification = "customfield_10052"
	FieldExpiry        = "customfield_10053"
)

func (h *Harness) seed(vault bool) {
	for _, p := range []Person{Alice, Bob, Sam, Carol, Dave, Eve, Paula} {
		h.Slack.AddUser(fakeslack.User{ID: p.Slack, Name: p.Name, Email: p.Email})
	}
	h.Slack.AddUser(fakeslack.User{ID: Gus.Slack, Name: Gus.Name, Email: Gus.Email, IsRestricted: true})
	h.Slack.AddUser(fakeslack.User{ID: Zed.Slack, Name: Zed.Name, Email: Zed.Email, Deleted: true})
	h.Slack.AddGroup(PlatformSecurityGroup, PlatformSecurityID, Alice.Slack, Bob.Slack, Sam.Slack)
	h.Slack.AddGroup(SREGroup, SREGroupID, Carol.Slack, Dave.Slack)

	h.PD.AddService(PlatformService, "platform-api")
	h.PD.AddEscalationPolicy(EscalationPolicy, "Platform", PlatformService)
	h.PD.AddUser(fakepd.User{ID: Carol.PD, Name: "Carol SRE", Email: Carol.Email})
	h.PD.AddUser(fakepd.User{ID: Dave.PD, Name: "Dave SRE", Email: Dave.Email})
	h.PD.AddOnCall(Carol.PD, EscalationPolicy, 1)
	h.PD.AddIncident(fakepd.Incident{ID: OpenIncident, Title: "platform-api 5xx", ServiceID: PlatformService,
		PolicyID: EscalationPolicy, Assignees: []string{Carol.PD}})

	h.Jira.AddProject(JiraProject, "Security")
	for _, p := range []Person{Alice, Bob, Sam} {
		h.Jira.AddUser(jiraUser(p))
	}
	if vault {
		SeedVault(h.t, h.Vault)
	}
}

// SeedVault gives the people who may hold entity-group grants (Alice, Bob,
// Sam) their Vault identities. Start does it for a Vault of its own; a
// Vault shared through Options.Vault is seeded once by its owner.
func SeedVault(t testing.TB, v *vaulttest.Vault) {
	t.Helper()
	for _, p := range []Person{Alice, Bob, Sam} {
		v.AddPerson(t, p.Email)
	}
}

func jiraUser(p Person) fakejira.User {
	return fakejira.User{AccountID: p.Jira, Name: p.Name, DisplayName: p.Name, Email: p.Email}
}

// AddApprovedTicket adds a Jira request for scope by requester, carrying
// owner, scope, justification and expiry (a date), moved to Approved by
// Sam (the Security Lead) with a Service Management approval by Sam.
func (h *Harness) AddApprovedTicket(key string, requester Person, scope string, expiry time.Time) {
	h.Jira.AddIssue(fakejira.Issue{Key: key, Summary: scope + " for " + requester.Name, Reporter: jiraUser(requester),
		Fields: map[string]any{FieldOwner: requester.Email, FieldScope: scope,
			FieldJustification: "rotate the platform database credentials", FieldExpiry: expiry.Format("2006-01-02")}})
	at := time.Now().Add(-10 * time.Minute)
	h.Jira.Transition(key, "Approved", "done", jiraUser(Sam), at)
	h.Jira.SetApprovals(key, fakejira.Approval{Name: "Security Lead approval", FinalDecision: "approved", Completed: at,
		Approvers: []fakejira.Approver{{User: jiraUser(Sam), Decision: "approved"}}})
}

// Crowd returns n people beyond the cast (Slack ids U0LOAD001..., e-mails
// loadNNN@lumi.test), for load scenarios; AddPeople seeds them.
func Crowd(n int) []Person {
	out := make([]Person, n)
	for i := range out {
		name := fmt.Sprintf("load%03d", i+1)
		out[i] = Person{Slack: fmt.Sprintf("U0LOAD%03d", i+1), Name: name, Email: name + "@lumi.test"}
	}
	return out
}

// AddPeople adds people to the fake Slack directory.
func (h *Harness) AddPeople(ps []Person) {
	for _, p := range ps {
		h.Slack.AddUser(fakeslack.User{ID: p.Slack, Name: p.Name, Email: p.Email})
	}
}
