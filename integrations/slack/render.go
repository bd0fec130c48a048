package slack

import (
	"strings"
	"unicode"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"
)

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape makes s inert in mrkdwn: Slack only reads mentions (<@U1>,
// <!channel>) and links (<http://x|y>) between angle brackets, so escaping
// &, < and > means text a user typed cannot ping or forge a link.
func Escape(s string) string { return escaper.Replace(s) }

// Code renders s as inline code that cannot be broken out of: backticks
// are removed (one would end the span), line breaks become spaces (inline
// code cannot span lines), control and bidi-override characters are dropped
// (they can make text read differently from what it is), and the rest is
// escaped as by Escape, because Slack still reads <...> inside code.
func Code(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '`':
			return -1
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r), r == '\u200b', r == '\ufeff':
			return -1
		}
		return r
	}, s)
	if strings.TrimSpace(s) == "" {
		// An empty span would print two literal backticks.
		return "` `"
	}
	return "`" + Escape(s) + "`"
}

// Slack's limits on what a message may carry.
const (
	sectionMax = 3000 // characters in a section's text
	blocksMax  = 50   // blocks in one message
	truncated  = "_(message truncated)_"
)

// textBlocks renders mrkdwn text as section blocks, each under Slack's
// 3000-character limit (counted in bytes, which is never less), split at
// line breaks where possible. Text too long for 50 sections is truncated.
func textBlocks(text string) []slackgo.Block {
	chunks := splitText(text, sectionMax)
	if len(chunks) > blocksMax {
		chunks = append(chunks[:blocksMax-1], truncated)
	}
	blocks := make([]slackgo.Block, 0, len(chunks))
	for _, ch := range chunks {
		// verbatim: bare URLs and #names are not turned into links, and
		// "@channel" typed as text is not a mention; handlers write
		// explicit <@U...> syntax when they mean one.
		blocks = append(blocks, slackgo.NewSectionBlock(slackgo.NewTextBlockObject(slackgo.MarkdownType, ch, false, true), nil, nil))
	}
	return blocks
}

// splitText cuts s into non-blank pieces of at most max bytes, preferring a
// line break, then a space, and never cutting a rune or an &entity; apart.
func splitText(s string, max int) []string {
	var out []string
	add := func(p string) {
		if strings.TrimSpace(p) != "" {
			out = append(out, p)
		}
	}
	for len(s) > max {
		cut := strings.LastIndexByte(s[:max+1], '\n')
		if cut < max/2 {
			cut = strings.LastIndexByte(s[:max+1], ' ')
		}
		if cut < max/2 {
			cut = max
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			// "&amp;" and friends are at most 5 bytes: do not split one.
			if amp := strings.LastIndexByte(s[:cut], '&'); amp >= 0 && cut-amp < 5 && !strings.Contains(s[amp:cut], ";") {
				cut = amp
			}
		}
		if cut <= 0 {
			cut = max
		}
		add(strings.TrimRight(s[:cut], "\n "))
		s = strings.TrimLeft(s[cut:], "\n ")
	}
	add(strings.TrimRight(s, "\n "))
	return out
}
