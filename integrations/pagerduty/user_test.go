package pagerduty

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/secretbot/secretbot/internal/config"
)

func TestUserEmail(t *testing.T) {
	f := newFakePD(t)
	f.users = []map[string]any{pdUser("PALICE1", "Alice Ops", "alice@example.com"), pdUser("PNOMAIL", "No Mail", "")}
	c, _ := testClient(f, nil)
	ctx := context.Background()

	email, err := c.UserEmail(ctx, " PALICE1 ")
	if err != nil || email != "alice@example.com" {
		t.Fatalf("UserEmail = %q, %v", email, err)
	}
	if n := f.count("/users/PALICE1"); n != 1 {
		t.Errorf("GET /users/PALICE1 called %d times", n)
	}

	_, err = c.UserEmail(ctx, "PGONE01")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "user PGONE01 not found") {
		t.Errorf("unknown user: %v", err)
	}
	noSecret(t, err.Error())

	if _, err := c.UserEmail(ctx, "PNOMAIL"); err == nil || !strings.Contains(err.Error(), "no e-mail") {
		t.Errorf("user without e-mail: %v", err)
	}

	for _, bad := range []string{"", "palice1", "PALICE1/../../abilities", "PALICE1?x=1"} {
		if _, err := c.UserEmail(ctx, bad); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("UserEmail(%q) = %v, want a refusal", bad, err)
		}
	}
	f.mu.Lock()
	n := len(f.requests)
	f.mu.Unlock()
	if n != 3 {
		t.Errorf("%d requests, want 3 (invalid ids are not sent)", n)
	}
}

func TestUserEmailFailures(t *testing.T) {
	tests := []struct {
		name    string
		replies []reply
		want    error
		detail  string
	}{
		{"credentials", []reply{{status: 401, body: `{"error":{"message":"Unauthorized","code":2006}}`}}, ErrCredentialsRejected, "credentials rejected"},
		{"server errors", []reply{{status: 500, body: `{}`}, {status: 502, body: `{}`}, {status: 503, body: `{}`}}, ErrUnavailable, "HTTP 503"},
		{"a different user", []reply{{status: 200, body: `{"user":{"id":"PBOB001","email":"bob@example.com"}}`}}, nil, "a different user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePD(t)
			f.users = []map[string]any{pdUser("PALICE1", "Alice Ops", "alice@example.com")}
			f.fail("/users/PALICE1", tt.replies...)
			c, _ := testClient(f, nil)
			email, err := c.UserEmail(context.Background(), "PALICE1")
			var e *Error
			if email != "" || !errors.As(err, &e) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("= %q, %v; want *Error mentioning %q", email, err, tt.detail)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err %v does not match %v", err, tt.want)
			}
			noSecret(t, err.Error())
		})
	}
}

func TestUserEmailNotConfigured(t *testing.T) {
	c := New(&config.Config{}, nil)
	if _, err := c.UserEmail(context.Background(), "PALICE1"); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("err = %v", err)
	}
}
