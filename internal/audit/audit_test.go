package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// memStore is an in-memory Tx/Scanner; InTx serialises writers like the
// real store's write transactions do and rolls back on error.
type memStore struct {
	mu   sync.Mutex
	recs []Record
}

type memTx struct{ m *memStore }

func (m *memStore) InTx(fn func(Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.recs)
	if err := fn(memTx{m}); err != nil {
		m.recs = m.recs[:n]
		return err
	}
	return nil
}

func (t memTx) AuditHead(context.Context) (int64, string, error) {
	if len(t.m.recs) == 0 {
		return 0, "", nil
	}
	last := t.m.recs[len(t.m.recs)-1]
	return last.Seq, last.Hash, nil
}

func (t memTx) AuditInsert(_ context.Context, r Record) error {
	for _, x := range t.m.recs {
		if x.Seq == r.Seq {
			return fmt.Errorf("seq %d taken", r.Seq)
		}
	}
	r.Links = copyLinks(r.Links)
	t.m.recs = append(t.m.recs, r)
	return nil
}

func (m *memStore) AuditScan(_ context.Context, from int64, fn func(Record) error) error {
	m.mu.Lock()
	recs := append([]Record(nil), m.recs...)
	m.mu.Unlock()
	for _, r := range recs {
		if r.Seq < from {
			continue
		}
		r.Links = copyLinks(r.Links)
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

var testKey = []byte("test-audit-key-0123456789abcdef-0123456789")

func clock() func() time.Time {
	t := time.Date(2025, 3, 1, 9, 0, 0, 123456789, time.UTC)
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func event(i int) Event {
	return Event{
		Actor: "U0TEST", Action: "access.request", Scope: "platform-ro", Outcome: OK,
		Reason: fmt.Sprintf("event number %d", i),
		Links:  map[string]string{"ticket": "SEC-1", "grant": fmt.Sprint(i)},
	}
}

// filled returns a store holding n valid events.
func filled(t *testing.T, l *Log, n int) *memStore {
	t.Helper()
	m := &memStore{}
	for i := 1; i <= n; i++ {
		if err := m.InTx(func(tx Tx) error { _, err := l.Append(context.Background(), tx, event(i)); return err }); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestAppendChainsAndVerifies(t *testing.T) {
	ctx := context.Background()
	l := New(testKey, clock())
	m := &memStore{}
	var recs []Record
	for i := 1; i <= 5; i++ {
		if err := m.InTx(func(tx Tx) error {
			r, err := l.Append(ctx, tx, event(i))
			recs = append(recs, r)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range recs {
		if r.Seq != int64(i+1) {
			t.Errorf("event %d: seq %d", i+1, r.Seq)
		}
		if i == 0 && r.PrevHash != "" || i > 0 && r.PrevHash != recs[i-1].Hash {
			t.Errorf("event %d: prev %q does not chain", r.Seq, r.PrevHash)
		}
		if len(r.Hash) != 64 || r.Time.Location() != time.UTC {
			t.Errorf("event %d: hash %q time %v", r.Seq, r.Hash, r.Time)
		}
	}
	res, err := l.Verify(ctx, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	head := Checkpoint{Seq: 5, Hash: recs[4].Hash}
	if res.Events != 5 || res.Head != head {
		t.Fatalf("result %+v, want 5 events head %v", res, head)
	}
	if _, err := l.Verify(ctx, m, &head); err != nil {
		t.Fatalf("verify with own head as checkpoint: %v", err)
	}
	empty, err := l.Verify(ctx, &memStore{}, nil)
	if err != nil || empty.Events != 0 {
		t.Fatalf("empty log: %+v %v", empty, err)
	}
}

func TestAppendRefusesCredentials(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Event)
		bad  string
	}{
		{"slack bot token", func(e *Event) { e.Reason = "oops xoxb-test-123-abc" }, "xoxb-test-123-abc"},
		{"slack user token", func(e *Event) { e.Secret = "xoxp-test-1" }, "xoxp-test-1"},
		{"app token", func(e *Event) { e.Reason = "xapp-test-1-A" }, "xapp-test-1-A"},
		{"vault token in link", func(e *Event) { e.Links = map[string]string{"accessor": "hvs.TESTabcdef"} }, "hvs.TESTabcdef"},
		{"legacy vault token", func(e *Event) { e.Reason = "token s.ABCDEFGHIJKLMNOPQRSTUVWX" }, "s.ABCDEFGHIJKLMNOPQRSTUVWX"},
		{"bearer", func(e *Event) { e.Reason = "header Bearer abc.def" }, "abc.def"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &memStore{}
			e := event(1)
			tt.mod(&e)
			err := m.InTx(func(tx Tx) error { _, err := New(testKey, nil).Append(context.Background(), tx, e); return err })
			if !errors.Is(err, ErrCredential) {
				t.Fatalf("err = %v, want ErrCredential", err)
			}
			if strings.Contains(err.Error(), tt.bad) {
				t.Fatalf("error repeats the credential: %v", err)
			}
			if len(m.recs) != 0 {
				t.Fatal("event stored")
			}
		})
	}
	for _, ok := range []string{"rotate secrets.yaml", "s.short", "xox is fine", "bearer of bad news:", "hvs."} {
		if LooksLikeCredential(ok) {
			t.Errorf("%q wrongly looks like a credential", ok)
		}
	}
}

func TestAppendInvalid(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Event)
	}{
		{"no actor", func(e *Event) { e.Actor = "" }},
		{"no action", func(e *Event) { e.Action = "" }},
		{"bad outcome", func(e *Event) { e.Outcome = "maybe" }},
		{"empty link name", func(e *Event) { e.Links = map[string]string{"": "x"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := event(1)
			tt.mod(&e)
			err := (&memStore{}).InTx(func(tx Tx) error { _, err := New(testKey, nil).Append(context.Background(), tx, e); return err })
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("err = %v, want ErrInvalidEvent", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	got := Redact("slack said no to xoxb-test-1-2 and vault to hvs.TESTx")
	if strings.Contains(got, "xoxb-") || strings.Contains(got, "hvs.") || !strings.Contains(got, "[redacted]") {
		t.Fatalf("Redact = %q", got)
	}
}

func TestCanonicalUnambiguous(t *testing.T) {
	l := New(testKey, nil)
	base := Record{Seq: 1, Time: time.Unix(100, 0), Actor: "U1", Action: "a", Outcome: OK}
	pairs := []struct{ a, b func(*Record) }{
		{func(r *Record) { r.Reason = "ab" }, func(r *Record) { r.Reason, r.Secret = "a", "b" }},
		{func(r *Record) { r.Scope = "x" }, func(r *Record) { r.Secret = "x" }},
		{func(r *Record) { r.Links = map[string]string{"a": "bc"} }, func(r *Record) { r.Links = map[string]string{"ab": "c"} }},
		{func(r *Record) { r.Links = map[string]string{"a": "", "b": ""} }, func(r *Record) { r.Links = map[string]string{"a": "b"} }},
		{func(r *Record) { r.Seq = 2 }, func(r *Record) { r.PrevHash = "2" }},
	}
	for i, p := range pairs {
		a, b := base, base
		p.a(&a)
		p.b(&b)
		if l.hash(a) == l.hash(b) {
			t.Errorf("pair %d: different records hash alike", i)
		}
	}
	x, y := base, base
	x.Links = map[string]string{"ticket": "SEC-1", "grant": "g", "incident": "P1"}
	y.Links = map[string]string{"incident": "P1", "grant": "g", "ticket": "SEC-1"}
	if l.hash(x) != l.hash(y) {
		t.Error("link order changes the hash")
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	other := New([]byte("another-key-another-key-another-key!"), nil)
	tests := []struct {
		name   string
		tamper func(t *testing.T, m *memStore, l *Log)
		cp     func(head Checkpoint) *Checkpoint
		want   string
	}{
		{"edit reason", func(_ *testing.T, m *memStore, _ *Log) { m.recs[6].Reason = "nothing to see" }, nil, "event 7 was altered"},
		{"edit link", func(_ *testing.T, m *memStore, _ *Log) { m.recs[6].Links["ticket"] = "SEC-2" }, nil, "event 7 was altered"},
		{"edit time", func(_ *testing.T, m *memStore, _ *Log) { m.recs[2].Time = m.recs[2].Time.Add(time.Nanosecond) }, nil, "event 3 was altered"},
		{"edit prev hash", func(_ *testing.T, m *memStore, _ *Log) { m.recs[5].PrevHash = m.recs[3].Hash }, nil, "event 6 was altered"},
		{"edit last", func(_ *testing.T, m *memStore, _ *Log) { m.recs[9].Outcome = Failed }, nil, "event 10 was altered"},
		{"delete middle", func(_ *testing.T, m *memStore, _ *Log) { m.recs = append(m.recs[:4], m.recs[5:]...) }, nil, "event 5 is missing (deleted)"},
		{"delete first", func(_ *testing.T, m *memStore, _ *Log) { m.recs = m.recs[1:] }, nil, "event 1 is missing (deleted)"},
		{"rehash one with other key", func(_ *testing.T, m *memStore, _ *Log) {
			m.recs[6].Reason = "rewritten"
			m.recs[6].Hash = other.hash(m.recs[6])
		}, nil, "event 7 hash does not match: re-hashed without the key or wrong SECRETBOT_AUDIT_KEY"},
		{"rehash tail with other key", func(_ *testing.T, m *memStore, _ *Log) { rechain(m, other, 3) }, nil,
			"event 4 hash does not match: re-hashed without the key or wrong SECRETBOT_AUDIT_KEY"},
		{"rehash all with other key", func(_ *testing.T, m *memStore, _ *Log) { rechain(m, other, 0) }, nil,
			"event 1 hash does not match: re-hashed without the key or wrong SECRETBOT_AUDIT_KEY"},
		{"renumber after delete, with key", func(_ *testing.T, m *memStore, l *Log) {
			m.recs = append(m.recs[:4], m.recs[5:]...)
			for i := 4; i < len(m.recs); i++ {
				m.recs[i].Seq = int64(i + 1)
				m.recs[i].Hash = l.hash(m.recs[i])
			}
		}, nil, "event 5 does not follow the event before it (prev_hash mismatch): an event was deleted or replaced"},
		{"truncated", func(_ *testing.T, m *memStore, _ *Log) { m.recs = m.recs[:9] },
			func(h Checkpoint) *Checkpoint { return &h }, "log ends at 9, checkpoint 10: truncated"},
		{"checkpoint ahead of log", func(*testing.T, *memStore, *Log) {},
			func(h Checkpoint) *Checkpoint { return &Checkpoint{Seq: 12, Hash: h.Hash} }, "log ends at 10, checkpoint 12: truncated"},
		{"tail rewritten with key", func(_ *testing.T, m *memStore, l *Log) {
			m.recs[7].Reason = "history rewritten"
			rechain(m, l, 7)
		}, func(h Checkpoint) *Checkpoint { return &h }, "event 10 differs from checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(testKey, clock())
			m := filled(t, l, 10)
			head := Checkpoint{Seq: 10, Hash: m.recs[9].Hash}
			tt.tamper(t, m, l)
			var cp *Checkpoint
			if tt.cp != nil {
				cp = tt.cp(head)
			}
			_, err := l.Verify(ctx, m, cp)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Verify = %v\nwant     %s", err, tt.want)
			}
			var be *BrokenError
			var te *TruncatedError
			if !errors.As(err, &be) && !errors.As(err, &te) {
				t.Fatalf("error %T is neither BrokenError nor TruncatedError", err)
			}
		})
	}
}

func TestVerifyWrongKey(t *testing.T) {
	for _, n := range []int{1, 3} {
		m := filled(t, New(testKey, clock()), n)
		_, err := New([]byte("wrong-key-wrong-key-wrong-key-wrong"), nil).Verify(context.Background(), m, nil)
		var be *BrokenError
		if !errors.As(err, &be) || be.Seq != 1 || be.Why != WhyRehashed {
			t.Fatalf("%d events: err = %v, want event 1 %s", n, err, WhyRehashed)
		}
	}
}

// rechain rewrites events from index i on, hashing with l and relinking.
func rechain(m *memStore, l *Log, i int) {
	for ; i < len(m.recs); i++ {
		if i > 0 {
			m.recs[i].PrevHash = m.recs[i-1].Hash
		}
		m.recs[i].Hash = l.hash(m.recs[i])
	}
}

func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	l := New(testKey, clock())
	m := &memStore{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if err := m.InTx(func(tx Tx) error { _, err := l.Append(ctx, tx, event(g*100+i)); return err }); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	res, err := l.Verify(ctx, m, nil)
	if err != nil || res.Events != 200 {
		t.Fatalf("verify: %+v %v", res, err)
	}
}

func TestParseCheckpoint(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tests := []struct {
		in      string
		want    Checkpoint
		wantErr bool
	}{
		{"12:" + h, Checkpoint{12, h}, false},
		{" 3:" + strings.ToUpper(h) + "\n", Checkpoint{3, h}, false},
		{"12", Checkpoint{}, true},
		{"0:" + h, Checkpoint{}, true},
		{"-1:" + h, Checkpoint{}, true},
		{"x:" + h, Checkpoint{}, true},
		{"12:abc", Checkpoint{}, true},
		{"12:" + strings.Repeat("zz", 32), Checkpoint{}, true},
	}
	for _, tt := range tests {
		got, err := ParseCheckpoint(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseCheckpoint(%q) = %v, %v", tt.in, got, err)
		}
		if err == nil {
			if back, _ := ParseCheckpoint(got.String()); back != got {
				t.Errorf("round trip of %v gave %v", got, back)
			}
		}
	}
}
