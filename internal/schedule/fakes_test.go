package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

// ---- Store: serialisable, like SQLite (one writer at a time). ----

type sent struct {
	Key string
	M   outbox.Message
}

type journalEntry struct {
	Kind, Outcome, Notes, Author string
	Fields                       map[string]string
}

type fakeStore struct {
	mu      sync.Mutex
	meta    map[string]string
	msgs    []sent
	keys    map[string]bool
	events  []audit.Event
	journal []journalEntry
}

func newStore() *fakeStore {
	return &fakeStore{meta: map[string]string{}, keys: map[string]bool{}}
}

type fakeTx struct {
	s       *fakeStore
	meta    map[string]string
	msgs    []sent
	events  []audit.Event
	journal []journalEntry
}

func (s *fakeStore) InTx(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &fakeTx{s: s, meta: maps.Clone(s.meta)}
	if err := fn(t); err != nil {
		return err
	}
	s.meta = t.meta
	for _, m := range t.msgs {
		s.keys[m.Key] = true
	}
	s.msgs = append(s.msgs, t.msgs...)
	s.events = append(s.events, t.events...)
	s.journal = append(s.journal, t.journal...)
	return nil
}

func (t *fakeTx) MetaGet(_ context.Context, key string) (string, bool, error) {
	v, ok := t.meta[key]
	return v, ok, nil
}

func (t *fakeTx) MetaCAS(_ context.Context, key, old, value string) (bool, error) {
	if t.meta[key] != old {
		return false, nil
	}
	t.meta[key] = value
	return true, nil
}

func (t *fakeTx) Send(_ context.Context, m outbox.Message, key string) error {
	if key == "" {
		return errors.New("fake: message without a dedup key")
	}
	if audit.LooksLikeCredential(m.Text + string(m.Blocks)) {
		return audit.ErrCredential
	}
	if m.Blocks != nil && !json.Valid(m.Blocks) {
		return fmt.Errorf("fake: blocks are not JSON: %s", m.Blocks)
	}
	if t.s.keys[key] || slices.ContainsFunc(t.msgs, func(x sent) bool { return x.Key == key }) {
		return nil
	}
	t.msgs = append(t.msgs, sent{Key: key, M: m})
	return nil
}

func (t *fakeTx) Audit(_ context.Context, e audit.Event) error {
	if e.Actor == "" || e.Action == "" || e.Outcome == "" {
		return audit.ErrInvalidEvent
	}
	t.events = append(t.events, e)
	return nil
}

func (t *fakeTx) JournalAdd(_ context.Context, kind, outcome, notes, author string, fields map[string]string) error {
	t.journal = append(t.journal, journalEntry{kind, outcome, notes, author, maps.Clone(fields)})
	return nil
}

// sentSince returns the messages committed after the first n.
func (s *fakeStore) sentSince(n int) []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs[n:])
}

func (s *fakeStore) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.msgs) }

func (s *fakeStore) get(key string) string { s.mu.Lock(); defer s.mu.Unlock(); return s.meta[key] }

func (s *fakeStore) set(key, v string) { s.mu.Lock(); defer s.mu.Unlock(); s.meta[key] = v }

func (s *fakeStore) auditActions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		out = append(out, e.Action)
	}
	return out
}

// ---- Inventory, Grants, Directory ----

type fakeInventory struct {
	mu      sync.Mutex
	secrets []Secret
	err     error
	hook    func() // called on each Secrets call (once), e.g. to let another replica run
}

func (f *fakeInventory) Secrets(context.Context) ([]Secret, error) {
	f.mu.Lock()
	hook := f.hook
	f.hook = nil
	out, err := slices.Clone(f.secrets), f.err
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	return out, err
}

func (f *fakeInventory) put(s Secret) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets = append(f.secrets, s)
}

type fakeGrants struct {
	mu   sync.Mutex
	all  []access.Grant
	hook func() // called on the next Active call
}

func (f *fakeGrants) Active(context.Context) ([]access.Grant, error) {
	f.mu.Lock()
	if hook := f.hook; hook != nil {
		f.hook = nil
		f.mu.Unlock()
		hook()
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	var out []access.Grant
	for _, g := range f.all {
		if g.Active() {
			out = append(out, g)
		}
	}
	return out, nil
}

func (f *fakeGrants) Since(_ context.Context, t time.Time) ([]access.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []access.Grant
	for _, g := range f.all {
		if !g.CreatedAt.Before(t) || (!g.IssuedAt.IsZero() && !g.IssuedAt.Before(t)) {
			out = append(out, g)
		}
	}
	return out, nil
}

type fakeDirectory struct {
	mu        sync.Mutex
	people    map[string]policy.Person
	groups    map[string][]string
	personErr error
	groupErr  error
}

func (f *fakeDirectory) Person(_ context.Context, id string) (policy.Person, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.personErr != nil {
		return policy.Person{}, f.personErr
	}
	if p, ok := f.people[id]; ok {
		return p, nil
	}
	return policy.Person{SlackID: id, Email: strings.ToLower(id) + "@lumi.example"}, nil
}

func (f *fakeDirectory) GroupMembers(_ context.Context, group string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.groupErr != nil {
		return nil, f.groupErr
	}
	m, ok := f.groups[group]
	if !ok {
		return nil, fmt.Errorf("no group %s", group)
	}
	return slices.Clone(m), nil
}

func (f *fakeDirectory) setErrs(person, group error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.personErr, f.groupErr = person, group
}

// ---- Clock and environment ----

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time)     { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func ts(s string) time.Time              { t, _ := time.Parse("2006-01-02 15:04", s); return t }
func (c *fakeClock) SetS(s string)       { c.Set(ts(s)) }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

type env struct {
	store *fakeStore
	inv   *fakeInventory
	gr    *fakeGrants
	dir   *fakeDirectory
	clock *fakeClock
	cfg   Config
}

const secChannel = "C0SECURITY"

// installed is the cursor of a bot that has run before: a fresh install
// seeds its monthly and quarterly cursors instead of posting (see
// TestFreshInstallStartsNextPeriod).
const installed = "2000-01"

func newEnv() *env {
	st := newStore()
	st.meta[KeyReview], st.meta[KeyRestoreTest] = installed, installed
	return &env{
		store: st,
		inv:   &fakeInventory{},
		gr:    &fakeGrants{},
		dir:   &fakeDirectory{people: map[string]policy.Person{}, groups: map[string][]string{"platform-security": nil, "sre-oncall": nil}},
		clock: &fakeClock{},
		cfg: Config{
			SecurityChannel: secChannel, Command: "/secrets", DailyAt: "09:00",
			DueSoon: 14 * 24 * time.Hour, ReviewDay: 1, ReviewWindow: 30 * 24 * time.Hour,
			Scopes: []config.Scope{
				{Name: "platform-rw", Eligible: config.People{Groups: []string{"platform-security"}}},
				{Name: "platform-ro", Eligible: config.People{Groups: []string{"@sre-oncall"}}},
			},
		},
	}
}

// scheduler is a fresh Scheduler over e's store: what a (re)started bot or
// another replica has.
func (e *env) scheduler() *Scheduler {
	return &Scheduler{Now: e.clock.Now, Store: e.store, Inventory: e.inv, Grants: e.gr, Directory: e.dir, Config: e.cfg}
}

// tick runs one tick at clock time at and returns the messages it added.
func (e *env) tick(t *testing.T, s *Scheduler, at string) []sent {
	t.Helper()
	e.clock.SetS(at)
	n := e.store.count()
	if err := s.Tick(context.Background()); err != nil {
		t.Fatalf("tick at %s: %v", at, err)
	}
	return e.store.sentSince(n)
}

func keysWith(ms []sent, prefixes ...string) []string {
	var out []string
	for _, m := range ms {
		for _, p := range prefixes {
			if strings.HasPrefix(m.Key, p) {
				out = append(out, m.Key)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func byKey(t *testing.T, ms []sent, key string) outbox.Message {
	t.Helper()
	for _, m := range ms {
		if m.Key == key {
			return m.M
		}
	}
	t.Fatalf("no message %s among %v", key, keysWith(ms, ""))
	return outbox.Message{}
}

// buttons lists "action_id=value" of every button in m's blocks.
func buttons(t *testing.T, m outbox.Message) []string {
	t.Helper()
	var blocks []map[string]any
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	var out []string
	add := func(b any) {
		if bm, ok := b.(map[string]any); ok && bm["type"] == "button" {
			out = append(out, fmt.Sprintf("%v=%v", bm["action_id"], bm["value"]))
		}
	}
	for _, b := range blocks {
		add(b["accessory"])
		if els, ok := b["elements"].([]any); ok {
			for _, e := range els {
				add(e)
			}
		}
	}
	return out
}
