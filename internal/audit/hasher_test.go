package audit

import (
	"strings"
	"testing"
	"time"
)

// One hasher reused over many records gives each record's own hash, and
// accepts a stored hash in either case but nothing else.
func TestHasherReuse(t *testing.T) {
	l := New([]byte("k"), nil)
	h := l.hasher()
	at := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	recs := []Record{
		{Seq: 1, Time: at, Actor: "U1", Action: "whoami", Outcome: OK},
		{Seq: 2, Time: at, Actor: "U1", Action: "grant.issued", Outcome: OK, Links: map[string]string{"grant": "G1", "ticket": "SEC-1", "a": ""}},
		{Seq: 3, Time: at, Actor: "secretbot", Action: "x", Outcome: Failed, Reason: "why", Links: map[string]string{"z": "1"}},
		{Seq: 4, Time: at, Actor: "U2", Action: "y", Outcome: Refused},
	}
	for i, r := range recs {
		want := New([]byte("k"), nil).hash(r) // a fresh HMAC each time
		if got := h.hash(r); got != want {
			t.Fatalf("record %d: reused hasher %s, fresh %s", i, got, want)
		}
		if !h.valid(r, want) || !h.valid(r, strings.ToUpper(want)) {
			t.Errorf("record %d: its own hash is not valid", i)
		}
		for _, bad := range []string{"", want[:62], want + "00", "zz" + want[2:], recs[(i+1)%len(recs)].Hash} {
			if h.valid(r, bad) {
				t.Errorf("record %d: %q accepted", i, bad)
			}
		}
		recs[i].Hash = want
	}
	if got := string(canonical(recs[1])); !strings.Contains(got, "grant") {
		t.Errorf("canonical lost the links: %q", got)
	}
}
