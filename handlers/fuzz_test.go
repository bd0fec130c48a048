package handlers

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// Fuzz targets of what people type and click. `go test` runs their seeds
// (f.Add and testdata/fuzz); `make fuzz` fuzzes each.

// quoteArg writes arg so that SplitArgs reads it back as one word: in
// double quotes, each quote escaped, and trailing backslashes (which would
// escape the closing quote) after it.
func quoteArg(arg string) string {
	body := strings.TrimRight(arg, `\`)
	tail := arg[len(body):]
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range body {
		if isQuote(r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	b.WriteString(tail)
	return b.String()
}

// FuzzSplitArgs: words never hold unquoted space, and quoting the words
// gives them back.
func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{"", "  request  platform-ro ", `request x --reason "db is down"`, "--reason “curly quotes”",
		`a \"b\"`, `--reason ""`, `"open`, `a\ b`, `"x\"`, `\\"`, "tab\tand\nnewline", "\u00a0nbsp\u2003"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := SplitArgs(s)
		if err != nil {
			if err != ErrUnbalancedQuote {
				t.Fatalf("SplitArgs(%q): unexpected error %v", s, err)
			}
			return
		}
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = quoteArg(a)
		}
		again, err := SplitArgs(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(again, args) {
			t.Fatalf("SplitArgs(%q) = %q; quoted %q; read back %q, %v", s, args, quoted, again, err)
		}
		if !strings.ContainsFunc(s, isQuote) {
			for _, a := range args {
				if a == "" || strings.ContainsFunc(a, unicode.IsSpace) {
					t.Fatalf("SplitArgs(%q) = %q: a word with space without quotes", s, args)
				}
			}
		}
	})
}

// FuzzEscape: escaped text holds no control sequence Slack would act on,
// and unescapes to the original; Code keeps inside its span.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"<!channel> please <http://evil.example|click> <@U0LEAD>", "<#C123>", "a & b", "&lt;", "`x`\n"} {
		f.Add(s)
	}
	unescape := strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(s)
		if bad := unsafeMrkdwn(e, nil); bad != "" {
			t.Fatalf("Escape(%q) = %q: %s", s, e, bad)
		}
		if back := unescape.Replace(e); back != s {
			t.Fatalf("Escape(%q) = %q unescapes to %q", s, e, back)
		}
		c := Code(s)
		if strings.ContainsAny(c, "`\n\r") {
			t.Fatalf("Code(%q) = %q breaks out of its span", s, c)
		}
		if bad := unsafeMrkdwn(c, nil); bad != "" {
			t.Fatalf("Code(%q) = %q: %s", s, c, bad)
		}
	})
}

var (
	controlSeq = regexp.MustCompile(`<[^>]*>?`)
	entityRe   = regexp.MustCompile(`^&(amp|lt|gt);`)
)

// unsafeMrkdwn says what in s Slack would act on: an angle-bracket sequence
// other than a mention of one of the users the bot itself names, or an &
// that does not start one of the three entities. "" if none.
func unsafeMrkdwn(s string, mentionable []string) string {
	for _, m := range controlSeq.FindAllString(s, -1) {
		id, ok := strings.CutPrefix(m, "<@")
		if ok && strings.HasSuffix(id, ">") && slices.Contains(mentionable, strings.TrimSuffix(id, ">")) {
			continue
		}
		return "control sequence " + m
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '&' && !entityRe.MatchString(s[i:]) {
			return "a bare & in " + s
		}
	}
	return ""
}

// fuzzUsers are the people of accessHandlers, the only ones a reply may mention.
var fuzzUsers = []string{"U1", "U2"}

func checkReplies(t *testing.T, what string, res Result) {
	t.Helper()
	for _, m := range res.Replies {
		if strings.TrimSpace(m.Text) == "" {
			t.Fatalf("%s: an empty reply: %+v", what, m)
		}
		if bad := unsafeMrkdwn(m.Text+string(m.Blocks), fuzzUsers); bad != "" {
			t.Fatalf("%s: reply %q: %s", what, m.Text, bad)
		}
	}
	for _, e := range res.Audit {
		if e.Action == "" || e.Outcome == "" {
			t.Fatalf("%s: an audit event without action or outcome: %+v", what, e)
		}
	}
}

// FuzzCommand runs any text as `/secrets …` from a member and from
// Platform Security, against fakes of the services: every answer is a
// non-empty reply Slack cannot read as a ping or a link, every refusal is
// audited, and the ack summary is JSON.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{"", "help", "whoami", "request platform-ro --ttl 2h --reason \"<!channel> x\"", "request",
		"grants", "revoke gk3d9qx2a", "revoke <@U1>", "explain <@U1|ana> platform-ro", "audit --user <@U2> --since 99999999d",
		"audit --since -1h", "inventory --overdue --env <!here> --export", "rotate db --ticket SEC-1 --emergency --incident #1",
		"exposure <http://evil|x>", "journal restore-test passed \"<@U0LEAD> ok\"", "drift", "register", "provision",
		"<!channel>", "“unbalanced", "frobnicate & <#C1>"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, text string, security bool) {
		h, _, _ := accessHandlers()
		h.Rotation, h.Files = &fakeRotation{}, &fakeFiles{}
		user := "U1"
		if security {
			user = "U2"
		}
		res := h.Command(context.Background(), Command{UserID: user, ChannelID: "C1", Command: "/secrets", Text: text,
			ResponseURL: "https://hooks.slack.test/r", TriggerID: "T1"})
		checkReplies(t, text, res)
		if ack := AckSummary(text); ack != nil && !json.Valid(ack) {
			t.Fatalf("AckSummary(%q) is not JSON: %s", text, ack)
		}
	})
}

// FuzzInteraction runs any click and any submitted modal: no panic, and
// every answer is a non-empty, inert reply; validation errors name blocks.
func FuzzInteraction(f *testing.F) {
	f.Add(ActionApprove, "GK3D9QX2A", RequestModal, "", "platform-ro", "2h", "<!here>", true)
	f.Add(ActionDeny, "gk3d9qx2a", DenyModal, `{"grant":"GK3D9QX2A","channel":"C1","ts":"1.2"}`, "", "", "<http://x|y>", true)
	f.Add(ActionDone, "G", DenyModal, `{"grant":`, "", "", "", false)
	f.Add("rotation_confirm", "R1234", RegisterModal, "", "db", "90d", "<@U9>", true)
	f.Add("review_remove", `{"group":"S1","user":"U1"}`, ProvisionModal, "SEC-1", "x", "1d", "", true)
	f.Fuzz(func(t *testing.T, action, value, callback, meta, scope, ttl, text string, security bool) {
		h, _, _ := accessHandlers()
		h.Rotation, h.Files, h.Groups = &fakeRotation{}, &fakeFiles{}, fakeGroups{}
		user := "U1"
		if security {
			user = "U2"
		}
		ctx := context.Background()
		checkReplies(t, "click "+action, h.Click(ctx, Click{UserID: user, ActionID: action, Value: value, ChannelID: "C1",
			MessageTS: "1.2", TriggerID: "T1"}))
		values := map[string]map[string]string{}
		for _, k := range []string{fieldScope, fieldTTL, fieldTicket, fieldIncident, fieldReason, denyReasonField,
			"name", "environment", "owner_team", "owner_contact", "path", "interval", "notes"} {
			v := text
			switch k {
			case fieldScope, "name":
				v = scope
			case fieldTTL, "interval":
				v = ttl
			}
			values[k] = map[string]string{k: v}
		}
		sub := Submission{UserID: user, CallbackID: callback, PrivateMetadata: meta, Values: values}
		for block, msg := range h.Validate(ctx, sub) {
			if block == "" || strings.TrimSpace(msg) == "" {
				t.Fatalf("validation error %q: %q", block, msg)
			}
		}
		checkReplies(t, "submit "+callback, h.Submit(ctx, sub))
	})
}

type fakeGroups struct{}

func (fakeGroups) RemoveFromGroup(context.Context, string, string) error { return nil }
