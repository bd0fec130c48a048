package access

import (
	"strings"
	"unicode/utf8"
)

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape makes text inert in Slack mrkdwn (& < >): `<!channel>`, `<@U1>` and
// links typed by people are shown, not acted on.
func Escape(s string) string { return escaper.Replace(s) }

// Code renders s as inline code: escaped, without backticks or line breaks.
func Code(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '`' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	return "`" + Escape(s) + "`"
}

// Truncate shortens s to at most n characters, marking the cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
