package e2e

import (
	"strings"
	"syscall"
	"testing"

	"github.com/secretbot/secretbot/e2e/harness"
)

// inboxRow is the inbox bookkeeping of one envelope.
type inboxRow struct {
	state    string
	attempts int
}

func inboxRows(t *testing.T, h *harness.Harness, envID string) []inboxRow {
	t.Helper()
	db := openDB(t, h.DBPath)
	defer db.Close()
	rows, err := db.Query(`SELECT state, attempts FROM inbox WHERE envelope_id = ?`, envID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []inboxRow
	for rows.Next() {
		var r inboxRow
		if err := rows.Scan(&r.state, &r.attempts); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func whoamiEvents(t *testing.T, h *harness.Harness, user string) int {
	t.Helper()
	db := openDB(t, h.DBPath)
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM audit_events WHERE action = 'whoami' AND actor = ?`, user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestF12_InboxSurvivesCrash(t *testing.T) {
	h := harness.Start(t, harness.Options{NoRun: true})

	// The real binary, killed (SIGKILL) right after it acks an envelope and
	// before any work on it.
	first := startBinary(t, h, map[string]string{"SECRETBOT_CRASH_AT": "inbox.acked"})
	first.waitReady(t, h)
	envID, responseURL := h.Slack.SendSlashCommand(harness.Alice.Slack, "whoami")
	if _, latency, err := h.Slack.WaitAck(envID, wait); err != nil {
		t.Fatalf("no ack before the crash: %v\n%s", err, first.out.String())
	} else if latency > ackLimit {
		t.Errorf("acked after %v, over Slack's %v", latency, ackLimit)
	}
	if code, sig := first.wait(t, wait); sig != syscall.SIGKILL {
		t.Fatalf("the bot exited with status %d (signal %v), want killed by SIGKILL at the crash point\n%s", code, sig, first.out.String())
	}
	if !strings.Contains(first.out.String(), "crashpoint inbox.acked reached") {
		t.Fatalf("the bot died, but not at inbox.acked:\n%s", first.out.String())
	}
	if rs := h.Slack.Responses(responseURL); len(rs) != 0 {
		t.Fatalf("answered before the crash: %+v", rs)
	}
	// Stored claimed on arrival (one attempt) by the run that died.
	if rows := inboxRows(t, h, envID); len(rows) != 1 || rows[0].state != "working" || rows[0].attempts != 1 {
		t.Fatalf("inbox rows for the envelope after the crash = %+v, want one working, claimed on arrival", rows)
	}
	if n := whoamiEvents(t, h, harness.Alice.Slack); n != 0 {
		t.Fatalf("%d whoami audit events before any work was done", n)
	}

	// Restarted without the crash point, it answers from its inbox: Slack
	// will never send that command again.
	second := startBinary(t, h, nil)
	second.waitReady(t, h)
	r, err := h.Slack.WaitResponse(responseURL, wait, nil)
	if err != nil {
		t.Fatalf("the acked command was never answered after the restart: %v\n%s", err, second.out.String())
	}
	mustContain(t, "the answer", r.Text, harness.Alice.Email)

	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, sig := second.wait(t, wait); code != 0 {
		t.Errorf("after SIGTERM the bot exited with status %d (signal %v), want 0\n%s", code, sig, second.out.String())
	}

	// Exactly once: one answer, one audit event, the envelope done (on the
	// second attempt: the first died with the bot), and no redelivery was
	// needed.
	if rs := h.Slack.Responses(responseURL); len(rs) != 1 {
		t.Errorf("%d answers on the response_url, want 1", len(rs))
	}
	if n := len(h.Slack.CallsTo("chat.postEphemeral")); n != 0 {
		t.Errorf("%d ephemeral messages besides the response_url answer", n)
	}
	if n := whoamiEvents(t, h, harness.Alice.Slack); n != 1 {
		t.Errorf("%d whoami audit events, want 1", n)
	}
	if rows := inboxRows(t, h, envID); len(rows) != 1 || rows[0].state != "done" || rows[0].attempts != 2 {
		t.Errorf("inbox rows for the envelope = %+v, want one done after 2 attempts", rows)
	}
	if acks := h.Slack.Acks(envID); len(acks) != 1 {
		t.Errorf("%d acks, want 1 (the envelope was delivered once)", len(acks))
	}
}
