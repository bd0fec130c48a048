package handlers

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// escaper is built once: a Replacer builds its lookup table on first use,
// which cost more than the replacing when it was made per call.
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape makes user text inert in Slack mrkdwn: `<!channel>`, `<@U1>` and
// `<http://x|y>` are shown, not acted on.
func Escape(s string) string { return escaper.Replace(s) }

// unescaper undoes Slack's escaping of command text (see Unescape).
var unescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// Unescape turns slash-command text back into what the person typed: the
// manifest's should_escape makes Slack send `&`, `<` and `>` as entities
// (and mentions as <@U…|name>). Without it, a reason "a & b" would be shown
// and stored as "a &amp; b". Everything echoed is escaped again on the way out.
func Unescape(s string) string { return unescaper.Replace(s) }

// Code renders s for inline code: escaped, and without backticks or line
// breaks that would let it break out of the span.
func Code(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '`' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	return Escape(s)
}

// Truncate shortens s to at most n runes, marking the cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// ErrUnbalancedQuote is returned for text with an unclosed quote.
var ErrUnbalancedQuote = errors.New(`a quote is not closed: wrap a value with spaces in "double quotes"`)

// SplitArgs splits command text into words. Double quotes (straight or the
// curly ones Slack clients substitute) group words; a backslash escapes a quote.
func SplitArgs(s string) ([]string, error) {
	var (
		out     []string
		cur     strings.Builder
		inQuote bool
		started bool
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\\' && i+1 < len(rs) && isQuote(rs[i+1]):
			cur.WriteRune(rs[i+1])
			started = true
			i++
		case isQuote(r):
			inQuote = !inQuote
			started = true
		case unicode.IsSpace(r) && !inQuote:
			if started {
				out = append(out, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if inQuote {
		return nil, ErrUnbalancedQuote
	}
	if started {
		out = append(out, cur.String())
	}
	return out, nil
}

func isQuote(r rune) bool { return r == '"' || r == '“' || r == '”' }
