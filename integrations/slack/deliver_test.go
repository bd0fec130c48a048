package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
)

const actionsBlocks = `[{"type":"section","text":{"type":"mrkdwn","text":"*Request* from <@U1>"}},` +
	`{"type":"actions","block_id":"decide","elements":[{"type":"button","action_id":"approve","text":{"type":"plain_text","text":"Approve"},"value":"req-1","style":"primary"}]}]`

func TestDeliverKinds(t *testing.T) {
	tests := []struct {
		name   string
		m      outbox.Message
		method string
		wantTS string
		form   map[string]string // expected form values
	}{
		{name: "post", m: outbox.Message{Kind: outbox.Post, Target: "C1", Text: "hello"}, method: "chat.postMessage", wantTS: "1700000000.000100",
			form: map[string]string{"channel": "C1", "text": "hello", "unfurl_links": "false", "unfurl_media": "false"}},
		{name: "post in thread", m: outbox.Message{Kind: outbox.Post, Target: "C1", Thread: "1699.1", Text: "reply"}, method: "chat.postMessage", wantTS: "1700000000.000100",
			form: map[string]string{"channel": "C1", "thread_ts": "1699.1"}},
		{name: "dm", m: outbox.Message{Kind: outbox.DM, Target: "U1", Text: "your token"}, method: "chat.postMessage", wantTS: "1700000000.000100",
			form: map[string]string{"channel": "U1"}},
		{name: "ephemeral", m: outbox.Message{Kind: outbox.Ephemeral, Target: "C1", User: "U1", Text: "only you"}, method: "chat.postEphemeral", wantTS: "1700000000.000200",
			form: map[string]string{"channel": "C1", "user": "U1"}},
		{name: "update", m: outbox.Message{Kind: outbox.Update, Target: "C1", TS: "1700.5", Text: "approved by <@U2>", Blocks: json.RawMessage(actionsBlocks)}, method: "chat.update", wantTS: "1700000000.000100",
			form: map[string]string{"channel": "C1", "ts": "1700.5", "text": "approved by <@U2>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t)
			ts, err := f.client(t).Deliver(context.Background(), tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if ts != tt.wantTS {
				t.Errorf("ts = %q, want %q", ts, tt.wantTS)
			}
			calls := f.callsTo(tt.method)
			if len(calls) != 1 {
				t.Fatalf("%d calls to %s", len(calls), tt.method)
			}
			form := calls[0].Form
			if form.Get("token") != testBot {
				t.Errorf("token not in the form body")
			}
			for k, v := range tt.form {
				if form.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, form.Get(k), v)
				}
			}
			var bs slackgo.Blocks
			if err := json.Unmarshal([]byte(form.Get("blocks")), &bs); err != nil || len(bs.BlockSet) == 0 {
				t.Fatalf("blocks %q: %v", form.Get("blocks"), err)
			}
			if len(tt.m.Blocks) == 0 {
				sec, ok := bs.BlockSet[0].(*slackgo.SectionBlock)
				if !ok || sec.Text.Type != "mrkdwn" || sec.Text.Text != tt.m.Text || !sec.Text.Verbatim {
					t.Errorf("text not rendered as a verbatim mrkdwn section: %s", form.Get("blocks"))
				}
			} else if !strings.Contains(form.Get("blocks"), `"action_id":"approve"`) || !strings.Contains(form.Get("blocks"), `"value":"req-1"`) {
				t.Errorf("given blocks not passed through: %s", form.Get("blocks"))
			}
		})
	}
}

func TestDeliverRespond(t *testing.T) {
	tests := []struct {
		name    string
		m       outbox.Message
		replace bool
	}{
		{"text", outbox.Message{Kind: outbox.Respond, Text: "done: `x`"}, false},
		{"replace with blocks", outbox.Message{Kind: outbox.Respond, Text: "decided", Blocks: json.RawMessage(`{"blocks":` + actionsBlocks + `}`), ReplaceOriginal: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t)
			tt.m.Target = f.srv.URL + "/respond/1"
			ts, err := f.client(t).Deliver(context.Background(), tt.m)
			if err != nil || ts != "" {
				t.Fatalf("ts %q err %v", ts, err)
			}
			calls := f.callsTo("respond")
			if len(calls) != 1 {
				t.Fatalf("%d calls", len(calls))
			}
			body := calls[0].JSON
			if calls[0].Auth != "" {
				t.Errorf("response_url got an Authorization header")
			}
			if body["response_type"] != "ephemeral" || body["text"] != tt.m.Text || body["replace_original"] != tt.replace {
				t.Errorf("body = %v", body)
			}
			blocks, _ := body["blocks"].([]any)
			if len(blocks) == 0 {
				t.Errorf("no blocks in %v", body)
			}
			if f.callsTo("chat.postMessage") != nil {
				t.Errorf("respond also called the Web API")
			}
		})
	}
}

func TestDeliverErrors(t *testing.T) {
	post := outbox.Message{Kind: outbox.Post, Target: "C1", Text: "hi"}
	respond := outbox.Message{Kind: outbox.Respond, Text: "hi"} // Target set per test
	tests := []struct {
		name       string
		m          outbox.Message
		method     string // fake method to program
		r          reply
		code       string
		retryable  bool
		retryAfter time.Duration
		expired    bool
	}{
		{name: "429", m: post, method: "chat.postMessage", r: reply{Status: 429, Header: map[string]string{"Retry-After": "7"}}, code: "rate_limited", retryable: true, retryAfter: 7 * time.Second},
		{name: "429 without Retry-After", m: post, method: "chat.postMessage", r: reply{Status: 429}, code: "http_429", retryable: true},
		{name: "500", m: post, method: "chat.postMessage", r: reply{Status: 500, Body: "<html>"}, code: "http_500", retryable: true},
		{name: "503 update", m: outbox.Message{Kind: outbox.Update, Target: "C1", TS: "1.2", Text: "x"}, method: "chat.update", r: reply{Status: 503}, code: "http_503", retryable: true},
		{name: "channel_not_found", m: post, method: "chat.postMessage", r: reply{Body: `{"ok":false,"error":"channel_not_found"}`}, code: "channel_not_found"},
		{name: "not_in_channel", m: post, method: "chat.postMessage", r: reply{Body: `{"ok":false,"error":"not_in_channel"}`}, code: "not_in_channel"},
		{name: "invalid_blocks", m: post, method: "chat.postMessage", r: reply{Body: `{"ok":false,"error":"invalid_blocks"}`}, code: "invalid_blocks"},
		{name: "ephemeral user_not_in_channel", m: outbox.Message{Kind: outbox.Ephemeral, Target: "C1", User: "U1", Text: "x"}, method: "chat.postEphemeral", r: reply{Body: `{"ok":false,"error":"user_not_in_channel"}`}, code: "user_not_in_channel"},
		{name: "cant_update_message", m: outbox.Message{Kind: outbox.Update, Target: "C1", TS: "1.2", Text: "x"}, method: "chat.update", r: reply{Body: `{"ok":false,"error":"cant_update_message"}`}, code: "cant_update_message"},
		{name: "internal_error", m: post, method: "chat.postMessage", r: reply{Body: `{"ok":false,"error":"internal_error"}`}, code: "internal_error", retryable: true},
		{name: "not json", m: post, method: "chat.postMessage", r: reply{Body: `<html>proxy</html>`}, code: "bad_response", retryable: true},
		{name: "respond 404", m: respond, method: "respond", r: reply{Status: 404, Body: "Not Found"}, code: "not_found", expired: true},
		{name: "respond 404 expired_url", m: respond, method: "respond", r: reply{Status: 404, Body: "expired_url"}, code: "expired_url", expired: true},
		{name: "respond used_url", m: respond, method: "respond", r: reply{Body: `{"ok":false,"error":"used_url"}`}, code: "used_url", expired: true},
		{name: "respond bare expired_url", m: respond, method: "respond", r: reply{Body: `expired_url`}, code: "expired_url", expired: true},
		{name: "respond invalid_blocks", m: respond, method: "respond", r: reply{Status: 400, Body: `{"ok":false,"error":"invalid_blocks"}`}, code: "invalid_blocks"},
		{name: "respond 429", m: respond, method: "respond", r: reply{Status: 429, Header: map[string]string{"Retry-After": "2"}}, code: "rate_limited", retryable: true, retryAfter: 2 * time.Second},
		{name: "respond 502", m: respond, method: "respond", r: reply{Status: 502}, code: "http_502", retryable: true},
		{name: "respond odd code", m: respond, method: "respond", r: reply{Body: `{"ok":false,"error":"Bad <thing> ` + testBot + `"}`}, code: "unknown_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t)
			f.set(tt.method, tt.r)
			if tt.m.Kind == outbox.Respond {
				tt.m.Target = f.srv.URL + "/respond/1"
			}
			_, err := f.client(t).Deliver(context.Background(), tt.m)
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("err = %T %v, want *DeliveryError", err, err)
			}
			if de.Code != tt.code || de.Retryable != tt.retryable || de.RetryAfter != tt.retryAfter || de.Expired() != tt.expired {
				t.Errorf("got %+v (expired %v), want code %s retryable %v after %s expired %v", de, de.Expired(), tt.code, tt.retryable, tt.retryAfter, tt.expired)
			}
			assertNoToken(t, err.Error(), testBot, testApp)
		})
	}
}

func TestDeliverInvalidMessages(t *testing.T) {
	tests := []struct {
		name string
		m    outbox.Message
		code string
	}{
		{"unknown kind", outbox.Message{Kind: "shout", Target: "C1", Text: "x"}, "invalid_message"},
		{"no target", outbox.Message{Kind: outbox.Post, Text: "x"}, "invalid_message"},
		{"no text", outbox.Message{Kind: outbox.Post, Target: "C1", Text: "  "}, "invalid_message"},
		{"ephemeral without user", outbox.Message{Kind: outbox.Ephemeral, Target: "C1", Text: "x"}, "invalid_message"},
		{"update without ts", outbox.Message{Kind: outbox.Update, Target: "C1", Text: "x"}, "invalid_message"},
		{"respond to a non-URL", outbox.Message{Kind: outbox.Respond, Target: "C1", Text: "x"}, "invalid_message"},
		{"respond to ftp", outbox.Message{Kind: outbox.Respond, Target: "ftp://x/y", Text: "x"}, "invalid_message"},
		{"blocks not JSON", outbox.Message{Kind: outbox.Post, Target: "C1", Text: "x", Blocks: json.RawMessage(`[{`)}, "invalid_blocks"},
		{"blocks a string", outbox.Message{Kind: outbox.Post, Target: "C1", Text: "x", Blocks: json.RawMessage(`"hi"`)}, "invalid_blocks"},
		{"blocks object without blocks", outbox.Message{Kind: outbox.Post, Target: "C1", Text: "x", Blocks: json.RawMessage(`{"text":"x"}`)}, "invalid_blocks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t)
			_, err := f.client(t).Deliver(context.Background(), tt.m)
			var de *DeliveryError
			if !errors.As(err, &de) || de.Code != tt.code || de.Retryable {
				t.Fatalf("err = %v, want non-retryable %s", err, tt.code)
			}
			f.mu.Lock()
			n := len(f.calls)
			f.mu.Unlock()
			if n != 0 {
				t.Errorf("an invalid message reached Slack")
			}
		})
	}
}

func TestDeliverNetworkErrors(t *testing.T) {
	f := newFakeSlack(t)
	c := f.client(t)
	respondURL := f.srv.URL + "/respond/secret-hook"
	f.srv.Close()
	for _, m := range []outbox.Message{
		{Kind: outbox.Post, Target: "C1", Text: "x"},
		{Kind: outbox.Respond, Target: respondURL, Text: "x"},
	} {
		_, err := c.Deliver(context.Background(), m)
		var de *DeliveryError
		if !errors.As(err, &de) || de.Code != "network" || !de.Retryable {
			t.Fatalf("%s: err = %v, want retryable network error", m.Kind, err)
		}
		if strings.Contains(err.Error(), "secret-hook") {
			t.Errorf("response_url leaked into %q", err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Deliver(ctx, outbox.Message{Kind: outbox.Post, Target: "C1", Text: "x"})
	var de *DeliveryError
	if !errors.As(err, &de) || de.Code != "canceled" || !de.Retryable || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: err = %v", err)
	}
}

// leakyTransport fails with an error quoting the request body, as a badly
// written instrumenting transport might.
type leakyTransport struct{}

func (leakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	return nil, fmt.Errorf("transport broke on %s with body %s and auth %q", r.URL, b, r.Header.Get("Authorization"))
}

func TestNoTokenInErrors(t *testing.T) {
	// A token with characters URL encoding changes, to see the encoded form go too.
	bot := "xoxb-test-99/ab+cd=="
	cfg := &config.Config{Creds: config.Credentials{SlackBotToken: bot, SlackAppToken: testApp, SlackAPIURL: "http://slack.invalid/api"}}
	c := New(cfg, &http.Client{Transport: leakyTransport{}})
	ctx := context.Background()

	var texts []string
	_, err := c.Deliver(ctx, outbox.Message{Kind: outbox.Post, Target: "C1", Text: "x"})
	texts = append(texts, err.Error())
	_, err = c.Person(ctx, "U1")
	texts = append(texts, err.Error())
	rs := c.Check(ctx)
	texts = append(texts, rs[len(rs)-1].Detail)
	for _, s := range texts {
		if !strings.Contains(s, "[redacted]") {
			t.Errorf("expected the leaky transport's token to be redacted in %q", s)
		}
		assertNoToken(t, s, bot, testApp)
	}

	// A server echoing the token in its error code.
	f := newFakeSlack(t)
	f.set("chat.postMessage", reply{Body: fmt.Sprintf(`{"ok":false,"error":"invalid_auth %s"}`, testBot)})
	_, err = f.client(t).Deliver(ctx, outbox.Message{Kind: outbox.Post, Target: "C1", Text: "x"})
	assertNoToken(t, err.Error(), testBot)
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		h    string
		want time.Duration
	}{
		{"", 0},
		{"12", 12 * time.Second},
		{" 3 ", 3 * time.Second},
		{"-1", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.h, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tt.h, got, tt.want)
		}
	}
}
