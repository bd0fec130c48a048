// Package accesstest holds in-memory fakes of every port of internal/access,
// and a settable clock, for tests of the access service and its callers.
// Every fake is safe for concurrent use.
package accesstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

// ---------------------------------------------------------------- Clock

// Clock is a settable clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// ---------------------------------------------------------------- Store

// Store is an in-memory access.Store with optimistic transactions, like
// several replicas sharing one database: a transaction reads a snapshot,
// runs without a lock, and commits only if every grant it wrote is still at
// the version it read (else access.ErrConflict, and nothing commits). Audit
// events and messages are kept in commit order. Tx.Audit and Tx.Send refuse
// text shaped like a credential, as the real store and audit log do.
type Store struct {
	mu     sync.Mutex
	grants map[string]access.Grant
	events []audit.Event
	msgs   []outbox.Message
	txs    int

	// FailTx, when set, is called at the start of each transaction; a non-nil
	// error fails it.
	FailTx func() error
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{grants: map[string]access.Grant{}} }

type tx struct {
	grants map[string]access.Grant
	writes map[string]int64 // id -> version read (-1: inserted)
	events []audit.Event
	msgs   []outbox.Message
}

// InTx runs fn in a transaction.
func (s *Store) InTx(ctx context.Context, fn func(access.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.txs++
	if s.FailTx != nil {
		if err := s.FailTx(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	t := &tx{grants: make(map[string]access.Grant, len(s.grants)), writes: map[string]int64{}}
	for k, v := range s.grants {
		t.grants[k] = v
	}
	s.mu.Unlock()
	if err := fn(t); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, from := range t.writes {
		cur, ok := s.grants[id]
		if (from < 0 && ok) || (from >= 0 && (!ok || cur.Version != from)) {
			return fmt.Errorf("%w: grant %s changed before commit", access.ErrConflict, id)
		}
	}
	for id := range t.writes {
		s.grants[id] = t.grants[id]
	}
	s.events = append(s.events, t.events...)
	s.msgs = append(s.msgs, t.msgs...)
	return nil
}

// Transactions counts the transactions started.
func (s *Store) Transactions() int { s.mu.Lock(); defer s.mu.Unlock(); return s.txs }

func (t *tx) GrantInsert(ctx context.Context, g access.Grant) error {
	if _, ok := t.grants[g.ID]; ok {
		return fmt.Errorf("%w: grant %s exists", access.ErrConflict, g.ID)
	}
	if err := noCredential(fmt.Sprintf("%+v", g)); err != nil {
		return err
	}
	t.grants[g.ID] = clone(g)
	t.writes[g.ID] = -1
	return nil
}

func (t *tx) GrantGet(ctx context.Context, id string) (access.Grant, error) {
	g, ok := t.grants[id]
	if !ok {
		return access.Grant{}, fmt.Errorf("%w: grant %s", access.ErrNotFound, id)
	}
	return clone(g), nil
}

func (t *tx) GrantUpdate(ctx context.Context, g access.Grant, from int64) error {
	cur, ok := t.grants[g.ID]
	if !ok {
		return fmt.Errorf("%w: grant %s", access.ErrNotFound, g.ID)
	}
	if cur.Version != from {
		return fmt.Errorf("%w: grant %s is at %d, not %d", access.ErrConflict, g.ID, cur.Version, from)
	}
	if g.Version <= from {
		return fmt.Errorf("grant %s: version %d not newer than %d", g.ID, g.Version, from)
	}
	if err := noCredential(fmt.Sprintf("%+v", g)); err != nil {
		return err
	}
	if _, wrote := t.writes[g.ID]; !wrote {
		t.writes[g.ID] = from
	}
	t.grants[g.ID] = clone(g)
	return nil
}

func (t *tx) GrantsByState(ctx context.Context, states ...access.State) ([]access.Grant, error) {
	return t.list(func(g access.Grant) bool { return len(states) == 0 || slices.Contains(states, g.State) }), nil
}

func (t *tx) GrantsByRequester(ctx context.Context, slackID string, states ...access.State) ([]access.Grant, error) {
	return t.list(func(g access.Grant) bool {
		return g.Requester == slackID && (len(states) == 0 || slices.Contains(states, g.State))
	}), nil
}

func (t *tx) GrantsRequestedSince(ctx context.Context, slackID string, since time.Time) ([]time.Time, error) {
	var out []time.Time
	for _, g := range t.list(func(g access.Grant) bool { return g.Requester == slackID && !g.CreatedAt.Before(since) }) {
		out = append(out, g.CreatedAt)
	}
	return out, nil
}

func (t *tx) list(keep func(access.Grant) bool) []access.Grant {
	var out []access.Grant
	for _, g := range t.grants {
		if keep(g) {
			out = append(out, clone(g))
		}
	}
	slices.SortFunc(out, func(a, b access.Grant) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
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
	if err := noCredential(fmt.Sprintf("%+v", e)); err != nil {
		return err
	}
	t.events = append(t.events, e)
	return nil
}

func (t *tx) Send(ctx context.Context, m outbox.Message) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	if err := noCredential(string(b)); err != nil {
		return err
	}
	t.msgs = append(t.msgs, m)
	return nil
}

func noCredential(s string) error {
	if audit.LooksLikeCredential(s) {
		return audit.ErrCredential
	}
	return nil
}

func clone(g access.Grant) access.Grant {
	g.Evidence = slices.Clone(g.Evidence)
	return g
}

// Grant returns a stored grant.
func (s *Store) Grant(id string) (access.Grant, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[id]
	return clone(g), ok
}

// Grants returns every stored grant, oldest first.
func (s *Store) Grants() []access.Grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &tx{grants: s.grants}
	return t.list(func(access.Grant) bool { return true })
}

// Put stores g as is (for setting up a scenario).
func (s *Store) Put(g access.Grant) { s.mu.Lock(); s.grants[g.ID] = clone(g); s.mu.Unlock() }

// Events returns the committed audit events.
func (s *Store) Events() []audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
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
	return slices.Clone(s.msgs)
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

// Reset forgets the committed events and messages (grants stay).
func (s *Store) Reset() { s.mu.Lock(); s.events, s.msgs = nil, nil; s.mu.Unlock() }

// ---------------------------------------------------------------- Tickets

// Tickets is a fake Jira.
type Tickets struct {
	mu       sync.Mutex
	tickets  map[string]access.TicketFacts
	errs     map[string]error
	accounts map[string]string // lower-case e-mail -> account id
	// AccountErr, when set, is returned by AccountByEmail.
	AccountErr error
	// Delay, when set, is waited (or the context's end) before answering Ticket.
	Delay    time.Duration
	comments []Comment
	opened   []Opened
	OpenErr  error
	nextKey  int
	// OpenProject is the project of opened tickets (default "SEC").
	OpenProject string
}

// Comment is a comment the fake received.
type Comment struct{ Key, Body string }

// Opened is a ticket the fake opened.
type Opened struct{ Key, Summary, Body string }

// NewTickets returns an empty fake Jira.
func NewTickets() *Tickets {
	return &Tickets{tickets: map[string]access.TicketFacts{}, errs: map[string]error{}, accounts: map[string]string{}}
}

// SetTicket stores a ticket.
func (t *Tickets) SetTicket(f access.TicketFacts) {
	t.mu.Lock()
	t.tickets[f.Key] = f
	t.mu.Unlock()
}

// SetTicketErr makes Ticket(key) fail with err.
func (t *Tickets) SetTicketErr(key string, err error) { t.mu.Lock(); t.errs[key] = err; t.mu.Unlock() }

// SetAccount maps an e-mail to a Jira account id.
func (t *Tickets) SetAccount(email, id string) {
	t.mu.Lock()
	t.accounts[strings.ToLower(email)] = id
	t.mu.Unlock()
}

func (t *Tickets) Ticket(ctx context.Context, key string) (access.TicketFacts, error) {
	if err := wait(ctx, t.Delay); err != nil {
		return access.TicketFacts{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.errs[key]; err != nil {
		return access.TicketFacts{}, err
	}
	f, ok := t.tickets[key]
	if !ok {
		return access.TicketFacts{}, access.ErrTicketNotFound
	}
	return f, nil
}

func (t *Tickets) AccountByEmail(ctx context.Context, email string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.AccountErr != nil {
		return "", t.AccountErr
	}
	id, ok := t.accounts[strings.ToLower(email)]
	if !ok {
		return "", access.ErrUnknownJiraUser
	}
	return id, nil
}

func (t *Tickets) Comment(ctx context.Context, key, body string) error {
	t.mu.Lock()
	t.comments = append(t.comments, Comment{key, body})
	t.mu.Unlock()
	return nil
}

func (t *Tickets) Open(ctx context.Context, summary, body string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.OpenErr != nil {
		return "", t.OpenErr
	}
	t.nextKey++
	p := t.OpenProject
	if p == "" {
		p = "SEC"
	}
	key := fmt.Sprintf("%s-%d", p, 9000+t.nextKey)
	t.opened = append(t.opened, Opened{key, summary, body})
	return key, nil
}

// Comments returns the comments received.
func (t *Tickets) Comments() []Comment {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.comments)
}

// OpenedTickets returns the tickets opened.
func (t *Tickets) OpenedTickets() []Opened {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.opened)
}

// ---------------------------------------------------------------- OnCall

// OnCall is a fake PagerDuty.
type OnCall struct {
	mu        sync.Mutex
	people    map[string]OnCallAnswer // lower-case e-mail
	incidents map[string]access.Incident
	incErrs   map[string]error
	// Err, when set, is returned by every call (PagerDuty down).
	Err error
	// Delay, when set, is waited (or the context's end) before answering.
	Delay time.Duration
	calls int
}

// OnCallAnswer is what OnCallNow answers for one e-mail.
type OnCallAnswer struct {
	OnCall bool
	Detail string
	UserID string
}

// NewOnCall returns an empty fake PagerDuty.
func NewOnCall() *OnCall {
	return &OnCall{people: map[string]OnCallAnswer{}, incidents: map[string]access.Incident{}, incErrs: map[string]error{}}
}

// SetPerson sets what OnCallNow answers for email.
func (o *OnCall) SetPerson(email string, a OnCallAnswer) {
	o.mu.Lock()
	o.people[strings.ToLower(email)] = a
	o.mu.Unlock()
}

// SetIncident stores an incident under each of refs (id, "#number", ...).
func (o *OnCall) SetIncident(inc access.Incident, refs ...string) {
	o.mu.Lock()
	for _, r := range refs {
		o.incidents[r] = inc
	}
	o.mu.Unlock()
}

// SetIncidentErr makes Incident(ref) fail with err.
func (o *OnCall) SetIncidentErr(ref string, err error) {
	o.mu.Lock()
	o.incErrs[ref] = err
	o.mu.Unlock()
}

// SetErr makes every call fail (nil: answer again).
func (o *OnCall) SetErr(err error) { o.mu.Lock(); o.Err = err; o.mu.Unlock() }

// Calls counts the calls made.
func (o *OnCall) Calls() int { o.mu.Lock(); defer o.mu.Unlock(); return o.calls }

func (o *OnCall) OnCallNow(ctx context.Context, email string) (bool, string, string, error) {
	o.mu.Lock()
	o.calls++
	delay, err := o.Delay, o.Err
	o.mu.Unlock()
	if err := wait(ctx, delay); err != nil {
		return false, "", "", err
	}
	if err != nil {
		return false, "", "", err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	a := o.people[strings.ToLower(email)]
	return a.OnCall, a.Detail, a.UserID, nil
}

func (o *OnCall) Incident(ctx context.Context, ref string) (access.Incident, error) {
	o.mu.Lock()
	o.calls++
	delay, err := o.Delay, o.Err
	o.mu.Unlock()
	if err := wait(ctx, delay); err != nil {
		return access.Incident{}, err
	}
	if err != nil {
		return access.Incident{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.incErrs[ref]; err != nil {
		return access.Incident{}, err
	}
	inc, ok := o.incidents[ref]
	if !ok {
		return access.Incident{}, access.ErrIncidentNotFound
	}
	return inc, nil
}

func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ---------------------------------------------------------------- Vault

// Vault is a fake Vault: tokens and wrapping tokens by accessor, and groups.
type Vault struct {
	mu       sync.Mutex
	n        int
	tokens   map[string]Token // token accessor
	wraps    map[string]bool  // wrap accessor -> alive (unused)
	groups   map[string]Group
	issued   []access.IssueRequest
	revoked  []string
	driftErr error

	// IssueErr, RevokeErr, AliveErr, JoinErr, DeleteErr fail those calls.
	IssueErr, RevokeErr, AliveErr, JoinErr, DeleteErr error
	// WrapTTL is the wrapping tokens' lifetime (default 10m).
	WrapTTL time.Duration
	// OnIssue, when set, runs (without the fake's lock) before IssueWrapped
	// and JoinGroup answer: a hook for races.
	OnIssue func()
	// Now is the clock for WrapExpires (default time.Now).
	Now func() time.Time
}

// Token is a token the fake issued. WrapToken is the credential a DM carries.
type Token struct {
	Accessor, WrapAccessor, WrapToken string
	Request                           access.IssueRequest
	Alive                             bool
	Role                              string // the token role it came from ("secretbot" for issued ones)
	CreatedAt                         time.Time
}

// Group is a grant group the fake holds.
type Group struct {
	Policies []string
	Email    string
	Meta     map[string]string
}

// NewVault returns an empty fake Vault.
func NewVault() *Vault {
	return &Vault{tokens: map[string]Token{}, wraps: map[string]bool{}, groups: map[string]Group{}}
}

// WrapTokenPrefix starts every wrapping token the fake makes: shaped like a
// real Vault token, so credential scanners catch a leak.
const WrapTokenPrefix = "hvs.CAESIfakewrap"

func (v *Vault) IssueWrapped(ctx context.Context, r access.IssueRequest) (access.Wrapped, error) {
	if v.OnIssue != nil {
		v.OnIssue()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.IssueErr != nil {
		return access.Wrapped{}, v.IssueErr
	}
	v.n++
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	ttl := v.WrapTTL
	if ttl == 0 {
		ttl = 10 * time.Minute
	}
	t := Token{
		Accessor:     fmt.Sprintf("acc%04d", v.n),
		WrapAccessor: fmt.Sprintf("wacc%04d", v.n),
		WrapToken:    fmt.Sprintf("%s%04dXYZ", WrapTokenPrefix, v.n),
		Request:      r,
		Alive:        true,
		Role:         "secretbot",
		CreatedAt:    now(),
	}
	v.tokens[t.Accessor] = t
	v.wraps[t.WrapAccessor] = true
	v.issued = append(v.issued, r)
	return access.Wrapped{WrapToken: t.WrapToken, WrapAccessor: t.WrapAccessor, TokenAccessor: t.Accessor,
		WrapExpires: now().Add(ttl)}, nil
}

func (v *Vault) RevokeAccessor(ctx context.Context, accessor string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.RevokeErr != nil {
		return v.RevokeErr
	}
	v.revoked = append(v.revoked, accessor)
	if t, ok := v.tokens[accessor]; ok {
		t.Alive = false
		v.tokens[accessor] = t
	}
	if _, ok := v.wraps[accessor]; ok {
		v.wraps[accessor] = false
	}
	return nil
}

func (v *Vault) AccessorAlive(ctx context.Context, accessor string) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.AliveErr != nil {
		return false, v.AliveErr
	}
	if t, ok := v.tokens[accessor]; ok {
		return t.Alive, nil
	}
	return v.wraps[accessor], nil
}

func (v *Vault) JoinGroup(ctx context.Context, group string, policies []string, email string, meta map[string]string) error {
	if v.OnIssue != nil {
		v.OnIssue()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.JoinErr != nil {
		return v.JoinErr
	}
	v.groups[group] = Group{Policies: slices.Clone(policies), Email: email, Meta: meta}
	return nil
}

func (v *Vault) DeleteGroup(ctx context.Context, group string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.DeleteErr != nil {
		return v.DeleteErr
	}
	delete(v.groups, group)
	return nil
}

// Unwrap uses a wrapping token (its accessor dies).
func (v *Vault) Unwrap(wrapAccessor string) {
	v.mu.Lock()
	v.wraps[wrapAccessor] = false
	v.mu.Unlock()
}

// SetErrs sets the injected errors under the lock.
func (v *Vault) SetErrs(issue, revoke, alive error) {
	v.mu.Lock()
	v.IssueErr, v.RevokeErr, v.AliveErr = issue, revoke, alive
	v.mu.Unlock()
}

// Tokens returns every token issued, oldest first.
func (v *Vault) Tokens() []Token {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]Token, 0, len(v.tokens))
	for _, t := range v.tokens {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Token) int { return strings.Compare(a.Accessor, b.Accessor) })
	return out
}

// LiveTokens counts tokens not revoked.
func (v *Vault) LiveTokens() int {
	n := 0
	for _, t := range v.Tokens() {
		if t.Alive {
			n++
		}
	}
	return n
}

// Groups returns the groups held.
func (v *Vault) Groups() map[string]Group {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]Group, len(v.groups))
	for k, g := range v.groups {
		out[k] = g
	}
	return out
}

// ---- drift (access.VaultDrift) ----

// SetDriftErr makes GroupHasMember, TokenAccessors and LookupToken fail
// (Vault unreachable for the reconciler).
func (v *Vault) SetDriftErr(err error) { v.mu.Lock(); v.driftErr = err; v.mu.Unlock() }

func (v *Vault) GroupHasMember(ctx context.Context, group, email string) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.driftErr != nil {
		return false, v.driftErr
	}
	g, ok := v.groups[group]
	return ok && g.Email == email, nil
}

func (v *Vault) TokenAccessors(ctx context.Context) ([]string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.driftErr != nil {
		return nil, v.driftErr
	}
	var out []string
	for a, t := range v.tokens {
		if t.Alive {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (v *Vault) LookupToken(ctx context.Context, accessor string) (access.TokenFacts, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.driftErr != nil {
		return access.TokenFacts{}, v.driftErr
	}
	t, ok := v.tokens[accessor]
	if !ok || !t.Alive {
		return access.TokenFacts{}, access.ErrTokenGone
	}
	path := "auth/token/create"
	if t.Role != "" {
		path += "/" + t.Role
	}
	return access.TokenFacts{Accessor: accessor, Role: t.Role, Path: path, Meta: t.Request.Metadata, CreatedAt: t.CreatedAt}, nil
}

// Forget revokes a token behind the bot's back (as an operator with root would).
func (v *Vault) Forget(accessor string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if t, ok := v.tokens[accessor]; ok {
		t.Alive = false
		v.tokens[accessor] = t
	}
}

// RemoveGroup deletes a group behind the bot's back.
func (v *Vault) RemoveGroup(group string) { v.mu.Lock(); delete(v.groups, group); v.mu.Unlock() }

// AddToken puts a live token the bot did not issue (role "" for none).
func (v *Vault) AddToken(accessor, role string, meta map[string]string, created time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.tokens[accessor] = Token{Accessor: accessor, Role: role, Alive: true, CreatedAt: created,
		Request: access.IssueRequest{Metadata: meta}}
}

// ---------------------------------------------------------------- Messenger

// Messenger records what SendNow sent.
type Messenger struct {
	mu   sync.Mutex
	sent []outbox.Message
	// Err, when set, fails SendNow (the message counts as not sent).
	Err error
}

func (m *Messenger) SendNow(ctx context.Context, msg outbox.Message) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return "", m.Err
	}
	m.sent = append(m.sent, msg)
	return fmt.Sprintf("1700000000.%06d", len(m.sent)), nil
}

// SetErr sets Err under the lock.
func (m *Messenger) SetErr(err error) { m.mu.Lock(); m.Err = err; m.mu.Unlock() }

// Sent returns the messages sent.
func (m *Messenger) Sent() []outbox.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}

// ---------------------------------------------------------------- Directory

// Directory is a fake Slack user directory.
type Directory struct {
	mu     sync.Mutex
	people map[string]policy.Person
	// Err, when set, fails every look-up.
	Err error
}

// NewDirectory knows people.
func NewDirectory(people ...policy.Person) *Directory {
	d := &Directory{people: map[string]policy.Person{}}
	for _, p := range people {
		d.people[p.SlackID] = p
	}
	return d
}

// Set stores or replaces a person.
func (d *Directory) Set(p policy.Person) { d.mu.Lock(); d.people[p.SlackID] = p; d.mu.Unlock() }

func (d *Directory) Person(ctx context.Context, id string) (policy.Person, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Err != nil {
		return policy.Person{}, d.Err
	}
	p, ok := d.people[id]
	if !ok {
		return policy.Person{}, errors.New("accesstest: unknown user " + id)
	}
	return p, nil
}

var (
	_ access.Store     = (*Store)(nil)
	_ access.Tickets   = (*Tickets)(nil)
	_ access.OnCall    = (*OnCall)(nil)
	_ access.Vault     = (*Vault)(nil)
	_ access.Messenger = (*Messenger)(nil)
	_ access.Directory = (*Directory)(nil)
)
