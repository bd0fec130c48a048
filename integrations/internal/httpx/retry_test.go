package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "example-5ecr3tT0ken"

// reply is one canned answer.
type reply struct {
	status     int
	body       string
	retryAfter string
	delay      time.Duration // before the answer; the attempt's deadline may pass first
}

// replies is a transport that answers with its queue, then 200 {"ok":true}.
type replies struct {
	mu    sync.Mutex
	queue []reply
	sent  int // requests that reached the "server"
}

func (rs *replies) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, err // like http.Transport: a canceled request is not sent
	}
	rs.mu.Lock()
	rs.sent++
	q := reply{status: http.StatusOK, body: `{"ok":true}`}
	if len(rs.queue) > 0 {
		q, rs.queue = rs.queue[0], rs.queue[1:]
	}
	rs.mu.Unlock()
	if q.delay > 0 {
		t := time.NewTimer(q.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	h := http.Header{}
	if q.retryAfter != "" {
		h.Set("Retry-After", q.retryAfter)
	}
	return &http.Response{StatusCode: q.status, Header: h, Body: io.NopCloser(strings.NewReader(q.body)), Request: req}, nil
}

func (rs *replies) count() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.sent
}

// libError stands for a client library's error for a non-2xx reply.
type libError struct {
	status  int
	message string
}

func (e *libError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.message) }

func libMessage(err error) string {
	var le *libError
	if errors.As(err, &le) {
		return le.message
	}
	return ""
}

// get is what a client library does: GET u through d, an error for a
// non-2xx reply, JSON decoding for a 2xx one.
func get(d RecordingDoer, u string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := d.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			var eb struct {
				Error struct{ Message string } `json:"error"`
			}
			_ = json.Unmarshal(body, &eb)
			return &libError{resp.StatusCode, eb.Error.Message}
		}
		var v map[string]any
		return json.Unmarshal(body, &v)
	}
}

// testPolicy records its waits in *sleeps instead of sleeping.
func testPolicy() (*Policy, *[]time.Duration) {
	var mu sync.Mutex
	var sleeps []time.Duration
	return &Policy{
		Now: func() time.Time { return time.Date(2025, 3, 6, 12, 0, 0, 0, time.UTC) },
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			sleeps = append(sleeps, d)
			mu.Unlock()
			return ctx.Err()
		},
		AttemptTimeout: 50 * time.Millisecond,
		Secrets:        &Secrets{testToken},
		Wording: Wording{
			Unauthorized: "credentials rejected (HTTP 401): check EXAMPLE_TOKEN",
			Forbidden:    "access denied (HTTP 403): the API key may not read this",
			NotFound:     "not found (HTTP 404)",
			Service:      "Example",
		},
		Message: libMessage,
	}, &sleeps
}

func TestRetry(t *testing.T) {
	const rateLimited = `{"error":{"message":"Rate Limit Exceeded","code":2020}}`
	backoff := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}
	tests := []struct {
		name    string
		post    bool // not idempotent: only a 429 is retried
		cancel  bool // the caller's context is canceled
		replies []reply
		want    *Error // nil for success; Detail is a substring
		text    string // e.Text("example"), when given
		match   []error
		noMatch []error
		calls   int
		sleeps  []time.Duration
	}{
		{name: "ok", calls: 1},
		{name: "429 with Retry-After, then 200", replies: []reply{{status: 429, retryAfter: "2", body: rateLimited}},
			calls: 2, sleeps: []time.Duration{2 * time.Second}},
		{name: "429 with an HTTP-date Retry-After", replies: []reply{{status: 429, retryAfter: "Thu, 06 Mar 2025 12:00:03 GMT"}},
			calls: 2, sleeps: []time.Duration{3 * time.Second}},
		{name: "429 asking for too long a wait is returned at once", replies: []reply{{status: 429, retryAfter: "60"}},
			want: &Error{Status: 429, Retryable: true, RetryAfter: time.Minute, Detail: "rate limited (HTTP 429)"},
			text: "example: list things: rate limited (HTTP 429) (retry after 1m0s)", match: []error{errDown}, calls: 1},
		{name: "500 three times", replies: []reply{{status: 500}, {status: 500}, {status: 500}},
			want:  &Error{Status: 500, Retryable: true, Detail: "Example server error (HTTP 500)"},
			match: []error{errDown}, noMatch: []error{errRejected, errNotFound}, calls: 3, sleeps: backoff},
		{name: "500 then 200", replies: []reply{{status: 500, body: "<html>oops</html>"}},
			calls: 2, sleeps: backoff[:1]},
		{name: "401 is not retried", replies: []reply{{status: 401, body: `{"error":{"message":"Unauthorized","code":2006}}`}},
			want:  &Error{Status: 401, Detail: "credentials rejected (HTTP 401): check EXAMPLE_TOKEN: Unauthorized"},
			match: []error{errRejected}, noMatch: []error{errDown}, calls: 1},
		{name: "404 is not retried", replies: []reply{{status: 404, body: `{"error":{"message":"Not Found","code":2100}}`}},
			want:  &Error{Status: 404, Detail: "not found (HTTP 404): Not Found"},
			match: []error{errNotFound}, noMatch: []error{errDown, errRejected}, calls: 1},
		{name: "error message echoing the token is redacted",
			replies: []reply{{status: 400, body: `{"error":{"message":"Invalid Input Provided: Token token=` + testToken + `","code":2001}}`}},
			want:    &Error{Status: 400, Detail: "request refused (HTTP 400): Invalid Input Provided: Token token=[redacted]"}, calls: 1},
		{name: "timeout is retried", replies: []reply{{status: 200, delay: time.Second}, {status: 200, delay: time.Second}, {status: 200, delay: time.Second}},
			want: &Error{Retryable: true, Detail: "timed out"}, match: []error{errDown}, calls: 3, sleeps: backoff},
		{name: "caller cancels", cancel: true,
			want: &Error{Detail: "context canceled"}, match: []error{context.Canceled}, noMatch: []error{errDown}},
		{name: "2xx with a body that is not JSON", replies: []reply{{status: 200, body: "not json"}},
			want: &Error{Status: 200, Detail: "unexpected reply"}, noMatch: []error{errDown}, calls: 1},

		{name: "not idempotent: 429 then 201", post: true, replies: []reply{{status: 429, retryAfter: "3", body: rateLimited}},
			calls: 2, sleeps: []time.Duration{3 * time.Second}},
		{name: "not idempotent: 429 without Retry-After backs off", post: true, replies: []reply{{status: 429}, {status: 429}},
			calls: 3, sleeps: backoff},
		{name: "not idempotent: 429 three times", post: true, replies: []reply{{status: 429}, {status: 429}, {status: 429}},
			want: &Error{Status: 429, Retryable: true, Detail: "rate limited (HTTP 429)"},
			text: "example: list things: rate limited (HTTP 429)", match: []error{errDown}, calls: 3, sleeps: backoff},
		{name: "not idempotent: 500 is not retried", post: true, replies: []reply{{status: 500, body: `{"error":{"message":"Internal server error"}}`}},
			want:  &Error{Status: 500, Retryable: true, Detail: "Example server error (HTTP 500): Internal server error"},
			match: []error{errDown}, calls: 1},
		{name: "not idempotent: timeout is not retried", post: true, replies: []reply{{status: 201, delay: time.Second}},
			want: &Error{Retryable: true, Detail: "timed out"}, match: []error{errDown}, calls: 1},
		{name: "not idempotent: 429 asking too long", post: true, replies: []reply{{status: 429, retryAfter: "120"}},
			want: &Error{Status: 429, Retryable: true, RetryAfter: 2 * time.Minute, Detail: "rate limited (HTTP 429)"},
			text: "example: list things: rate limited (HTTP 429) (retry after 2m0s)", match: []error{errDown}, calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := &replies{queue: tt.replies}
			p, sleeps := testPolicy()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			d := RecordingDoer{Client: GuardRedirects(&http.Client{Transport: rs})}
			e := p.Retry(ctx, "list things", !tt.post, get(d, "https://api.example/things"))
			switch {
			case tt.want == nil && e != nil:
				t.Fatalf("err = %+v", e)
			case tt.want != nil && e == nil:
				t.Fatal("no error")
			case tt.want != nil:
				if e.Op != "list things" || e.Status != tt.want.Status || e.Retryable != tt.want.Retryable ||
					e.RetryAfter != tt.want.RetryAfter || !strings.Contains(e.Detail, tt.want.Detail) {
					t.Errorf("err = %+v, want %+v", e, tt.want)
				}
				if tt.text != "" && e.Text("example") != tt.text {
					t.Errorf("text %q, want %q", e.Text("example"), tt.text)
				}
				if strings.Contains(e.Text("example"), testToken) {
					t.Errorf("credential leaked: %q", e.Text("example"))
				}
			}
			for _, target := range tt.match {
				if !matches(e, target) {
					t.Errorf("%+v does not match %v", e, target)
				}
			}
			for _, target := range tt.noMatch {
				if matches(e, target) {
					t.Errorf("%+v matches %v", e, target)
				}
			}
			if n := rs.count(); n != tt.calls {
				t.Errorf("%d calls, want %d", n, tt.calls)
			}
			if !reflect.DeepEqual(*sleeps, tt.sleeps) {
				t.Errorf("sleeps %v, want %v", *sleeps, tt.sleeps)
			}
		})
	}
}

// matches is errors.Is for an integration's error built on e.
func matches(e *Error, target error) bool {
	return e != nil && (e.Matches(target, sentinels) || errors.Is(e.Cause(), target))
}

func TestRetryUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL + "/things?token=" + testToken
	srv.Close()
	p, sleeps := testPolicy()
	e := p.Retry(context.Background(), "list things", true, get(RecordingDoer{Client: GuardRedirects(nil)}, u))
	if e == nil || !e.Retryable || e.Status != 0 || !strings.HasPrefix(e.Detail, "unreachable: ") {
		t.Fatalf("err = %+v", e)
	}
	if strings.Contains(e.Detail, "GET") || strings.Contains(e.Detail, testToken) {
		t.Errorf("detail %q names the request", e.Detail)
	}
	if want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}; !reflect.DeepEqual(*sleeps, want) {
		t.Errorf("sleeps %v, want %v", *sleeps, want)
	}
}

func TestRetryRequestNotSent(t *testing.T) {
	p, sleeps := testPolicy()
	calls := 0
	e := p.Retry(context.Background(), "list things", true, func(ctx context.Context) error {
		calls++
		return errors.New("bad   request\nwith " + testToken)
	})
	if e == nil || e.Retryable || e.Detail != "request not sent: bad request with [redacted]" {
		t.Fatalf("err = %+v", e)
	}
	if calls != 1 || len(*sleeps) != 0 {
		t.Errorf("%d calls, sleeps %v", calls, *sleeps)
	}
}

func TestRetryCanceledDuringBackoff(t *testing.T) {
	rs := &replies{queue: []reply{{status: 503}}}
	p, _ := testPolicy()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.Sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}
	e := p.Retry(ctx, "list things", true, get(RecordingDoer{Client: &http.Client{Transport: rs}}, "https://api.example/things"))
	if e == nil || e.Detail != "context canceled" || e.Retryable || !errors.Is(e.Cause(), context.Canceled) {
		t.Fatalf("err = %+v", e)
	}
	if n := rs.count(); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

func TestSlowBodyIsATimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"abilities":[`))
		w.(http.Flusher).Flush()
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	p, sleeps := testPolicy()
	e := p.Retry(context.Background(), "list things", true, get(RecordingDoer{Client: srv.Client()}, srv.URL))
	if e == nil || e.Detail != "timed out" || !e.Retryable || len(*sleeps) != 2 {
		t.Fatalf("err = %+v, sleeps %v", e, *sleeps)
	}
}

func TestRedirectElsewhereRefused(t *testing.T) {
	var reached atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Store(true)
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer other.Close()
	redir := httptest.NewServer(http.RedirectHandler(other.URL+"/things", http.StatusFound))
	defer redir.Close()
	p, sleeps := testPolicy()
	e := p.Retry(context.Background(), "list things", true, get(RecordingDoer{Client: GuardRedirects(redir.Client())}, redir.URL))
	if e == nil || e.Detail != "redirect to another host refused" || e.Retryable {
		t.Errorf("err = %+v", e)
	}
	if reached.Load() {
		t.Error("followed a redirect to another host")
	}
	if len(*sleeps) != 0 {
		t.Errorf("sleeps %v", *sleeps)
	}
}

func TestGuardRedirects(t *testing.T) {
	base := &http.Client{Timeout: time.Minute}
	hc := GuardRedirects(base)
	if base.CheckRedirect != nil || hc.Timeout != time.Minute {
		t.Fatal("GuardRedirects must copy the client")
	}
	if GuardRedirects(nil).CheckRedirect == nil {
		t.Fatal("no guard on the plain client")
	}
	req := func(s string) *http.Request {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Request{URL: u}
	}
	via := func(n int, first string) []*http.Request {
		rs := []*http.Request{req(first)}
		for len(rs) < n {
			rs = append(rs, req(first))
		}
		return rs
	}
	tests := []struct {
		to, first string
		hops      int
		ok        bool
	}{
		{"https://acme.example/b", "https://acme.example/a", 1, true},
		{"http://acme.example/b", "http://acme.example/a", 1, true},
		{"https://acme.example/b", "http://acme.example/a", 1, true},
		{"http://acme.example/b", "https://acme.example/a", 1, false},
		{"https://evil.example/b", "https://acme.example/a", 1, false},
		{"https://acme.example:8443/b", "https://acme.example/a", 1, false},
		{"https://acme.example/b", "https://acme.example/a", 4, true},
		{"https://acme.example/b", "https://acme.example/a", 5, false},
	}
	for _, tt := range tests {
		err := hc.CheckRedirect(req(tt.to), via(tt.hops, tt.first))
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, errRedirect)) {
			t.Errorf("redirect %s -> %s after %d: %v", tt.first, tt.to, tt.hops, err)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 6, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "3": 3 * time.Second, "-1": 0, "soon": 0,
		"Thu, 06 Mar 2025 12:00:10 GMT": 10 * time.Second,
		"Thu, 06 Mar 2025 11:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Minute); !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Errorf("Sleep on a canceled context = %v after %v", err, time.Since(start))
	}
}
