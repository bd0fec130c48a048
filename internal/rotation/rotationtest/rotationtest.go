// Package rotationtest holds in-memory fakes of the ports of
// internal/rotation (Store, KV, People, Grants) for tests of the rotation
// service and its callers. Jira, PagerDuty, the Slack directory, the
// messenger and the clock are internal/access/accesstest's fakes, which
// satisfy rotation's ports too. Every fake is safe for concurrent use.
package rotationtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/rotation"
)

// ---------------------------------------------------------------- Store

// Store is an in-memory rotation.Store. Transactions are serialised (like
// SQLite's BEGIN IMMEDIATE) and atomic: fn works on a copy that is kept
// only when fn succeeds. SecretUpdate and RotationUpdate are
// compare-and-sets on Version. Audit, Send, and every row write refuse
// text shaped like a credential, as the real store and audit log do.
type Store struct {
	mu  sync.Mutex
	st  state
	txs int
	// FailTx, when set, is called at the start of each transaction; a
	// non-nil error fails it.
	FailTx func() error
}

type state struct {
	secrets   map[string]rotation.Secret
	rotations map[string]rotation.Rotation
	journal   []rotation.JournalEntry
	meta      map[string]string
	events    []audit.Event
	msgs      []outbox.Message
}

func (s state) clone() state {
	c := state{secrets: maps.Clone(s.secrets), rotations: maps.Clone(s.rotations), meta: maps.Clone(s.meta),
		journal: slices.Clone(s.journal), events: slices.Clone(s.events), msgs: slices.Clone(s.msgs)}
	return c
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{st: state{secrets: map[string]rotation.Secret{}, rotations: map[string]rotation.Rotation{}, meta: map[string]string{}}}
}

type tx struct{ st *state }

// InTx runs fn in a transaction.
func (s *Store) InTx(ctx context.Context, fn func(rotation.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txs++
	if s.FailTx != nil {
		if err := s.FailTx(); err != nil {
			return err
		}
	}
	work := s.st.clone()
	if err := fn(&tx{st: &work}); err != nil {
		return err
	}
	s.st = work
	return nil
}

// Transactions counts the transactions started.
func (s *Store) Transactions() int { s.mu.Lock(); defer s.mu.Unlock(); return s.txs }

func noCredential(v any) error {
	if audit.LooksLikeCredential(fmt.Sprintf("%+v", v)) {
		return audit.ErrCredential
	}
	return nil
}

func (t *tx) SecretInsert(ctx context.Context, sec rotation.Secret) error {
	if _, ok := t.st.secrets[sec.Name]; ok {
		return fmt.Errorf("%w: secret %s exists", rotation.ErrConflict, sec.Name)
	}
	for _, o := range t.st.secrets {
		if o.Mount == sec.Mount && o.Path == sec.Path {
			return fmt.Errorf("%w: path %s/%s is %s", rotation.ErrConflict, sec.Mount, sec.Path, o.Name)
		}
	}
	if err := noCredential(sec); err != nil {
		return err
	}
	t.st.secrets[sec.Name] = sec
	return nil
}

func (t *tx) SecretGet(ctx context.Context, name string) (rotation.Secret, error) {
	sec, ok := t.st.secrets[name]
	if !ok {
		return rotation.Secret{}, fmt.Errorf("%w: secret %s", rotation.ErrNotFound, name)
	}
	return sec, nil
}

func (t *tx) SecretList(ctx context.Context) ([]rotation.Secret, error) {
	out := slices.Collect(maps.Values(t.st.secrets))
	slices.SortFunc(out, func(a, b rotation.Secret) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (t *tx) SecretUpdate(ctx context.Context, sec rotation.Secret, from int64) error {
	cur, ok := t.st.secrets[sec.Name]
	switch {
	case !ok:
		return fmt.Errorf("%w: secret %s", rotation.ErrNotFound, sec.Name)
	case cur.Version != from:
		return fmt.Errorf("%w: secret %s is at %d, not %d", rotation.ErrConflict, sec.Name, cur.Version, from)
	case sec.Version <= from:
		return fmt.Errorf("secret %s: version %d not newer than %d", sec.Name, sec.Version, from)
	}
	if err := noCredential(sec); err != nil {
		return err
	}
	t.st.secrets[sec.Name] = sec
	return nil
}

func (t *tx) RotationInsert(ctx context.Context, r rotation.Rotation) error {
	if _, ok := t.st.rotations[r.ID]; ok {
		return fmt.Errorf("%w: rotation %s exists", rotation.ErrConflict, r.ID)
	}
	if err := noCredential(r); err != nil {
		return err
	}
	t.st.rotations[r.ID] = r
	return nil
}

func (t *tx) RotationGet(ctx context.Context, id string) (rotation.Rotation, error) {
	r, ok := t.st.rotations[id]
	if !ok {
		return rotation.Rotation{}, fmt.Errorf("%w: rotation %s", rotation.ErrNotFound, id)
	}
	return r, nil
}

func (t *tx) RotationUpdate(ctx context.Context, r rotation.Rotation, from int64) error {
	cur, ok := t.st.rotations[r.ID]
	switch {
	case !ok:
		return fmt.Errorf("%w: rotation %s", rotation.ErrNotFound, r.ID)
	case cur.Version != from:
		return fmt.Errorf("%w: rotation %s is at %d, not %d", rotation.ErrConflict, r.ID, cur.Version, from)
	case r.Version <= from:
		return fmt.Errorf("rotation %s: version %d not newer than %d", r.ID, r.Version, from)
	}
	if err := noCredential(r); err != nil {
		return err
	}
	t.st.rotations[r.ID] = r
	return nil
}

func (t *tx) RotationsByState(ctx context.Context, states ...rotation.State) ([]rotation.Rotation, error) {
	var out []rotation.Rotation
	for _, r := range t.st.rotations {
		if len(states) == 0 || slices.Contains(states, r.State) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b rotation.Rotation) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (t *tx) JournalAdd(ctx context.Context, e rotation.JournalEntry) error {
	for _, o := range t.st.journal {
		if o.ID == e.ID {
			return fmt.Errorf("%w: journal %s exists", rotation.ErrConflict, e.ID)
		}
	}
	if e.ID == "" || e.Kind == "" || e.Author == "" {
		return errors.New("journal entry needs id, kind and author")
	}
	if err := noCredential(e); err != nil {
		return err
	}
	e.Fields = maps.Clone(e.Fields)
	t.st.journal = append(t.st.journal, e)
	return nil
}

func (t *tx) JournalList(ctx context.Context, kind string, limit int) ([]rotation.JournalEntry, error) {
	var out []rotation.JournalEntry
	for _, e := range t.st.journal {
		if kind == "" || e.Kind == kind {
			e.Fields = maps.Clone(e.Fields)
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b rotation.JournalEntry) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (t *tx) MetaGet(ctx context.Context, key string) (string, bool, error) {
	v, ok := t.st.meta[key]
	return v, ok, nil
}

func (t *tx) MetaSet(ctx context.Context, key, value string) error {
	t.st.meta[key] = value
	return nil
}

func (t *tx) Audit(ctx context.Context, e audit.Event) error {
	if e.Actor == "" || e.Action == "" {
		return fmt.Errorf("%w: actor or action empty", audit.ErrInvalidEvent)
	}
	switch e.Outcome {
	case audit.OK, audit.Refused, audit.Failed:
	default:
		return fmt.Errorf("%w: outcome %q", audit.ErrInvalidEvent, e.Outcome)
	}
	if err := noCredential(e); err != nil {
		return err
	}
	t.st.events = append(t.st.events, e)
	return nil
}

func (t *tx) Send(ctx context.Context, m outbox.Message) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	if audit.LooksLikeCredential(string(b)) {
		return audit.ErrCredential
	}
	t.st.msgs = append(t.st.msgs, m)
	return nil
}

// Secret returns a registry entry.
func (s *Store) Secret(name string) (rotation.Secret, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.st.secrets[name]
	return sec, ok
}

// PutSecret stores sec as is (for setting up a scenario).
func (s *Store) PutSecret(sec rotation.Secret) {
	s.mu.Lock()
	s.st.secrets[sec.Name] = sec
	s.mu.Unlock()
}

// Rotation returns a stored rotation.
func (s *Store) Rotation(id string) (rotation.Rotation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.st.rotations[id]
	return r, ok
}

// Rotations returns every rotation, oldest first.
func (s *Store) Rotations() []rotation.Rotation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, _ := (&tx{st: &s.st}).RotationsByState(context.Background())
	return out
}

// Journal returns the journal in insertion order.
func (s *Store) Journal() []rotation.JournalEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.st.journal)
}

// Meta returns a copy of the meta values.
func (s *Store) Meta() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.st.meta)
}

// Events returns the committed audit events.
func (s *Store) Events() []audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.st.events)
}

// Actions returns the committed audit events' actions, in order.
func (s *Store) Actions() []string {
	var out []string
	for _, e := range s.Events() {
		out = append(out, e.Action)
	}
	return out
}

// Messages returns the committed outbox messages.
func (s *Store) Messages() []outbox.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.st.msgs)
}

// MessagesOf returns the committed messages of one kind.
func (s *Store) MessagesOf(kind string) []outbox.Message {
	var out []outbox.Message
	for _, m := range s.Messages() {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

// Dump renders every row, event and message as text (for leak checks).
func (s *Store) Dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, v := range s.st.secrets {
		fmt.Fprintf(&b, "%+v\n", v)
	}
	for _, v := range s.st.rotations {
		fmt.Fprintf(&b, "%+v\n", v)
	}
	for _, v := range s.st.journal {
		fmt.Fprintf(&b, "%+v\n", v)
	}
	fmt.Fprintf(&b, "%+v\n", s.st.meta)
	for _, v := range s.st.events {
		fmt.Fprintf(&b, "%+v\n", v)
	}
	for _, m := range s.st.msgs {
		j, _ := m.Marshal()
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// Reset forgets the committed events and messages (rows stay).
func (s *Store) Reset() { s.mu.Lock(); s.st.events, s.st.msgs = nil, nil; s.mu.Unlock() }

// ---------------------------------------------------------------- KV

// KV is a fake KV v2 engine.
type KV struct {
	mu      sync.Mutex
	secrets map[string]*kvSecret

	// Errors injected into the calls of the same name (nil: answer).
	CurrentErr, WriteErr, ReadErr, DestroyErr, DeleteErr, PatchErr, MetadataErr error
	// BeforeWrite, when set, runs (without the fake's lock) at the start of
	// each Write: a hook for a concurrent writer.
	BeforeWrite func(mount, path string)
	writes      int
}

type kvSecret struct {
	versions []kvVersion // index = version-1
	custom   map[string]string
}

type kvVersion struct {
	data               map[string]string
	destroyed, deleted bool
}

// NewKV returns an empty fake.
func NewKV() *KV { return &KV{secrets: map[string]*kvSecret{}} }

func key(mount, path string) string { return mount + "/" + path }

// Seed writes versions of a secret directly (no CAS), one per value.
func (k *KV) Seed(mount, path string, values ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.secret(mount, path)
	for _, v := range values {
		s.versions = append(s.versions, kvVersion{data: map[string]string{rotation.ValueKey: v}})
	}
}

func (k *KV) secret(mount, path string) *kvSecret {
	s, ok := k.secrets[key(mount, path)]
	if !ok {
		s = &kvSecret{custom: map[string]string{}}
		k.secrets[key(mount, path)] = s
	}
	return s
}

func (k *KV) Current(ctx context.Context, mount, path string) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.CurrentErr != nil {
		return 0, k.CurrentErr
	}
	if s, ok := k.secrets[key(mount, path)]; ok {
		return len(s.versions), nil
	}
	return 0, nil
}

func (k *KV) Write(ctx context.Context, mount, path string, value map[string]string, cas int) (int, error) {
	if k.BeforeWrite != nil {
		k.BeforeWrite(mount, path)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.WriteErr != nil {
		return 0, k.WriteErr
	}
	s := k.secret(mount, path)
	if len(s.versions) != cas {
		return 0, fmt.Errorf("%w: at %d, cas %d", rotation.ErrCASMismatch, len(s.versions), cas)
	}
	k.writes++
	s.versions = append(s.versions, kvVersion{data: maps.Clone(value)})
	return len(s.versions), nil
}

func (k *KV) Read(ctx context.Context, mount, path string, version int) (map[string]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ReadErr != nil {
		return nil, k.ReadErr
	}
	s, ok := k.secrets[key(mount, path)]
	if !ok || version < 1 || version > len(s.versions) {
		return nil, rotation.ErrKVNotFound
	}
	v := s.versions[version-1]
	if v.destroyed || v.deleted {
		return nil, rotation.ErrKVNotFound
	}
	return maps.Clone(v.data), nil
}

func (k *KV) mark(mount, path string, version int, destroy bool) error {
	s, ok := k.secrets[key(mount, path)]
	if !ok || version < 1 || version > len(s.versions) {
		return nil // Vault answers 204 for a version that is not there
	}
	if destroy {
		s.versions[version-1].destroyed = true
		s.versions[version-1].data = nil
	} else {
		s.versions[version-1].deleted = true
	}
	return nil
}

func (k *KV) Destroy(ctx context.Context, mount, path string, version int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.DestroyErr != nil {
		return k.DestroyErr
	}
	return k.mark(mount, path, version, true)
}

func (k *KV) SoftDelete(ctx context.Context, mount, path string, version int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.DeleteErr != nil {
		return k.DeleteErr
	}
	return k.mark(mount, path, version, false)
}

func (k *KV) PatchMetadata(ctx context.Context, mount, path string, custom map[string]string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.PatchErr != nil {
		return k.PatchErr
	}
	s := k.secret(mount, path)
	maps.Copy(s.custom, custom)
	return nil
}

func (k *KV) Metadata(ctx context.Context, mount, path string) (map[string]string, int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.MetadataErr != nil {
		return nil, 0, k.MetadataErr
	}
	s, ok := k.secrets[key(mount, path)]
	if !ok || len(s.versions) == 0 {
		return nil, 0, rotation.ErrKVNotFound
	}
	return maps.Clone(s.custom), len(s.versions), nil
}

// SetErr sets an injected error under the lock: which is a pointer to one
// of the fake's error fields.
func (k *KV) SetErr(which *error, err error) { k.mu.Lock(); *which = err; k.mu.Unlock() }

// Value returns the value key of one version ("" and false when gone).
func (k *KV) Value(mount, path string, version int) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.secrets[key(mount, path)]
	if !ok || version < 1 || version > len(s.versions) || s.versions[version-1].destroyed || s.versions[version-1].deleted {
		return "", false
	}
	v, ok := s.versions[version-1].data[rotation.ValueKey]
	return v, ok
}

// VersionState says what became of a version: "live", "destroyed", "deleted" or "absent".
func (k *KV) VersionState(mount, path string, version int) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.secrets[key(mount, path)]
	switch {
	case !ok || version < 1 || version > len(s.versions):
		return "absent"
	case s.versions[version-1].destroyed:
		return "destroyed"
	case s.versions[version-1].deleted:
		return "deleted"
	}
	return "live"
}

// Custom returns the custom_metadata of a secret.
func (k *KV) Custom(mount, path string) map[string]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.secrets[key(mount, path)]; ok {
		return maps.Clone(s.custom)
	}
	return nil
}

// Writes counts the successful writes.
func (k *KV) Writes() int { k.mu.Lock(); defer k.mu.Unlock(); return k.writes }

// ---------------------------------------------------------------- People

// People is a fake of the commander look-ups: PagerDuty user -> e-mail ->
// Slack id.
type People struct {
	mu      sync.Mutex
	pdEmail map[string]string
	slack   map[string]string
	// Err, when set, fails every look-up.
	Err error
}

// NewPeople returns an empty fake.
func NewPeople() *People { return &People{pdEmail: map[string]string{}, slack: map[string]string{}} }

// Set maps a PagerDuty user to an e-mail and that e-mail to a Slack id.
func (p *People) Set(pdUserID, email, slackID string) {
	p.mu.Lock()
	p.pdEmail[pdUserID] = email
	p.slack[strings.ToLower(email)] = slackID
	p.mu.Unlock()
}

func (p *People) SlackIDByEmail(ctx context.Context, email string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Err != nil {
		return "", p.Err
	}
	id, ok := p.slack[strings.ToLower(email)]
	if !ok {
		return "", errors.New("users_not_found")
	}
	return id, nil
}

func (p *People) PDUserEmail(ctx context.Context, pdUserID string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Err != nil {
		return "", p.Err
	}
	e, ok := p.pdEmail[pdUserID]
	if !ok {
		return "", errors.New("pagerduty: no such user")
	}
	return e, nil
}

// ---------------------------------------------------------------- Grants

// Grants is a fake grants reader over a fixed list.
type Grants struct {
	mu     sync.Mutex
	grants []access.Grant
	asked  []time.Time
	// Err, when set, fails GrantsSince.
	Err error
}

// NewGrants holds gs.
func NewGrants(gs ...access.Grant) *Grants { return &Grants{grants: gs} }

// GrantsSince returns the grants issued and not ended before t.
func (g *Grants) GrantsSince(ctx context.Context, t time.Time) ([]access.Grant, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked = append(g.asked, t)
	if g.Err != nil {
		return nil, g.Err
	}
	var out []access.Grant
	for _, gr := range g.grants {
		if !gr.IssuedAt.IsZero() && (gr.EndedAt.IsZero() || !gr.EndedAt.Before(t)) {
			out = append(out, gr)
		}
	}
	return out, nil
}

// Asked returns the times GrantsSince was asked about.
func (g *Grants) Asked() []time.Time { g.mu.Lock(); defer g.mu.Unlock(); return slices.Clone(g.asked) }

var (
	_ rotation.Store     = (*Store)(nil)
	_ rotation.KV        = (*KV)(nil)
	_ rotation.People    = (*People)(nil)
	_ rotation.Grants    = (*Grants)(nil)
	_ rotation.Tickets   = (*accesstest.Tickets)(nil)
	_ rotation.Incidents = (*accesstest.OnCall)(nil)
	_ rotation.Directory = (*accesstest.Directory)(nil)
	_ rotation.Messenger = (*accesstest.Messenger)(nil)
)
