package httpx

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	maxAttempts   = 3
	baseBackoff   = 200 * time.Millisecond
	maxRetryAfter = 5 * time.Second // longer waits are the caller's to schedule

	// AttemptTimeout is the usual time one attempt may take.
	AttemptTimeout = 15 * time.Second
)

// Policy is what Retry needs from an integration's client. Clients build it
// per call from their fields, so tests may swap Now and Sleep.
type Policy struct {
	Now            func() time.Time
	Sleep          func(context.Context, time.Duration) error // Sleep in production
	AttemptTimeout time.Duration
	Secrets        *Secrets // removed from every detail
	Wording        Wording
	// Message is the server's own explanation in a library error for a
	// non-2xx reply, "" when there is none. It is cleaned before use.
	Message func(err error) string
}

// record is what one attempt learnt about its last HTTP exchange. The
// libraries drop the status headers and flatten transport errors to text, so
// the recording doer keeps them, keyed by the attempt's context (race-free).
type record struct {
	status     int
	retryAfter string
	err        error
	timedOut   bool // the attempt's own deadline passed (perhaps while reading the body)
}

type recKey struct{}

// RecordingDoer is the HTTP client an integration hands its library: it
// sends through Client and keeps what Retry's classification needs.
type RecordingDoer struct{ Client *http.Client }

// Do sends req through d.Client.
func (d RecordingDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.Client.Do(req)
	if rec, ok := req.Context().Value(recKey{}).(*record); ok {
		rec.err, rec.status, rec.retryAfter = err, 0, ""
		if resp != nil {
			rec.status = resp.StatusCode
			rec.retryAfter = resp.Header.Get("Retry-After")
		}
	}
	return resp, err
}

// GuardRedirects copies hc (nil means a plain client) so that it refuses a
// redirect to another host or to plain http: an auth transport would send
// the credentials along.
func GuardRedirects(hc *http.Client) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if len(via) >= 5 || req.URL.Host != first.Host || (first.Scheme == "https" && req.URL.Scheme != "https") {
			return errRedirect
		}
		return nil
	}
	return &c
}

// Retry runs fn, whose requests must go through a RecordingDoer, up to three
// times while it fails in a retryable way, waiting a short backoff (200ms,
// then 400ms) or the server's Retry-After (up to 5s; a longer wait is
// returned at once). Each attempt gets p.AttemptTimeout. When idempotent is
// false only a 429 (refused, so nothing happened) is retried: a timeout or
// 5xx may have applied the change, and the caller decides whether to try
// again. The result is nil or the last attempt's *Error.
func (p *Policy) Retry(ctx context.Context, op string, idempotent bool, fn func(ctx context.Context) error) *Error {
	for attempt := 1; ; attempt++ {
		rec := &record{}
		actx, cancel := context.WithTimeout(context.WithValue(ctx, recKey{}, rec), p.AttemptTimeout)
		err := fn(actx)
		rec.timedOut = errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			return nil
		}
		e := p.classify(ctx, op, rec, err)
		if !e.Retryable || attempt >= maxAttempts || e.RetryAfter > maxRetryAfter ||
			(!idempotent && e.Status != http.StatusTooManyRequests) {
			return e
		}
		wait := baseBackoff << (attempt - 1)
		if e.RetryAfter > 0 {
			wait = e.RetryAfter
		}
		if err := p.Sleep(ctx, wait); err != nil {
			return &Error{Op: op, Detail: err.Error(), cause: err}
		}
	}
}

// Sleep waits d or until ctx is done.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
}
