package pagerduty

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetriesAndErrors(t *testing.T) {
	const path = "/abilities"
	tests := []struct {
		name       string
		replies    []reply
		cancel     bool
		wantErr    []error // each must match errors.Is
		notErr     []error
		wantDetail string
		wantCalls  int
		wantSleeps []time.Duration
		wantRetry  time.Duration
	}{
		{name: "ok", wantCalls: 1},
		{
			name:       "429 with Retry-After, then 200",
			replies:    []reply{{status: 429, retryAfter: "2", body: `{"error":{"message":"Rate Limit Exceeded","code":2020}}`}},
			wantCalls:  2,
			wantSleeps: []time.Duration{2 * time.Second},
		},
		{
			name:       "500 three times",
			replies:    []reply{{status: 500}, {status: 500}, {status: 500}},
			wantErr:    []error{ErrUnavailable},
			notErr:     []error{ErrCredentialsRejected, ErrNotFound},
			wantDetail: "PagerDuty server error (HTTP 500)",
			wantCalls:  3,
			wantSleeps: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond},
		},
		{
			name:       "401 is not retried",
			replies:    []reply{{status: 401, body: `{"error":{"message":"Unauthorized","code":2006}}`}},
			wantErr:    []error{ErrCredentialsRejected},
			notErr:     []error{ErrUnavailable},
			wantDetail: "credentials rejected (HTTP 401)",
			wantCalls:  1,
		},
		{
			name: "error message echoing the token is redacted",
			replies: []reply{{status: 400,
				body: `{"error":{"message":"Invalid Input Provided: Token token=` + testToken + `","code":2001}}`}},
			wantDetail: "request refused (HTTP 400): Invalid Input Provided: Token token=[redacted]",
			wantCalls:  1,
		},
		{
			name:       "caller cancels",
			cancel:     true,
			wantErr:    []error{context.Canceled},
			notErr:     []error{ErrUnavailable},
			wantDetail: "context canceled",
		},
		{
			name:       "2xx with a body that is not JSON",
			replies:    []reply{{status: 200, body: "not json"}},
			wantDetail: "unexpected reply",
			notErr:     []error{ErrUnavailable},
			wantCalls:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePD(t)
			f.fail(path, tt.replies...)
			c, sleeps := testClient(f, nil)
			c.attemptTimeout = 50 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			err := c.do(ctx, "list abilities", func(ctx context.Context) error {
				_, err := c.api.ListAbilitiesWithContext(ctx)
				return err
			})
			if tt.wantErr == nil && tt.wantDetail == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			} else {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("err = %#v, want *Error", err)
				}
				if !strings.Contains(e.Detail, tt.wantDetail) {
					t.Errorf("detail %q, want %q", e.Detail, tt.wantDetail)
				}
				if e.RetryAfter != tt.wantRetry {
					t.Errorf("RetryAfter %v, want %v", e.RetryAfter, tt.wantRetry)
				}
				noSecret(t, err.Error())
			}
			for _, w := range tt.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("errors.Is(%v, %v) = false", err, w)
				}
			}
			for _, w := range tt.notErr {
				if errors.Is(err, w) {
					t.Errorf("errors.Is(%v, %v) = true", err, w)
				}
			}
			if n := f.count(path); n != tt.wantCalls {
				t.Errorf("%d calls, want %d", n, tt.wantCalls)
			}
			if !reflect.DeepEqual(*sleeps, tt.wantSleeps) {
				t.Errorf("sleeps %v, want %v", *sleeps, tt.wantSleeps)
			}
		})
	}
}

func TestRedirectElsewhereRefused(t *testing.T) {
	var reached atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Store(true)
		writeJSON(w, 200, map[string]any{"abilities": []string{}})
	}))
	defer other.Close()
	redir := httptest.NewServer(http.RedirectHandler(other.URL+"/abilities", http.StatusFound))
	defer redir.Close()
	c, _ := testClient(&fakePD{srv: redir}, nil)
	res := c.Check(context.Background())
	if len(res) != 1 || res[0].Status != "FAIL" || !strings.Contains(res[0].Detail, "redirect to another host refused") {
		t.Errorf("results %+v", res)
	}
	if reached.Load() {
		t.Error("followed a redirect to another host")
	}
}
