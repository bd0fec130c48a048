package access

import (
	"encoding/json"
	"strings"
)

// Block Kit JSON, built without a Slack library. Every helper takes mrkdwn
// that is already escaped (Escape/Code user text first).

// Block is one Block Kit block.
type Block map[string]any

// Button is an interactive button in an actions block. Style is "",
// "primary" or "danger".
type Button struct {
	Text, ActionID, Value, Style string
}

// maxSectionText is Slack's limit on a section's text.
const maxSectionText = 3000

// Section is a mrkdwn section block.
func Section(mrkdwn string) Block {
	return Block{"type": "section", "text": mrkdwnText(Truncate(mrkdwn, maxSectionText))}
}

// Context is a context block of mrkdwn elements (at most 10).
func Context(mrkdwn ...string) Block {
	if len(mrkdwn) > 10 {
		mrkdwn = mrkdwn[:10]
	}
	els := make([]any, 0, len(mrkdwn))
	for _, m := range mrkdwn {
		els = append(els, mrkdwnText(Truncate(m, 2000)))
	}
	return Block{"type": "context", "elements": els}
}

// Divider is a divider block.
func Divider() Block { return Block{"type": "divider"} }

// Actions is an actions block of buttons.
func Actions(blockID string, buttons ...Button) Block {
	els := make([]any, 0, len(buttons))
	for _, b := range buttons {
		e := map[string]any{
			"type":      "button",
			"text":      map[string]any{"type": "plain_text", "text": Truncate(b.Text, 75), "emoji": true},
			"action_id": b.ActionID,
			"value":     b.Value,
		}
		if b.Style == "primary" || b.Style == "danger" {
			e["style"] = b.Style
		}
		els = append(els, e)
	}
	bl := Block{"type": "actions", "elements": els}
	if blockID != "" {
		bl["block_id"] = blockID
	}
	return bl
}

func mrkdwnText(s string) map[string]any {
	return map[string]any{"type": "mrkdwn", "text": s}
}

// Blocks encodes blocks as the JSON array Slack takes.
func Blocks(bs ...Block) json.RawMessage {
	b, err := json.Marshal(bs)
	if err != nil { // only maps of strings and slices: cannot fail
		panic("access: encode blocks: " + err.Error())
	}
	return b
}

// Plain is a plain-text fallback for blocks: the mrkdwn lines joined.
func Plain(lines ...string) string {
	return strings.Join(nonEmpty(lines), "\n")
}

func nonEmpty(ss []string) []string {
	out := ss[:0:0]
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
