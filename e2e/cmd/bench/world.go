package main

import (
	"fmt"
	"time"

	"github.com/secretbot/secretbot/e2e/fakejira"
	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

// world is everything the bot talks to: the harness's fake Slack,
// PagerDuty and Jira and its real in-process Vault, plus a second fake
// Slack (same code, same process) for the bare slack-go baseline, so the
// two clients never share a connection pool and each round goes to exactly
// one of them.
type world struct {
	*harness.Harness
	baseSlack *fakeslack.Server
	grants    int // grant scopes bench-grant-0 .. bench-grant-(grants-1)
}

// The grant scenario: Carol (on call on PLUMI01, assigned the open
// incident) asks for a scope that needs a Jira ticket, on-call status and
// an open incident, and no approver click.
const (
	grantScopePrefix = "bench-grant-"
	grantTicketBase  = 9000
	grantIncident    = harness.OpenIncident
)

// carol is harness.Carol with a Jira account, so the Jira check can rule
// out self-approval.
var carol = func() harness.Person {
	p := harness.Carol
	p.Jira = "acc-carol"
	return p
}()

func grantScope(i int) string  { return fmt.Sprintf("%s%d", grantScopePrefix, i) }
func grantTicket(i int) string { return fmt.Sprintf("%s-%d", harness.JiraProject, grantTicketBase+i) }

// startWorld sets up the fakes and Vault and writes the bot's
// configuration; it does not start the bot.
func startWorld(t *benchTB, grants int) *world {
	w := &world{grants: grants}
	w.Harness = harness.Start(t, harness.Options{NoRun: true, EditConfig: func(doc map[string]any) {
		// The product's defaults (workers, log level), not the tests' debug settings.
		delete(doc, "runner")
		doc["ops"].(map[string]any)["log_level"] = "info"
		// One person sends every command and every request here: the
		// per-person limits (proven by C07) would answer most of them with a
		// refusal, so they are lifted to measure the real work.
		doc["limits"] = map[string]any{"requests_per_user": 10000, "commands_per_user": 10000}
		scopes := doc["scopes"].([]any)
		for i := range grants {
			scopes = append(scopes, map[string]any{
				"name":           grantScope(i),
				"description":    "Benchmark: read-only with a ticket, on call, during an incident",
				"tier":           "read-only",
				"vault_policies": []string{"platform-ro"},
				"max_ttl":        "4h",
				"eligible":       map[string]any{"groups": []string{harness.SREGroup}},
				"evidence":       []string{"jira", "oncall", "incident"},
				"delivery":       "wrapped-token",
				"kv_paths":       []string{"platform/*"},
			})
		}
		doc["scopes"] = scopes
	}})
	w.Jira.AddUser(fakejira.User{AccountID: carol.Jira, Name: carol.Name, DisplayName: carol.Name, Email: carol.Email})
	for i := range grants {
		w.AddApprovedTicket(grantTicket(i), carol, grantScope(i), time.Now().AddDate(0, 0, 7))
	}
	w.baseSlack = fakeslack.New(t, fakeslack.WithTokens("xoxb-test-bench-baseline", "xapp-test-1-A0TEST-bench-baseline"))
	return w
}
