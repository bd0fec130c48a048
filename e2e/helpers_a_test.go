package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakejira"
	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

// Helpers of the access scenarios A01–A21 (issue 3).
//
// Every scenario starts its world with startA, which puts a vaultTap in front
// of Vault (so every token and wrapping token Vault hands the bot is known,
// even one nobody ever saw in Slack) and, when the scenario ends, records
// what was captured: the bot's output, every Slack message, response, view
// and Web API call, every Jira and PagerDuty request, the database (rows and
// raw bytes), and the tokens the test itself unwrapped. A18 scans those
// captures for credentials and A19 verifies the audit chain of each
// scenario's database copy; when A18 or A19 run without the scenarios having
// run first (-run TestA18), they run the missing ones as subtests.

// jiraScope is the Jira-gated, wrapped-token scope A01 asks for (added to
// the harness configuration by withPaymentsRO).
const jiraScope = "payments-ro"

// withPaymentsRO adds payments-ro: Platform Security, Jira + approval,
// approvers Platform Security, wrapped token, policy platform-ro.
func withPaymentsRO(doc map[string]any) {
	doc["scopes"] = append(doc["scopes"].([]any), map[string]any{
		"name":           jiraScope,
		"description":    "Read-only on the platform secrets, with a Jira ticket",
		"tier":           "read-only",
		"vault_policies": []string{"platform-ro"},
		"max_ttl":        "8h",
		"eligible":       map[string]any{"groups": []string{harness.PlatformSecurityGroup}},
		"approvers":      map[string]any{"groups": []string{harness.PlatformSecurityGroup}},
		"evidence":       []string{"jira", "approval"},
		"delivery":       "wrapped-token",
		"kv_paths":       []string{"platform/*"},
	})
}

// withWrapTTL sets vault.wrap_ttl.
func withWrapTTL(d string) func(map[string]any) {
	return func(doc map[string]any) { doc["vault"].(map[string]any)["wrap_ttl"] = d }
}

// world is one scenario's harness, with the Vault tap and what the test saw.
type world struct {
	*harness.Harness
	t   *testing.T
	id  string
	tap *vaultTap

	mu     sync.Mutex
	tokens []string          // tokens the test unwrapped (never given to the bot)
	extra  map[string]string // more captured text (CLI output, a binary's output)
}

// startA starts a scenario's world: the harness (with opts), the bot
// reaching Vault through a tap, and the capture at the end. With
// opts.NoRun the bot is not started (A16 runs the binary itself).
func startA(t *testing.T, id string, opts harness.Options) *world {
	t.Helper()
	noRun := opts.NoRun
	opts.NoRun = true
	h := harness.Start(t, opts)
	w := &world{Harness: h, t: t, id: id, tap: newVaultTap(t, h), extra: map[string]string{}}
	h.SetEnv("VAULT_ADDR", w.tap.srv.URL)
	h.SetEnv("VAULT_CACERT", w.tap.caPath)
	t.Cleanup(w.capture) // runs before the harness stops the bot and closes the fakes
	if !noRun {
		h.StartBot()
		if err := h.WaitReady(); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *world) addToken(tok string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tokens = append(w.tokens, tok)
}

func (w *world) addText(name, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.extra[name] += text
}

// ---- Slack side ----

var (
	grantIDRe = regexp.MustCompile(`\bG[0-9A-HJKMNP-TV-Z]{8}\b`)
	unwrapRe  = regexp.MustCompile(`VAULT_ADDR=(\S+) vault unwrap ([A-Za-z0-9._-]+)`)
)

// ask sends /secrets text as who, checks the ack came in Slack's time, and
// returns the command's response_url.
func (w *world) ask(who harness.Person, text string) string {
	w.t.Helper()
	_, url := command(w.t, w.Harness, who, text)
	return url
}

// responseWith waits for a post to url containing any of subs.
func (w *world) responseWith(url string, subs ...string) fakeslack.Response {
	w.t.Helper()
	r, err := w.Slack.WaitResponse(url, wait, func(r fakeslack.Response) bool {
		for _, s := range subs {
			if strings.Contains(r.Text+string(r.Blocks), s) {
				return true
			}
		}
		return false
	})
	if err != nil {
		var got []string
		for _, r := range w.Slack.Responses(url) {
			got = append(got, r.Text)
		}
		w.t.Fatalf("no answer containing %q: %v; answers so far:\n%s", subs, err, strings.Join(got, "\n---\n"))
	}
	return r
}

// Final words of a request's summary (internal/access): refused, waiting for
// an approver, or approved automatically.
const (
	sayRefused  = "*Refused*"
	sayWaiting  = "Waiting for an approver"
	sayAutoOK   = "approved automatically"
	sayCardHead = "*Access request*"
)

// outcome waits for the request's outcome on url: refused, waiting for an
// approver, or approved automatically.
func (w *world) outcome(url string) fakeslack.Response {
	w.t.Helper()
	return w.responseWith(url, sayRefused, sayWaiting, sayAutoOK)
}

// grantID finds the grant id in a text.
func grantID(t *testing.T, text string) string {
	t.Helper()
	id := grantIDRe.FindString(text)
	if id == "" {
		t.Fatalf("no grant id in: %s", text)
	}
	return id
}

// card waits for the approval card of grant id (with its buttons).
func (w *world) card(id string) fakeslack.Message {
	w.t.Helper()
	m, err := w.Slack.WaitMessage(func(m fakeslack.Message) bool {
		return fakeslack.InChannel(harness.SecurityChannel)(m) && strings.Contains(m.Text, id) &&
			strings.Contains(m.Text, "asks for")
	}, wait)
	if err != nil {
		w.t.Fatalf("no approval card for %s in %s: %v", id, harness.SecurityChannel, err)
	}
	return m
}

// cards lists the approval cards (ever posted) for grant id.
func (w *world) cards(id string) []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range w.Slack.Messages() {
		if fakeslack.InChannel(harness.SecurityChannel)(m) && strings.Contains(m.Text, id) &&
			(slices.Contains(fakeslack.ActionIDs(m.Blocks), "grant_approve") || strings.Contains(m.Text, "asked for")) {
			out = append(out, m)
		}
	}
	return out
}

// click has who press actionID on m and waits for the click's ack.
func (w *world) click(who harness.Person, m fakeslack.Message, actionID string) string {
	w.t.Helper()
	env, _, err := w.Slack.ClickButton(who.Slack, m, actionID)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, latency, err := w.Slack.WaitAck(env, wait); err != nil {
		w.t.Fatalf("%s's click on %s: no ack: %v", who.Name, actionID, err)
	} else if latency > ackLimit {
		w.t.Errorf("%s's click on %s acked after %v", who.Name, actionID, latency)
	}
	return env
}

// ephemeralTo waits for an ephemeral message to who containing sub.
func (w *world) ephemeralTo(who harness.Person, sub string) fakeslack.Message {
	w.t.Helper()
	m, err := w.Slack.WaitMessage(func(m fakeslack.Message) bool {
		return m.Ephemeral && m.User == who.Slack && strings.Contains(m.Text, sub)
	}, wait)
	if err != nil {
		var got []string
		for _, m := range w.Slack.Messages() {
			if m.Ephemeral && m.User == who.Slack {
				got = append(got, m.Text)
			}
		}
		w.t.Fatalf("no ephemeral message to %s containing %q: %v; ephemeral messages to them:\n%s", who.Name, sub, err, strings.Join(got, "\n"))
	}
	return m
}

// dm waits for a direct message to who containing every one of subs.
func (w *world) dm(who harness.Person, subs ...string) fakeslack.Message {
	w.t.Helper()
	m, err := w.Slack.WaitMessage(func(m fakeslack.Message) bool {
		if !fakeslack.InChannel(who.Slack)(m) {
			return false
		}
		for _, s := range subs {
			if !strings.Contains(m.Text+string(m.Blocks), s) {
				return false
			}
		}
		return true
	}, wait)
	if err != nil {
		w.t.Fatalf("no DM to %s containing %q: %v; DMs to them:\n%s", who.Name, subs, err, strings.Join(w.dmTexts(who), "\n---\n"))
	}
	return m
}

func (w *world) dmTexts(who harness.Person) []string {
	var out []string
	for _, m := range w.Slack.Messages() {
		if fakeslack.InChannel(who.Slack)(m) {
			out = append(out, m.Text)
		}
	}
	return out
}

// tokenDMs lists the DMs that carry a `vault unwrap` line.
func (w *world) tokenDMs() []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range w.Slack.Messages() {
		if !m.Ephemeral && strings.Contains(m.Text+string(m.Blocks), "vault unwrap") {
			out = append(out, m)
		}
	}
	return out
}

// wrapped is the DM that delivered grant id: its wrapping token and the
// VAULT_ADDR its unwrap line names.
type wrapped struct {
	msg       fakeslack.Message
	wrapToken string
	addr      string
}

// tokenDM waits for who's DM delivering grant id and reads its unwrap line.
func (w *world) tokenDM(who harness.Person, id string) wrapped {
	w.t.Helper()
	m := w.dm(who, id, "vault unwrap")
	sm := unwrapRe.FindStringSubmatch(m.Text)
	if sm == nil {
		w.t.Fatalf("the DM has no `VAULT_ADDR=… vault unwrap <token>` line:\n%s", m.Text)
	}
	return wrapped{msg: m, addr: sm[1], wrapToken: sm[2]}
}

// ---- Vault side ----

// tokenInfo is what lookup-self says about a grant's token.
type tokenInfo struct {
	Policies       []string
	TTL            time.Duration
	CreationTTL    time.Duration
	ExplicitMaxTTL time.Duration
	Orphan         bool
	Renewable      bool
	Meta           map[string]string
	DisplayName    string
	Accessor       string
}

// unwrap unwraps the wrapping token with the Vault client, as the requester
// would, and returns the grant's token.
func (w *world) unwrap(wrapToken string) string {
	w.t.Helper()
	c := w.Vault.Client(w.t, "")
	sec, err := c.Logical().Unwrap(wrapToken)
	if err != nil {
		w.t.Fatalf("vault unwrap: %v", err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		w.t.Fatalf("vault unwrap gave no token: %+v", sec)
	}
	w.addToken(sec.Auth.ClientToken)
	return sec.Auth.ClientToken
}

// lookupSelf looks the token up with itself (lookup-self).
func (w *world) lookupSelf(token string) tokenInfo {
	w.t.Helper()
	sec, err := w.Vault.Client(w.t, token).Auth().Token().LookupSelf()
	if err != nil {
		w.t.Fatalf("lookup-self with the grant's token: %v", err)
	}
	return parseTokenInfo(w.t, sec.Data)
}

func parseTokenInfo(t *testing.T, d map[string]any) tokenInfo {
	t.Helper()
	secs := func(k string) time.Duration {
		switch v := d[k].(type) {
		case json.Number:
			n, err := v.Int64()
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			return time.Duration(n) * time.Second
		case float64:
			return time.Duration(v) * time.Second
		case nil:
			return 0
		}
		t.Fatalf("%s has type %T", k, d[k])
		return 0
	}
	info := tokenInfo{TTL: secs("ttl"), CreationTTL: secs("creation_ttl"), ExplicitMaxTTL: secs("explicit_max_ttl"),
		Meta: map[string]string{}}
	info.Orphan, _ = d["orphan"].(bool)
	info.Renewable, _ = d["renewable"].(bool)
	info.DisplayName, _ = d["display_name"].(string)
	info.Accessor, _ = d["accessor"].(string)
	if ps, ok := d["policies"].([]any); ok {
		for _, p := range ps {
			info.Policies = append(info.Policies, fmt.Sprint(p))
		}
	}
	if m, ok := d["meta"].(map[string]any); ok {
		for k, v := range m {
			info.Meta[k] = fmt.Sprint(v)
		}
	}
	return info
}

// checkGrantToken asserts what the issue demands of a grant's token:
// the scope's policies (and no other grant policy), TTL ≈ the requested TTL
// with an explicit max TTL equal to it, orphan, non-renewable, the metadata
// and a display name naming the user.
func checkGrantToken(t *testing.T, info tokenInfo, policy string, ttl time.Duration, meta map[string]string, user string) {
	t.Helper()
	if !slices.Contains(info.Policies, policy) {
		t.Errorf("token policies %v lack %s", info.Policies, policy)
	}
	for _, p := range info.Policies {
		if p != policy && p != "default" {
			t.Errorf("token carries policy %s besides %s", p, policy)
		}
	}
	if info.CreationTTL != ttl || info.ExplicitMaxTTL != ttl {
		t.Errorf("token creation TTL %v, explicit max TTL %v; want both %v", info.CreationTTL, info.ExplicitMaxTTL, ttl)
	}
	if info.TTL > ttl || info.TTL < ttl-time.Minute {
		t.Errorf("token TTL left %v, want about %v", info.TTL, ttl)
	}
	if !info.Orphan {
		t.Error("the token is not an orphan")
	}
	if info.Renewable {
		t.Error("the token is renewable")
	}
	for k, v := range meta {
		if info.Meta[k] != v {
			t.Errorf("token metadata %s = %q, want %q (all: %v)", k, info.Meta[k], v, info.Meta)
		}
	}
	for k := range info.Meta {
		if _, ok := meta[k]; !ok {
			t.Errorf("unexpected token metadata %s=%q", k, info.Meta[k])
		}
	}
	if !strings.Contains(info.DisplayName, user) {
		t.Errorf("display name %q does not name %s", info.DisplayName, user)
	}
}

// tokenAlive looks a token up with the root token.
func (w *world) tokenAlive(token string) bool {
	_, err := w.Vault.Root.Auth().Token().Lookup(token)
	return err == nil
}

// accessorAlive looks an accessor up with the root token.
func (w *world) accessorAlive(accessor string) bool {
	_, err := w.Vault.Root.Auth().Token().LookupAccessor(accessor)
	return err == nil
}

// grantTokens lists the accessors of the live tokens whose metadata names
// grant id.
func (w *world) grantTokens(id string) []string {
	w.t.Helper()
	sec, err := w.Vault.Root.Logical().List("auth/token/accessors")
	if err != nil {
		w.t.Fatalf("list token accessors: %v", err)
	}
	var out []string
	if sec == nil {
		return nil
	}
	keys, _ := sec.Data["keys"].([]any)
	for _, k := range keys {
		acc := fmt.Sprint(k)
		s, err := w.Vault.Root.Auth().Token().LookupAccessor(acc)
		if err != nil || s == nil {
			continue
		}
		if m, ok := s.Data["meta"].(map[string]any); ok && fmt.Sprint(m["grant"]) == id {
			out = append(out, acc)
		}
	}
	return out
}

// issuedTokens counts the tokens Vault has handed the bot (response-wrapped
// grants), leaving out the bot's own token (which its renewals repeat).
func (w *world) issuedTokens() int {
	seen := map[string]bool{}
	for _, tok := range w.tap.Tokens() {
		if tok != w.Vault.BotToken && tok != w.Getenv("VAULT_TOKEN") {
			seen[tok] = true
		}
	}
	return len(seen)
}

// until polls cond every 100 ms for up to timeout.
func until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- the database, as an auditor reads it ----

// grantRow is the stored grant.
type grantRow struct {
	ID, Requester, Scope, State, EndReason, TokenAccessor, WrapAccessor, VaultGroup, Ticket, Incident, Approver string
	LastError                                                                                                   string
	RevokePending                                                                                               bool
	IssuedAt, ExpiresAt, DeliveredAt, EndedAt, WrapExpires                                                      time.Time
}

func (w *world) grants() []grantRow {
	w.t.Helper()
	return readGrants(w.t, w.DBPath)
}

func readGrants(t *testing.T, path string) []grantRow {
	t.Helper()
	db := openDB(t, path)
	rows, err := db.Query(`SELECT id, requester, scope, state, end_reason, token_accessor, wrap_accessor, vault_group,
		ticket, incident, approver, last_error, revoke_pending, issued_at, expires_at, delivered_at, ended_at, wrap_expires FROM grants ORDER BY created_at`)
	if err != nil {
		t.Fatalf("read grants: %v", err)
	}
	defer rows.Close()
	var out []grantRow
	for rows.Next() {
		var g grantRow
		var rp int
		var issued, expires, delivered, ended, wrapExp int64
		if err := rows.Scan(&g.ID, &g.Requester, &g.Scope, &g.State, &g.EndReason, &g.TokenAccessor, &g.WrapAccessor,
			&g.VaultGroup, &g.Ticket, &g.Incident, &g.Approver, &g.LastError, &rp, &issued, &expires, &delivered, &ended, &wrapExp); err != nil {
			t.Fatal(err)
		}
		g.RevokePending = rp != 0
		ts := func(ns int64) time.Time {
			if ns == 0 {
				return time.Time{}
			}
			return time.Unix(0, ns)
		}
		g.IssuedAt, g.ExpiresAt, g.DeliveredAt, g.EndedAt, g.WrapExpires = ts(issued), ts(expires), ts(delivered), ts(ended), ts(wrapExp)
		out = append(out, g)
	}
	return out
}

// grant returns the stored grant id.
func (w *world) grant(id string) grantRow {
	w.t.Helper()
	for _, g := range w.grants() {
		if g.ID == id {
			return g
		}
	}
	w.t.Fatalf("grant %s is not stored", id)
	return grantRow{}
}

// waitGrant polls the stored grant id until cond holds.
func (w *world) waitGrant(id string, timeout time.Duration, what string, cond func(grantRow) bool) grantRow {
	w.t.Helper()
	var g grantRow
	if !until(timeout, func() bool {
		for _, r := range readGrants(w.t, w.DBPath) {
			if r.ID == id {
				g = r
				return cond(r)
			}
		}
		return false
	}) {
		w.t.Fatalf("grant %s: not %s within %v; stored: %+v", id, what, timeout, g)
	}
	return g
}

// events returns the audit events, oldest first.
func (w *world) events() []storedEvent {
	w.t.Helper()
	return readEvents(w.t, openDB(w.t, w.DBPath))
}

// eventsOf returns the audit events with action about grant id ("" for any grant).
func (w *world) eventsOf(action, id string) []storedEvent {
	w.t.Helper()
	var out []storedEvent
	for _, e := range w.events() {
		if e.action == action && (id == "" || strings.Contains(e.links, `"`+id+`"`)) {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent polls for an audit event with action about grant id.
func (w *world) waitEvent(action, id string) storedEvent {
	w.t.Helper()
	var got storedEvent
	if !until(wait, func() bool {
		es := w.eventsOf(action, id)
		if len(es) > 0 {
			got = es[0]
		}
		return len(es) > 0
	}) {
		w.t.Fatalf("no audit event %s for %q within %v", action, id, wait)
	}
	return got
}

// ---- Jira ----

// addTicket adds a ticket for scope by requester (owner, scope,
// justification and expiry set) in the given status, with no approval.
func (w *world) addTicket(key string, requester harness.Person, scope, status string) {
	u := fakejira.User{AccountID: requester.Jira, Name: requester.Name, DisplayName: requester.Name, Email: requester.Email}
	w.Jira.AddIssue(fakejira.Issue{Key: key, Summary: scope + " for " + requester.Name, Status: status,
		StatusCategory: "indeterminate", Reporter: u,
		Fields: map[string]any{harness.FieldOwner: requester.Email, harness.FieldScope: scope,
			harness.FieldJustification: "investigate the payment reconciliation job",
			harness.FieldExpiry:        time.Now().AddDate(0, 0, 30).Format("2006-01-02")}})
}

// ---- captures, for A18 and A19 ----

// capture is what one scenario's world left behind.
type capture struct {
	id    string
	texts map[string]string // where -> text, excluding the one DM per wrapping token
	dms   map[string]string // the token DMs (message and its chat.postMessage calls)
	// wrapTokens are the tokens Vault handed the bot (wrapping tokens);
	// secrets are the grant tokens the test unwrapped and every other
	// credential in play (the bot's, the fakes').
	wrapTokens, secrets []string
	db                  string // a copy of the database
	config              string // a configuration pointing at the copy
	env                 map[string]string
}

var recorder struct {
	mu   sync.Mutex
	dir  string
	caps []*capture
}

// removeCaptures deletes the database copies (TestMain, after the suite).
func removeCaptures() {
	recorder.mu.Lock()
	defer recorder.mu.Unlock()
	if recorder.dir != "" {
		_ = os.RemoveAll(recorder.dir)
	}
}

func captured(id string) bool {
	recorder.mu.Lock()
	defer recorder.mu.Unlock()
	for _, c := range recorder.caps {
		if c.id == id {
			return true
		}
	}
	return false
}

func capturesOf(ids ...string) []*capture {
	recorder.mu.Lock()
	defer recorder.mu.Unlock()
	var out []*capture
	for _, c := range recorder.caps {
		if slices.Contains(ids, c.id) {
			out = append(out, c)
		}
	}
	return out
}

// capture stops the bot (so everything it would write is written) and
// records the world.
func (w *world) capture() {
	t := w.t
	if _, exited := w.WaitExit(0); !exited {
		_ = w.Stop()
	}
	c := &capture{id: w.id, texts: map[string]string{}, dms: map[string]string{}, env: w.Env()}
	for _, tok := range w.tap.Tokens() {
		if tok != w.Vault.BotToken && !slices.Contains(c.wrapTokens, tok) {
			c.wrapTokens = append(c.wrapTokens, tok)
		}
	}
	w.mu.Lock()
	c.secrets = append(c.secrets, w.tokens...)
	for k, v := range w.extra {
		c.texts[k] = v
	}
	w.mu.Unlock()
	c.secrets = append(c.secrets, w.Secrets()...)

	c.texts["bot output"] = w.Output()
	// The one DM per wrapping token: a direct message whose text carries
	// the `vault unwrap` line (and the chat.postMessage calls that sent it).
	isTokenDM := func(channel, text string) bool {
		return (strings.HasPrefix(channel, "D") || strings.HasPrefix(channel, "U")) && strings.Contains(text, "vault unwrap ")
	}
	for i, m := range w.Slack.Messages() {
		text := fmt.Sprintf("%s %s %s %s", m.Channel, m.User, m.Text, m.Blocks)
		where := fmt.Sprintf("Slack message %d (%s)", i, m.Channel)
		if !m.Ephemeral && isTokenDM(m.Channel, m.Text) {
			c.dms[where] = text
			continue
		}
		c.texts[where] = text
	}
	var b strings.Builder
	for _, r := range w.Slack.Responses("") {
		fmt.Fprintf(&b, "%s %s\n", r.URL, r.Raw)
	}
	c.texts["Slack responses"] = b.String()
	b.Reset()
	for i, call := range w.Slack.Calls() {
		form, _ := json.Marshal(call.Form)
		body, _ := json.Marshal(call.JSON)
		line := fmt.Sprintf("%s %s %s\n", call.Method, form, body)
		if call.Method == "chat.postMessage" && isTokenDM(call.Param("channel"), call.Param("text")) {
			c.dms[fmt.Sprintf("Slack call %d (chat.postMessage to %s)", i, call.Param("channel"))] = line
			continue
		}
		b.WriteString(line)
	}
	c.texts["Slack Web API calls"] = b.String()
	b.Reset()
	for _, v := range w.Slack.Views() {
		raw, _ := json.Marshal(v.Raw)
		fmt.Fprintf(&b, "%s %s %s\n", v.ID, v.Blocks, raw)
	}
	for _, u := range []harness.Person{harness.Alice, harness.Bob, harness.Sam, harness.Carol, harness.Dave, harness.Eve} {
		if v, ok := w.Slack.HomeView(u.Slack); ok {
			raw, _ := json.Marshal(v.Raw)
			fmt.Fprintf(&b, "home %s %s\n", u.Slack, raw)
		}
	}
	c.texts["Slack views"] = b.String()
	b.Reset()
	for _, call := range w.Jira.Calls() {
		fmt.Fprintf(&b, "%s %s %s %s\n", call.Method, call.Path, call.Query.Encode(), call.Body)
	}
	for _, cm := range w.Jira.Comments("") {
		fmt.Fprintf(&b, "comment %s %s\n", cm.Issue, cm.Body)
	}
	for _, ci := range w.Jira.CreatedIssues() {
		f, _ := json.Marshal(ci.Fields)
		fmt.Fprintf(&b, "created %s %s\n", ci.Key, f)
	}
	c.texts["Jira"] = b.String()
	b.Reset()
	for _, call := range w.PD.Calls() {
		fmt.Fprintf(&b, "%s %s %s\n", call.Method, call.Path, call.Query.Encode())
	}
	c.texts["PagerDuty"] = b.String()

	if _, err := os.Stat(w.DBPath); err == nil {
		for table, text := range dumpTables(t, w.DBPath) {
			c.texts["database "+table] = text
		}
		recorder.mu.Lock()
		if recorder.dir == "" {
			recorder.dir, _ = os.MkdirTemp("", "secretbot-e2e-captures")
		}
		dir := recorder.dir
		recorder.mu.Unlock()
		if dir != "" {
			c.db = filepath.Join(dir, fmt.Sprintf("%s-%d.db", w.id, time.Now().UnixNano()))
			copyDB(t, w.DBPath, c.db)
			c.config = configWithDB(t, w.Harness, c.db)
		}
	}
	recorder.mu.Lock()
	recorder.caps = append(recorder.caps, c)
	recorder.mu.Unlock()
}

// scenario is one of A01–A17, by id, for A18 and A19 to run when it has not
// run yet.
type scenario struct {
	id string
	fn func(*testing.T)
}

// ensureScenarios runs (as subtests) the scenarios not captured yet.
func ensureScenarios(t *testing.T, all []scenario) {
	t.Helper()
	for _, s := range all {
		if !captured(s.id) {
			t.Run(s.id, s.fn)
		}
	}
}

// dumpTables renders the rows of each table of the database at path, and
// the raw bytes of its files (freed pages included) as "files".
func dumpTables(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(dumpDB(t, path), "\n") {
		table, _, ok := strings.Cut(line, ":")
		if !ok || strings.ContainsAny(table, " \x00") || table == "" {
			continue
		}
		out["table "+table] += line + "\n"
	}
	var raw strings.Builder
	for _, suffix := range []string{"", "-wal"} {
		if b, err := os.ReadFile(path + suffix); err == nil {
			raw.Write(b)
		}
	}
	out["files"] = raw.String()
	return out
}

// settled waits until the bot owes nothing: no inbox entry waiting or in
// work, no outbox message due.
func (w *world) settled() {
	w.t.Helper()
	db := openDB(w.t, w.DBPath)
	var inbox, outbox int
	if !until(wait, func() bool {
		if db.QueryRow(`SELECT COUNT(*) FROM inbox WHERE state IN ('pending', 'working')`).Scan(&inbox) != nil ||
			db.QueryRow(`SELECT COUNT(*) FROM outbox WHERE state = 'pending'`).Scan(&outbox) != nil {
			return false
		}
		return inbox == 0 && outbox == 0
	}) {
		w.t.Fatalf("the bot did not settle within %v: %d inbox entries and %d outbox messages left", wait, inbox, outbox)
	}
}
