package slack

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/secretbot/secretbot/internal/check"
	"github.com/secretbot/secretbot/internal/config"
)

func TestCheck(t *testing.T) {
	allScopes := strings.Join(RequiredScopes, ",")
	tests := []struct {
		name     string
		appToken string
		reply    *reply
		want     []string // "STATUS detail-substring", in order
	}{
		{name: "ok without scope header", want: []string{"OK app-level token", "OK bot secretbot in team Lumi"}},
		{name: "ok with every scope", reply: &reply{Header: map[string]string{"X-OAuth-Scopes": allScopes}, Body: `{"ok":true,"user":"secretbot","team":"Lumi"}`},
			want: []string{"OK app-level", "OK bot secretbot in team Lumi", "OK every scope"}},
		{name: "missing email scope", reply: &reply{Header: map[string]string{"X-OAuth-Scopes": "commands,chat:write,users:read,usergroups:read,usergroups:write,files:write,im:write"}, Body: `{"ok":true,"user":"secretbot","team":"Lumi"}`},
			want: []string{"OK app-level", "OK bot secretbot", "FAIL lacks scopes users:read.email"}},
		{name: "invalid_auth", reply: &reply{Body: `{"ok":false,"error":"invalid_auth"}`}, want: []string{"OK app-level", "FAIL bot token rejected (invalid_auth)"}},
		{name: "token_revoked", reply: &reply{Body: `{"ok":false,"error":"token_revoked"}`}, want: []string{"OK app-level", "FAIL bot token rejected (token_revoked)"}},
		{name: "account_inactive", reply: &reply{Body: `{"ok":false,"error":"account_inactive"}`}, want: []string{"OK app-level", "FAIL bot token rejected (account_inactive)"}},
		{name: "not_authed", reply: &reply{Body: `{"ok":false,"error":"not_authed"}`}, want: []string{"OK app-level", "FAIL bot token rejected (not_authed)"}},
		{name: "server error", reply: &reply{Status: 503, Body: "<html>down</html>"}, want: []string{"OK app-level", "FAIL auth.test: Slack answered HTTP 503"}},
		{name: "rate limited", reply: &reply{Status: 429, Header: map[string]string{"Retry-After": "3"}}, want: []string{"OK app-level", "FAIL auth.test: rate limited by Slack, retry after 3s"}},
		{name: "bot token in app slot", appToken: "xoxb-test-wrong-slot", want: []string{"FAIL not an app-level token", "OK bot secretbot"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t)
			if tt.reply != nil {
				f.set("auth.test", *tt.reply)
			}
			c := f.client(t)
			if tt.appToken != "" {
				c = New(&config.Config{Creds: config.Credentials{SlackBotToken: testBot, SlackAppToken: tt.appToken, SlackAPIURL: f.srv.URL + "/api/"}}, f.srv.Client())
			}
			rs := c.Check(context.Background())
			if len(rs) != len(tt.want) {
				t.Fatalf("got %d results %+v, want %d", len(rs), rs, len(tt.want))
			}
			for i, w := range tt.want {
				status, detail, _ := strings.Cut(w, " ")
				if rs[i].Integration != "slack" || rs[i].Status != status || !strings.Contains(rs[i].Detail, detail) {
					t.Errorf("result %d = %+v, want %s containing %q", i, rs[i], status, detail)
				}
				assertNoToken(t, rs[i].Detail, testBot, testApp, tt.appToken)
			}
			if n := len(f.callsTo("apps.connections.open")); n != 0 {
				t.Errorf("check opened a Socket Mode connection %d times", n)
			}
			if calls := f.callsTo("auth.test"); len(calls) != 1 || calls[0].Form.Get("token") != testBot {
				t.Errorf("auth.test calls = %+v, want one with the bot token in the body", calls)
			}
		})
	}
}

func TestCheckUnreachable(t *testing.T) {
	f := newFakeSlack(t)
	c := f.client(t)
	f.srv.Close()
	rs := c.Check(context.Background())
	last := rs[len(rs)-1]
	if last.Status != check.Fail || !strings.Contains(last.Detail, "cannot reach Slack") {
		t.Fatalf("got %+v", last)
	}
	assertNoToken(t, last.Detail, testBot, testApp)
}

func TestNewDefaultBaseURL(t *testing.T) {
	c := New(&config.Config{}, nil)
	if c.base != DefaultAPIURL || c.http == nil || c.API() == nil {
		t.Fatalf("base %q http %v", c.base, c.http)
	}
}

// assertNoToken fails when s holds any of the tokens, as is or URL-encoded.
func assertNoToken(t *testing.T, s string, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		if tok == "" {
			continue
		}
		for _, form := range []string{tok, url.QueryEscape(tok), url.PathEscape(tok)} {
			if strings.Contains(s, form) {
				t.Errorf("credential leaked in %q", s)
			}
		}
	}
}
