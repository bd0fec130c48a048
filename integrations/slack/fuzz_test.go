package slack

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
)

var entityRe = regexp.MustCompile(`^&(amp|lt|gt);`)

// inert reports what in s Slack would act on: an angle bracket, or an & not
// starting one of the three entities ("" when nothing).
func inert(s string) string {
	if i := strings.IndexAny(s, "<>"); i >= 0 {
		return "an angle bracket in " + s
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '&' && !entityRe.MatchString(s[i:]) {
			return "a bare & in " + s
		}
	}
	return ""
}

// FuzzEscape: Escape output holds no control sequence Slack would turn into
// a mention or a link and unescapes to the input; Code is one inline span
// without line breaks, control or bidi characters; the section splitter
// never cuts an entity or a rune, and keeps every non-space character.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"<!channel> please <http://evil.example|click> <@U0LEAD>", "<#C123|x>", "a & b &amp;",
		"`x`\n\u202e\u200b\ufeff", "   ", strings.Repeat("&lt;", 800), strings.Repeat("é<", 1600)} {
		f.Add(s)
	}
	unescape := strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(s)
		if bad := inert(e); bad != "" {
			t.Fatalf("Escape(%q): %s", s, bad)
		}
		if back := unescape.Replace(e); back != s {
			t.Fatalf("Escape(%q) = %q unescapes to %q", s, e, back)
		}
		c := Code(s)
		if len(c) < 3 || c[0] != '`' || c[len(c)-1] != '`' {
			t.Fatalf("Code(%q) = %q is not one span", s, c)
		}
		inner := c[1 : len(c)-1]
		if strings.ContainsAny(inner, "`\n\r") || strings.ContainsFunc(inner, func(r rune) bool {
			return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
		}) {
			t.Fatalf("Code(%q) = %q breaks out of its span", s, c)
		}
		if bad := inert(inner); bad != "" {
			t.Fatalf("Code(%q): %s", s, bad)
		}
		var kept strings.Builder
		for _, ch := range splitText(e, 300) {
			if len(ch) > 300 {
				t.Fatalf("a piece of %d bytes", len(ch))
			}
			if bad := inert(ch); bad != "" {
				t.Fatalf("splitting %q cut an entity: %s", e, bad)
			}
			kept.WriteString(ch)
		}
		strip := func(s string) string { return strings.Join(strings.Fields(s), "") }
		if strip(kept.String()) != strip(e) {
			t.Fatalf("splitting %q lost text: %q", e, kept.String())
		}
	})
}
