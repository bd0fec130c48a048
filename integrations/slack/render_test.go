package slack

import (
	"strings"
	"testing"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"<!channel>", "&lt;!channel&gt;"},
		{"<@U1>", "&lt;@U1&gt;"},
		{"<http://evil|click>", "&lt;http://evil|click&gt;"},
		{"a & b", "a &amp; b"},
		{"&lt;", "&amp;lt;"},
		{"*bold* _it_", "*bold* _it_"},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"kv/platform/db", "`kv/platform/db`"},
		{"x` <!here> `y", "`x &lt;!here&gt; y`"},
		{"```", "` `"},
		{"", "` `"},
		{"a\nb", "`a b`"},
		{"ab\u202ecd\u200b", "`abcd`"},
		{"a&b", "`a&amp;b`"},
	}
	for _, tt := range tests {
		if got := Code(tt.in); got != tt.want {
			t.Errorf("Code(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSplitText(t *testing.T) {
	line := strings.Repeat("x", 99) + "\n" // 100 bytes
	tests := []struct {
		name   string
		in     string
		max    int
		pieces int
	}{
		{"short", "hello", 3000, 1},
		{"blank", " \n ", 3000, 0},
		{"exact", strings.Repeat("a", 3000), 3000, 1},
		{"lines", strings.Repeat(line, 70), 3000, 3},
		{"one long word", strings.Repeat("a", 7000), 3000, 3},
		{"multibyte", strings.Repeat("é", 4000), 3000, 3},
		{"entities", strings.Repeat("&amp;", 1000), 3000, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitText(tt.in, tt.max)
			if len(got) != tt.pieces {
				t.Fatalf("%d pieces, want %d", len(got), tt.pieces)
			}
			for i, p := range got {
				if len(p) > tt.max || !utf8.ValidString(p) {
					t.Errorf("piece %d: %d bytes, valid utf8 %v", i, len(p), utf8.ValidString(p))
				}
				if strings.Contains(tt.in, "&amp;") && strings.Trim(strings.ReplaceAll(p, "&amp;", ""), "") != "" {
					t.Errorf("piece %d splits an entity: ...%q", i, p[len(p)-6:])
				}
			}
			if tt.name == "lines" && strings.Join(got, "\n")+"\n" != tt.in {
				t.Errorf("lines were not kept whole")
			}
		})
	}
}

func TestTextBlocksTruncates(t *testing.T) {
	bs := textBlocks(strings.Repeat(strings.Repeat("y", 2999)+"\n", 60))
	if len(bs) != blocksMax {
		t.Fatalf("%d blocks, want %d", len(bs), blocksMax)
	}
	last := bs[len(bs)-1].(*slackgo.SectionBlock)
	if last.Text.Text != truncated {
		t.Errorf("last block = %q", last.Text.Text)
	}
}
