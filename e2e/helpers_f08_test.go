package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
	_ "modernc.org/sqlite" // the "sqlite" driver, to read and tamper with the bot's database

	"github.com/secretbot/secretbot/e2e/harness"
)

// checkRow is one line of `secretbot check`'s table.
type checkRow struct {
	Integration, Status, Detail string
}

var checkLine = regexp.MustCompile(`^(\S+)\s+(OK|FAIL|SKIP)\s+(.*)$`)

// checkRows parses check's table; it fails the test on a line it cannot read.
func checkRows(t *testing.T, out string) []checkRow {
	t.Helper()
	var rows []checkRow
	for i, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if i == 0 {
			if !strings.HasPrefix(l, "INTEGRATION") {
				t.Fatalf("check output does not start with the table header:\n%s", out)
			}
			continue
		}
		m := checkLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("check printed a line that is not a table row: %q\n%s", l, out)
		}
		rows = append(rows, checkRow{m[1], m[2], strings.TrimSpace(m[3])})
	}
	return rows
}

// rowsOf returns the rows of one integration.
func rowsOf(rows []checkRow, integration string) []checkRow {
	var out []checkRow
	for _, r := range rows {
		if r.Integration == integration {
			out = append(out, r)
		}
	}
	return out
}

// openDB opens a SQLite file directly, as an auditor (or an attacker) would.
func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// copyDB writes a consistent copy of the database at src to dst.
func copyDB(t *testing.T, src, dst string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+src+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`VACUUM INTO ?`, dst); err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// configWithDB writes a copy of the harness's configuration whose
// storage.path is dbPath, and returns its path.
func configWithDB(t *testing.T, h *harness.Harness, dbPath string) string {
	t.Helper()
	b, err := os.ReadFile(h.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["storage"] = map[string]any{"path": dbPath}
	if b, err = yaml.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	path := strings.TrimSuffix(dbPath, filepath.Ext(dbPath)) + ".yaml"
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// dumpDB renders every row of every table as text, plus the raw bytes of
// the database files (freed pages included).
func dumpDB(t *testing.T, path string) string {
	t.Helper()
	db := openDB(t, path)
	var b strings.Builder
	tables, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		if err := tables.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	tables.Close()
	if len(names) == 0 {
		t.Fatalf("no tables in %s", path)
	}
	for _, n := range names {
		rows, err := db.Query(`SELECT * FROM "` + n + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s:", n)
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, " %s=%v", cols[i], v)
			}
			b.WriteByte('\n')
		}
		rows.Close()
	}
	for _, suffix := range []string{"", "-wal"} {
		if raw, err := os.ReadFile(path + suffix); err == nil {
			b.Write(raw)
		}
	}
	return b.String()
}

// encodings returns s as a log line, a JSON document, a URL or a base64
// blob could carry it, each with a name for the report.
func encodings(s string) map[string]string {
	js, _ := json.Marshal(s)
	out := map[string]string{
		"as is":          s,
		"JSON-escaped":   string(js[1 : len(js)-1]),
		"QueryEscape":    url.QueryEscape(s),
		"PathEscape":     url.PathEscape(s),
		"base64 std":     base64.StdEncoding.EncodeToString([]byte(s)),
		"base64 url":     base64.URLEncoding.EncodeToString([]byte(s)),
		"base64 raw std": base64.RawStdEncoding.EncodeToString([]byte(s)),
		"base64 raw url": base64.RawURLEncoding.EncodeToString([]byte(s)),
	}
	// Inside a longer base64 run ("email:token" in Basic auth) the secret
	// sits at one of three byte alignments; the characters that depend on
	// its bytes alone are the same whatever surrounds it.
	for pad := 0; pad < 3; pad++ {
		for name, enc := range map[string]*base64.Encoding{"std": base64.RawStdEncoding, "url": base64.RawURLEncoding} {
			e := enc.EncodeToString(append(bytes.Repeat([]byte{0}, pad), s...))
			from := (8*pad + 5) / 6
			to := (8 * (pad + len(s))) / 6
			if to-from >= 12 {
				out[fmt.Sprintf("base64 %s, offset %d", name, pad)] = e[from:to]
			}
		}
	}
	return out
}

// findLeaks reports every secret found in any of the texts, in any encoding.
// Each finding names the secret by its first characters only.
func findLeaks(secrets []string, texts map[string]string) []string {
	var found []string
	seen := map[string]bool{}
	for _, s := range secrets {
		if len(s) < 8 || seen[s] {
			continue
		}
		seen[s] = true
		for enc, v := range encodings(s) {
			for where, text := range texts {
				if strings.Contains(text, v) {
					found = append(found, fmt.Sprintf("credential %.6s… (%s) in %s", s, enc, where))
				}
			}
		}
	}
	return found
}

// discardLog silences the tap's HTTP server (aborted connections are on purpose).
var discardLog = log.New(io.Discard, "", 0)

// vaultTap is a TLS-terminating reverse proxy in front of the test Vault
// that records every token Vault hands out through it (login and wrapping
// tokens), so a test knows the tokens the bot obtained at runtime. When
// Vault is unreachable it drops the client's connection, as Vault down would.
type vaultTap struct {
	srv    *httptest.Server
	caPath string

	mu     sync.Mutex
	tokens []string
}

func newVaultTap(t *testing.T, h *harness.Harness) *vaultTap {
	t.Helper()
	target, err := url.Parse(h.Vault.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(h.Vault.CACertPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("vault CA certificate unreadable")
	}
	tap := &vaultTap{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	rp.ModifyResponse = func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		tap.collect(body)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil
	}
	rp.ErrorHandler = func(http.ResponseWriter, *http.Request, error) { panic(http.ErrAbortHandler) }
	tap.srv = httptest.NewUnstartedServer(rp)
	tap.srv.Config.ErrorLog = discardLog
	tap.srv.StartTLS()
	t.Cleanup(tap.srv.Close)
	tap.caPath = filepath.Join(t.TempDir(), "tap-ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tap.srv.Certificate().Raw})
	if err := os.WriteFile(tap.caPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return tap
}

// collect records auth.client_token and wrap_info.token from a Vault reply.
func (v *vaultTap) collect(body []byte) {
	var r struct {
		Auth *struct {
			ClientToken string `json:"client_token"`
		} `json:"auth"`
		WrapInfo *struct {
			Token string `json:"token"`
		} `json:"wrap_info"`
	}
	if json.Unmarshal(body, &r) != nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if r.Auth != nil && r.Auth.ClientToken != "" {
		v.tokens = append(v.tokens, r.Auth.ClientToken)
	}
	if r.WrapInfo != nil && r.WrapInfo.Token != "" {
		v.tokens = append(v.tokens, r.WrapInfo.Token)
	}
}

// Tokens returns the tokens seen so far.
func (v *vaultTap) Tokens() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.tokens...)
}
