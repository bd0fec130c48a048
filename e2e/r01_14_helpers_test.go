package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
	"github.com/secretbot/secretbot/internal/rotation"
)

// Helpers of the rotation scenarios R01–R14 (issue 4).
//
// Every scenario starts with startR: the A-scenarios' world (startA: the
// Vault tap, the capture at the end) with the inventory, rotation and
// schedule sections of harness.WithRotation, each configured secret
// written to Vault by root first (so the registry has a version to read),
// and a second proxy, vaultHook, between the bot and the tap. vaultHook
// records every Vault request the bot makes (method, path, status, and the
// check-and-set of KV writes) and can run a test's function after Vault
// answered a request and before the bot sees the answer: R05 uses it to
// write the secret as root between the bot's read and its write.
//
// The product has no injected clock. The cadences (R08–R11) are driven
// through the configuration (schedule.daily_at 00:00, so today's daily run
// is due at any time of day, or 23:59, so it is not yet and the start runs
// yesterday's; review_day and restore_test_months chosen so this month's
// review and restore test are due), short rotation intervals (a secret
// whose interval is 15s is due soon at once and overdue 15 seconds later),
// restarts (the scheduler ticks on start), and the
// cursors in the store's meta table (internal/schedule's KeyDaily,
// KeyReview, KeyRestoreTest), which a test sets before the first start
// (prepareStore: the database as an earlier run left it) or moves back
// while the bot is stopped, to stand for "the bot was down over the
// reminder time" or "the review day came". A cursor is never moved back to
// a period that was already run: the bot's dedup keys carry the period, so
// a period run twice would rightly post nothing the second time.

// rworld is one rotation scenario's world.
type rworld struct {
	*world
	hook *vaultHook
	// initial holds the value root wrote to each configured secret's path
	// before the bot started (version 1).
	initial map[string]string
	secrets []harness.InventorySecret
}

// startR starts a rotation scenario: rot's configuration (plus opts.EditConfig),
// each configured secret written to Vault as version 1, and the bot behind
// vaultHook. With opts.NoRun the bot is not started.
func startR(t *testing.T, id string, rot harness.Rotation, opts harness.Options) *rworld {
	t.Helper()
	edit := opts.EditConfig
	opts.EditConfig = func(doc map[string]any) {
		harness.WithRotation(rot)(doc)
		if edit != nil {
			edit(doc)
		}
	}
	noRun := opts.NoRun
	opts.NoRun = true
	w := startA(t, id, opts)
	r := &rworld{world: w, hook: newVaultHook(t, w.tap), initial: map[string]string{}, secrets: rot.Secrets}
	if len(r.secrets) == 0 && !rot.NoSecrets {
		r.secrets = []harness.InventorySecret{harness.PaymentsDBSecret(), harness.StripeKeySecret()}
	}
	for _, s := range r.secrets {
		v := "initial-" + s.Name + "-" + randToken(8)
		if got := r.kvPut(s.Path, v); got != 1 {
			t.Fatalf("seeding %s: version %d, want 1", s, got)
		}
		r.initial[s.Name] = v
	}
	w.SetEnv("VAULT_ADDR", r.hook.srv.URL)
	w.SetEnv("VAULT_CACERT", r.hook.caPath)
	if !noRun {
		w.StartBot()
		if err := w.WaitReady(); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func randToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- vaultHook ----

// vaultReq is one Vault request the bot made.
type vaultReq struct {
	Method, Path string
	Status       int
	// CAS is the check-and-set of a KV v2 write (options.cas), -1 when none.
	CAS int
}

// vaultHook is a TLS proxy between the bot and the vaultTap that records
// the bot's Vault requests and runs after (when set) once Vault answered a
// request and before the bot gets the answer.
type vaultHook struct {
	srv    *httptest.Server
	caPath string

	mu    sync.Mutex
	reqs  []vaultReq
	after func(method, path string)
}

func newVaultHook(t *testing.T, tap *vaultTap) *vaultHook {
	t.Helper()
	target, err := url.Parse(tap.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(tap.srv.Certificate())
	hk := &vaultHook{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	rp.ModifyResponse = func(resp *http.Response) error {
		req := resp.Request
		hk.mu.Lock()
		cas := -1
		if req != nil {
			if v, ok := req.Context().Value(casKey{}).(int); ok {
				cas = v
			}
		}
		hk.reqs = append(hk.reqs, vaultReq{Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode, CAS: cas})
		after := hk.after
		hk.mu.Unlock()
		if after != nil {
			after(req.Method, req.URL.Path)
		}
		return nil
	}
	rp.ErrorHandler = func(http.ResponseWriter, *http.Request, error) { panic(http.ErrAbortHandler) }
	inner := rp
	hk.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		// Read the check-and-set of a KV write (the body goes on unchanged).
		if strings.Contains(r.URL.Path, "/data/") && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			r.Body = io.NopCloser(bytes.NewReader(body))
			var b struct {
				Options struct {
					CAS *int `json:"cas"`
				} `json:"options"`
			}
			if json.Unmarshal(body, &b) == nil && b.Options.CAS != nil {
				r = r.WithContext(context.WithValue(r.Context(), casKey{}, *b.Options.CAS))
			}
		}
		inner.ServeHTTP(rw, r)
	}))
	hk.srv.Config.ErrorLog = discardLog
	hk.srv.StartTLS()
	t.Cleanup(hk.srv.Close)
	hk.caPath = filepath.Join(t.TempDir(), "hook-ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hk.srv.Certificate().Raw})
	if err := os.WriteFile(hk.caPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return hk
}

type casKey struct{}

// setAfter installs (or, with nil, removes) the after function.
func (v *vaultHook) setAfter(fn func(method, path string)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.after = fn
}

// requests returns the requests so far whose path contains sub.
func (v *vaultHook) requests(sub string) []vaultReq {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []vaultReq
	for _, r := range v.reqs {
		if strings.Contains(r.Path, sub) {
			out = append(out, r)
		}
	}
	return out
}

// kvWrites returns the bot's KV v2 writes to path that Vault accepted or refused.
func (v *vaultHook) kvWrites(path string) []vaultReq {
	var out []vaultReq
	for _, r := range v.requests("/v1/" + harness.KVMount + "/data/" + path) {
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			out = append(out, r)
		}
	}
	return out
}

// ---- Vault, read as root ----

// kvState is a KV v2 secret's metadata.
type kvState struct {
	Current  int
	Custom   map[string]string
	Versions map[int]api.KVVersionMetadata
}

func (w *rworld) kvClient() *api.KVv2 { return w.Vault.Root.KVv2(harness.KVMount) }

// kv reads the secret's metadata at path as root.
func (w *rworld) kv(path string) kvState {
	w.t.Helper()
	md, err := w.kvClient().GetMetadata(context.Background(), path)
	if err != nil {
		w.t.Fatalf("read the metadata of %s/%s as root: %v", harness.KVMount, path, err)
	}
	st := kvState{Current: md.CurrentVersion, Custom: map[string]string{}, Versions: map[int]api.KVVersionMetadata{}}
	for k, v := range md.CustomMetadata {
		st.Custom[k] = fmt.Sprint(v)
	}
	for k, v := range md.Versions {
		n, err := strconv.Atoi(k)
		if err != nil {
			w.t.Fatalf("version key %q", k)
		}
		st.Versions[n] = v
	}
	return st
}

// kvExists reports whether anything exists at path.
func (w *rworld) kvExists(path string) bool {
	_, err := w.kvClient().GetMetadata(context.Background(), path)
	return err == nil
}

// kvValue reads data["value"] of a version (0: the current one) as root;
// ok is false when the version is deleted or destroyed.
func (w *rworld) kvValue(path string, version int) (string, bool) {
	w.t.Helper()
	var s *api.KVSecret
	var err error
	if version == 0 {
		s, err = w.kvClient().Get(context.Background(), path)
	} else {
		s, err = w.kvClient().GetVersion(context.Background(), path, version)
	}
	if err != nil && !errors.Is(err, api.ErrSecretNotFound) {
		w.t.Fatalf("read %s/%s version %d as root: %v", harness.KVMount, path, version, err)
	}
	if s == nil || s.Data == nil {
		return "", false
	}
	v, _ := s.Data["value"].(string)
	return v, true
}

// kvPut writes {"value": value} at path as root and returns the version.
func (w *rworld) kvPut(path, value string) int {
	w.t.Helper()
	s, err := w.kvClient().Put(context.Background(), path, map[string]any{"value": value})
	if err != nil {
		w.t.Fatalf("write %s/%s as root: %v", harness.KVMount, path, err)
	}
	return s.VersionMetadata.Version
}

// ---- the store, read as an auditor ----

func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// secretRow is a stored registry entry.
type secretRow struct {
	Name, Environment, Team, Contact, Mount, Path string
	Interval                                      time.Duration
	Provided                                      bool
	LastRotatedAt                                 time.Time
	LastOperator, LastTicket                      string
	LastVersion                                   int
	Source                                        string
	CreatedAt                                     time.Time
}

// due is the registry's due date, as the issue defines it: last rotation
// (or registration) plus the interval.
func (s secretRow) due() time.Time {
	from := s.LastRotatedAt
	if from.IsZero() {
		from = s.CreatedAt
	}
	return from.Add(s.Interval)
}

func (w *rworld) db() *sql.DB { return openDB(w.t, w.DBPath) }

func (w *rworld) secretRows() []secretRow {
	w.t.Helper()
	rows, err := w.db().Query(`SELECT name, environment, owner_team, owner_contact, mount, path, interval_ns, provided,
		last_rotated_at, last_operator, last_ticket, last_version, source, created_at FROM secrets ORDER BY name`)
	if err != nil {
		w.t.Fatalf("read secrets: %v", err)
	}
	defer rows.Close()
	var out []secretRow
	for rows.Next() {
		var s secretRow
		var interval, rotated, created int64
		var provided int
		if err := rows.Scan(&s.Name, &s.Environment, &s.Team, &s.Contact, &s.Mount, &s.Path, &interval, &provided,
			&rotated, &s.LastOperator, &s.LastTicket, &s.LastVersion, &s.Source, &created); err != nil {
			w.t.Fatal(err)
		}
		s.Interval, s.Provided = time.Duration(interval), provided != 0
		s.LastRotatedAt, s.CreatedAt = nsTime(rotated), nsTime(created)
		out = append(out, s)
	}
	return out
}

// secretRow returns the stored entry name; ok false when there is none.
func (w *rworld) secretRow(name string) (secretRow, bool) {
	w.t.Helper()
	for _, s := range w.secretRows() {
		if s.Name == name {
			return s, true
		}
	}
	return secretRow{}, false
}

// rotationRow is a stored rotation.
type rotationRow struct {
	ID, Secret, Operator, Ticket, Incident, Commander string
	Emergency                                         bool
	State                                             string
	From, To                                          int
	ThreadChannel, ThreadTS                           string
	StagingBy, ProductionBy, RolledBackBy             string
	StagingAt, ProductionAt                           time.Time
	RollbackVersion                                   int
	Flagged                                           bool
	LastError                                         string
	StartedAt, CompletedAt                            time.Time
}

func (w *rworld) rotations() []rotationRow {
	w.t.Helper()
	rows, err := w.db().Query(`SELECT id, secret, operator, ticket, incident, commander, emergency, state, from_version,
		to_version, thread_channel, thread_ts, staging_by, staging_at, production_by, production_at, rolled_back_by,
		rollback_version, flagged, last_error, started_at, completed_at FROM rotations ORDER BY started_at`)
	if err != nil {
		w.t.Fatalf("read rotations: %v", err)
	}
	defer rows.Close()
	var out []rotationRow
	for rows.Next() {
		var r rotationRow
		var emergency, flagged int
		var stagingAt, productionAt, started, completed int64
		if err := rows.Scan(&r.ID, &r.Secret, &r.Operator, &r.Ticket, &r.Incident, &r.Commander, &emergency, &r.State,
			&r.From, &r.To, &r.ThreadChannel, &r.ThreadTS, &r.StagingBy, &stagingAt, &r.ProductionBy, &productionAt,
			&r.RolledBackBy, &r.RollbackVersion, &flagged, &r.LastError, &started, &completed); err != nil {
			w.t.Fatal(err)
		}
		r.Emergency, r.Flagged = emergency != 0, flagged != 0
		r.StagingAt, r.ProductionAt, r.StartedAt, r.CompletedAt = nsTime(stagingAt), nsTime(productionAt), nsTime(started), nsTime(completed)
		out = append(out, r)
	}
	return out
}

// waitRotation polls the rotations of secret until cond holds for the
// latest one, and returns it.
func (w *rworld) waitRotation(secret, what string, cond func(rotationRow) bool) rotationRow {
	w.t.Helper()
	var got rotationRow
	if !until(wait, func() bool {
		var last *rotationRow
		for _, r := range w.rotations() {
			if r.Secret == secret {
				last = &r
			}
		}
		if last == nil {
			return false
		}
		got = *last
		return cond(got)
	}) {
		w.t.Fatalf("the rotation of %s is not %s within %v; stored: %+v", secret, what, wait, got)
	}
	return got
}

// journalRow is a stored journal entry.
type journalRow struct {
	ID, Kind, Outcome, Notes, Author, Rotation string
	At                                         time.Time
	Fields                                     map[string]string
}

func (w *rworld) journal(kind string) []journalRow {
	w.t.Helper()
	rows, err := w.db().Query(`SELECT id, kind, outcome, notes, author, rotation, at, fields FROM journal ORDER BY at`)
	if err != nil {
		w.t.Fatalf("read the journal: %v", err)
	}
	defer rows.Close()
	var out []journalRow
	for rows.Next() {
		var j journalRow
		var at int64
		var fields string
		if err := rows.Scan(&j.ID, &j.Kind, &j.Outcome, &j.Notes, &j.Author, &j.Rotation, &at, &fields); err != nil {
			w.t.Fatal(err)
		}
		j.At = nsTime(at)
		_ = json.Unmarshal([]byte(fields), &j.Fields)
		if kind == "" || j.Kind == kind {
			out = append(out, j)
		}
	}
	return out
}

// metaGet reads a meta value (a cadence cursor).
func (w *rworld) metaGet(key string) (string, bool) {
	w.t.Helper()
	var v string
	err := w.db().QueryRow(`SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false
	}
	if err != nil {
		w.t.Fatalf("read meta %s: %v", key, err)
	}
	return v, true
}

// metaSet sets a meta value; the bot must be stopped.
func (w *rworld) metaSet(key, value string) {
	w.t.Helper()
	if _, err := w.db().Exec(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		key, value); err != nil {
		w.t.Fatalf("set meta %s: %v", key, err)
	}
}

// secretEvents returns the audit events with action about secret name.
func (w *rworld) secretEvents(action, name string) []storedEvent {
	w.t.Helper()
	var out []storedEvent
	for _, e := range w.events() {
		if e.action == action && (name == "" || e.secret == name) {
			out = append(out, e)
		}
	}
	return out
}

// waitSecretEvent polls for an audit event with action about secret name.
func (w *rworld) waitSecretEvent(action, name string) storedEvent {
	w.t.Helper()
	var got storedEvent
	if !until(wait, func() bool {
		es := w.secretEvents(action, name)
		if len(es) > 0 {
			got = es[0]
		}
		return len(es) > 0
	}) {
		w.t.Fatalf("no audit event %s about %q within %v", action, name, wait)
	}
	return got
}

// ---- Slack ----

// reply sends /secrets text as who and waits for its answer containing
// every one of subs.
func (w *rworld) reply(who harness.Person, text string, subs ...string) fakeslack.Response {
	w.t.Helper()
	url := w.ask(who, text)
	r, err := w.Slack.WaitResponse(url, wait, func(r fakeslack.Response) bool {
		for _, s := range subs {
			if !strings.Contains(r.Text+string(r.Blocks), s) {
				return false
			}
		}
		return true
	})
	if err != nil {
		var got []string
		for _, r := range w.Slack.Responses(url) {
			got = append(got, r.Text)
		}
		w.t.Fatalf("/secrets %s: no answer containing %q: %v; answers:\n%s", text, subs, err, strings.Join(got, "\n---\n"))
	}
	return r
}

// inSecurity lists the security channel's messages (top level and
// replies) containing every one of subs.
func (w *rworld) inSecurity(subs ...string) []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range w.Slack.Messages() {
		if !fakeslack.InChannel(harness.SecurityChannel)(m) || m.Ephemeral {
			continue
		}
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(m.Text+string(m.Blocks), s)
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// waitSecurity waits for a security-channel message containing every one of subs.
func (w *rworld) waitSecurity(what string, subs ...string) fakeslack.Message {
	w.t.Helper()
	var got fakeslack.Message
	if !until(wait, func() bool {
		ms := w.inSecurity(subs...)
		if len(ms) > 0 {
			got = ms[0]
		}
		return len(ms) > 0
	}) {
		var all []string
		for _, m := range w.inSecurity() {
			all = append(all, m.Text)
		}
		w.t.Fatalf("no %s in %s containing %q within %v; the channel:\n%s", what, harness.SecurityChannel, subs, wait,
			strings.Join(all, "\n---\n"))
	}
	return got
}

// threadRoot waits for rotation id's thread root to carry button actionID,
// and returns it as it is now.
func (w *rworld) threadRoot(id, actionID string) fakeslack.Message {
	w.t.Helper()
	var got fakeslack.Message
	if !until(wait, func() bool {
		for _, m := range w.inSecurity(id) {
			if m.ThreadTS == "" && slices.Contains(fakeslack.ActionIDs(m.Blocks), actionID) {
				got = m
				return true
			}
		}
		return false
	}) {
		var all []string
		for _, m := range w.inSecurity(id) {
			all = append(all, fmt.Sprintf("%s %v", m.Text, fakeslack.ActionIDs(m.Blocks)))
		}
		w.t.Fatalf("the thread root of %s has no %s button within %v; messages naming it:\n%s", id, actionID, wait,
			strings.Join(all, "\n---\n"))
	}
	return got
}

// startRotation has who run `/secrets rotate <args>` for a generated secret
// and returns the rotation once its new version is recorded and its
// thread root posted.
func (w *rworld) startRotation(who harness.Person, secret, args string) (rotationRow, fakeslack.Message) {
	w.t.Helper()
	w.reply(who, "rotate "+secret+" "+args, "Rotation of `"+secret+"` started")
	r := w.waitRotation(secret, "recorded with its thread", func(r rotationRow) bool { return r.To > 0 && r.ThreadTS != "" })
	return r, w.threadRoot(r.ID, "rotation_staging")
}

// confirm has who press actionID on rotation id's thread root (waiting for
// the button to be there).
func (w *rworld) confirm(who harness.Person, id, actionID string) {
	w.t.Helper()
	w.click(who, w.threadRoot(id, actionID), actionID)
}

// modal waits for a modal with callbackID opened for who.
func (w *rworld) modal(who harness.Person, callbackID string) fakeslack.View {
	w.t.Helper()
	v, err := w.Slack.WaitView(func(v fakeslack.View) bool {
		return v.CallbackID == callbackID && v.User == who.Slack
	}, wait)
	if err != nil {
		w.t.Fatalf("no %s modal for %s: %v", callbackID, who.Name, err)
	}
	return v
}

// submit submits v as who with values (block id = action id = key) and
// returns the ack.
func (w *rworld) submit(who harness.Person, v fakeslack.View, values map[string]string) modalAck {
	w.t.Helper()
	_, a := w.submitEnv(who, v, values)
	return a
}

// submitEnv is submit, also returning the submission's envelope id.
func (w *rworld) submitEnv(who harness.Person, v fakeslack.View, values map[string]string) (string, modalAck) {
	w.t.Helper()
	vals := map[string]map[string]string{}
	for k, val := range values {
		vals[k] = map[string]string{k: val}
	}
	env := w.Slack.SubmitView(who.Slack, v, vals)
	raw, latency, err := w.Slack.WaitAck(env, wait)
	if err != nil {
		w.t.Fatalf("the %s submission was not acked: %v", v.CallbackID, err)
	}
	if latency > ackLimit {
		w.t.Errorf("the %s submission was acked after %v", v.CallbackID, latency)
	}
	var a modalAck
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a); err != nil {
			w.t.Fatalf("ack payload %s: %v", raw, err)
		}
	}
	return env, a
}

// checkMetadata asserts the KV custom_metadata at path mirrors the stored
// registry entry name, field by field.
func (w *rworld) checkMetadata(name string) {
	w.t.Helper()
	s, ok := w.secretRow(name)
	if !ok {
		w.t.Fatalf("%s is not in the registry", name)
	}
	rotated := ""
	if !s.LastRotatedAt.IsZero() {
		rotated = s.LastRotatedAt.Format(time.RFC3339)
	}
	want := map[string]string{
		"owner_team":      s.Team,
		"owner_contact":   s.Contact,
		"environment":     s.Environment,
		"interval":        days(s.Interval),
		"last_rotated_at": rotated,
		"last_operator":   s.LastOperator,
		"last_ticket":     s.LastTicket,
		"rotation_due":    s.due().Format(time.RFC3339),
	}
	for k, v := range want {
		if v == "" {
			want[k] = rotation.MetaNone // Vault refuses empty values: "not known yet"
		}
	}
	var got map[string]string
	if !until(wait, func() bool {
		got = w.kv(s.Path).Custom
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}) {
		for k, v := range want {
			if got[k] != v {
				w.t.Errorf("%s: custom_metadata %s = %q, the registry says %q", name, k, got[k], v)
			}
		}
	}
}

// days renders an interval as the configuration writes it ("90d", "20s").
func days(d time.Duration) string {
	const day = 24 * time.Hour
	if d > 0 && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}

// dayOf is t's UTC date as the inventory prints it.
func dayOf(t time.Time) string { return t.UTC().Format("2006-01-02") }

// everything gathers, by place, every text the scenario left outside
// Vault: the bot's output, every Slack message, response, view, Web API
// call, file and ack (of the envelopes in acksOf), every Jira and
// PagerDuty request and comment, and the database (each table's rows, and
// the raw bytes of its files, freed pages and WAL included).
func (w *rworld) everything(acksOf ...string) map[string]string {
	w.t.Helper()
	texts := map[string]string{"bot output": w.Output()}
	for i, m := range w.Slack.Messages() {
		texts[fmt.Sprintf("Slack message %d (%s)", i, m.Channel)] = fmt.Sprintf("%s %s %s", m.Channel, m.Text, m.Blocks)
	}
	var b strings.Builder
	for _, r := range w.Slack.Responses("") {
		fmt.Fprintf(&b, "%s %s\n", r.URL, r.Raw)
	}
	texts["Slack responses"] = b.String()
	b.Reset()
	for _, c := range w.Slack.Calls() {
		form, _ := json.Marshal(c.Form)
		body, _ := json.Marshal(c.JSON)
		fmt.Fprintf(&b, "%s %s %s\n", c.Method, form, body)
	}
	texts["Slack Web API calls"] = b.String()
	b.Reset()
	for _, v := range w.Slack.Views() {
		raw, _ := json.Marshal(v.Raw)
		fmt.Fprintf(&b, "%s %s %s\n", v.ID, v.Blocks, raw)
	}
	for _, u := range []harness.Person{harness.Alice, harness.Bob, harness.Sam, harness.Carol, harness.Dave, harness.Eve, harness.Paula} {
		if v, ok := w.Slack.HomeView(u.Slack); ok {
			raw, _ := json.Marshal(v.Raw)
			fmt.Fprintf(&b, "home %s %s\n", u.Slack, raw)
		}
	}
	texts["Slack views"] = b.String()
	b.Reset()
	for _, f := range w.Slack.AllFiles() {
		fmt.Fprintf(&b, "%s %s %s %s\n", f.Name, f.Title, f.Comment, f.Data)
	}
	texts["Slack files"] = b.String()
	b.Reset()
	for _, env := range acksOf {
		for _, a := range w.Slack.Acks(env) {
			fmt.Fprintf(&b, "%s %s\n", env, a.Payload)
		}
	}
	texts["Socket Mode acks"] = b.String()
	b.Reset()
	for _, c := range w.Jira.Calls() {
		fmt.Fprintf(&b, "%s %s %s %s\n", c.Method, c.Path, c.Query.Encode(), c.Body)
	}
	for _, c := range w.Jira.Comments("") {
		fmt.Fprintf(&b, "comment %s %s\n", c.Issue, c.Body)
	}
	texts["Jira"] = b.String()
	b.Reset()
	for _, c := range w.PD.Calls() {
		fmt.Fprintf(&b, "%s %s %s\n", c.Method, c.Path, c.Query.Encode())
	}
	texts["PagerDuty"] = b.String()
	for k, v := range dumpTables(w.t, w.DBPath) {
		texts["database "+k] = v
	}
	return texts
}

// prepareStore creates the database the way `secretbot check` does (every
// migration, nothing run) and sets meta values in it, as an earlier run of
// the bot would have left them (cadence cursors). The bot must not be
// running yet.
func (w *rworld) prepareStore(meta map[string]string) {
	w.t.Helper()
	if _, errOut, _ := w.RunCLI("check"); !fileExists(w.DBPath) {
		w.t.Fatalf("secretbot check did not create the database at %s:\n%s", w.DBPath, errOut)
	}
	for k, v := range meta {
		w.metaSet(k, v)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// start starts the bot and waits until it is ready.
func (w *rworld) start() {
	w.t.Helper()
	w.StartBot()
	if err := w.WaitReady(); err != nil {
		w.t.Fatal(err)
	}
}

// stop stops the bot, which must stop cleanly.
func (w *rworld) stop() {
	w.t.Helper()
	if err := w.Stop(); err != nil {
		w.t.Fatalf("the bot did not stop cleanly: %v", err)
	}
}

// button is an interactive element of a message, with the block it sits in.
type button struct {
	ActionID, Value string
	Block           json.RawMessage
}

// buttons lists the buttons of a message's blocks (section accessories and
// actions elements).
func buttons(t *testing.T, blocks json.RawMessage) []button {
	t.Helper()
	var bs []json.RawMessage
	if err := json.Unmarshal(blocks, &bs); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	type el struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	}
	var out []button
	for _, raw := range bs {
		var b struct {
			Accessory *el  `json:"accessory"`
			Elements  []el `json:"elements"`
		}
		_ = json.Unmarshal(raw, &b)
		if b.Accessory != nil && b.Accessory.ActionID != "" {
			out = append(out, button{ActionID: b.Accessory.ActionID, Value: b.Accessory.Value, Block: raw})
		}
		for _, e := range b.Elements {
			if e.ActionID != "" {
				out = append(out, button{ActionID: e.ActionID, Value: e.Value, Block: raw})
			}
		}
	}
	return out
}

// clickValue has who press the button actionID whose value is value in m.
func (w *rworld) clickValue(who harness.Person, m fakeslack.Message, actionID, value string) {
	w.t.Helper()
	for _, b := range buttons(w.t, m.Blocks) {
		if b.ActionID == actionID && b.Value == value {
			one := m
			one.Blocks = json.RawMessage("[" + string(b.Block) + "]")
			w.click(who, one, actionID)
			return
		}
	}
	w.t.Fatalf("no %s button with value %q in: %s", actionID, value, m.Text)
}

// dms lists the direct messages to who containing every one of subs.
func (w *rworld) dms(who harness.Person, subs ...string) []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range w.Slack.Messages() {
		if m.Ephemeral || !fakeslack.InChannel(who.Slack)(m) {
			continue
		}
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(m.Text+string(m.Blocks), s)
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// request has who ask for scope (on-call evidence with the open incident)
// and returns the grant id once it is issued.
func (w *rworld) request(who harness.Person, scope string) string {
	w.t.Helper()
	r := w.responseWith(w.ask(who, "request "+scope+" --ttl 2h --incident "+harness.OpenIncident), sayAutoOK, sayRefused)
	if !strings.Contains(r.Text, sayAutoOK) {
		w.t.Fatalf("%s's request for %s was not approved automatically:\n%s", who.Name, scope, r.Text)
	}
	id := grantID(w.t, r.Text)
	w.waitGrant(id, wait, "issued", func(g grantRow) bool { return g.State == "issued" && g.TokenAccessor != "" })
	return id
}

// msgText is a message's text and every string in its blocks, decoded (the
// blocks' JSON escapes <, > and &).
func msgText(m fakeslack.Message) string {
	var b strings.Builder
	b.WriteString(m.Text)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			b.WriteString("\n" + x)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	var blocks any
	if json.Unmarshal(m.Blocks, &blocks) == nil {
		walk(blocks)
	}
	return b.String()
}
