package slack

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/policy"
)

func seedDirectory(f *fakeSlack) {
	f.addUser("U1", "ada@lumi.example", nil)
	f.addUser("U2", "bob@lumi.example", map[string]any{"is_restricted": true})
	f.addUser("U3", "cyd@lumi.example", map[string]any{"is_ultra_restricted": true})
	f.addUser("U4", "dee@lumi.example", map[string]any{"deleted": true})
	f.addUser("U5", "", map[string]any{"is_bot": true})
	f.addUser("U6", "", nil) // no users:read.email scope
	f.addUser("U7", "eve@other.example", map[string]any{"is_stranger": true})
	f.addGroup("S1", "platform-security", "U1", "U2")
	f.addGroup("S2", "sre-oncall", "U1")
	f.addGroup("S3", "everyone-else", "U9")
}

func TestPerson(t *testing.T) {
	tests := []struct {
		id      string
		want    policy.Person
		wantErr error
		errText string
	}{
		{id: "U1", want: policy.Person{SlackID: "U1", Email: "ada@lumi.example", Name: "User U1", Groups: []string{"platform-security", "S1", "sre-oncall", "S2"}}},
		{id: "U2", want: policy.Person{SlackID: "U2", Email: "bob@lumi.example", Name: "User U2", Groups: []string{"platform-security", "S1"}, Guest: true}},
		{id: "U3", want: policy.Person{SlackID: "U3", Email: "cyd@lumi.example", Name: "User U3", Guest: true}},
		{id: "U4", want: policy.Person{SlackID: "U4", Email: "dee@lumi.example", Name: "User U4", Deleted: true}},
		{id: "U5", want: policy.Person{SlackID: "U5", Name: "User U5", Bot: true}},
		{id: "U6", wantErr: ErrEmailScope, errText: "users:read.email"},
		{id: "U7", want: policy.Person{SlackID: "U7", Email: "eve@other.example", Name: "User U7", Guest: true}},
		{id: "U404", wantErr: ErrLookupFailed, errText: "user_not_found"},
	}
	f := newFakeSlack(t)
	seedDirectory(f)
	c := f.client(t)
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			p, err := c.Person(context.Background(), tt.id)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrLookupFailed) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want %v mentioning %q", err, tt.wantErr, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Groups, tt.want.Groups) {
				t.Errorf("groups = %v, want %v", p.Groups, tt.want.Groups)
			}
			p.Groups, tt.want.Groups = nil, nil
			if !equalPerson(p, tt.want) {
				t.Errorf("got %+v, want %+v", p, tt.want)
			}
		})
	}
	if n := len(f.callsTo("usergroups.list")); n != 1 {
		t.Errorf("usergroups.list called %d times, want 1 (cached)", n)
	}
	if calls := f.callsTo("usergroups.list"); calls[0].Form.Get("include_users") != "true" {
		t.Errorf("usergroups.list without include_users: %v", calls[0].Form)
	}
}

func equalPerson(a, b policy.Person) bool {
	return a.SlackID == b.SlackID && a.Email == b.Email && a.Name == b.Name &&
		a.Deleted == b.Deleted && a.Bot == b.Bot && a.Guest == b.Guest
}

func TestPersonFailsClosed(t *testing.T) {
	tests := []struct {
		name   string
		method string
		r      reply
		text   string
	}{
		{"users.info 500", "users.info", reply{Status: 500, Body: "oops"}, "HTTP 500"},
		{"users.info rate limited", "users.info", reply{Status: 429, Header: map[string]string{"Retry-After": "30"}}, "retry after 30s"},
		{"users.info missing scope", "users.info", reply{Body: `{"ok":false,"error":"missing_scope","needed":"users:read"}`}, "missing_scope (needs scope users:read)"},
		{"users.info garbage", "users.info", reply{Body: "<html>"}, "cannot reach Slack"},
		{"usergroups.list missing scope", "usergroups.list", reply{Body: `{"ok":false,"error":"missing_scope","needed":"usergroups:read"}`}, "usergroups.list: missing_scope"},
		{"usergroups.list 503", "usergroups.list", reply{Status: 503}, "usergroups.list: Slack answered HTTP 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t)
			seedDirectory(f)
			f.set(tt.method, tt.r)
			p, err := f.client(t).Person(context.Background(), "U1")
			if !errors.Is(err, ErrLookupFailed) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v, want ErrLookupFailed mentioning %q", err, tt.text)
			}
			if p.SlackID != "" || p.Email != "" || len(p.Groups) != 0 {
				t.Errorf("a failed lookup returned a person: %+v", p)
			}
			assertNoToken(t, err.Error(), testBot, testApp)
		})
	}
}

func TestPersonGroupCacheExpires(t *testing.T) {
	f := newFakeSlack(t)
	seedDirectory(f)
	c := f.client(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ctx := context.Background()

	steps := []struct {
		advance time.Duration
		calls   int
	}{{0, 1}, {59 * time.Second, 1}, {2 * time.Second, 2}, {30 * time.Second, 2}}
	for i, s := range steps {
		advance(s.advance)
		if _, err := c.Person(ctx, "U1"); err != nil {
			t.Fatal(err)
		}
		if n := len(f.callsTo("usergroups.list")); n != s.calls {
			t.Fatalf("step %d: %d usergroups.list calls, want %d", i, n, s.calls)
		}
	}

	// A membership change shows once the cache expires.
	f.addGroup("S4", "new-group", "U1")
	advance(61 * time.Second)
	p, err := c.Person(ctx, "U1")
	if err != nil || !slices.Contains(p.Groups, "new-group") {
		t.Fatalf("after expiry groups = %v, err %v", p.Groups, err)
	}
}

func TestPersonGroupFetchShared(t *testing.T) {
	f := newFakeSlack(t)
	seedDirectory(f)
	f.set("usergroups.list", reply{Delay: 50 * time.Millisecond})
	c := f.client(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.Person(context.Background(), "U1"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(f.callsTo("usergroups.list")); n != 1 {
		t.Errorf("usergroups.list called %d times by concurrent lookups, want 1", n)
	}
}

func TestPersonFailedFetchNotCached(t *testing.T) {
	f := newFakeSlack(t)
	seedDirectory(f)
	f.set("usergroups.list", reply{Status: 500})
	c := f.client(t)
	if _, err := c.Person(context.Background(), "U1"); !errors.Is(err, ErrLookupFailed) {
		t.Fatalf("err = %v", err)
	}
	f.mu.Lock()
	delete(f.replies, "usergroups.list")
	f.mu.Unlock()
	p, err := c.Person(context.Background(), "U1")
	if err != nil || len(p.Groups) == 0 {
		t.Fatalf("after recovery: %+v, %v", p, err)
	}
}

func TestPersonContextCanceledWhileWaiting(t *testing.T) {
	f := newFakeSlack(t)
	seedDirectory(f)
	f.set("usergroups.list", reply{Delay: 200 * time.Millisecond})
	c := f.client(t)
	done := make(chan struct{})
	go func() { defer close(done); c.Person(context.Background(), "U1") }() // holds the fetch
	defer func() { <-done }()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Person(ctx, "U1")
	if !errors.Is(err, ErrLookupFailed) || time.Since(start) > 150*time.Millisecond {
		t.Fatalf("err = %v after %s", err, time.Since(start))
	}
}

// PersonNow reads the groups after it was called: a removal from a group a
// moment ago counts at once, where Person may still answer from the cache.
func TestPersonNowReadsGroupsFresh(t *testing.T) {
	f := newFakeSlack(t)
	seedDirectory(f)
	c := f.client(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Millisecond); return now }
	ctx := context.Background()
	if _, err := c.Person(ctx, "U1"); err != nil { // warms the cache
		t.Fatal(err)
	}
	f.addGroup("S4", "new-group", "U1")
	if p, _ := c.Person(ctx, "U1"); slices.Contains(p.Groups, "new-group") {
		t.Fatal("Person did not use its cache (the test no longer shows the difference)")
	}
	p, err := c.PersonNow(ctx, "U1")
	if err != nil || !slices.Contains(p.Groups, "new-group") {
		t.Fatalf("PersonNow groups = %v, err %v", p.Groups, err)
	}
	if n := len(f.callsTo("usergroups.list")); n != 2 {
		t.Errorf("%d usergroups.list calls, want 2", n)
	}
	// What PersonNow read refreshes the cache for Person.
	if p, _ := c.Person(ctx, "U1"); !slices.Contains(p.Groups, "new-group") {
		t.Error("Person did not see the fresh answer")
	}
}

// Concurrent PersonNow calls share a fetch begun after they were made.
func TestPersonNowFetchShared(t *testing.T) {
	f := newFakeSlack(t)
	seedDirectory(f)
	f.set("usergroups.list", reply{Delay: 50 * time.Millisecond})
	c := f.client(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.PersonNow(context.Background(), "U1"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(f.callsTo("usergroups.list")); n > 3 {
		t.Errorf("usergroups.list called %d times by 20 concurrent lookups", n)
	}
}
