package access_test

import (
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/policy"
)

func TestParseRequest(t *testing.T) {
	cfg := accesstest.Lumi()
	ana, bob := accesstest.Ana, accesstest.Bob
	tests := []struct {
		name      string
		who       policy.Person
		args      string // split on spaces; "|" inside a word stands for a space
		want      access.RequestArgs
		wantErr   []string // substrings of the *UserError
		wantField string
	}{
		{name: "scope and ticket, ttl defaults to the max", who: ana, args: "platform-rw --ticket SEC-12",
			want: access.RequestArgs{Scope: "platform-rw", TTL: 8 * time.Hour, Ticket: "SEC-12"}},
		{name: "flags in any order, = form, lower-case key", who: ana, args: "--ticket=sec-12 --ttl 1h30m platform-rw --reason fix|the|db",
			want: access.RequestArgs{Scope: "platform-rw", TTL: 90 * time.Minute, Ticket: "SEC-12", Reason: "fix the db"}},
		{name: "days are durations", who: ana, args: "platform-ro --ttl 0.1d --incident PABC123",
			want: access.RequestArgs{Scope: "platform-ro", TTL: 144 * time.Minute, Incident: "PABC123"}},
		{name: "incident number", who: bob, args: "platform-ro --incident #1234",
			want: access.RequestArgs{Scope: "platform-ro", TTL: 4 * time.Hour, Incident: "#1234"}},
		{name: "incident bare number", who: bob, args: "platform-ro --incident 1234",
			want: access.RequestArgs{Scope: "platform-ro", TTL: 4 * time.Hour, Incident: "#1234"}},
		{name: "incident URL", who: bob, args: "platform-ro --incident https://lumi.pagerduty.com/incidents/Q1W2E3R4",
			want: access.RequestArgs{Scope: "platform-ro", TTL: 4 * time.Hour, Incident: "Q1W2E3R4"}},
		{name: "reason of exactly 500", who: ana, args: "platform-rw --ticket SEC-1 --reason " + strings.Repeat("x", 500),
			want: access.RequestArgs{Scope: "platform-rw", TTL: 8 * time.Hour, Ticket: "SEC-1", Reason: strings.Repeat("x", 500)}},

		{name: "no scope lists mine", who: bob, args: "",
			wantErr: []string{"name a scope", "platform-ro"}, wantField: "scope"},
		{name: "unknown scope lists mine", who: ana, args: "nope",
			wantErr: []string{"`nope` is not a scope you may request", "You may request: platform-rw, payments-rw, platform-ro"}, wantField: "scope"},
		{name: "not eligible lists mine only", who: bob, args: "platform-rw --ticket SEC-1",
			wantErr: []string{"not a scope you may request", "You may request: platform-ro"}, wantField: "scope"},
		{name: "switched-off scope says why", who: bob, args: "legacy-ro",
			wantErr: []string{"switched off", "PAGERDUTY_TOKEN"}, wantField: "scope"},
		{name: "guest refused", who: accesstest.Gus, args: "platform-rw --ticket SEC-1",
			wantErr: []string{"Guest accounts cannot"}},
		{name: "ttl over max states max", who: ana, args: "platform-rw --ticket SEC-1 --ttl 9h",
			wantErr: []string{"over the maximum", "at most 8h"}, wantField: "ttl"},
		{name: "ttl in days over max", who: bob, args: "platform-ro --incident PABC123 --ttl 7d",
			wantErr: []string{"at most 4h"}, wantField: "ttl"},
		{name: "ttl not a duration", who: ana, args: "platform-rw --ticket SEC-1 --ttl soon",
			wantErr: []string{"not a duration", "30m, 2h, 1h30m, 7d"}, wantField: "ttl"},
		{name: "ttl too short", who: ana, args: "platform-rw --ticket SEC-1 --ttl 30s",
			wantErr: []string{"at least 1m"}, wantField: "ttl"},
		{name: "ticket missing", who: ana, args: "platform-rw",
			wantErr: []string{"needs an approved Jira ticket", "--ticket SEC-123"}, wantField: "ticket"},
		{name: "ticket in another project", who: ana, args: "platform-rw --ticket OPS-12",
			wantErr: []string{"not a ticket key of the SEC project", "SEC-123"}, wantField: "ticket"},
		{name: "ticket malformed", who: ana, args: "platform-rw --ticket SEC12",
			wantErr: []string{"not a ticket key"}, wantField: "ticket"},
		{name: "ticket zero", who: ana, args: "platform-rw --ticket SEC-0",
			wantErr: []string{"not a ticket key"}, wantField: "ticket"},
		{name: "ticket injection", who: ana, args: "platform-rw --ticket SEC-1'||1=1",
			wantErr: []string{"not a ticket key"}, wantField: "ticket"},
		{name: "ticket where none is taken", who: bob, args: "platform-ro --incident PABC123 --ticket SEC-1",
			wantErr: []string{"does not take a ticket"}, wantField: "ticket"},
		{name: "incident missing", who: bob, args: "platform-ro",
			wantErr: []string{"needs an active PagerDuty incident", "PABC123", "#1234"}, wantField: "incident"},
		{name: "incident malformed", who: bob, args: "platform-ro --incident p-12",
			wantErr: []string{"not an incident reference", "PABC123", "#1234", "URL"}, wantField: "incident"},
		{name: "incident URL without an id", who: bob, args: "platform-ro --incident https://lumi.pagerduty.com/services/PABC",
			wantErr: []string{"not an incident reference"}, wantField: "incident"},
		{name: "incident where none is taken", who: ana, args: "platform-rw --ticket SEC-1 --incident PABC123",
			wantErr: []string{"not bound to an incident"}, wantField: "incident"},
		{name: "reason too long", who: ana, args: "platform-rw --ticket SEC-1 --reason " + strings.Repeat("x", 5000),
			wantErr: []string{"5000 characters", "at most 500"}, wantField: "reason"},
		{name: "reason with a control character", who: ana, args: "platform-rw --ticket SEC-1 --reason a\x07b",
			wantErr: []string{"control or invisible", "U+0007"}, wantField: "reason"},
		{name: "reason with a line break", who: ana, args: "platform-rw --ticket SEC-1 --reason a\nb",
			wantErr: []string{"control or invisible"}, wantField: "reason"},
		{name: "reason with a bidi override", who: ana, args: "platform-rw --ticket SEC-1 --reason a\u202eb",
			wantErr: []string{"U+202E"}, wantField: "reason"},
		{name: "reason not UTF-8", who: ana, args: "platform-rw --ticket SEC-1 --reason a\xffb",
			wantErr: []string{"not valid text"}, wantField: "reason"},
		{name: "reason holding a token", who: ana, args: "platform-rw --ticket SEC-1 --reason use|hvs.CAESIabcdefghijklmnopqrstuvwxyz",
			wantErr: []string{"looks like it contains a token", "never paste credentials"}, wantField: "reason"},
		{name: "unknown flag lists flags", who: ana, args: "platform-rw --tiket SEC-1",
			wantErr: []string{"unknown flag", "--tiket", "--ttl, --ticket, --incident, --reason"}},
		{name: "flag twice", who: ana, args: "platform-rw --ticket SEC-1 --ticket SEC-2",
			wantErr: []string{"--ticket is given twice"}, wantField: "ticket"},
		{name: "flag without value", who: ana, args: "platform-rw --ticket",
			wantErr: []string{"--ticket needs a value"}, wantField: "ticket"},
		{name: "two scopes", who: ana, args: "platform-rw payments-rw --ticket SEC-1",
			wantErr: []string{"unexpected `payments-rw`", "--reason"}},
		{name: "mrkdwn in the scope is escaped", who: ana, args: "<!channel>",
			wantErr: []string{"&lt;!channel&gt;"}, wantField: "scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			for _, w := range strings.Fields(strings.ReplaceAll(tt.args, "\n", "\x00")) {
				args = append(args, strings.ReplaceAll(strings.ReplaceAll(w, "|", " "), "\x00", "\n"))
			}
			got, err := access.ParseRequest(args, cfg, tt.who)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("error: %v", err)
				}
				if got != tt.want {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			ue, ok := access.IsUserError(err)
			if !ok {
				t.Fatalf("err = %v (%T), want *UserError", err, err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(ue.Msg, w) {
					t.Errorf("message %q lacks %q", ue.Msg, w)
				}
			}
			if ue.Field != tt.wantField {
				t.Errorf("field %q, want %q", ue.Field, tt.wantField)
			}
		})
	}
}

func TestParseRequestFields(t *testing.T) {
	cfg := accesstest.Lumi()
	got, err := access.ParseRequestFields(cfg, accesstest.Bob, access.RequestFields{Scope: " platform-ro ", TTL: " 2h ", Incident: " #77 "})
	if err != nil || got.TTL != 2*time.Hour || got.Incident != "#77" || got.Scope != "platform-ro" {
		t.Fatalf("got %+v, %v", got, err)
	}
	_, err = access.ParseRequestFields(cfg, accesstest.Bob, access.RequestFields{Scope: "platform-ro", TTL: "2 hours", Incident: "#77"})
	if ue, ok := access.IsUserError(err); !ok || ue.Field != "ttl" {
		t.Fatalf("bad ttl: %v", err)
	}
}

func TestParseIncidentRef(t *testing.T) {
	for in, want := range map[string]string{
		"PABC123": "PABC123", "#1234": "#1234", "1234": "#1234",
		"https://acme.pagerduty.com/incidents/PABC123":  "PABC123",
		"https://acme.pagerduty.com/incidents/PABC123/": "PABC123",
		"":                              "",
		"#0":                            "",
		"pabc123":                       "",
		"PABC 123":                      "",
		"https://a@acme/incidents/PX12": "",
		"javascript:alert(1)":           "",
		"https://acme.pagerduty.com/incidents/../PABC": "",
	} {
		got, ok := access.ParseIncidentRef(in)
		if got != want || ok != (want != "") {
			t.Errorf("ParseIncidentRef(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
