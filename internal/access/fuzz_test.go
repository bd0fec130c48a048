package access_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/policy"
)

// Fuzz targets of the access domain's parsers and text helpers. `go test`
// runs their seeds (f.Add and testdata/fuzz); `make fuzz` fuzzes each.

var fuzzPeople = []policy.Person{accesstest.Ana, accesstest.Bob, accesstest.Lee, accesstest.Gus, {}}

// acceptedHints are the words with which a refusal says what is accepted.
var acceptedHints = []string{"accepted", "give", "usage", "at most", "at least", "may request", "add --",
	"leave out", "use ", "name a scope", "give it once", "needs a value", "plain",
	// who may never request (guests, bots, deactivated accounts) is told so
	"cannot request"}

// checkRefusal asserts err is a *UserError that says what is accepted and
// that Slack cannot read as a mention or link.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	ue, ok := access.IsUserError(err)
	if !ok {
		t.Fatalf("refusal is not a *UserError: %v", err)
	}
	if strings.TrimSpace(ue.Msg) == "" {
		t.Fatal("empty refusal")
	}
	if !hasAny(strings.ToLower(ue.Msg), acceptedHints) {
		t.Errorf("refusal does not say what is accepted: %q", ue.Msg)
	}
	if bad := unsafeMrkdwn(ue.Msg); bad != "" {
		t.Errorf("refusal %q: %s", ue.Msg, bad)
	}
}

func hasAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

var entity = regexp.MustCompile(`^&(amp|lt|gt);`)

// unsafeMrkdwn says what in s Slack would act on: any angle bracket (a
// mention, a link) or an & that does not start one of the three entities
// (so an escaped text cannot be read back as a control sequence). "" if none.
func unsafeMrkdwn(s string) string {
	if i := strings.IndexAny(s, "<>"); i >= 0 {
		return "unescaped " + string(s[i]) + " at byte " + strconv.Itoa(i)
	}
	for i := strings.IndexByte(s, '&'); i >= 0; {
		if !entity.MatchString(s[i:]) {
			return "a bare & at byte " + strconv.Itoa(i)
		}
		j := strings.IndexByte(s[i+1:], '&')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return ""
}

// checkParsed asserts a request that parsed is one the bot may act on.
func checkParsed(t *testing.T, cfg *config.Config, p policy.Person, a access.RequestArgs) {
	t.Helper()
	sc, ok := cfg.Scope(a.Scope)
	if !ok {
		t.Fatalf("parsed scope %q is not configured", a.Scope)
	}
	if sc.Disabled || !policy.Eligible(sc, p) {
		t.Fatalf("parsed scope %q is disabled or not for %s", a.Scope, p.SlackID)
	}
	if a.TTL < access.MinTTL || a.TTL > sc.MaxTTL.D() {
		t.Fatalf("TTL %v outside [%v, %v]", a.TTL, access.MinTTL, sc.MaxTTL.D())
	}
	needsJira, needsIncident := false, false
	for _, e := range sc.Evidence {
		needsJira = needsJira || e == config.EvidenceJira
		needsIncident = needsIncident || e == config.EvidenceIncident
	}
	if needsJira != (a.Ticket != "") {
		t.Fatalf("ticket %q for a scope that needs one: %v", a.Ticket, needsJira)
	}
	if a.Ticket != "" {
		if k, err := access.ParseTicketKey(a.Ticket, cfg.Jira.Project); err != nil || k != a.Ticket {
			t.Fatalf("parsed ticket %q does not parse to itself: %q %v", a.Ticket, k, err)
		}
	}
	if needsIncident != (a.Incident != "") {
		t.Fatalf("incident %q for a scope that needs one: %v", a.Incident, needsIncident)
	}
	if a.Incident != "" {
		if ref, ok := access.ParseIncidentRef(a.Incident); !ok || ref != a.Incident {
			t.Fatalf("parsed incident %q does not parse to itself: %q", a.Incident, ref)
		}
	}
	if !utf8.ValidString(a.Reason) || utf8.RuneCountInString(a.Reason) > access.MaxReasonLen || a.Reason != strings.TrimSpace(a.Reason) {
		t.Fatalf("reason %q accepted", a.Reason)
	}
	for _, r := range a.Reason {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Fatalf("reason with %U accepted", r)
		}
	}
}

// FuzzParseRequest fuzzes `/secrets request …`: words, then a reason that
// may hold spaces, as one of the fixture's people.
func FuzzParseRequest(f *testing.F) {
	f.Add("platform-rw --ticket SEC-12", "", byte(0))
	f.Add("--ticket=sec-12 --ttl 1h30m platform-rw", "fix the db", byte(0))
	f.Add("platform-ro --ttl 0.1d --incident PABC123", "", byte(1))
	f.Add("platform-ro --incident https://lumi.pagerduty.com/incidents/Q1W2E3R4", "", byte(1))
	f.Add("platform-ro --incident #1234 --ttl 99999999999999d", "", byte(1))
	f.Add("platform-rw --ticket SEC-1 --ttl 9h", "<!channel> please <http://evil.example|click> <@U0LEAD>", byte(0))
	f.Add("payments-rw --ticket SEC-0001 --bogus", "", byte(0))
	f.Add("legacy-ro extra words", "\u202e", byte(1))
	f.Add("", "", byte(3))
	f.Fuzz(func(t *testing.T, words, reason string, who byte) {
		cfg := accesstest.Lumi()
		p := fuzzPeople[int(who)%len(fuzzPeople)]
		args := strings.Fields(words)
		if reason != "" {
			args = append(args, "--reason", reason)
		}
		a, err := access.ParseRequest(args, cfg, p)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		checkParsed(t, cfg, p, a)
	})
}

// FuzzParseRequestFields fuzzes the request modal's fields, as submitted.
func FuzzParseRequestFields(f *testing.F) {
	f.Add("platform-rw", "2h", "SEC-12", "", "rotate the db", byte(0))
	f.Add("platform-ro", "", "", "#42", "", byte(1))
	f.Add("payments-rw", "8h0m1s", "sec-9", "", "", byte(0))
	f.Add("platform-ro", "1d", "", "http://x.pagerduty.com/incidents/PX/", "", byte(1))
	f.Add("PLATFORM-RW", " 59s ", "SEC-1", "", "&lt;!here&gt; <!here>", byte(0))
	f.Fuzz(func(t *testing.T, scope, ttl, ticket, incident, reason string, who byte) {
		cfg := accesstest.Lumi()
		p := fuzzPeople[int(who)%len(fuzzPeople)]
		a, err := access.ParseRequestFields(cfg, p, access.RequestFields{Scope: scope, TTL: ttl, Ticket: ticket, Incident: incident, Reason: reason})
		if err != nil {
			checkRefusal(t, err)
			return
		}
		checkParsed(t, cfg, p, a)
	})
}

var (
	incidentIDRe = regexp.MustCompile(`^[A-Z0-9]{2,32}$`)
	incidentNoRe = regexp.MustCompile(`^#[1-9][0-9]{0,11}$`)
)

// FuzzParseIncidentRef: a reference is reduced to an id or a #number that
// parses to itself.
func FuzzParseIncidentRef(f *testing.F) {
	for _, s := range []string{"PABC123", "#1234", "1234", "https://lumi.pagerduty.com/incidents/Q1W2E3R4",
		"http://user:pw@x/incidents/PX", "https://x/incidents/PABC/extra", "#0", "0123", " P1 ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, ok := access.ParseIncidentRef(s)
		if !ok {
			if ref != "" {
				t.Fatalf("refused %q but returned %q", s, ref)
			}
			return
		}
		if !incidentIDRe.MatchString(ref) && !incidentNoRe.MatchString(ref) {
			t.Fatalf("%q -> %q, neither an id nor a #number", s, ref)
		}
		if again, ok := access.ParseIncidentRef(ref); !ok || again != ref {
			t.Fatalf("%q -> %q -> %q (%v): not stable", s, ref, again, ok)
		}
	})
}

// FuzzTicketKey: an accepted key is upper case, in the project, and parses
// to itself; a refused one is told what is accepted.
func FuzzTicketKey(f *testing.F) {
	for _, s := range []string{"SEC-123", "sec-1", " SEC-99 ", "SEC-0", "SEC-01", "OPS-12", "S-1", "SEC_X-12",
		"SEC-12345678901", "<!channel>-1", "ſec-1"} {
		f.Add(s, "SEC")
	}
	f.Add("OPS-1", "")
	f.Fuzz(func(t *testing.T, s, project string) {
		key, err := access.ParseTicketKey(s, project)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if key != strings.ToUpper(key) || !ticketKey.MatchString(key) {
			t.Fatalf("%q accepted as %q", s, key)
		}
		if p := strings.ToUpper(strings.TrimSpace(project)); p != "" && !strings.HasPrefix(key, p+"-") {
			t.Fatalf("%q accepted as %q outside project %q", s, key, project)
		}
		if again, err := access.ParseTicketKey(key, project); err != nil || again != key {
			t.Fatalf("%q -> %q -> %q, %v: not stable", s, key, again, err)
		}
	})
}

var ticketKey = regexp.MustCompile(`^[A-Z][A-Z0-9_]+-[1-9][0-9]{0,9}$`)

// FuzzNormalizeGrantID: an accepted id has the grant id shape and is stable.
func FuzzNormalizeGrantID(f *testing.F) {
	for _, s := range []string{"GK3D9QX2A", "gk3d9qx2a", " GK3D9QX2A\n", "GK3D9QX2", "GI0000000", "G00000000O", access.NewGrantID()} {
		f.Add(s)
	}
	shape := regexp.MustCompile(`^G[0-9A-HJKMNP-TV-Z]{8}$`)
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := access.NormalizeGrantID(s)
		if !ok {
			return
		}
		if !shape.MatchString(id) {
			t.Fatalf("%q accepted as %q", s, id)
		}
		if again, ok := access.NormalizeGrantID(id); !ok || again != id {
			t.Fatalf("%q -> %q -> %q: not stable", s, id, again)
		}
	})
}

// FuzzEscape: escaped text holds no control sequence Slack would act on,
// and unescapes to the original; Code also keeps inside its span.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"<!channel> please <http://evil.example|click> <@U0LEAD>", "<#C123>", "a & b", "&lt;",
		"&amp;lt;", "`code` <!here>", "line\nbreak\r", "\u202e", "<<>>&&"} {
		f.Add(s)
	}
	unescape := strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
	f.Fuzz(func(t *testing.T, s string) {
		e := access.Escape(s)
		if bad := unsafeMrkdwn(e); bad != "" {
			t.Fatalf("Escape(%q) = %q: %s", s, e, bad)
		}
		if back := unescape.Replace(e); back != s {
			t.Fatalf("Escape(%q) = %q unescapes to %q", s, e, back)
		}
		c := access.Code(s)
		if len(c) < 2 || c[0] != '`' || c[len(c)-1] != '`' {
			t.Fatalf("Code(%q) = %q is not one span", s, c)
		}
		inner := c[1 : len(c)-1]
		if strings.ContainsAny(inner, "`\n\r") {
			t.Fatalf("Code(%q) = %q breaks out of its span", s, c)
		}
		if bad := unsafeMrkdwn(inner); bad != "" {
			t.Fatalf("Code(%q) = %q: %s", s, c, bad)
		}
	})
}
