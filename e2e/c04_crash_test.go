package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
	"github.com/secretbot/secretbot/e2e/internal/fault"
	"github.com/secretbot/secretbot/e2e/vaulttest"
)

// C04: the real binary is killed (SIGKILL, at a named crash point) in the
// middle of the access and rotation flows, once per crash point, and
// restarted on the same database. After each restart the flow that was
// interrupted is finished the way a person would (clicking again, running
// the command again), and the invariants of issue 5 are checked:
//
//   - every approved request ends with exactly one delivered grant or a
//     recorded failure;
//   - no live token without a live grant: every token Vault handed the bot
//     (recorded by a proxy in front of Vault) is dead, or is the token of a
//     live issued grant, or provably reached nobody (its wrapping token is
//     in no Slack message);
//   - every revocation due is done (ended grants' tokens and groups are gone);
//   - `secretbot audit verify` passes on the database;
//   - no rotation is half-applied without a visible pending state.
//
// The crash points are every crash.Point("...") literal in the product's
// source: a point added to the product is required here at once, and the
// test fails if one is never reached. One Vault serves every point; each
// point has its own database, fakes and Vault proxy. Points run two at a
// time (t.Parallel, bounded by -parallel, which defaults to GOMAXPROCS).

// c04Scope and c04Group: Alice's entity-group request (Jira + approval);
// Carol's wrapped-token request (on call + incident, approved by the
// evidence alone).
const (
	c04Alice  = "request platform-rw --ttl 1h --ticket SEC-1"
	c04Carol  = "request platform-ro --ttl 1h --incident " + harness.OpenIncident
	c04Rotate = "rotate " + harness.PaymentsDB + " --ticket SEC-2"
)

var crashPointRe = regexp.MustCompile(`crash\.Point\("([^"]+)"\)`)

// crashPoints lists every named crash point in the product's source (the
// main module: everything under .. but e2e/ and tests).
func crashPoints(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != ".." && (name == "e2e" || strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range crashPointRe.FindAllSubmatch(b, -1) {
			seen[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func TestC04_CrashAtEveryStep(t *testing.T) {
	points := crashPoints(t)
	if len(points) < 40 {
		t.Fatalf("only %d crash points found in the source: %v", len(points), points)
	}
	if only := os.Getenv("C04_POINTS"); only != "" { // a developer's shortcut: C04_POINTS=a,b
		points = strings.Split(only, ",")
	}
	secretbotBinary(t)
	v := vaulttest.Start(t)
	harness.SeedVault(t, v)

	began := time.Now()
	var covered atomic.Int64
	var mu sync.Mutex
	var orphans []string
	t.Run("point", func(t *testing.T) {
		for i, p := range points {
			t.Run(p, func(t *testing.T) {
				t.Parallel()
				c := newC04(t, v, p, i)
				c.run()
				if c.reached {
					covered.Add(1)
				}
				mu.Lock()
				orphans = append(orphans, c.orphans...)
				mu.Unlock()
			})
		}
	})
	msg := fmt.Sprintf("C04: covered %d of %d crash points in %v", covered.Load(), len(points), time.Since(began).Round(time.Second))
	t.Log(msg)
	fmt.Println(msg)
	if len(orphans) > 0 {
		t.Logf("tokens left alive whose wrapping token reached nobody (issued, then killed before the issue was recorded): %v", orphans)
	}
	if int(covered.Load()) != len(points) {
		t.Errorf("%d crash points were never reached", len(points)-int(covered.Load()))
	}
}

// c04 is one crash point's run.
type c04 struct {
	t       *testing.T
	h       *harness.Harness
	tap     *c04Tap
	point   string
	kvPath  string
	p       *proc
	db      *sql.DB
	reached bool
	sent    []string // envelopes sent to the bot
	cards   map[string]fakeslack.Message
	// recovering: the bot was killed and restarted; steps finish what a
	// person would.
	recovering bool
	orphans    []string
}

var errC04Exited = errors.New("the bot exited")

func newC04(t *testing.T, v *vaulttest.Vault, point string, i int) *c04 {
	sec := harness.PaymentsDBSecret()
	sec.Path = fmt.Sprintf("platform/c04-%d", i)
	h := harness.Start(t, harness.Options{NoRun: true, Vault: v, EditConfig: func(doc map[string]any) {
		harness.WithRotation(harness.Rotation{Secrets: []harness.InventorySecret{sec}})(doc)
		vc := doc["vault"].(map[string]any)
		// A wrapping token is looked up in the last minute of its life: with
		// 1m, at once (the lookup's crash points are reached).
		vc["wrap_ttl"] = "1m"
		// An issued token whose DM was not confirmed is re-issued 1s after
		// issue, not 2m: a restart recovers at once.
		vc["delivery_lease"] = "1s"
	}})
	c := &c04{t: t, h: h, point: point, kvPath: sec.Path}
	c.tap = newC04Tap(t, v)
	h.SetEnv("VAULT_ADDR", c.tap.srv.URL)
	h.SetEnv("VAULT_CACERT", c.tap.caPath)
	if _, err := v.Root.KVv2(harness.KVMount).Put(t.Context(), sec.Path, map[string]any{"value": "initial-" + randToken(8)}); err != nil {
		t.Fatalf("seed %s: %v", sec.Path, err)
	}
	h.AddApprovedTicket("SEC-1", harness.Alice, "platform-rw", ticketExpiry())
	h.AddApprovedTicket("SEC-2", harness.Alice, harness.PaymentsDB, ticketExpiry())
	return c
}

// run drives the flows with the crash point armed until the bot dies
// there, restarts it, finishes the interrupted step and checks the
// invariants.
func (c *c04) run() {
	t := c.t
	c.start(true)
	steps := []struct {
		name string
		fn   func() error
	}{
		{"ready", c.ready},
		{"Eve's refused request", c.refused},
		{"Alice's request", c.aliceRequest},
		{"Bob's approval", c.approve},
		{"Sam's click on the decided card", c.staleClick},
		{"Carol's request", c.carolRequest},
		{"Carol's revoke", func() error { return c.revoke(harness.Carol, "platform-ro") }},
		{"Alice's revoke", func() error { return c.revoke(harness.Alice, "platform-rw") }},
		{"the rotation", c.rotate},
		{"App Home", c.home},
		{"the register form", c.registerForm},
		{"a restore test in the journal", c.journal},
		{"a clean stop and start", c.stopStart},
		{"delivery of what is owed", c.settle},
	}
	for _, s := range steps {
		err := s.fn()
		if err == nil {
			continue
		}
		if !errors.Is(err, errC04Exited) {
			t.Fatalf("%s (crash point %s armed, not reached yet): %v", s.name, c.point, err)
		}
		c.crashed(s.name)
		c.recovering = true
		c.start(false)
		if err := c.ready(); err != nil {
			t.Fatalf("after the restart: %v", err)
		}
		c.redeliver()
		if err := s.fn(); err != nil {
			t.Fatalf("%s, finished after the restart: %v", s.name, err)
		}
		c.check()
		return
	}
	t.Errorf("crash point %s was never reached by the flows", c.point)
}

// start runs the binary, armed (SECRETBOT_CRASH_AT) or not.
func (c *c04) start(armed bool) {
	extra := map[string]string{}
	if armed {
		extra["SECRETBOT_CRASH_AT"] = c.point
		if trace := os.Getenv("C04_TRACE"); trace != "" { // a developer's aid: which points the flows pass
			extra["SECRETBOT_CRASH_TRACE"] = trace
		}
	}
	c.p = startBinary(c.t, c.h, extra)
}

// crashed checks the bot died of SIGKILL at the armed point.
func (c *c04) crashed(during string) {
	t := c.t
	_, sig := c.p.wait(t, wait)
	out := c.p.out.String()
	if sig != syscall.SIGKILL || !strings.Contains(out, "crashpoint "+c.point+" reached") {
		t.Fatalf("during %s the bot exited (signal %v) but not at crash point %s:\n%s", during, sig, c.point, out)
	}
	c.reached = true
	t.Logf("killed at %s during %s", c.point, during)
}

// until polls cond every 50ms; errC04Exited when the bot exits first.
func (c *c04) until(what string, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		select {
		case <-c.p.done:
			return errC04Exited
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *c04) ready() error {
	err := c.until("ready", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + c.h.OpsAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err == nil && c.db == nil {
		c.db = openDB(c.t, c.h.DBPath)
	}
	return err
}

// redeliver sends again, as Slack does, the envelopes the dead bot never acked.
func (c *c04) redeliver() {
	for _, env := range c.sent {
		if _, _, err := c.h.Slack.WaitAck(env, 0); err != nil {
			if err := c.h.Slack.Redeliver(env); err != nil {
				c.t.Fatal(err)
			}
		}
	}
}

func (c *c04) command(who harness.Person, text string) string {
	env, url := c.h.Slack.SendSlashCommand(who.Slack, text)
	c.sent = append(c.sent, env)
	return url
}

func (c *c04) click(who harness.Person, m fakeslack.Message, actionID string) error {
	env, _, err := c.h.Slack.ClickButton(who.Slack, m, actionID)
	if err != nil {
		return err
	}
	c.sent = append(c.sent, env)
	return nil
}

// ---- the flows; each looks at the state first, so that after a restart
// it does only what a person would still have to do ----

type c04Grant struct {
	ID, Requester, Scope, State, Delivery, TokenAccessor, WrapAccessor, VaultGroup, Evidence string
	RevokePending                                                                            bool
	DeliveredAt                                                                              int64
}

func (c *c04) grants() []c04Grant {
	if c.db == nil {
		return nil
	}
	rows, err := c.db.Query(`SELECT id, requester, scope, state, delivery, token_accessor, wrap_accessor, vault_group,
		evidence, revoke_pending, delivered_at FROM grants ORDER BY created_at`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []c04Grant
	for rows.Next() {
		var g c04Grant
		var rp int
		if rows.Scan(&g.ID, &g.Requester, &g.Scope, &g.State, &g.Delivery, &g.TokenAccessor, &g.WrapAccessor,
			&g.VaultGroup, &g.Evidence, &rp, &g.DeliveredAt) != nil {
			return nil
		}
		g.RevokePending = rp != 0
		out = append(out, g)
	}
	return out
}

// grantOf is who's latest grant of scope (ok false when none).
func (c *c04) grantOf(who harness.Person, scope string) (c04Grant, bool) {
	var last c04Grant
	ok := false
	for _, g := range c.grants() {
		if g.Requester == who.Slack && g.Scope == scope {
			last, ok = g, true
		}
	}
	return last, ok
}

func (g c04Grant) checking() bool { return strings.Contains(g.Evidence, `"checking"`) }

// card is the approval card of grant id, with its buttons (as first seen:
// the decision takes them away).
func (c *c04) card(id string) (fakeslack.Message, bool) {
	if m, ok := c.cards[id]; ok {
		return m, true
	}
	for _, m := range c.h.Slack.Messages() {
		if fakeslack.InChannel(harness.SecurityChannel)(m) && strings.Contains(m.Text, id) &&
			slices.Contains(fakeslack.ActionIDs(m.Blocks), "grant_approve") {
			if c.cards == nil {
				c.cards = map[string]fakeslack.Message{}
			}
			c.cards[id] = m
			return m, true
		}
	}
	return fakeslack.Message{}, false
}

// request has who ask (again, if need be) until their grant of scope
// exists with its checks done. A request whose checks a crash cut short
// stays pending; its requester ends it and asks again.
func (c *c04) request(who harness.Person, scope, text string) (c04Grant, error) {
	for attempt := 0; attempt < 3; attempt++ {
		g, ok := c.grantOf(who, scope)
		switch {
		case !ok || g.State == "failed" || g.State == "revoked" && attempt > 0:
			c.command(who, text)
			err := c.until("the grant of "+scope+" stored with its checks done", wait, func() bool {
				n, ok := c.grantOf(who, scope)
				return ok && n.ID != g.ID && !n.checking()
			})
			if errors.Is(err, errC04Exited) {
				return c04Grant{}, err
			}
			if err == nil {
				g, _ = c.grantOf(who, scope)
				return g, nil
			}
		case g.State == "pending" && g.checking():
			// Cut short: wait for the checks a moment, then end it.
			if c.until("checks of "+g.ID, 2*time.Second, func() bool { n, _ := c.grantOf(who, scope); return !n.checking() }) == nil {
				continue
			}
			if err := c.revokeOnce(who, g.ID); err != nil {
				return c04Grant{}, err
			}
		default:
			return g, nil
		}
	}
	return c04Grant{}, fmt.Errorf("%s's request for %s could not be made", who.Name, scope)
}

func (c *c04) aliceRequest() error {
	g, err := c.request(harness.Alice, "platform-rw", c04Alice)
	if err != nil {
		return err
	}
	if g.State != "pending" {
		return nil
	}
	return c.until("the approval card of "+g.ID, wait, func() bool { _, ok := c.card(g.ID); return ok })
}

// approve has Bob approve Alice's request (again, if his click was lost)
// and waits for the grant's delivery.
func (c *c04) approve() error {
	g, ok := c.grantOf(harness.Alice, "platform-rw")
	if !ok {
		return errors.New("no request of Alice's to approve")
	}
	if g.State == "pending" {
		card, ok := c.card(g.ID)
		if !ok {
			if err := c.until("the approval card of "+g.ID, wait, func() bool { _, ok = c.card(g.ID); return ok }); err != nil {
				return err
			}
			card, _ = c.card(g.ID)
		}
		if err := c.click(harness.Bob, card, "grant_approve"); err != nil {
			return err
		}
		err := c.until("Bob's approval of "+g.ID, 5*time.Second, func() bool { n, _ := c.grantOf(harness.Alice, "platform-rw"); return n.State != "pending" })
		if err != nil {
			return err // a lost click is clicked again by the caller after a restart
		}
	}
	return c.delivered(harness.Alice, "platform-rw", "Log in to Vault as usual")
}

// delivered waits for who's grant of scope to be delivered (stored so, and
// the DM naming it posted) or to fail.
func (c *c04) delivered(who harness.Person, scope, dmText string) error {
	var g c04Grant
	err := c.until(who.Name+"'s "+scope+" grant delivered", wait, func() bool {
		g, _ = c.grantOf(who, scope)
		return g.State == "failed" || g.State == "issued" && g.DeliveredAt != 0
	})
	if err != nil || g.State == "failed" {
		return err
	}
	return c.until("the DM of "+g.ID, wait, func() bool { return len(c.dms(who, g.ID, dmText)) > 0 })
}

func (c *c04) dms(who harness.Person, subs ...string) []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range c.h.Slack.Messages() {
		if !fakeslack.InChannel(who.Slack)(m) {
			continue
		}
		all := true
		for _, s := range subs {
			all = all && strings.Contains(m.Text+string(m.Blocks), s)
		}
		if all {
			out = append(out, m)
		}
	}
	return out
}

func (c *c04) carolRequest() error {
	if _, err := c.request(harness.Carol, "platform-ro", c04Carol); err != nil {
		return err
	}
	return c.delivered(harness.Carol, "platform-ro", "vault unwrap")
}

// revokeOnce runs `revoke id` as who and waits for the answer.
func (c *c04) revokeOnce(who harness.Person, id string) error {
	url := c.command(who, "revoke "+id)
	return c.until("the answer to revoke "+id, wait, func() bool { return len(c.h.Slack.Responses(url)) > 0 })
}

// revoke has who end their grant of scope (again, if it is not ended yet).
func (c *c04) revoke(who harness.Person, scope string) error {
	g, ok := c.grantOf(who, scope)
	if !ok {
		return fmt.Errorf("%s has no %s grant to revoke", who.Name, scope)
	}
	for attempt := 0; g.State == "issued" && attempt < 3; attempt++ {
		if err := c.revokeOnce(who, g.ID); err != nil {
			return err
		}
		if err := c.until(g.ID+" revoked", 5*time.Second, func() bool { g, _ = c.grantOf(who, scope); return g.State != "issued" }); err != nil {
			if errors.Is(err, errC04Exited) {
				return err
			}
		}
	}
	if g.State == "issued" {
		return fmt.Errorf("%s's grant %s is still issued after three revokes", who.Name, g.ID)
	}
	return nil
}

type c04Rotation struct {
	ID, State, ThreadTS, LastError string
	From, To                       int
}

func (c *c04) rotation() (c04Rotation, bool) {
	var r c04Rotation
	err := c.db.QueryRow(`SELECT id, state, thread_ts, last_error, from_version, to_version FROM rotations
		WHERE secret = ? ORDER BY started_at DESC LIMIT 1`, harness.PaymentsDB).Scan(&r.ID, &r.State, &r.ThreadTS, &r.LastError, &r.From, &r.To)
	return r, err == nil
}

// threadButton is the rollout thread root of rotation id, once it offers actionID.
func (c *c04) threadButton(id, actionID string) (fakeslack.Message, error) {
	var root fakeslack.Message
	err := c.until("the "+actionID+" button of "+id, wait, func() bool {
		for _, m := range c.h.Slack.Messages() {
			if fakeslack.InChannel(harness.SecurityChannel)(m) && m.ThreadTS == "" && strings.Contains(m.Text, id) &&
				slices.Contains(fakeslack.ActionIDs(m.Blocks), actionID) {
				root = m
				return true
			}
		}
		return false
	})
	return root, err
}

// rotate runs the rotation of payments-db to completion: Alice starts it,
// Bob verifies staging, Sam production. A rotation a crash left without
// its new version recorded stays visibly pending (the bot fails it after
// two minutes): nothing more to do.
func (c *c04) rotate() error {
	for step := 0; step < 8; step++ {
		r, ok := c.rotation()
		switch {
		case !ok || r.State == "failed" && step > 0:
			url := c.command(harness.Alice, c04Rotate)
			if err := c.until("the rotation started", wait, func() bool {
				n, ok := c.rotation()
				return ok && n.ID != r.ID && n.To > 0 || len(c.h.Slack.Responses(url)) > 0 && !ok
			}); err != nil {
				return err
			}
			if _, ok := c.rotation(); !ok {
				return fmt.Errorf("the rotation was refused: %v", c.h.Slack.Responses(url))
			}
		case r.State == "staging" && r.To == 0:
			return nil
		case r.State == "staging":
			root, err := c.threadButton(r.ID, "rotation_staging")
			if err != nil {
				return err
			}
			if err := c.click(harness.Bob, root, "rotation_staging"); err != nil {
				return err
			}
			if err := c.until("staging verified", 5*time.Second, func() bool { n, _ := c.rotation(); return n.State != "staging" }); errors.Is(err, errC04Exited) {
				return err
			}
		case r.State == "production":
			root, err := c.threadButton(r.ID, "rotation_production")
			if err != nil {
				return err
			}
			if err := c.click(harness.Sam, root, "rotation_production"); err != nil {
				return err
			}
			if err := c.until("production verified", 5*time.Second, func() bool { n, _ := c.rotation(); return n.State != "production" }); errors.Is(err, errC04Exited) {
				return err
			}
		default: // completed, failed, rolled back
			return nil
		}
	}
	r, _ := c.rotation()
	return fmt.Errorf("the rotation did not finish: %+v", r)
}

// answered runs /secrets text as who and waits for its answer containing sub.
func (c *c04) answered(who harness.Person, text, sub string) error {
	url := c.command(who, text)
	return c.until("the answer to "+text, wait, func() bool {
		for _, r := range c.h.Slack.Responses(url) {
			if strings.Contains(r.Text, sub) {
				return true
			}
		}
		return false
	})
}

// refused: Eve may not ask for platform-rw; the refusal is only audited.
func (c *c04) refused() error {
	return c.answered(harness.Eve, c04Alice, "not a scope you may request")
}

// staleClick: Sam presses Approve on the card of Alice's decided request
// and is told so, ephemerally; the first attempt at that ephemeral fails
// (a Slack 500), so its retry is recorded and it is sent again.
func (c *c04) staleClick() error {
	g, ok := c.grantOf(harness.Alice, "platform-rw")
	if !ok {
		return errors.New("no grant of Alice's")
	}
	card, ok := c.card(g.ID)
	if !ok {
		return fmt.Errorf("no card for %s", g.ID)
	}
	seen := func() bool {
		for _, m := range c.h.Slack.Messages() {
			if m.Ephemeral && m.User == harness.Sam.Slack {
				return true
			}
		}
		return false
	}
	if seen() {
		return nil
	}
	c.h.Slack.SetFault("chat.postEphemeral", fault.Fault{Status: http.StatusInternalServerError, Times: 1})
	if err := c.click(harness.Sam, card, "grant_approve"); err != nil {
		return err
	}
	return c.until("the ephemeral answer to Sam's stale click", wait, seen)
}

func (c *c04) registerForm() error {
	env, _ := c.h.Slack.SendSlashCommand(harness.Alice.Slack, "register")
	c.sent = append(c.sent, env)
	return c.until("the register form opened", wait, func() bool {
		for _, v := range c.h.Slack.Views() {
			if v.Type == "modal" && v.User == harness.Alice.Slack {
				return true
			}
		}
		return false
	})
}

func (c *c04) journal() error {
	return c.answered(harness.Alice, `journal restore-test passed "restored the nightly snapshot to staging"`, "")
}

// stopStart stops the bot with SIGTERM (it posts its audit checkpoint on
// the way out) and starts it again, still armed.
func (c *c04) stopStart() error {
	if c.recovering {
		return nil // killed on the way out and started again: done
	}
	if err := c.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-c.p.done:
	case <-time.After(wait):
		return errors.New("the bot did not stop within 15s of SIGTERM")
	}
	if ws := c.p.cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
		return errC04Exited
	} else if ws.ExitStatus() != 0 {
		return fmt.Errorf("the bot exited %d after SIGTERM:\n%s", ws.ExitStatus(), c.p.out.String())
	}
	c.start(true)
	return c.ready()
}

func (c *c04) home() error {
	env, _ := c.h.Slack.OpenHome(harness.Alice.Slack)
	c.sent = append(c.sent, env)
	return c.until("Alice's App Home published", wait, func() bool { _, ok := c.h.Slack.HomeView(harness.Alice.Slack); return ok })
}

// settle waits until the bot owes nothing: no inbox entry pending or being
// worked, no outbox message due.
func (c *c04) settle() error {
	return c.until("the bot settled", wait, func() bool {
		var inbox, outbox int
		if c.db.QueryRow(`SELECT COUNT(*) FROM inbox WHERE state IN ('pending', 'working')`).Scan(&inbox) != nil ||
			c.db.QueryRow(`SELECT COUNT(*) FROM outbox WHERE state = 'pending'`).Scan(&outbox) != nil {
			return false
		}
		return inbox == 0 && outbox == 0
	})
}

// ---- the invariants ----

func (c *c04) check() {
	t := c.t
	// Every approved request ends delivered or failed: none left approved,
	// none issued without its delivery (the bot re-issues after the lease).
	var stuck []c04Grant
	if err := c.until("every approved grant delivered or failed", 30*time.Second, func() bool {
		stuck = nil
		for _, g := range c.grants() {
			if g.State == "approved" || g.State == "issued" && g.DeliveredAt == 0 {
				stuck = append(stuck, g)
			}
		}
		return len(stuck) == 0
	}); err != nil {
		t.Errorf("grants stuck after the restart: %+v (%v)", stuck, err)
	}
	gs := c.grants()
	live := map[string]c04Grant{} // token accessor -> live grant
	for _, g := range gs {
		if g.State == "issued" && g.TokenAccessor != "" {
			live[g.TokenAccessor] = g
		}
	}
	// Every revocation due done: ended grants hold nothing in Vault.
	if err := c.until("ended grants revoked in Vault", 20*time.Second, func() bool {
		for _, g := range c.grants() {
			if g.State == "issued" || g.State == "pending" || g.State == "approved" {
				continue
			}
			if g.TokenAccessor != "" && c.tap.alive(g.TokenAccessor) {
				return false
			}
			if g.VaultGroup != "" && c.groupExists(g.VaultGroup) {
				return false
			}
		}
		return true
	}); err != nil {
		t.Errorf("a grant that ended still has its token or group in Vault: %+v", c.grants())
	}
	// No live token without a live grant.
	slackText := c.slackText()
	for _, tok := range c.tap.issued() {
		if !c.tap.alive(tok.accessor) {
			continue
		}
		if g, ok := live[tok.accessor]; ok {
			// Delivered exactly once: one DM carries the live token's
			// wrapping token.
			if n := c.messagesWith(tok.wrapToken); n != 1 {
				t.Errorf("the wrapping token of live grant %s is in %d Slack messages, want exactly 1", g.ID, n)
			}
			continue
		}
		if c.messagesWith(tok.wrapToken) > 0 || strings.Contains(slackText, tok.wrapToken) {
			t.Errorf("token %s is alive without a live grant, and its wrapping token was sent in Slack", tok.accessor)
			continue
		}
		// Issued and never recorded (killed in between): its wrapping token
		// died with the process, so nobody can ever use it.
		c.orphans = append(c.orphans, c.point+":"+tok.accessor)
	}
	for acc, g := range live {
		if !c.tap.alive(acc) {
			t.Errorf("live grant %s's token is dead in Vault", g.ID)
		}
	}
	c.checkRotation()
	// The audit chain verifies.
	cmd := exec.Command(secretbotBinary(t), "audit", "verify", "--config", c.h.ConfigPath)
	for k, v := range c.h.Env() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("secretbot audit verify: %v\n%s", err, out)
	}
}

func (c *c04) groupExists(name string) bool {
	sec, err := c.h.Vault.Root.Logical().Read("identity/group/name/" + name)
	return err != nil || sec != nil
}

// messagesWith counts the Slack messages whose text or blocks hold s.
func (c *c04) messagesWith(s string) int {
	n := 0
	for _, m := range c.h.Slack.Messages() {
		if strings.Contains(m.Text+string(m.Blocks), s) {
			n++
		}
	}
	return n
}

// slackText is every message, response and Web API call the fake Slack saw.
func (c *c04) slackText() string {
	var b strings.Builder
	for _, m := range c.h.Slack.Messages() {
		fmt.Fprintf(&b, "%s %s\n", m.Text, m.Blocks)
	}
	for _, r := range c.h.Slack.Responses("") {
		fmt.Fprintf(&b, "%s\n", r.Raw)
	}
	return b.String()
}

// checkRotation: the rotation is completed with the registry and Vault
// agreeing, or visibly pending in the store, or Vault was not changed.
func (c *c04) checkRotation() {
	t := c.t
	meta, err := c.h.Vault.Root.KVv2(harness.KVMount).GetMetadata(t.Context(), c.kvPath)
	if err != nil {
		t.Fatalf("read the metadata of %s: %v", c.kvPath, err)
	}
	cur := meta.CurrentVersion
	var lastVersion int
	if err := c.db.QueryRow(`SELECT last_version FROM secrets WHERE name = ?`, harness.PaymentsDB).Scan(&lastVersion); err != nil {
		t.Errorf("payments-db is not in the registry: %v", err)
		return
	}
	r, ok := c.rotation()
	switch {
	case !ok || r.State == "failed" && r.To == 0 && !strings.Contains(r.LastError, "Vault is now at version"):
		if cur != 1 {
			t.Errorf("Vault holds version %d of %s with no rotation recorded (rotation %+v)", cur, c.kvPath, r)
		}
	case r.State == "staging" || r.State == "production":
		// Visibly in progress: the rotation is stored, and a new rotation of
		// the secret is refused while it is.
		if r.To != 0 && cur != r.To {
			t.Errorf("rotation %+v is in progress but Vault is at version %d", r, cur)
		}
	case r.State == "completed":
		if cur != r.To || lastVersion != r.To {
			t.Errorf("rotation %s completed to version %d, but Vault is at %d and the registry at %d", r.ID, r.To, cur, lastVersion)
		}
		if v, ok := meta.Versions[fmt.Sprint(r.From)]; !ok || !v.Destroyed {
			t.Errorf("rotation %s completed but version %d of %s is not destroyed", r.ID, r.From, c.kvPath)
		}
	case r.State == "failed":
		// Failed after Vault moved: the failure says so, and names the version.
	default:
		t.Errorf("rotation in unexpected state %+v", r)
	}
}

// ---- a proxy in front of Vault that records every token Vault hands the bot ----

type c04Token struct{ wrapToken, accessor string }

type c04Tap struct {
	srv    *httptest.Server
	caPath string
	root   func(accessor string) bool

	mu     sync.Mutex
	tokens []c04Token
}

func newC04Tap(t *testing.T, v *vaulttest.Vault) *c04Tap {
	t.Helper()
	target, err := url.Parse(v.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(v.CACertPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tap := &c04Tap{root: func(accessor string) bool {
		_, err := v.Root.Auth().Token().LookupAccessor(accessor)
		return err == nil
	}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	rp.ModifyResponse = func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		var r struct {
			WrapInfo *struct {
				Token           string `json:"token"`
				WrappedAccessor string `json:"wrapped_accessor"`
			} `json:"wrap_info"`
		}
		if json.Unmarshal(body, &r) == nil && r.WrapInfo != nil && r.WrapInfo.WrappedAccessor != "" {
			tap.mu.Lock()
			tap.tokens = append(tap.tokens, c04Token{wrapToken: r.WrapInfo.Token, accessor: r.WrapInfo.WrappedAccessor})
			tap.mu.Unlock()
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil
	}
	rp.ErrorHandler = func(http.ResponseWriter, *http.Request, error) { panic(http.ErrAbortHandler) }
	tap.srv = httptest.NewUnstartedServer(rp)
	tap.srv.Config.ErrorLog = discardLog
	tap.srv.StartTLS()
	t.Cleanup(tap.srv.Close)
	tap.caPath = filepath.Join(t.TempDir(), "tap-ca.pem")
	if err := os.WriteFile(tap.caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tap.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tap
}

func (tap *c04Tap) issued() []c04Token {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return slices.Clone(tap.tokens)
}

func (tap *c04Tap) alive(accessor string) bool { return tap.root(accessor) }
