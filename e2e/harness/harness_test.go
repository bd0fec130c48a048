package harness_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

const wait = 10 * time.Second

func TestBotComesUpAnswersAndRestarts(t *testing.T) {
	start := time.Now()
	h := harness.Start(t, harness.Options{})
	t.Logf("harness ready in %v", time.Since(start))

	envID, respURL := h.Slack.SendSlashCommand(harness.Alice.Slack, "whoami")
	if _, latency, err := h.Slack.WaitAck(envID, wait); err != nil {
		t.Fatal(err)
	} else if latency > 3*time.Second {
		t.Errorf("ack took %v", latency)
	}
	r, err := h.Slack.WaitResponse(respURL, wait, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text+string(r.Blocks), harness.Alice.Email) {
		t.Errorf("whoami answer = %s %s", r.Text, r.Blocks)
	}

	if err := h.Restart(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("restart: %v", err)
	}
	if err := h.Slack.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	assertNoLeaks(t, h)
}

func TestCheckCLI(t *testing.T) {
	h := harness.Start(t, harness.Options{NoRun: true, AppRole: true})
	out, errOut, code := h.RunCLI("check")
	t.Logf("check (exit %d):\n%s%s", code, out, errOut)
	if code != 0 {
		t.Errorf("check exit code = %d", code)
	}
	h.Slack.AuthFail("invalid_auth")
	if _, _, code := h.RunCLI("check"); code == 0 {
		t.Error("check passed with Slack refusing the token")
	}
	assertNoLeaks(t, h)
}

func TestLinkDisabledStopsTheBot(t *testing.T) {
	h := harness.Start(t, harness.Options{Slack: []fakeslack.Option{fakeslack.WithDisconnectGrace(500 * time.Millisecond)}})
	if err := h.Slack.WaitConnections(1, wait); err != nil {
		t.Fatal(err)
	}
	h.Slack.Disconnect("link_disabled")
	if err, exited := h.WaitExit(wait); !exited {
		t.Error("the bot kept running after link_disabled")
	} else {
		t.Logf("bot exited: %v", err)
	}
}

func assertNoLeaks(t *testing.T, h *harness.Harness) {
	t.Helper()
	out := h.Output()
	for _, s := range h.Secrets() {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("a credential (%.12s…) appears in the bot's output", s)
		}
	}
}
