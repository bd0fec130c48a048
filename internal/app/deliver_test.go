package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/integrations/jira"
	slackint "github.com/secretbot/secretbot/integrations/slack"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/store"
)

// fakeSender records each send and can hold a target's sends or fail them.
type fakeSender struct {
	mu       sync.Mutex
	sent     []outbox.Message // in the order the sends completed
	calls    map[string]int   // sends started, by text
	inFlight map[string]int   // by lane
	maxLane  int              // most sends ever in flight on one lane
	maxAll   int              // most sends ever in flight
	all      int
	hold     map[string]chan struct{} // target -> closed when its sends may finish
	fail     map[string]error         // text -> error for its first send
}

func newFakeSender() *fakeSender {
	return &fakeSender{calls: map[string]int{}, inFlight: map[string]int{}, hold: map[string]chan struct{}{}, fail: map[string]error{}}
}

func (f *fakeSender) Deliver(ctx context.Context, m outbox.Message) (string, error) {
	lane := laneOf(m)
	f.mu.Lock()
	f.calls[m.Text]++
	f.inFlight[lane]++
	f.all++
	f.maxLane = max(f.maxLane, f.inFlight[lane])
	f.maxAll = max(f.maxAll, f.all)
	hold := f.hold[m.Target]
	err := f.fail[m.Text]
	delete(f.fail, m.Text)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight[lane]--
		f.all--
		f.mu.Unlock()
	}()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	f.sent = append(f.sent, m)
	f.mu.Unlock()
	return "1.1", nil
}

// sentTo lists the texts delivered to target, in order.
func (f *fakeSender) sentTo(target string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.sent {
		if m.Target == target {
			out = append(out, m.Text)
		}
	}
	return out
}

func (f *fakeSender) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testDeliverer(t *testing.T) (*deliverer, *fakeSender, *clock) {
	t.Helper()
	db, err := store.Open(context.Background(), t.TempDir()+"/bot.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	f := newFakeSender()
	return newDeliverer(db, f, slog.New(slog.NewTextHandler(io.Discard, nil)), newAppMetrics(), c.now), f, c
}

func owe(t *testing.T, d *deliverer, ms ...outbox.Message) {
	t.Helper()
	ctx := context.Background()
	if err := d.db.InTx(ctx, func(tx *store.Tx) error {
		for _, m := range ms {
			if err := enqueue(ctx, tx, m, d.now()); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLanes(t *testing.T) {
	for _, c := range []struct {
		m    outbox.Message
		lane string
	}{
		{outbox.Message{Kind: outbox.Respond, Target: "https://hooks/x"}, "url:https://hooks/x"},
		{outbox.Message{Kind: outbox.DM, Target: "U1"}, "dm:U1"},
		{outbox.Message{Kind: outbox.Post, Target: "U1"}, "dm:U1"},
		{outbox.Message{Kind: outbox.Post, Target: "C1"}, "ch:C1"},
		{outbox.Message{Kind: outbox.Update, Target: "C1", TS: "1.1"}, "ch:C1"},
		{outbox.Message{Kind: outbox.Ephemeral, Target: "C1", User: "U1"}, "ch:C1"},
		{outbox.Message{Kind: outbox.DeliverGrant, Target: "G1"}, "grant:G1"},
		{outbox.Message{Kind: outbox.JiraOpen, Target: "G1"}, "grant:G1"},
		{outbox.Message{Kind: outbox.JiraComment, Target: "SEC-1"}, "jira:SEC-1"},
	} {
		if got := laneOf(c.m); got != c.lane {
			t.Errorf("laneOf(%s %s) = %q, want %q", c.m.Kind, c.m.Target, got, c.lane)
		}
	}
}

func TestDeliverySlowLaneHoldsOnlyItself(t *testing.T) {
	d, f, _ := testDeliverer(t)
	var ms []outbox.Message
	for i := range 4 {
		for _, target := range []string{"C1", "C2", "C3"} {
			ms = append(ms, outbox.Message{Kind: outbox.Post, Target: target, Text: target + "-" + string(rune('a'+i))})
		}
	}
	ms = append(ms, outbox.Message{Kind: outbox.Respond, Target: "https://hooks/r1", Text: "r1"})
	owe(t, d, ms...)
	release := make(chan struct{})
	f.hold["C1"] = release // C1 hangs, like a Slack call that never answers

	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() { d.run(context.Background(), stop); close(finished) }()
	waitFor(t, "C2, C3 and the response_url delivered while C1 hangs", func() bool { return f.count() == 9 })
	if got := f.sentTo("C1"); len(got) != 0 {
		t.Fatalf("C1 delivered %v while its first send hangs", got)
	}
	close(release)
	waitFor(t, "C1 delivered once released", func() bool { return f.count() == 13 })
	close(stop)
	<-finished
	for _, target := range []string{"C1", "C2", "C3"} {
		want := []string{target + "-a", target + "-b", target + "-c", target + "-d"}
		if got := f.sentTo(target); !slices.Equal(got, want) {
			t.Errorf("%s got %v, want %v (outbox order)", target, got, want)
		}
	}
	if f.maxLane != 1 {
		t.Errorf("%d sends at once on one lane, want 1", f.maxLane)
	}
	for text, n := range f.calls {
		if n != 1 {
			t.Errorf("%s sent %d times", text, n)
		}
	}
}

func TestDeliveryPoolIsBounded(t *testing.T) {
	d, f, _ := testDeliverer(t)
	release := make(chan struct{})
	for i := range 20 {
		target := "C" + string(rune('A'+i))
		f.hold[target] = release
		owe(t, d, outbox.Message{Kind: outbox.Post, Target: target, Text: target})
	}
	done := make(chan struct{})
	go func() { d.flush(context.Background()); close(done) }()
	waitFor(t, "the pool full", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.all == d.workers
	})
	time.Sleep(50 * time.Millisecond) // a pool over its bound would show now
	close(release)
	<-done
	if f.count() != 20 || f.maxAll != d.workers {
		t.Errorf("sent %d, at most %d at once; want 20 and %d", f.count(), f.maxAll, d.workers)
	}
}

func TestDeliveryRetryAfterBacksOffOnlyItsLane(t *testing.T) {
	d, f, c := testDeliverer(t)
	f.fail["C1-a"] = &slackint.DeliveryError{Op: "chat.postMessage", Code: "rate_limited", Retryable: true, RetryAfter: 30 * time.Second}
	owe(t, d,
		outbox.Message{Kind: outbox.Post, Target: "C1", Text: "C1-a"},
		outbox.Message{Kind: outbox.Post, Target: "C1", Text: "C1-b"},
		outbox.Message{Kind: outbox.Post, Target: "C2", Text: "C2-a"},
		outbox.Message{Kind: outbox.Post, Target: "C2", Text: "C2-b"})
	d.flush(context.Background())
	if got := f.sentTo("C1"); len(got) != 0 {
		t.Fatalf("C1 delivered %v before its Retry-After", got)
	}
	if got := f.sentTo("C2"); !slices.Equal(got, []string{"C2-a", "C2-b"}) {
		t.Fatalf("C2 got %v: another lane's 429 held it back", got)
	}
	c.add(29 * time.Second)
	d.flush(context.Background())
	if f.calls["C1-a"] != 1 || f.calls["C1-b"] != 0 {
		t.Fatalf("C1 tried before its Retry-After passed: %v", f.calls)
	}
	c.add(time.Second)
	d.flush(context.Background())
	if got := f.sentTo("C1"); !slices.Equal(got, []string{"C1-a", "C1-b"}) {
		t.Fatalf("C1 got %v after its Retry-After, want both in order", got)
	}
}

func TestDeliveryStopFinishesInFlightOnce(t *testing.T) {
	d, f, _ := testDeliverer(t)
	release := make(chan struct{})
	f.hold["C1"] = release
	owe(t, d, outbox.Message{Kind: outbox.Post, Target: "C1", Text: "in flight"})
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() { d.run(context.Background(), stop); close(finished) }()
	waitFor(t, "the send in flight", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.calls["in flight"] == 1
	})
	close(stop)
	select {
	case <-finished:
		t.Fatal("run returned with a send in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-finished
	// What shutdown does next: a last flush. The message was recorded sent.
	d.flush(context.Background())
	if f.calls["in flight"] != 1 || f.count() != 1 {
		t.Errorf("sent %d times (%d delivered), want once", f.calls["in flight"], f.count())
	}
}

// fakeJira answers comments by their text: an error, or nil (recorded).
type fakeJira struct {
	mu   sync.Mutex
	fail map[string]error
	sent []string
}

func (j *fakeJira) AddComment(_ context.Context, key, body string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.fail[body]; err != nil {
		return err
	}
	j.sent = append(j.sent, key+":"+body)
	return nil
}

// A comment Jira refuses for good (403 on that ticket) is given up, so the
// ticket's later comments go out; one Jira cannot take now (503) or the
// bot's credentials rejected (401) waits, holding its ticket's order.
func TestJiraCommentRefusedForGoodDoesNotBlockItsTicket(t *testing.T) {
	d, _, _ := testDeliverer(t)
	j := &fakeJira{fail: map[string]error{
		"a1": &jira.Error{Op: "comment", Status: http.StatusForbidden},
		"b1": &jira.Error{Op: "comment", Status: http.StatusServiceUnavailable, Retryable: true},
		"c1": &jira.Error{Op: "comment", Status: http.StatusUnauthorized},
	}}
	d.jira = j
	owe(t, d,
		outbox.Message{Kind: outbox.JiraComment, Target: "SEC-1", Text: "a1"},
		outbox.Message{Kind: outbox.JiraComment, Target: "SEC-1", Text: "a2"},
		outbox.Message{Kind: outbox.JiraComment, Target: "SEC-2", Text: "b1"},
		outbox.Message{Kind: outbox.JiraComment, Target: "SEC-2", Text: "b2"},
		outbox.Message{Kind: outbox.JiraComment, Target: "SEC-3", Text: "c1"},
		outbox.Message{Kind: outbox.JiraComment, Target: "SEC-3", Text: "c2"})
	d.flush(context.Background())
	j.mu.Lock()
	defer j.mu.Unlock()
	if !slices.Equal(j.sent, []string{"SEC-1:a2"}) {
		t.Fatalf("sent %v, want only SEC-1's second comment (the first refused for good, the others waiting)", j.sent)
	}
}
