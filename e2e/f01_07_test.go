package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
	"github.com/secretbot/secretbot/internal/app"
)

// wait bounds every wait for the bot; generous, since CI shares 2 cores.
const wait = 15 * time.Second

// ackLimit is Slack's own: an envelope not acked within it fails for the user.
const ackLimit = 3 * time.Second

// command sends a slash command, checks it is acked within Slack's limit,
// and returns the response_url the answer must reach.
func command(t *testing.T, h *harness.Harness, user harness.Person, text string) (envID, responseURL string) {
	t.Helper()
	envID, responseURL = h.Slack.SendSlashCommand(user.Slack, text)
	_, latency, err := h.Slack.WaitAck(envID, wait)
	if err != nil {
		t.Fatalf("/secrets %s: no ack: %v", text, err)
	}
	if latency > ackLimit {
		t.Errorf("/secrets %s: acked after %v, over Slack's %v", text, latency, ackLimit)
	}
	return envID, responseURL
}

// answer waits for the reply on responseURL and returns its text.
func answer(t *testing.T, h *harness.Harness, responseURL string) fakeslack.Response {
	t.Helper()
	r, err := h.Slack.WaitResponse(responseURL, wait, nil)
	if err != nil {
		t.Fatalf("no answer on the response_url: %v", err)
	}
	return r
}

func mustContain(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

func TestF01_HelpAnswersEphemerally(t *testing.T) {
	h := harness.Start(t, harness.Options{})
	for _, text := range []string{"help", "", "frobnicate --now"} {
		_, url := command(t, h, harness.Eve, text)
		r := answer(t, h, url)
		if r.ResponseType != "ephemeral" {
			t.Errorf("/secrets %q: response_type %q, want ephemeral", text, r.ResponseType)
		}
		// Every subcommand, each with an example line.
		mustContain(t, "help for "+text, r.Text+string(r.Blocks), "`/secrets help`", "`/secrets whoami`")
		if text == "frobnicate --now" {
			mustContain(t, "unknown subcommand answer", r.Text+string(r.Blocks), "I don't know `frobnicate`")
		}
	}
	// Nothing went to a channel: help is for the asker only.
	for _, m := range h.Slack.Messages() {
		if !m.Ephemeral && m.Channel != harness.SecurityChannel {
			t.Errorf("help posted publicly in %s: %s", m.Channel, m.Text)
		}
	}
}

func TestF02_WhoamiShowsSlackIdentity(t *testing.T) {
	h := harness.Start(t, harness.Options{})

	// Carol is an SRE on call; what she types cannot change who she is.
	_, url := command(t, h, harness.Carol, "whoami "+harness.Alice.Slack+" "+harness.Alice.Email)
	r := answer(t, h, url)
	text := r.Text + string(r.Blocks)
	mustContain(t, "Carol's whoami", text, harness.Carol.Slack, harness.Carol.Email, "@"+harness.SREGroup,
		"`platform-ro`", "on call now")
	if strings.Contains(text, harness.Alice.Email) || strings.Contains(text, "`platform-rw`") {
		t.Errorf("whoami used the typed text instead of Slack's identity:\n%s", text)
	}
	if calls := h.Slack.CallsTo("users.info"); len(calls) == 0 || calls[len(calls)-1].Param("user") != harness.Carol.Slack {
		t.Errorf("identity not looked up with users.info for %s: %+v", harness.Carol.Slack, calls)
	}

	// Alice, Platform Security, not in PagerDuty.
	_, url = command(t, h, harness.Alice, "whoami")
	mustContain(t, "Alice's whoami", answer(t, h, url).Text, harness.Alice.Email, "@"+harness.PlatformSecurityGroup, "`platform-rw`")

	// Guests and deactivated accounts are refused; bots too (unit-tested).
	for _, p := range []harness.Person{harness.Gus, harness.Zed} {
		_, url := command(t, h, p, "whoami")
		r := answer(t, h, url)
		if strings.Contains(r.Text, p.Email) || !regexp.MustCompile(`(?i)guest|deactivated`).MatchString(r.Text) {
			t.Errorf("%s was not refused: %s", p.Name, r.Text)
		}
	}

	// Each answer and each refusal is in the audit log.
	if err := h.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	out, _, code := h.RunCLI("audit", "verify")
	if code != 0 || !strings.Contains(out, "OK: ") {
		t.Fatalf("audit verify: exit %d\n%s", code, out)
	}
	if n := auditCount(t, h, "whoami"); n != 2 {
		t.Errorf("whoami audit events = %d, want 2", n)
	}
	if n := auditCount(t, h, "command.refused"); n != 2 {
		t.Errorf("refusal audit events = %d, want 2", n)
	}
}

func TestF03_AckBeforeWork(t *testing.T) {
	h := harness.Start(t, harness.Options{})
	// The work (identity lookup) blocks for 5 s; the ack must not wait for it.
	h.Slack.SetDelay("users.info", 5*time.Second)
	start := time.Now()
	envID, url := h.Slack.SendSlashCommand(harness.Eve.Slack, "whoami")
	_, latency, err := h.Slack.WaitAck(envID, wait)
	if err != nil {
		t.Fatal(err)
	}
	if latency > ackLimit {
		t.Fatalf("ack took %v: it waited for the work", latency)
	}
	if len(h.Slack.Responses(url)) != 0 {
		t.Fatal("answered before the blocked work could have finished")
	}
	r := answer(t, h, url)
	if r.At.Sub(start) < 5*time.Second {
		t.Errorf("answer came after %v, before the blocked lookup returned", r.At.Sub(start))
	}
	mustContain(t, "whoami", r.Text, harness.Eve.Email)
	t.Logf("ack %v, answer %v", latency, r.At.Sub(start))
}

func TestF04_RedeliveryProcessedOnce(t *testing.T) {
	h := harness.Start(t, harness.Options{})
	// Slow the work so redeliveries arrive while it is in flight, and after.
	h.Slack.SetDelay("users.info", 500*time.Millisecond)
	envID, url := command(t, h, harness.Eve, "whoami")
	for i := range 2 {
		if err := h.Slack.Redeliver(envID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.Slack.WaitAck(envID, wait); err != nil {
			t.Fatalf("redelivery %d not acked: %v", i+1, err)
		}
	}
	answer(t, h, url)
	// An Events API event sent twice in different envelopes is one event.
	ev := map[string]any{"type": "app_home_opened", "user": harness.Eve.Slack, "tab": "home"}
	env1, eventID := h.Slack.SendEvent(ev)
	if _, _, err := h.Slack.WaitAck(env1, wait); err != nil {
		t.Fatal(err)
	}
	env2 := h.Slack.SendEnvelope(eventEnvelope(eventID, ev))
	if _, _, err := h.Slack.WaitAck(env2, wait); err != nil {
		t.Fatal(err)
	}
	// Let any double processing show itself.
	time.Sleep(2 * time.Second)
	if got := len(h.Slack.Responses(url)); got != 1 {
		t.Errorf("answered %d times, want once", got)
	}
	if got := len(h.Slack.Acks(envID)); got != 3 {
		t.Errorf("%d acks for 3 deliveries", got)
	}
	if got := metric(t, h, "secretbot_envelopes_duplicate_total"); got != 3 {
		t.Errorf("duplicates recognised = %v, want 3 (two redeliveries, one repeated event)", got)
	}
	if err := h.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if n := auditCount(t, h, "whoami"); n != 1 {
		t.Errorf("whoami audited %d times, want once", n)
	}
}

func TestF05_ReconnectAfterRefreshRequested(t *testing.T) {
	h := harness.Start(t, harness.Options{})
	for i, reason := range []string{"refresh_requested", "warning"} {
		h.Slack.Disconnect(reason)
		if err := h.Slack.WaitOpened(i+2, wait); err != nil {
			t.Fatalf("no reconnect after %s: %v", reason, err)
		}
		if err := h.Slack.WaitConnections(1, wait); err != nil {
			t.Fatal(err)
		}
		_, url := command(t, h, harness.Eve, "whoami")
		mustContain(t, "answer after "+reason, answer(t, h, url).Text, harness.Eve.Email)
	}
	// Dropped without a close frame: the bot notices and reconnects too.
	h.Slack.DropConnection()
	if err := h.Slack.WaitOpened(4, wait); err != nil {
		t.Fatalf("no reconnect after a dropped socket: %v", err)
	}
	if err := h.WaitReady(); err != nil {
		t.Fatal(err)
	}
	_, url := command(t, h, harness.Eve, "help")
	answer(t, h, url)
}

func TestF06_PanicIsContained(t *testing.T) {
	h := harness.Start(t, harness.Options{NoRun: true})
	p := startBinary(t, h, map[string]string{"SECRETBOT_PANIC_AT": "handler.whoami"})
	p.waitReady(t, h)

	_, url := command(t, h, harness.Eve, "whoami")
	r := answer(t, h, url)
	m := regexp.MustCompile(`internal error \(ref ([0-9a-f]+)\)`).FindStringSubmatch(r.Text)
	if m == nil {
		t.Fatalf("the person was not told of the internal error: %s", r.Text)
	}
	ref := m[1]
	logged := false
	for _, line := range strings.Split(p.out.String(), "\n") {
		if strings.Contains(line, `"handler panicked"`) && strings.Contains(line, ref) {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no log line carries ref %s:\n%s", ref, p.out.String())
	}
	// The process lives on and keeps answering.
	_, url = command(t, h, harness.Eve, "help")
	mustContain(t, "help after the panic", answer(t, h, url).Text, "/secrets whoami")
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code, sig := p.wait(t, wait); code != 0 {
		t.Fatalf("exit %d (signal %v) after SIGTERM", code, sig)
	}
	if n := auditCount(t, h, "internal_error"); n != 1 {
		t.Errorf("internal_error audit events = %d, want 1", n)
	}
}

func TestF07_GracefulShutdown(t *testing.T) {
	t.Run("in-process", func(t *testing.T) {
		h := harness.Start(t, harness.Options{})
		// Work in flight when the stop comes: it must finish and be answered.
		h.Slack.SetDelay("users.info", 2*time.Second)
		_, url := command(t, h, harness.Eve, "whoami")
		time.Sleep(200 * time.Millisecond) // let a worker pick it up
		err := h.Stop()
		if code := app.ExitCode(err); code != 0 {
			t.Fatalf("Run returned %v (exit %d), want a clean exit", err, code)
		}
		if rs := h.Slack.Responses(url); len(rs) != 1 || !strings.Contains(rs[0].Text, harness.Eve.Email) {
			t.Fatalf("work in flight was not finished and answered before exit: %+v", rs)
		}
		if _, err := h.Slack.WaitMessage(func(m fakeslack.Message) bool {
			return m.Channel == harness.SecurityChannel && strings.Contains(m.Text, "Audit checkpoint (shutdown)")
		}, time.Second); err != nil {
			t.Errorf("no audit checkpoint posted at shutdown: %v", err)
		}
	})
	t.Run("SIGTERM", func(t *testing.T) {
		h := harness.Start(t, harness.Options{NoRun: true})
		p := startBinary(t, h, nil)
		p.waitReady(t, h)
		h.Slack.SetDelay("users.info", 2*time.Second)
		_, url := command(t, h, harness.Eve, "whoami")
		time.Sleep(200 * time.Millisecond)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if code, sig := p.wait(t, wait); code != 0 {
			t.Fatalf("exit %d (signal %v) after SIGTERM, want 0", code, sig)
		}
		if rs := h.Slack.Responses(url); len(rs) != 1 {
			t.Fatalf("in-flight command answered %d times before exit, want once: %+v", len(rs), rs)
		}
		// It stopped taking work: nothing listens any more.
		if resp, err := http.Get("http://" + h.OpsAddr + "/healthz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			t.Error("ops listener still answering after exit")
		}
	})
}
