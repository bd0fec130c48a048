package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
	"github.com/secretbot/secretbot/e2e/internal/fault"
)

// Nothing said is lost, issue 5 item 1. A11 covers a 429 on a Jira read the
// request waits for; here the messages the bot owes (approval cards and
// their updates, security notices, response_url answers, the token DMs, Jira
// comments) meet a Slack that fails every way (500, 429 with Retry-After,
// hanging, then refusing connections), a restart in the middle, and Slack
// back: each arrives exactly once, in order per target, and no call retried
// a 429 before its Retry-After.

// c01RetryAfter is the Retry-After chat.update answers with, in seconds.
const c01RetryAfter = 4

// owedRow is one stored outbox message.
type owedRow struct {
	id    int64
	lane  string
	state string
	kind  string
	msg   struct {
		Target string `json:"target"`
		User   string `json:"user"`
		TS     string `json:"ts"`
		Text   string `json:"text"`
	}
}

func (w *world) owed() []owedRow {
	w.t.Helper()
	rows, err := openDB(w.t, w.DBPath).Query(`SELECT id, lane, state, body FROM outbox ORDER BY id`)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	var out []owedRow
	for rows.Next() {
		var r owedRow
		var body []byte
		if err := rows.Scan(&r.id, &r.lane, &r.state, &body); err != nil {
			w.t.Fatal(err)
		}
		var k struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(body, &k); err != nil {
			w.t.Fatal(err)
		}
		if err := json.Unmarshal(body, &r.msg); err != nil {
			w.t.Fatal(err)
		}
		r.kind = k.Kind
		out = append(out, r)
	}
	return out
}

// delivery identifies one message as it reached Slack or Jira.
func delivery(kind, target, user, ts, text string) string {
	return strings.Join([]string{kind, target, user, ts, text}, "\x00")
}

// arrived lists, per target, what reached the fakes successfully, in
// arrival order: Web API calls not answered with an injected fault,
// response_url posts, Jira comments.
func (w *world) arrived() map[string][]string {
	out := map[string][]string{}
	for _, c := range w.Slack.Calls() {
		if c.Status != 0 {
			continue
		}
		ch := c.Param("channel")
		switch c.Method {
		case "chat.postMessage":
			out[ch] = append(out[ch], delivery("post", ch, "", "", c.Param("text")))
		case "chat.postEphemeral":
			out[ch] = append(out[ch], delivery("ephemeral", ch, c.Param("user"), "", c.Param("text")))
		case "chat.update":
			out[ch] = append(out[ch], delivery("update", ch, "", c.Param("ts"), c.Param("text")))
		}
	}
	for _, r := range w.Slack.Responses("") {
		out[r.URL] = append(out[r.URL], delivery("respond", r.URL, "", "", r.Text))
	}
	for _, c := range w.Jira.Comments("") {
		out["jira:"+c.Issue] = append(out["jira:"+c.Issue], delivery("jira-comment", c.Issue, "", "", c.Body))
	}
	return out
}

// checkOwedDeliveredOnceInOrder checks every owed message was sent, and
// arrived exactly once, in outbox order among those of its target.
func (w *world) checkOwedDeliveredOnceInOrder() {
	w.t.Helper()
	want := map[string][]string{}
	kinds := map[string]int{}
	for _, r := range w.owed() {
		if r.state != "sent" {
			w.t.Errorf("outbox %d (%s to %s) is %s, want sent", r.id, r.kind, r.msg.Target, r.state)
		}
		var target, d string
		switch r.kind {
		case "post", "dm":
			target, d = r.msg.Target, delivery("post", r.msg.Target, "", "", r.msg.Text)
		case "ephemeral":
			target, d = r.msg.Target, delivery("ephemeral", r.msg.Target, r.msg.User, "", r.msg.Text)
		case "update":
			target, d = r.msg.Target, delivery("update", r.msg.Target, "", r.msg.TS, r.msg.Text)
		case "respond":
			target, d = r.msg.Target, delivery("respond", r.msg.Target, "", "", r.msg.Text)
		case "jira-comment":
			target, d = "jira:"+r.msg.Target, delivery("jira-comment", r.msg.Target, "", "", r.msg.Text)
		default:
			continue // work whose message is checked on its own (a grant's token DM)
		}
		kinds[r.kind]++
		want[target] = append(want[target], d)
	}
	got := w.arrived()
	for target, ds := range want {
		// What reached the target that was owed through the outbox (the
		// token DMs are sent directly), in order of arrival.
		var seen []string
		for _, d := range got[target] {
			if slices.Contains(ds, d) {
				seen = append(seen, d)
			}
		}
		if !slices.Equal(seen, ds) {
			w.t.Errorf("%s received %d of the %d messages owed to it, or not once each in order:\nowed:\n  %s\nreceived:\n  %s",
				target, len(seen), len(ds), strings.Join(show(ds), "\n  "), strings.Join(show(seen), "\n  "))
		}
	}
	w.t.Logf("owed messages checked, by kind: %v, over %d targets", kinds, len(want))
}

func show(ds []string) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		f := strings.Split(d, "\x00")
		text := f[4]
		if len(text) > 60 {
			text = text[:60] + "…"
		}
		out[i] = fmt.Sprintf("%s ts=%s %q", f[0], f[3], text)
	}
	return out
}

// checkRetryAfterHonoured checks no chat.update answered 429 was tried
// again, for the same message, before its Retry-After passed.
func checkRetryAfterHonoured(t *testing.T, calls []fakeslack.Call) int {
	t.Helper()
	limited := 0
	for i, c := range calls {
		if c.Status != http.StatusTooManyRequests {
			continue
		}
		limited++
		secs, err := strconv.Atoi(c.RetryAfter)
		if err != nil {
			t.Fatalf("429 with Retry-After %q", c.RetryAfter)
		}
		for _, next := range calls[i+1:] {
			if next.Param("channel") == c.Param("channel") && next.Param("ts") == c.Param("ts") {
				if gap := next.Time.Sub(c.Time); gap < time.Duration(secs)*time.Second {
					t.Errorf("chat.update of %s retried %v after a 429 with Retry-After: %d", c.Param("ts"), gap, secs)
				}
				break
			}
		}
	}
	return limited
}

func TestC01_OutboxSurvivesSlackOutage(t *testing.T) {
	start := time.Now()
	w := startA(t, "C01", harness.Options{EditConfig: withPaymentsRO, NoRun: true})
	// Everything the bot sends Slack (Web API, websocket, response_urls)
	// goes through a proxy the test can take down.
	proxy := fault.NewProxy(t, strings.TrimPrefix(w.Slack.URL, "http://"))
	w.SetEnv("SLACK_API_URL", "http://"+proxy.Addr+"/api")
	w.Slack.SetPublicURL("http://" + proxy.Addr)
	w.StartBot()
	if err := w.WaitReady(); err != nil {
		t.Fatal(err)
	}

	// Two requests waiting for an approver, their cards posted.
	idA, cardA := approvedRequest(t, w, "SEC-201", "1h", "")
	w.AddApprovedTicket("SEC-202", harness.Bob, jiraScope, ticketExpiry())
	r := w.outcome(w.ask(harness.Bob, "request "+jiraScope+" --ttl 1h --ticket SEC-202"))
	idB := grantID(t, r.Text)
	cardB := w.card(idB)

	// Slack fails: posts answer 500, updates 429 with Retry-After, the
	// response_urls hang; Jira comments answer 503.
	w.Slack.SetFailure("chat.postMessage", http.StatusInternalServerError)
	w.Slack.SetFault("chat.update", fault.Fault{Status: http.StatusTooManyRequests, RetryAfter: strconv.Itoa(c01RetryAfter)})
	w.Slack.SetDelay("respond", 5*time.Minute)
	for _, key := range []string{"SEC-201", "SEC-202"} {
		w.Jira.SetFailure("/rest/api/2/issue/"+key+"/comment", http.StatusServiceUnavailable)
	}
	// Meanwhile: both approved (card updates, answers to the requesters,
	// Jira comments, tokens to deliver, security notices) and a whoami.
	w.click(harness.Sam, cardA, "grant_approve")
	w.click(harness.Sam, cardB, "grant_approve")
	_, eveURL := command(t, w.Harness, harness.Eve, "whoami")
	failing := func(method string, status int) bool {
		for _, c := range w.Slack.CallsTo(method) {
			if c.Status == status {
				return true
			}
		}
		return false
	}
	if !until(wait, func() bool {
		return failing("chat.update", http.StatusTooManyRequests) && failing("chat.postMessage", http.StatusInternalServerError) &&
			len(w.Jira.CallsTo("/rest/api/2/issue/SEC-201/comment")) > 0
	}) {
		t.Fatal("the bot did not try to deliver during the outage")
	}
	if n := len(w.tokenDMs()); n != 0 {
		t.Fatalf("%d token DMs delivered through a failing Slack", n)
	}

	// The bot restarts while a response_url hangs: the stop waits for the
	// send in flight only until the shutdown deadline, and the send stays owed.
	restart := func(what string) time.Duration {
		t.Helper()
		began := time.Now()
		if err := w.Stop(); err != nil && !strings.Contains(err.Error(), "canceled") {
			t.Fatalf("the bot did not stop cleanly %s: %v", what, err)
		}
		took := time.Since(began)
		w.StartBot()
		return took
	}
	stopHanging := restart("with a send hanging")
	if err := w.WaitReady(); err != nil {
		t.Fatal(err)
	}

	// Then Slack is unreachable altogether (connections refused), and the
	// bot restarts again in the middle of it.
	proxy.Down()
	refused := func() int { return strings.Count(w.Output(), "connection refused") }
	if !until(wait, func() bool { return refused() > 0 }) {
		t.Fatal("the bot never met the refused connections")
	}
	stopRefused := restart("during the outage")
	seen := refused()
	if !until(wait, func() bool { return refused() > seen }) {
		t.Fatal("the restarted bot never met the refused connections")
	}
	if err, exited := w.WaitExit(0); exited {
		t.Fatalf("the bot exited during the outage: %v", err)
	}

	// Slack is back.
	w.Slack.SetFailure("chat.postMessage", 0)
	w.Slack.SetFailure("chat.update", 0)
	w.Slack.SetDelay("respond", 0)
	for _, key := range []string{"SEC-201", "SEC-202"} {
		w.Jira.SetFailure("/rest/api/2/issue/"+key+"/comment", 0)
	}
	backAt := time.Now()
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitReady(); err != nil {
		t.Fatal(err)
	}
	// Retries back off up to a minute by now; a generous wait.
	settle := 2 * time.Minute
	for i, p := range []harness.Person{harness.Alice, harness.Bob} {
		id := []string{idA, idB}[i]
		if _, err := w.Slack.WaitMessage(func(m fakeslack.Message) bool {
			return fakeslack.InChannel(p.Slack)(m) && strings.Contains(m.Text, id) && strings.Contains(m.Text, "vault unwrap")
		}, settle); err != nil {
			t.Fatalf("%s's token never came: %v", p.Name, err)
		}
	}
	if _, err := w.Slack.WaitResponse(eveURL, settle, nil); err != nil {
		t.Fatalf("Eve's whoami was never answered: %v", err)
	}
	if !until(settle, func() bool {
		var n int
		return openDB(t, w.DBPath).QueryRow(`SELECT COUNT(*) FROM outbox WHERE state = 'pending'`).Scan(&n) == nil && n == 0
	}) {
		t.Fatal("messages still owed two minutes after Slack came back")
	}
	allIn := time.Since(backAt)
	w.settled()
	time.Sleep(time.Second) // a second send of anything would show now

	w.checkOwedDeliveredOnceInOrder()
	if n := checkRetryAfterHonoured(t, w.Slack.CallsTo("chat.update")); n == 0 {
		t.Error("no chat.update was answered 429: the Retry-After went untested")
	}
	// Each grant: exactly one token DM, to its requester, and it unwraps.
	for i, p := range []harness.Person{harness.Alice, harness.Bob} {
		id := []string{idA, idB}[i]
		d := w.tokenDM(p, id)
		n := 0
		for _, m := range w.tokenDMs() {
			if strings.Contains(m.Text, id) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("grant %s: %d token DMs, want 1", id, n)
		}
		w.unwrap(d.wrapToken)
		if live := len(w.grantTokens(id)); live != 1 {
			t.Errorf("grant %s: %d live tokens, want 1 (a failed DM's token must be revoked)", id, live)
		}
	}
	// The cards say who decided, and each was updated once.
	for _, c := range []fakeslack.Message{cardA, cardB} {
		got := w.cardDecided(c, "Approved")
		if got.Edits != 1 {
			t.Errorf("card %s updated %d times, want once", c.TS, got.Edits)
		}
	}
	for _, key := range []string{"SEC-201", "SEC-202"} {
		if len(w.Jira.Comments(key)) == 0 {
			t.Errorf("no comment on %s", key)
		}
	}
	t.Logf("C01: stops took %v (a send hanging) and %v (Slack refusing); every owed message in %v after Slack came back; %v in all",
		stopHanging.Round(time.Millisecond), stopRefused.Round(time.Millisecond), allIn.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
