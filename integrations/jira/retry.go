package jira

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	maxAttempts    = 3
	baseBackoff    = 200 * time.Millisecond
	maxRetryAfter  = 5 * time.Second // longer waits are the caller's to schedule
	attemptTimeout = 15 * time.Second
)

// record is what one attempt learnt about its last HTTP exchange. The library
// drops the status headers and flattens transport errors to text, so the
// recording doer keeps them, keyed by the attempt's context (race-free).
type record struct {
	status     int
	retryAfter string
	err        error
	timedOut   bool // the attempt's own deadline passed (perhaps while reading the body)
}

type recKey struct{}

// recordingDoer is the library's HTTPClient.
type recordingDoer struct{ hc *http.Client }

func (d recordingDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.hc.Do(req)
	if rec, ok := req.Context().Value(recKey{}).(*record); ok {
		rec.err, rec.status, rec.retryAfter = err, 0, ""
		if resp != nil {
			rec.status = resp.StatusCode
			rec.retryAfter = resp.Header.Get("Retry-After")
		}
	}
	return resp, err
}

// guardRedirects copies hc (nil means a plain client) so that it refuses a
// redirect to another host or to plain http: the auth transport would send
// the credentials along.
func guardRedirects(hc *http.Client) *http.Client {
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

// do runs fn up to maxAttempts times while it fails in a retryable way,
// waiting a short backoff or the server's Retry-After (up to maxRetryAfter).
func (c *Client) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	return c.retry(ctx, op, true, fn)
}

// retry is do; when idempotent is false only a 429 (refused, so nothing
// happened) is retried: a timeout or 5xx may have applied the change, and the
// caller's outbox decides whether to try again.
func (c *Client) retry(ctx context.Context, op string, idempotent bool, fn func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		rec := &record{}
		actx, cancel := context.WithTimeout(context.WithValue(ctx, recKey{}, rec), c.attemptTimeout)
		err := fn(actx)
		rec.timedOut = errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			return nil
		}
		e := c.classify(ctx, op, rec, err)
		if !e.Retryable || attempt >= maxAttempts || e.RetryAfter > maxRetryAfter ||
			(!idempotent && e.Status != http.StatusTooManyRequests) {
			return e
		}
		wait := baseBackoff << (attempt - 1)
		if e.RetryAfter > 0 {
			wait = e.RetryAfter
		}
		if err := c.sleep(ctx, wait); err != nil {
			return &Error{Op: op, Detail: err.Error(), cause: err}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
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
