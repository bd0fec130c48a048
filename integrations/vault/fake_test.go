package vault

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/config"
)

// Fake credentials, shaped like the real ones so scrubbing is exercised.
const (
	testBotToken = "hvs.TESTbottoken0000000000000001"
	testRoleID   = "role-test-0000-1111"
	testSecretID = "secret-test-id-0001"
)

// fakeVault speaks the JSON shapes of Vault's HTTP API for the endpoints the
// package calls (checked against Vault 1.21's token store and sys backend).
type fakeVault struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	tokens    map[string]*fakeToken // by token
	accessors map[string]*fakeToken // by accessor
	seq       int
	reqs      []fakeReq
	logins    int

	sealed         bool
	loginTTL       int // seconds, AppRole tokens
	loginRenewable bool
	botPolicies    []string
	caps           map[string][]string // capabilities of the bot's tokens, by path
	role           map[string]any      // auth/token/roles/secretbot, nil = absent
	kvMount        map[string]any      // sys/internal/ui/mounts/kv, nil = 403
	ignoreWrap     bool                // answer token creation unwrapped
	renewTTL       int                 // when > 0, renew-self grants only this many seconds
	status         map[string]int      // forced status by path (after /v1/)
	statusMsg      map[string]string
	ident          *fakeIdentity // sys/auth and identity/*; see groups_test.go
}

type fakeToken struct {
	token, accessor string
	policies        []string
	ttl             int
	renewable       bool
	orphan          bool
	role            string
	meta            map[string]string
	displayName     string
	numUses         int
	created         time.Time
}

type fakeReq struct {
	Method, Path, Token, Namespace, WrapTTL string
	Body                                    map[string]any
}

// allCaps is what deploy/vault/secretbot-bot.hcl grants, probed on the
// check paths.
func allCaps() map[string][]string {
	return map[string][]string{
		"sys/capabilities-self":               {"update"},
		"auth/token/lookup-self":              {"read"},
		"auth/token/renew-self":               {"update"},
		"auth/token/create/secretbot":         {"update"},
		"auth/token/revoke-accessor":          {"update"},
		"auth/token/lookup-accessor":          {"update"},
		"auth/token/roles/secretbot":          {"read"},
		"kv/data/secretbot-check":             {"create", "read", "update"},
		"kv/metadata/secretbot-check":         {"create", "patch", "read", "update"},
		"kv/delete/secretbot-check":           {"update"},
		"kv/undelete/secretbot-check":         {"update"},
		"kv/destroy/secretbot-check":          {"update"},
		"sys/auth":                            {"read"},
		"identity/lookup/entity":              {"update"},
		"identity/group":                      {"create", "update"},
		"identity/group/name/secretbot-check": {"delete", "read"},
	}
}

func newFakeVault(t *testing.T) *fakeVault {
	f := &fakeVault{
		t: t, tokens: map[string]*fakeToken{}, accessors: map[string]*fakeToken{},
		loginTTL: 3600, loginRenewable: true,
		botPolicies: []string{"default", "secretbot-bot"},
		caps:        allCaps(),
		role: map[string]any{
			"allowed_policies": []string{"platform-ro", "platform-rw"}, "allowed_policies_glob": []string{},
			"disallowed_policies": []string{}, "disallowed_policies_glob": []string{},
			"explicit_max_ttl": 0, "token_explicit_max_ttl": 43200, "name": "secretbot", "orphan": true,
			"path_suffix": "", "period": 0, "token_period": 0, "renewable": false, "token_type": "service",
			"allowed_entity_aliases": nil, "token_no_default_policy": false,
		},
		kvMount:   map[string]any{"type": "kv", "path": "kv/", "options": map[string]any{"version": "2"}, "description": "key/value secret storage"},
		status:    map[string]int{},
		statusMsg: map[string]string{},
		ident:     newFakeIdentity(),
	}
	f.addToken(&fakeToken{token: testBotToken, policies: f.botPolicies, ttl: 2764800, renewable: true})
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeVault) addToken(tk *fakeToken) *fakeToken {
	f.seq++
	if tk.token == "" {
		tk.token = fmt.Sprintf("hvs.TESTtoken%020d", f.seq)
	}
	if tk.accessor == "" {
		tk.accessor = fmt.Sprintf("acc%021d", f.seq)
	}
	if tk.created.IsZero() {
		tk.created = time.Now()
	}
	f.tokens[tk.token] = tk
	f.accessors[tk.accessor] = tk
	return tk
}

func (f *fakeVault) requests() []fakeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func (f *fakeVault) loginCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func errReply(w http.ResponseWriter, status int, msgs ...string) {
	reply(w, status, map[string]any{"errors": msgs})
}

// envelope is Vault's reply frame.
func envelope(data, auth, wrap any) map[string]any {
	return map[string]any{"request_id": "8c5d0cb5-0000-4000-8000-000000000000", "lease_id": "", "renewable": false,
		"lease_duration": 0, "data": data, "wrap_info": wrap, "warnings": nil, "auth": auth, "mount_type": "token"}
}

func (f *fakeVault) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.reqs = append(f.reqs, fakeReq{Method: r.Method, Path: path, Token: r.Header.Get("X-Vault-Token"),
		Namespace: r.Header.Get("X-Vault-Namespace"), WrapTTL: r.Header.Get("X-Vault-Wrap-TTL"), Body: body})

	if st, ok := f.status[path]; ok {
		msg := f.statusMsg[path]
		if msg == "" {
			msg = http.StatusText(st)
		}
		errReply(w, st, msg)
		return
	}
	if path == "sys/health" {
		reply(w, http.StatusOK, map[string]any{"initialized": true, "sealed": f.sealed, "standby": false,
			"performance_standby": false, "replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
			"server_time_utc": time.Now().Unix(), "version": "1.21.4", "enterprise": false, "cluster_name": "vault-cluster-test", "echo_duration_ms": 0})
		return
	}
	if f.sealed {
		errReply(w, http.StatusServiceUnavailable, "Vault is sealed")
		return
	}
	if path == "auth/approle/login" {
		f.approleLogin(w, body)
		return
	}
	caller := f.tokens[r.Header.Get("X-Vault-Token")]
	if caller == nil {
		errReply(w, http.StatusForbidden, "permission denied", "invalid token")
		return
	}
	switch {
	case path == "auth/token/lookup-self":
		reply(w, http.StatusOK, envelope(lookupData(caller, true), nil, nil))
	case path == "auth/token/renew-self":
		a := authData(caller)
		if f.renewTTL > 0 {
			a["lease_duration"] = f.renewTTL
		}
		reply(w, http.StatusOK, envelope(nil, a, nil))
	case path == "sys/capabilities-self":
		data := map[string]any{}
		for _, p := range anyStrings(body["paths"]) {
			c, ok := f.caps[p]
			if slices.Contains(caller.policies, "root") {
				c, ok = []string{"root"}, true
			}
			if !ok {
				c = []string{"deny"}
			}
			data[p] = c
		}
		reply(w, http.StatusOK, envelope(data, nil, nil))
	case strings.HasPrefix(path, "auth/token/create/"):
		f.create(w, r, strings.TrimPrefix(path, "auth/token/create/"), body)
	case path == "auth/token/accessors" && (r.Method == "LIST" || r.URL.Query().Get("list") == "true"):
		if !slices.Contains(f.caps[path], "sudo") && !slices.Contains(caller.policies, "root") {
			errReply(w, http.StatusForbidden, "permission denied")
			return
		}
		keys := make([]string, 0, len(f.accessors))
		for a := range f.accessors {
			keys = append(keys, a)
		}
		slices.Sort(keys)
		reply(w, http.StatusOK, envelope(map[string]any{"keys": keys}, nil, nil))
	case path == "auth/token/lookup-accessor":
		tk := f.accessors[fmt.Sprint(body["accessor"])]
		if tk == nil {
			errReply(w, http.StatusBadRequest, "invalid accessor")
			return
		}
		reply(w, http.StatusOK, envelope(lookupData(tk, false), nil, nil))
	case path == "auth/token/revoke-accessor":
		tk := f.accessors[fmt.Sprint(body["accessor"])]
		if tk == nil {
			reply(w, http.StatusOK, map[string]any{"warnings": []string{"No token found with this accessor"}})
			return
		}
		delete(f.accessors, tk.accessor)
		delete(f.tokens, tk.token)
		w.WriteHeader(http.StatusNoContent)
	case path == "auth/token/roles/secretbot":
		if f.role == nil {
			errReply(w, http.StatusNotFound)
			return
		}
		reply(w, http.StatusOK, envelope(f.role, nil, nil))
	case path == "sys/internal/ui/mounts/kv":
		if f.kvMount == nil {
			errReply(w, http.StatusForbidden, `preflight capability check returned 403, please ensure client's policies grant access to path "kv/"`)
			return
		}
		reply(w, http.StatusOK, envelope(f.kvMount, nil, nil))
	case path == "sys/auth" || strings.HasPrefix(path, "identity/"):
		f.ident.serve(w, r, path, body)
	default:
		errReply(w, http.StatusNotFound, "unsupported path")
	}
}

func (f *fakeVault) approleLogin(w http.ResponseWriter, body map[string]any) {
	if body["role_id"] != testRoleID || body["secret_id"] != testSecretID {
		errReply(w, http.StatusBadRequest, "invalid role or secret ID")
		return
	}
	f.logins++
	tk := f.addToken(&fakeToken{policies: f.botPolicies, ttl: f.loginTTL, renewable: f.loginRenewable,
		meta: map[string]string{"role_name": "secretbot"}, displayName: "approle"})
	a := authData(tk)
	a["token_policies"] = tk.policies
	reply(w, http.StatusOK, envelope(nil, a, nil))
}

func (f *fakeVault) create(w http.ResponseWriter, r *http.Request, role string, body map[string]any) {
	allowed := anyStrings(f.role["allowed_policies"])
	pols := anyStrings(body["policies"])
	for _, p := range pols {
		if !slices.Contains(allowed, p) {
			errReply(w, http.StatusBadRequest, fmt.Sprintf(`token policies (%q) must be subset of the role's allowed policies (%q) or glob policies ([])`, pols, allowed))
			return
		}
	}
	ttl, _ := time.ParseDuration(fmt.Sprint(body["ttl"]))
	meta := map[string]string{}
	for k, v := range anyMap(body["meta"]) {
		meta[k] = fmt.Sprint(v)
	}
	tk := f.addToken(&fakeToken{policies: append([]string{"default"}, pols...), ttl: int(ttl.Seconds()),
		orphan: true, role: role, meta: meta, displayName: "token-" + fmt.Sprint(body["display_name"])})
	wrapTTL := r.Header.Get("X-Vault-Wrap-TTL")
	if wrapTTL == "" || f.ignoreWrap {
		reply(w, http.StatusOK, envelope(nil, authData(tk), nil))
		return
	}
	wd, _ := time.ParseDuration(wrapTTL)
	wt := f.addToken(&fakeToken{policies: []string{"response-wrapping"}, ttl: int(wd.Seconds()), orphan: true, numUses: 1})
	reply(w, http.StatusOK, envelope(nil, nil, map[string]any{
		"token": wt.token, "accessor": wt.accessor, "ttl": wt.ttl, "creation_time": wt.created.Format(time.RFC3339Nano),
		"creation_path": "auth/token/create/" + role, "wrapped_accessor": tk.accessor,
	}))
}

func authData(tk *fakeToken) map[string]any {
	return map[string]any{"client_token": tk.token, "accessor": tk.accessor, "policies": tk.policies,
		"token_policies": tk.policies, "metadata": tk.meta, "lease_duration": tk.ttl, "renewable": tk.renewable,
		"entity_id": "", "token_type": "service", "orphan": tk.orphan, "mfa_requirement": nil, "num_uses": tk.numUses}
}

// lookupData mirrors the token store's lookup reply; lookup-accessor blanks id.
func lookupData(tk *fakeToken, self bool) map[string]any {
	id := ""
	if self {
		id = tk.token
	}
	d := map[string]any{"id": id, "accessor": tk.accessor, "policies": tk.policies, "path": "auth/token/create",
		"meta": tk.meta, "display_name": tk.displayName, "num_uses": tk.numUses, "orphan": tk.orphan,
		"creation_time": tk.created.Unix(), "creation_ttl": tk.ttl, "expire_time": nil, "ttl": 0,
		"explicit_max_ttl": 0, "entity_id": "", "type": "service", "renewable": tk.renewable,
		"issue_time": tk.created.Format(time.RFC3339Nano)}
	if tk.ttl > 0 {
		d["expire_time"] = tk.created.Add(time.Duration(tk.ttl) * time.Second).Format(time.RFC3339Nano)
		d["ttl"] = tk.ttl
	}
	if tk.role != "" {
		d["role"] = tk.role
		d["path"] = "auth/token/create/" + tk.role
	}
	return d
}

func anyStrings(v any) []string {
	var out []string
	switch l := v.(type) {
	case []any:
		for _, e := range l {
			out = append(out, fmt.Sprint(e))
		}
	case []string:
		out = l
	case string:
		out = strings.Split(l, ",")
	}
	return out
}

func anyMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// testConfig is Lumi's example configuration pointed at addr.
func testConfig(addr string, creds config.Credentials) *config.Config {
	creds.VaultAddr = addr
	return &config.Config{
		Vault: config.Vault{TokenRole: "secretbot", TokenRoleMaxTTL: config.Duration(12 * time.Hour),
			KVMount: "kv", WrapTTL: config.Duration(10 * time.Minute), EntityAuthMount: "oidc/"},
		Scopes: []config.Scope{
			{Name: "platform-ro", VaultPolicies: []string{"platform-ro"}, Delivery: config.DeliveryWrappedToken, MaxTTL: config.Duration(4 * time.Hour)},
			{Name: "platform-rw", VaultPolicies: []string{"platform-rw"}, Delivery: config.DeliveryEntityGroup, MaxTTL: config.Duration(8 * time.Hour)},
		},
		Creds: creds,
	}
}

// newTestClient builds a client for f without Vault's retry waits.
func newTestClient(t *testing.T, f *fakeVault, creds config.Credentials) *Client {
	t.Helper()
	c, err := New(testConfig(f.srv.URL, creds), f.srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.api.SetMaxRetries(0)
	c.reloginMin, c.reloginMax = 10*time.Millisecond, 50*time.Millisecond
	t.Cleanup(c.Close)
	return c
}

// assertNoCredential fails if s carries any test credential or token shape.
func assertNoCredential(t *testing.T, what, s string, extra ...string) {
	t.Helper()
	for _, sec := range append([]string{testBotToken, testSecretID, "hvs.TEST"}, extra...) {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("%s contains a credential (%q): %s", what, sec, s)
		}
	}
}
