package vault

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/config"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogin(t *testing.T) {
	approle := config.Credentials{VaultRoleID: testRoleID, VaultSecretID: testSecretID}
	tests := []struct {
		name     string
		creds    config.Credentials
		setup    func(f *fakeVault)
		wantErr  error
		wantText string
	}{
		{name: "approle", creds: approle},
		{name: "static token", creds: config.Credentials{VaultToken: testBotToken}},
		{name: "token preferred over approle", creds: config.Credentials{VaultToken: testBotToken, VaultRoleID: testRoleID, VaultSecretID: testSecretID},
			setup: func(f *fakeVault) { f.status["auth/approle/login"] = http.StatusForbidden }},
		{name: "wrong secret id", creds: config.Credentials{VaultRoleID: testRoleID, VaultSecretID: "secret-test-wrong"},
			wantText: "invalid role or secret ID"},
		{name: "revoked static token", creds: config.Credentials{VaultToken: "hvs.TESTrevoked0000000000000000"},
			wantErr: ErrPermissionDenied, wantText: "HTTP 403: permission denied"},
		{name: "sealed", creds: approle, setup: func(f *fakeVault) { f.sealed = true },
			wantErr: ErrUnavailable, wantText: "Vault is sealed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVault(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			var logs syncBuffer
			c := newTestClient(t, f, tt.creds)
			c.log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := c.Login(ctx)
			if tt.wantErr == nil && tt.wantText == "" {
				if err != nil {
					t.Fatalf("Login: %v", err)
				}
				if c.api.Token() == "" {
					t.Fatal("no token after login")
				}
				if _, err := c.api.Auth().Token().LookupSelfWithContext(ctx); err != nil {
					t.Fatalf("token does not work: %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("Login succeeded")
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("error %v is not %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("error %q lacks %q", err, tt.wantText)
				}
				assertNoCredential(t, "error", err.Error(), tt.creds.VaultSecretID, tt.creds.VaultToken)
			}
			c.Close()
			assertNoCredential(t, "logs", logs.String(), tt.creds.VaultSecretID, tt.creds.VaultToken)
		})
	}
}

// When the token's lifetime ends, the bot logs in again, and keeps trying
// (with backoff) while Vault refuses, until ctx ends.
func TestLoginRenewsAndLogsInAgain(t *testing.T) {
	f := newFakeVault(t)
	f.loginTTL, f.loginRenewable = 1, false
	var logs syncBuffer
	c := newTestClient(t, f, config.Credentials{VaultRoleID: testRoleID, VaultSecretID: testSecretID})
	c.log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen sync.Map
	c.OnNewToken(func(tok string) { seen.Store(tok, true) })
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	first := c.api.Token()
	waitFor(t, 5*time.Second, "a second login", func() bool { return f.loginCount() >= 2 })
	waitFor(t, time.Second, "the hook told of the new token", func() bool {
		_, ok := seen.Load(c.api.Token())
		_, ok1 := seen.Load(first)
		return ok && ok1 && c.api.Token() != first
	})

	// Vault refuses for a while: the loop retries, then recovers.
	f.mu.Lock()
	f.status["auth/approle/login"] = 500
	n := f.logins
	f.mu.Unlock()
	waitFor(t, 5*time.Second, "failed login attempts", func() bool {
		fails := 0
		for _, r := range f.requests() {
			if r.Path == "auth/approle/login" {
				fails++
			}
		}
		return fails >= n+3
	})
	f.mu.Lock()
	delete(f.status, "auth/approle/login")
	f.mu.Unlock()
	waitFor(t, 5*time.Second, "recovery", func() bool { return f.loginCount() > n })

	cancel()
	c.Close() // returns once the loop has stopped
	after := len(f.requests())
	time.Sleep(100 * time.Millisecond)
	if len(f.requests()) != after {
		t.Error("requests after ctx ended")
	}
	out := logs.String()
	if !strings.Contains(out, "vault login failed, retrying") {
		t.Errorf("no retry logged:\n%s", out)
	}
	assertNoCredential(t, "logs", out, testSecretID, testRoleID)
}

// A renewal clamped by the max TTL to under half a lease triggers an early
// login; a full renewal does not.
func TestLoginBeforeMaxTTL(t *testing.T) {
	f := newFakeVault(t)
	f.loginTTL = 30
	c := newTestClient(t, f, config.Credentials{VaultRoleID: testRoleID, VaultSecretID: testSecretID})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "first renewal", func() bool {
		for _, r := range f.requests() {
			if r.Path == "auth/token/renew-self" {
				return true
			}
		}
		return false
	})
	time.Sleep(50 * time.Millisecond)
	if n := f.loginCount(); n != 1 {
		t.Fatalf("logged in %d times after a full renewal", n)
	}

	f.mu.Lock()
	f.renewTTL = 10
	f.mu.Unlock()
	if err := c.Login(ctx); err != nil { // a new watcher renews at once
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "early login", func() bool { return f.loginCount() >= 3 })
	f.mu.Lock()
	f.renewTTL = 0
	f.mu.Unlock()
}

func TestStaticTokenWithoutTTLNeedsNoRenewal(t *testing.T) {
	f := newFakeVault(t)
	f.mu.Lock()
	f.tokens[testBotToken].ttl = 0
	f.mu.Unlock()
	c := newTestClient(t, f, config.Credentials{VaultToken: testBotToken})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	for _, r := range f.requests() {
		if r.Path == "auth/token/renew-self" {
			t.Error("renewed a token without TTL")
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
