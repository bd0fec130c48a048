package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/config"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func loggedIn(t *testing.T, f *fakeVault) *Client {
	t.Helper()
	return loggedInWithLog(t, f, nil)
}

// loggedInWithLog sets the logger before Login: the renewal goroutine
// Login starts reads it.
func loggedInWithLog(t *testing.T, f *fakeVault, log *slog.Logger) *Client {
	t.Helper()
	c := newTestClient(t, f, config.Credentials{VaultRoleID: testRoleID, VaultSecretID: testSecretID})
	if log != nil {
		c.log = log
	}
	c.now = func() time.Time { return t0 }
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIssueWrapped(t *testing.T) {
	f := newFakeVault(t)
	c := loggedIn(t, f)
	ctx := context.Background()
	wt, err := c.IssueWrapped(ctx, IssueRequest{
		Policies: []string{"platform-ro"}, TTL: 4 * time.Hour, DisplayName: "secretbot-g42",
		Metadata: map[string]string{"grant": "g42", "user": "U123", "incident": "P1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(wt.WrapToken, "hvs.TEST") || wt.WrapAccessor == "" || wt.TokenAccessor == "" || wt.WrapAccessor == wt.TokenAccessor {
		t.Fatalf("wrapped token: %+v", wt)
	}
	if !wt.ExpiresAt.Equal(t0.Add(4 * time.Hour)) {
		t.Errorf("ExpiresAt %s", wt.ExpiresAt)
	}
	if d := time.Until(wt.WrapExpiresAt); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("WrapExpiresAt in %s, want about 10m", d)
	}

	var create fakeReq
	for _, r := range f.requests() {
		if r.Path == "auth/token/create/secretbot" {
			create = r
		}
	}
	if create.WrapTTL != "600s" || create.Method != http.MethodPost {
		t.Errorf("create: method %s, wrap ttl %q", create.Method, create.WrapTTL)
	}
	b := create.Body
	if fmt.Sprint(b["policies"]) != "[platform-ro]" || b["ttl"] != "14400s" || b["explicit_max_ttl"] != "14400s" ||
		b["renewable"] != false || b["display_name"] != "secretbot-g42" || fmt.Sprint(b["meta"]) != "map[grant:g42 incident:P1 user:U123]" {
		t.Errorf("create body: %v", b)
	}

	// The wrapping token's accessor tells whether it is still unused; the
	// grant's accessor leads to the grant token.
	wi, err := c.LookupAccessor(ctx, wt.WrapAccessor)
	if err != nil || wi.NumUses != 1 || !slices.Equal(wi.Policies, []string{"response-wrapping"}) {
		t.Errorf("wrap lookup: %+v, %v", wi, err)
	}
	gi, err := c.LookupAccessor(ctx, wt.TokenAccessor)
	if err != nil {
		t.Fatal(err)
	}
	if gi.Role != "secretbot" || !gi.Orphan || gi.Renewable || gi.Meta["grant"] != "g42" || gi.TTL != 4*time.Hour ||
		gi.DisplayName != "token-secretbot-g42" || gi.ExpireTime.IsZero() || gi.CreationTime.IsZero() {
		t.Errorf("grant lookup: %+v", gi)
	}

	// Only that one request was wrapped.
	for _, r := range f.requests() {
		if r.WrapTTL != "" && r.Path != "auth/token/create/secretbot" {
			t.Errorf("%s was wrapped", r.Path)
		}
	}

	// The wrapping token never shows in printing, logs or JSON.
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("issued", "grant", wt)
	js, _ := json.Marshal(wt)
	for what, s := range map[string]string{
		"%v": fmt.Sprintf("%v", wt), "%+v": fmt.Sprintf("%+v", wt), "%#v": fmt.Sprintf("%#v", wt),
		"%v ptr": fmt.Sprintf("%v", &wt), "slog": logs.String(), "json": string(js),
	} {
		if strings.Contains(s, wt.WrapToken) {
			t.Errorf("%s shows the wrapping token: %s", what, s)
		}
		if !strings.Contains(s, wt.TokenAccessor) {
			t.Errorf("%s lacks the accessor: %s", what, s)
		}
	}
}

func TestIssueWrappedRefuses(t *testing.T) {
	tests := []struct {
		name    string
		req     IssueRequest
		setup   func(f *fakeVault, c *Client)
		wantErr error
		want    string
	}{
		{name: "no policies", req: IssueRequest{TTL: time.Hour}, want: "no policies"},
		{name: "no ttl", req: IssueRequest{Policies: []string{"platform-ro"}}, want: "TTL must be at least 1s"},
		{name: "over role max", req: IssueRequest{Policies: []string{"platform-ro"}, TTL: 13 * time.Hour},
			want: "TTL 13h exceeds vault.token_role_max_ttl 12h"},
		{name: "no role", req: IssueRequest{Policies: []string{"platform-ro"}, TTL: time.Hour},
			setup: func(_ *fakeVault, c *Client) { c.cfg.Vault.TokenRole = "" }, want: "vault.token_role is not configured"},
		{name: "policy outside role", req: IssueRequest{Policies: []string{"secretbot-bot"}, TTL: time.Hour},
			wantErr: ErrPermissionDenied, want: "must be subset of the role's allowed policies"},
		{name: "forbidden", req: IssueRequest{Policies: []string{"platform-ro"}, TTL: time.Hour},
			setup:   func(f *fakeVault, _ *Client) { f.status["auth/token/create/secretbot"] = http.StatusForbidden },
			wantErr: ErrPermissionDenied, want: "HTTP 403"},
		{name: "vault down", req: IssueRequest{Policies: []string{"platform-ro"}, TTL: time.Hour},
			setup: func(f *fakeVault, _ *Client) {
				f.status["auth/token/create/secretbot"] = http.StatusInternalServerError
			},
			wantErr: ErrUnavailable, want: "HTTP 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVault(t)
			c := loggedIn(t, f)
			if tt.setup != nil {
				f.mu.Lock()
				tt.setup(f, c)
				f.mu.Unlock()
			}
			_, err := c.IssueWrapped(context.Background(), tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			assertNoCredential(t, "error", err.Error(), c.api.Token())
		})
	}
}

// A token that reaches the bot unwrapped is revoked at once and never returned.
func TestIssueWrappedRevokesUnwrappedToken(t *testing.T) {
	f := newFakeVault(t)
	f.ignoreWrap = true
	var logs syncBuffer
	c := loggedInWithLog(t, f, slog.New(slog.NewJSONHandler(&logs, nil)))
	wt, err := c.IssueWrapped(context.Background(), IssueRequest{Policies: []string{"platform-rw"}, TTL: time.Hour})
	if err == nil || wt != (WrappedToken{}) {
		t.Fatalf("got %+v, %v", wt, err)
	}
	if !strings.Contains(err.Error(), "vault did not wrap the reply") {
		t.Errorf("error: %v", err)
	}
	var revoked string
	for _, r := range f.requests() {
		if r.Path == "auth/token/revoke-accessor" {
			revoked = fmt.Sprint(r.Body["accessor"])
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if revoked == "" {
		t.Fatal("leaked token not revoked")
	}
	for _, tk := range f.tokens {
		if slices.Contains(tk.policies, "platform-rw") {
			t.Errorf("a platform-rw token is still alive")
		}
	}
	assertNoCredential(t, "error", err.Error())
	assertNoCredential(t, "logs", logs.String())
}

func TestRevokeAccessor(t *testing.T) {
	tests := []struct {
		name     string
		accessor string
		setup    func(f *fakeVault)
		wantErr  error
	}{
		{name: "live token", accessor: "live"},
		{name: "already gone", accessor: "acc-never-existed"},
		{name: "token died meanwhile", accessor: "live", setup: func(f *fakeVault) {
			f.status["auth/token/revoke-accessor"], f.statusMsg["auth/token/revoke-accessor"] = http.StatusBadRequest, "token not found"
		}},
		{name: "forbidden", accessor: "live", setup: func(f *fakeVault) {
			f.status["auth/token/revoke-accessor"] = http.StatusForbidden
		}, wantErr: ErrPermissionDenied},
		{name: "vault down", accessor: "live", setup: func(f *fakeVault) {
			f.status["auth/token/revoke-accessor"] = http.StatusBadGateway
		}, wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVault(t)
			c := loggedIn(t, f)
			acc := tt.accessor
			if acc == "live" {
				wt, err := c.IssueWrapped(context.Background(), IssueRequest{Policies: []string{"platform-ro"}, TTL: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				acc = wt.TokenAccessor
			}
			f.mu.Lock()
			if tt.setup != nil {
				tt.setup(f)
			}
			f.mu.Unlock()
			err := c.RevokeAccessor(context.Background(), acc)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("RevokeAccessor: %v", err)
				}
				if _, err := c.LookupAccessor(context.Background(), acc); tt.setup == nil && !errors.Is(err, ErrNotFound) {
					t.Errorf("after revoke, lookup: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v is not %v", err, tt.wantErr)
			}
			assertNoCredential(t, "error", err.Error(), c.api.Token())
		})
	}
	f := newFakeVault(t)
	if err := loggedIn(t, f).RevokeAccessor(context.Background(), ""); err == nil {
		t.Error("empty accessor accepted")
	}
}

func TestLookupAccessor(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(f *fakeVault)
		wantErr error
	}{
		{name: "invalid accessor", wantErr: ErrNotFound},
		{name: "token died meanwhile", setup: func(f *fakeVault) {
			f.status["auth/token/lookup-accessor"], f.statusMsg["auth/token/lookup-accessor"] = http.StatusForbidden, "bad token"
		}, wantErr: ErrNotFound},
		{name: "forbidden", setup: func(f *fakeVault) {
			f.status["auth/token/lookup-accessor"] = http.StatusForbidden
		}, wantErr: ErrPermissionDenied},
		{name: "sealed", setup: func(f *fakeVault) { f.sealed = true }, wantErr: ErrUnavailable},
		// Right after an unwrap Vault still finds the wrapping token, with
		// num_uses -1, until its background revocation finishes.
		{name: "being revoked", setup: func(f *fakeVault) {
			f.addToken(&fakeToken{accessor: "acc-unknown", policies: []string{"response-wrapping"}, ttl: 600, orphan: true, numUses: -1})
		}, wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVault(t)
			c := loggedIn(t, f)
			f.mu.Lock()
			if tt.setup != nil {
				tt.setup(f)
			}
			f.mu.Unlock()
			_, err := c.LookupAccessor(context.Background(), "acc-unknown")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v is not %v", err, tt.wantErr)
			}
			if tt.wantErr != ErrNotFound && errors.Is(err, ErrNotFound) {
				t.Errorf("%v also matches ErrNotFound", err)
			}
			assertNoCredential(t, "error", err.Error(), c.api.Token())
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := newFakeVault(t)
	if _, err := loggedIn(t, f).LookupAccessor(ctx, "acc-1"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled ctx: %v", err)
	}
}

// Calls made before Login log in once (as `secretbot check` may).
func TestCallsWithoutLogin(t *testing.T) {
	f := newFakeVault(t)
	c := newTestClient(t, f, config.Credentials{VaultRoleID: testRoleID, VaultSecretID: testSecretID})
	if _, err := c.LookupAccessor(context.Background(), "acc-unknown"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup: %v", err)
	}
	if f.loginCount() != 1 {
		t.Errorf("logins: %d", f.loginCount())
	}
	bad := newTestClient(t, f, config.Credentials{VaultRoleID: testRoleID, VaultSecretID: "secret-test-wrong1"})
	err := bad.RevokeAccessor(context.Background(), "acc-1")
	if err == nil {
		t.Fatal("revoke without a valid login succeeded")
	}
	assertNoCredential(t, "error", err.Error(), "secret-test-wrong1")
}
