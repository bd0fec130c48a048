package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/app"
)

// A18 and A19 look back at everything A01–A17 left behind (see the capture
// in helpers_a_test.go). Run with the scenarios (go test -run TestA) they
// use the scenarios' captures; run alone, they first run A01–A17 as their
// own subtests.

var scenariosA01to17 = []scenario{
	{"A01", TestA01_JiraGatedWrappedTokenApprovedAndUnwrapped},
	{"A02", TestA02_TicketNotApprovedRefused},
	{"A03", TestA03_TicketApprovedByRequesterRefused},
	{"A04", TestA04_RequesterCannotApproveOwnRequest},
	{"A05", TestA05_NonApproverCannotApprove},
	{"A06", TestA06_SimultaneousApprovalsAndRedeliveryOneDecision},
	{"A07", TestA07_DenyWithReason},
	{"A08", TestA08_OnCallIncidentTokenRevokedWhenIncidentResolves},
	{"A09", TestA09_SRENotOnCallRefused},
	{"A10", TestA10_IncidentResolvedOrUnknownRefused},
	{"A11", TestA11_OutagesFailClosedAndRetryAfter429},
	{"A12", TestA12_TTLOverMaximumRefused},
	{"A13", TestA13_ExpiryRevokes},
	{"A14", TestA14_ImDoneRevokesAtOnce},
	{"A15", TestA15_WrapNeverUnwrappedRevokedAtWrapExpiry},
	{"A16", TestA16_StoppedBetweenApprovalAndIssueAndDuringExpiry},
	{"A17", TestA17_BadInputClearRefusalsNothingStored},
}

func scenarioIDs() []string {
	ids := make([]string, len(scenariosA01to17))
	for i, s := range scenariosA01to17 {
		ids[i] = s.id
	}
	return ids
}

func TestA18_NoTokenAnywhereButItsDM(t *testing.T) {
	ensureScenarios(t, scenariosA01to17)
	caps := capturesOf(scenarioIDs()...)
	for _, id := range scenarioIDs() {
		if !captured(id) {
			t.Errorf("%s left no capture to scan", id)
		}
	}

	// Every credential of every scenario, searched in every capture.
	var wrapTokens, secrets []string
	texts := map[string]string{}
	dms := map[string]string{}
	for _, c := range caps {
		wrapTokens = append(wrapTokens, c.wrapTokens...)
		secrets = append(secrets, c.secrets...)
		for where, text := range c.texts {
			texts[c.id+": "+where] = text
		}
		for where, text := range c.dms {
			dms[c.id+": "+where] = text
		}
	}
	// The scan has something to find, and looks where it should.
	if len(wrapTokens) < 8 {
		t.Errorf("only %d wrapping tokens were issued in A01–A17: the scan would prove little", len(wrapTokens))
	}
	var kinds = map[string]int{}
	for where := range texts {
		kinds[strings.SplitN(strings.SplitN(where, ": ", 2)[1], " (", 2)[0]]++
	}
	for _, k := range []string{"bot output", "database table grants", "database table audit_events", "database files", "Slack responses", "Slack Web API calls", "Jira", "PagerDuty"} {
		if kinds[k] == 0 {
			t.Errorf("no %q was captured", k)
		}
	}
	messages := 0
	for k, n := range kinds {
		if strings.HasPrefix(k, "Slack message") {
			messages += n
		}
	}
	if messages == 0 || len(dms) == 0 {
		t.Errorf("%d Slack messages and %d token DMs were captured", messages, len(dms))
	}

	// Each finding says what kind of credential leaked.
	for kind, creds := range map[string][]string{"wrapping token": wrapTokens, "other credential": secrets} {
		for _, leak := range findLeaks(creds, texts) {
			t.Errorf("%s: %s", kind, leak)
		}
	}

	// The one DM: each wrapping token is in at most one delivered message,
	// and a DM carries no other credential (the grant's token, the bot's).
	for _, tok := range wrapTokens {
		n := 0
		for where, text := range dms {
			if strings.Contains(where, "Slack message") && strings.Contains(text, tok) {
				n++
			}
		}
		if n > 1 {
			t.Errorf("wrapping token %.6s… is in %d delivered messages", tok, n)
		}
	}
	for _, leak := range findLeaks(secrets, dms) {
		t.Error(leak)
	}
	t.Logf("scanned %d captures of %d scenarios for %d wrapping tokens and %d other credentials; %d token DMs",
		len(texts), len(caps), len(wrapTokens), len(secrets), len(dms))
}

// verifyCapture runs `secretbot audit verify` on a capture's database copy
// (or on db, a further copy) with the scenario's environment.
func verifyCapture(t *testing.T, c *capture, config string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := app.Run(ctx, []string{"audit", "verify", "--config", config}, func(k string) string { return c.env[k] }, &out, &errOut)
	return out.String() + errOut.String(), app.ExitCode(err)
}

func TestA19_AuditVerifyAfterScenarios(t *testing.T) {
	ensureScenarios(t, scenariosA01to17)
	var target *capture
	for _, c := range capturesOf(scenarioIDs()...) {
		if c.db == "" {
			t.Errorf("%s: no database was captured", c.id)
			continue
		}
		out, code := verifyCapture(t, c, c.config)
		if code != 0 || !strings.Contains(out, "OK") {
			t.Errorf("%s: audit verify exit %d, want 0 and OK:\n%s", c.id, code, out)
		}
		if c.id == "A01" {
			target = c
		}
	}
	if target == nil {
		t.Fatal("no capture of A01 to tamper with")
	}

	// Edit one stored event of A01 (the approval) in a copy: verify fails
	// and names it.
	path := filepath.Join(t.TempDir(), "tampered.db")
	copyDB(t, target.db, path)
	db := openDB(t, path)
	var seq int64
	if err := db.QueryRow(`SELECT seq FROM audit_events WHERE action = 'grant.approved'`).Scan(&seq); err != nil {
		t.Fatalf("A01's log has no approval event: %v", err)
	}
	if _, err := db.Exec(`UPDATE audit_events SET actor = 'U0EVE' WHERE seq = ?`, seq); err != nil {
		t.Fatal(err)
	}
	db.Close()
	cfg, err := os.ReadFile(target.config)
	if err != nil {
		t.Fatal(err)
	}
	tamperedCfg := filepath.Join(t.TempDir(), "tampered.yaml")
	if err := os.WriteFile(tamperedCfg, bytes.ReplaceAll(cfg, []byte(target.db), []byte(path)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := verifyCapture(t, target, tamperedCfg)
	t.Logf("audit verify on the edited copy (exit %d):\n%s", code, out)
	if code != 1 {
		t.Errorf("exit %d after an event was edited, want 1", code)
	}
	if !regexp.MustCompile(fmt.Sprintf(`\bevent %d\b`, seq)).MatchString(out) || !strings.Contains(out, "altered") {
		t.Errorf("the output does not name the edited event %d as altered:\n%s", seq, out)
	}
}
