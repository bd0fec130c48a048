package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/secretbot/secretbot/internal/outbox"
)

// respondBody is what a response_url accepts.
type respondBody struct {
	ResponseType    string          `json:"response_type"`
	Text            string          `json:"text"`
	Blocks          []slackgo.Block `json:"blocks"`
	ReplaceOriginal bool            `json:"replace_original"`
}

// respond posts m to the response_url in m.Target. The bot token is never
// sent there: the URL came in a payload and needs no credential.
func (c *Client) respond(ctx context.Context, m outbox.Message, blocks []slackgo.Block) error {
	fail := func(code string, retry bool, err error) error {
		return &DeliveryError{Op: opRespond, Code: code, Retryable: retry, Err: err}
	}
	u, err := url.Parse(m.Target)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fail("invalid_message", false, errors.New("target is not an http(s) response_url"))
	}
	body, err := json.Marshal(respondBody{ResponseType: "ephemeral", Text: m.Text, Blocks: blocks, ReplaceOriginal: m.ReplaceOriginal})
	if err != nil {
		return fail("invalid_blocks", false, fmt.Errorf("encoding blocks: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fail("invalid_message", false, c.scrub(err))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fail("canceled", true, c.scrub(err))
		}
		return fail("network", true, c.scrub(err))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	code := responseCode(raw)

	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return &DeliveryError{Op: opRespond, Code: "rate_limited", Retryable: true,
			RetryAfter: retryAfter(resp.Header.Get("Retry-After"), c.now())}
	case resp.StatusCode == http.StatusNotFound:
		// Slack answers 404 for an expired or unknown response_url.
		if code == "" {
			code = "not_found"
		}
		return fail(code, false, nil)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return fail(fmt.Sprintf("http_%d", resp.StatusCode), true, nil)
	case resp.StatusCode >= 300:
		if code == "" {
			code = fmt.Sprintf("http_%d", resp.StatusCode)
		}
		return fail(code, transientCodes[code], nil)
	case code != "":
		// 200 with {"ok":false,"error":"used_url"} or a bare "expired_url".
		return fail(code, transientCodes[code], nil)
	}
	return nil
}

// responseCode extracts an error code from a response_url answer, which is
// JSON ({"ok":false,"error":"expired_url"}) or a bare word; "" means none.
func responseCode(raw []byte) string {
	var r struct {
		OK    *bool  `json:"ok"`
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &r) == nil {
		if r.OK != nil && !*r.OK {
			if r.Error == "" {
				return "unknown_error"
			}
			return safeCode(r.Error)
		}
		return ""
	}
	switch s := strings.TrimSpace(string(raw)); s {
	case "expired_url", "used_url", "invalid_blocks", "no_text", "invalid_payload", "channel_not_found", "no_service":
		return s
	}
	return ""
}

// safeCode keeps an error code to the characters Slack codes use, so
// whatever a server sends cannot carry text into our errors.
func safeCode(s string) string {
	if len(s) > 64 || strings.TrimLeft(s, "abcdefghijklmnopqrstuvwxyz_0123456789") != "" {
		return "unknown_error"
	}
	return s
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
