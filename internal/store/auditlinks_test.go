package store

import (
	"encoding/json"
	"reflect"
	"testing"
)

// decodeLinks gives exactly what encoding/json gives (nil for no links, and
// the "unreadable links" marker for invalid JSON), fast path or not.
func TestDecodeLinksMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`{}`, `{"grant":"GABCDEFGH"}`, `{"grant":"G1","ticket":"SEC-1"}`, `{"":""}`, `{"a":"x","a":"y"}`,
		`{"a":"caf\u00e9"}`, `{"a":"café ✓"}`, `{"a":"tab\there"}`, `{"a":"quote\"d"}`, `{"a":"back\\slash"}`,
		`{ "a":"spaced"}`, `{"a" : "b"}`, `{"a":"b",}`, `{"a":"b"`, `{"a":}`, `{"a"}`, `{"a":1}`, `{"a":null}`,
		`null`, `[]`, ``, `{`, `}`, `{"a":"b"}x`, `x{"a":"b"}`, "{\"a\":\"\xff\"}", "{\"a\":\"line\nbreak\"}",
		"{\"a\":\"del\x7f\"}", `{"slack_thread":"C1/1700000000.000100","subject":""}`, `{"a":"b","c":"d","e":"f","g":"h","i":"j"}`,
	}
	for _, in := range inputs {
		var want map[string]string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			want = map[string]string{"unreadable links": in}
		}
		if len(want) == 0 {
			want = nil
		}
		if got := decodeLinks(in); !reflect.DeepEqual(got, want) {
			t.Errorf("decodeLinks(%q) = %#v, want %#v", in, got, want)
		}
	}
}

// The links the bot writes (ids, tickets, threads) take the fast path;
// text json.Marshal escapes (&, <, >) takes the slow one, same result.
func TestPlainLinksReadsWhatInsertWrites(t *testing.T) {
	links := map[string]string{"grant": "GABCDEFGH", "ticket": "SEC-12", "slack_thread": "C1/1700.1", "incident": "PABC123"}
	b, err := json.Marshal(links)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := plainLinks(string(b)); !ok || !reflect.DeepEqual(got, links) {
		t.Fatalf("plainLinks(%s) = %v, %v", b, got, ok)
	}
	links["subject"] = "<@U1> & co"
	if b, err = json.Marshal(links); err != nil {
		t.Fatal(err)
	}
	if _, ok := plainLinks(string(b)); ok {
		t.Fatalf("plainLinks(%s) took the fast path over escapes", b)
	}
	if got := decodeLinks(string(b)); !reflect.DeepEqual(got, links) {
		t.Fatalf("decodeLinks(%s) = %v", b, got)
	}
}

func FuzzDecodeLinks(f *testing.F) {
	f.Add(`{"a":"b"}`)
	f.Add(`{"a":"\u003c"}`)
	f.Add("{\"a\":\"\xff\"}")
	f.Fuzz(func(t *testing.T, in string) {
		var want map[string]string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			want = map[string]string{"unreadable links": in}
		}
		if len(want) == 0 {
			want = nil
		}
		if got := decodeLinks(in); !reflect.DeepEqual(got, want) {
			t.Errorf("decodeLinks(%q) = %#v, want %#v", in, got, want)
		}
	})
}
