package e2e

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // read the bot's database as an auditor would

	"github.com/secretbot/secretbot/e2e/harness"
)

// eventEnvelope is an Events API envelope carrying an event id that was
// already delivered, in a new envelope, as Slack does when it retries.
func eventEnvelope(eventID string, event map[string]any) json.RawMessage {
	env := map[string]any{
		"envelope_id": "env-again-" + eventID,
		"type":        "events_api",
		"payload": map[string]any{
			"type": "event_callback", "event_id": eventID, "event": event,
			"team_id": "T0LUMI", "api_app_id": "A0TEST",
		},
		"accepts_response_payload": false,
		"retry_attempt":            1,
		"retry_reason":             "timeout",
	}
	b, _ := json.Marshal(env)
	return b
}

// auditCount counts the audit events with action in the bot's database.
func auditCount(t *testing.T, h *harness.Harness, action string) int {
	t.Helper()
	db, err := sql.Open("sqlite", h.DBPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM audit_events WHERE action = ?`, action).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// metric reads one unlabelled series from the bot's /metrics.
func metric(t *testing.T, h *harness.Harness, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + h.OpsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatal(fmt.Errorf("metric %s not exported", name))
	return 0
}
