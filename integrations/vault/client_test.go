package vault

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretbot/secretbot/internal/config"
)

// countingRT stands for the app's metrics transport.
type countingRT struct {
	base  http.RoundTripper
	calls *atomic.Int64
}

func (w countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	w.calls.Add(1)
	base := w.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// rebasingRT is a countingRT that can be rebuilt around another base.
type rebasingRT struct{ countingRT }

func (w rebasingRT) WithBase(base http.RoundTripper) http.RoundTripper {
	return rebasingRT{countingRT{base: base, calls: w.calls}}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := config.Credentials{VaultToken: testBotToken}
	tests := []struct {
		name  string
		creds config.Credentials
		addr  string
		hc    *http.Client
		want  string
	}{
		{"no address", tok, "", nil, "VAULT_ADDR is not set"},
		{"not a URL", tok, "vault:8200", nil, "must be an http(s) URL"},
		{"ftp", tok, "ftp://vault", nil, "must be an http(s) URL"},
		{"no credentials", config.Credentials{}, "https://vault:8200", nil, "no credentials"},
		{"role without secret", config.Credentials{VaultRoleID: testRoleID}, "https://vault:8200", nil, "no credentials"},
		{"missing CA file", config.Credentials{VaultToken: testBotToken, VaultCACert: filepath.Join(dir, "nope.pem")}, "https://vault:8200", nil, "reading VAULT_CACERT"},
		{"CA not PEM", config.Credentials{VaultToken: testBotToken, VaultCACert: notPEM}, "https://vault:8200", nil, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(tt.addr, tt.creds)
			_, err := New(cfg, tt.hc, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want %q", err, tt.want)
			}
			assertNoCredential(t, "error", err.Error())
		})
	}
	if _, err := New(nil, nil, nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}

// The process environment must not leak in: tests run several bots in one
// process, each with its own getenv.
func TestNewIgnoresProcessEnvironment(t *testing.T) {
	f := newFakeVault(t)
	t.Setenv("VAULT_TOKEN", "hvs.TESTfromenvironment000000000")
	t.Setenv("VAULT_NAMESPACE", "env-namespace")
	t.Setenv("VAULT_WRAP_TTL", "5m")
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	t.Setenv("VAULT_HEADERS", `{"X-Env":"1"}`)

	cfg := testConfig(f.srv.URL, config.Credentials{VaultRoleID: testRoleID, VaultSecretID: testSecretID})
	cfg.Vault.Namespace = "lumi/platform"
	c, err := New(cfg, f.srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.api.SetMaxRetries(0)
	if got := c.api.Token(); got != "" {
		t.Fatalf("token before login = %q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.LookupAccessor(ctx, "acc-missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup: %v", err)
	}
	for _, r := range f.requests() {
		if r.Namespace != "lumi/platform" {
			t.Errorf("%s %s: namespace %q", r.Method, r.Path, r.Namespace)
		}
		if r.WrapTTL != "" {
			t.Errorf("%s %s: wrapped (%s) because of VAULT_WRAP_TTL", r.Method, r.Path, r.WrapTTL)
		}
		if strings.Contains(r.Token, "fromenvironment") {
			t.Errorf("%s %s: sent VAULT_TOKEN from the environment", r.Method, r.Path)
		}
		if r.Path == "auth/approle/login" && r.Token != "" {
			t.Errorf("login sent a token")
		}
	}
	// Clones handed to later code keep the namespace and token too.
	cl, err := c.API().Clone()
	if err != nil {
		t.Fatal(err)
	}
	if cl.Namespace() != "lumi/platform" || cl.Token() != c.api.Token() {
		t.Errorf("clone: namespace %q, token kept %v", cl.Namespace(), cl.Token() == c.api.Token())
	}
}

func TestNewWithCACert(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, map[string]any{"initialized": true, "sealed": false, "version": "1.21.4"})
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	der := srv.Certificate().Raw
	if _, err := x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	plainTransport := &http.Transport{}
	tests := []struct {
		name        string
		transport   http.RoundTripper
		wantCounted bool
		wantWarning bool
	}{
		{name: "no client"},
		{name: "plain transport", transport: plainTransport},
		{name: "wrapper with WithBase", transport: rebasingRT{countingRT{calls: new(atomic.Int64)}}, wantCounted: true},
		{name: "opaque wrapper", transport: countingRT{calls: new(atomic.Int64)}, wantWarning: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hc *http.Client
			if tt.transport != nil {
				hc = &http.Client{Transport: tt.transport}
			}
			var logs bytes.Buffer
			cfg := testConfig(srv.URL, config.Credentials{VaultToken: testBotToken, VaultCACert: caFile})
			c, err := New(cfg, hc, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			c.api.SetMaxRetries(0)
			h, err := c.api.Sys().HealthWithContext(context.Background())
			if err != nil || h.Version != "1.21.4" {
				t.Fatalf("health over TLS with VAULT_CACERT: %v", err)
			}
			var calls int64
			switch rt := tt.transport.(type) {
			case countingRT:
				calls = rt.calls.Load()
			case rebasingRT:
				calls = rt.calls.Load()
			}
			if (calls > 0) != tt.wantCounted {
				t.Errorf("wrapper saw %d calls", calls)
			}
			if strings.Contains(logs.String(), "cannot take a CA") != tt.wantWarning {
				t.Errorf("logs: %s", logs.String())
			}
			if hc != nil && hc.CheckRedirect != nil {
				t.Error("caller's client was modified")
			}
		})
	}
	if tc := plainTransport.TLSClientConfig; tc != nil && tc.RootCAs != nil {
		t.Error("caller's transport was modified")
	}

	// Without the CA the same server is refused; a wrapper is kept as is.
	counting := countingRT{calls: new(atomic.Int64)}
	c, err := New(testConfig(srv.URL, config.Credentials{VaultToken: testBotToken}), &http.Client{Transport: counting}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.api.SetMaxRetries(0)
	if _, err := c.api.Sys().HealthWithContext(context.Background()); err == nil {
		t.Error("untrusted certificate accepted")
	}
	if counting.calls.Load() == 0 {
		t.Error("wrapper bypassed without a CA")
	}
}

func TestErrorWrapping(t *testing.T) {
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		kind   error
		detail string
	}{
		{"403 multierror", ctx, &api.ResponseError{StatusCode: 403, Errors: []string{"2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"}},
			ErrPermissionDenied, "HTTP 403: permission denied; invalid token"},
		{"404", ctx, &api.ResponseError{StatusCode: 404}, ErrNotFound, "HTTP 404: Not Found"},
		{"503 sealed", ctx, &api.ResponseError{StatusCode: 503, Errors: []string{"Vault is sealed"}}, ErrUnavailable, "HTTP 503: Vault is sealed"},
		{"429", ctx, &api.ResponseError{StatusCode: 429, Errors: []string{"rate limit quota exceeded"}}, ErrUnavailable, "HTTP 429: rate limit quota exceeded"},
		{"network", ctx, errors.New(`Post "https://vault/v1/x": dial tcp: connection refused`), ErrUnavailable, "connection refused"},
		{"canceled", canceled, errors.New("whatever"), context.Canceled, "context canceled"},
		{"token in text", ctx, &api.ResponseError{StatusCode: 400, Errors: []string{"bad token " + testBotToken + " and s.abcdefghijklmnopqrstuvwx"}}, nil, "bad token [redacted] and [redacted]"},
		{"secret in text", ctx, errors.New("secret_id " + testSecretID + " refused"), ErrUnavailable, "secret_id [redacted] refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wrapErr(tt.ctx, "op", tt.err, testSecretID)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %T", err)
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("kind: %v is not %v", err, tt.kind)
			}
			if !strings.Contains(e.Detail, tt.detail) {
				t.Errorf("detail %q, want %q", e.Detail, tt.detail)
			}
			if strings.Contains(e.Detail, "\n") {
				t.Errorf("detail spans lines: %q", e.Detail)
			}
			assertNoCredential(t, "error", err.Error())
		})
	}
	if wrapErr(ctx, "op", nil) != nil {
		t.Error("nil error wrapped")
	}
}

func TestFormatting(t *testing.T) {
	for d, want := range map[string]string{"12h0m0s": "12h", "1h30m0s": "1h30m", "45s": "45s", "59m59s": "59m59s", "0s": "0s", "10m0s": "10m"} {
		dd, _ := time.ParseDuration(d)
		if got := fmtDur(dd); got != want {
			t.Errorf("fmtDur(%s) = %s, want %s", d, got, want)
		}
	}
	for _, tt := range []struct {
		pat, s string
		want   bool
	}{{"platform-*", "platform-ro", true}, {"platform-*", "payments-ro", false}, {"*-ro", "platform-ro", true},
		{"p*-r*", "platform-rw", true}, {"exact", "exact", true}, {"exact", "exactly", false}} {
		if got := glob(tt.pat, tt.s); got != tt.want {
			t.Errorf("glob(%q, %q) = %v", tt.pat, tt.s, got)
		}
	}
}
