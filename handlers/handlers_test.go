package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

type directory map[string]policy.Person

func (d directory) Person(_ context.Context, id string) (policy.Person, error) {
	p, ok := d[id]
	if !ok {
		return policy.Person{}, errors.New("users.info: user_not_found")
	}
	return p, nil
}

func (d directory) PersonNow(ctx context.Context, id string) (policy.Person, error) {
	return d.Person(ctx, id)
}

type onCall struct {
	on     bool
	detail string
	err    error
}

func (o onCall) OnCallNow(context.Context, string) (bool, string, error) {
	return o.on, o.detail, o.err
}

func testHandlers(oc OnCall) *Handlers {
	cfg := &config.Config{
		Slack: config.Slack{Command: "/secrets"},
		Scopes: []config.Scope{
			{Name: "platform-ro", Description: "read-only", Eligible: config.People{Groups: []string{"sre-oncall"}}},
			{Name: "platform-rw", Description: "read/write", Eligible: config.People{Groups: []string{"platform-security"}},
				Disabled: true, DisabledReason: "needs Jira"},
		},
	}
	return &Handlers{
		Config: cfg,
		Directory: directory{
			"U1":     {SlackID: "U1", Email: "ana@example.test", Groups: []string{"S0SREGRP1", "sre-oncall"}},
			"UGUEST": {SlackID: "UGUEST", Email: "g@example.test", Guest: true},
			"UGONE":  {SlackID: "UGONE", Deleted: true},
			"UBOT":   {SlackID: "UBOT", Bot: true},
		},
		OnCall: oc,
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func one(t *testing.T, r Result) outbox.Message {
	t.Helper()
	if len(r.Replies) != 1 {
		t.Fatalf("want one reply, got %d", len(r.Replies))
	}
	return r.Replies[0]
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name, user, text string
		oc               OnCall
		want             []string
		action, outcome  string
	}{
		{"help", "U1", "help", nil, []string{"/secrets help", "/secrets whoami"}, "", ""},
		{"empty is help", "U1", "", nil, []string{"/secrets whoami"}, "", ""},
		{"unknown", "U1", "frobnicate now", nil, []string{"I don't know `frobnicate`", "/secrets help"}, "command.refused", "refused"},
		{"unknown escapes", "U1", "<!channel>", nil, []string{"&lt;!channel&gt;"}, "command.refused", "refused"},
		{"whoami", "U1", "whoami", onCall{on: true, detail: "Platform (level 1)"},
			[]string{"<@U1>", "ana@example.test", "@sre-oncall", "`platform-ro`", "on call now: Platform (level 1)"}, "whoami", "ok"},
		{"whoami no pd", "U1", "WHOAMI", nil, []string{"not configured"}, "whoami", "ok"},
		{"whoami pd down", "U1", "whoami", onCall{err: errors.New("PagerDuty answered 503")}, []string{"could not check PagerDuty"}, "whoami", "ok"},
		{"guest", "UGUEST", "whoami", nil, []string{"Guest accounts"}, "command.refused", "refused"},
		{"deleted", "UGONE", "help", nil, []string{"deactivated"}, "command.refused", "refused"},
		{"bot", "UBOT", "help", nil, []string{"Bots cannot"}, "command.refused", "refused"},
		{"lookup fails closed", "UNKNOWN", "whoami", nil, []string{"could not confirm who you are"}, "command.refused", "refused"},
		{"bad quote", "U1", `whoami "x`, nil, []string{"quote is not closed"}, "command.refused", "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := testHandlers(tt.oc)
			res := h.Command(context.Background(), Command{UserID: tt.user, ChannelID: "C1", Command: "/secrets", Text: tt.text, ResponseURL: "https://hooks.example.test/r/1"})
			m := one(t, res)
			if m.Kind != outbox.Respond || m.Target != "https://hooks.example.test/r/1" {
				t.Errorf("reply not through response_url: %+v", m)
			}
			for _, w := range tt.want {
				if !strings.Contains(m.Text, w) {
					t.Errorf("reply lacks %q:\n%s", w, m.Text)
				}
			}
			if tt.action == "" {
				if len(res.Audit) != 0 {
					t.Errorf("unexpected audit %+v", res.Audit)
				}
				return
			}
			if len(res.Audit) != 1 || res.Audit[0].Action != tt.action || res.Audit[0].Outcome != tt.outcome || res.Audit[0].Actor != tt.user {
				t.Errorf("audit = %+v, want %s/%s by %s", res.Audit, tt.action, tt.outcome, tt.user)
			}
		})
	}
}

func TestDisabledScopeShownWithReason(t *testing.T) {
	h := testHandlers(nil)
	h.Directory = directory{"U2": {SlackID: "U2", Email: "b@example.test", Groups: []string{"platform-security"}}}
	m := one(t, h.Command(context.Background(), Command{UserID: "U2", Text: "whoami", ChannelID: "C1"}))
	if m.Kind != outbox.Ephemeral || m.User != "U2" {
		t.Errorf("without response_url the reply must be ephemeral to the user: %+v", m)
	}
	if !strings.Contains(m.Text, "`platform-rw`") || !strings.Contains(m.Text, "disabled: needs Jira") {
		t.Errorf("reply:\n%s", m.Text)
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"  request  platform-ro ", []string{"request", "platform-ro"}, false},
		{`request x --reason "db is down"`, []string{"request", "x", "--reason", "db is down"}, false},
		{"--reason “curly quotes”", []string{"--reason", "curly quotes"}, false},
		{`a \"b\"`, []string{"a", `"b"`}, false},
		{`--reason ""`, []string{"--reason", ""}, false},
		{`"open`, nil, true},
	}
	for _, tt := range tests {
		got, err := SplitArgs(tt.in)
		if (err != nil) != tt.err || strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("SplitArgs(%q) = %q, %v", tt.in, got, err)
		}
	}
}

// Slack sends command text with &, < and > as entities (should_escape):
// read once, escaped once on the way out, never doubled.
func TestCommandTextUnescapedOnce(t *testing.T) {
	if got := Unescape("a &amp; b &lt;!channel&gt; &amp;lt; <@U1|ana>"); got != "a & b <!channel> &lt; <@U1|ana>" {
		t.Errorf("Unescape = %q", got)
	}
	var ack struct{ Text string }
	if err := json.Unmarshal(AckSummary("request pay&amp;ro"), &ack); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ack.Text, "pay&amp;ro") || strings.Contains(ack.Text, "&amp;amp;") {
		t.Errorf("AckSummary text = %q", ack.Text)
	}
}

func TestEscapeAndCode(t *testing.T) {
	if got := Escape("<!channel> & <@U1> <http://x|y>"); got != "&lt;!channel&gt; &amp; &lt;@U1&gt; &lt;http://x|y&gt;" {
		t.Errorf("Escape = %q", got)
	}
	if got := Code("a`b\nc"); got != "a b c" {
		t.Errorf("Code = %q", got)
	}
	if got := Truncate("ééééé", 3); got != "éé…" {
		t.Errorf("Truncate = %q", got)
	}
}

func TestCommandRateLimit(t *testing.T) {
	h, _, _ := accessHandlers()
	now := h.Now()
	h.Now = func() time.Time { return now }
	h.Config.Limits = config.Limits{CommandsPerUser: 3, Window: config.Duration(time.Minute)}
	run := func(user string) Result {
		return h.Command(context.Background(), Command{UserID: user, ChannelID: "C1", Text: "help"})
	}
	for i := range 3 {
		if r := run("U1"); len(r.Audit) != 0 || strings.Contains(one(t, r).Text, "limit") {
			t.Fatalf("command %d refused: %+v", i, r)
		}
		now = now.Add(10 * time.Second)
	}
	r := run("U1")
	if m := one(t, r); !strings.Contains(m.Text, "You have sent 3 commands in the last 1m: the limit is 3 per 1m per person, so nothing was done. Try again in 30s (after 12:01:00 UTC).") {
		t.Errorf("refusal: %s", m.Text)
	}
	if len(r.Audit) != 1 || r.Audit[0].Action != "command.rate_limited" || r.Audit[0].Actor != "U1" {
		t.Errorf("audit: %+v", r.Audit)
	}
	if strings.Contains(one(t, run("U2")).Text, "limit") {
		t.Error("another person was limited")
	}
	now = now.Add(31 * time.Second)
	if strings.Contains(one(t, run("U1")).Text, "limit") {
		t.Error("still limited after the window")
	}
}
