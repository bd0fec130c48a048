package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/secretbot/secretbot/internal/crash"
	"github.com/secretbot/secretbot/internal/outbox"
)

// DeliveryError is the only error Deliver returns, and what UploadCSV and
// RemoveFromGroup return when a Slack call fails.
//
// Op is the Slack method ("chat.postMessage", "chat.postEphemeral",
// "chat.update", "conversations.open", "files.getUploadURLExternal",
// "files.completeUploadExternal", "usergroups.users.list",
// "usergroups.users.update"), "response_url", or "upload" (the POST of a
// file's bytes to its upload URL). Code is Slack's error code (e.g.
// "channel_not_found", "expired_url"), or one of "rate_limited",
// "http_<status>", "network", "canceled", "bad_response", "invalid_message",
// "invalid_blocks", "invalid_upload_url", "unknown_error". Retryable says
// whether sending the same message later may work; RetryAfter, when set, is
// how long Slack asked us to wait.
// Err carries the cause, with credentials removed from its text.
type DeliveryError struct {
	Op         string
	Code       string
	Retryable  bool
	RetryAfter time.Duration
	Err        error
}

func (e *DeliveryError) Error() string {
	msg := "slack " + e.Op + ": " + e.Code
	if e.Err != nil && e.Err.Error() != e.Code {
		msg += ": " + e.Err.Error()
	}
	if e.Retryable {
		msg += " (retryable)"
	}
	return msg
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// Expired reports whether a response_url can no longer be used (it lives
// 30 minutes and takes 5 replies). Sending again will not help; the caller
// may fall back to an ephemeral message or a DM.
func (e *DeliveryError) Expired() bool {
	if e.Op != opRespond {
		return false
	}
	switch e.Code {
	case "expired_url", "used_url", "not_found":
		return true
	}
	return false
}

const opRespond = "response_url"

// transientCodes are ok:false codes that mean "try again later".
var transientCodes = map[string]bool{
	"internal_error": true, "fatal_error": true, "service_unavailable": true,
	"request_timeout": true, "ratelimited": true, "rate_limited": true,
}

// Deliver sends one outbox message and returns the ts Slack gave the posted
// or updated message ("" for respond), so callers can update it later.
// A dm goes to chat.postMessage with the user ID as channel. When m.Blocks
// is empty, m.Text is rendered as section blocks.
//
// Every error is a *DeliveryError. Slack may have accepted a message even
// when the answer was lost (network error): delivery is at least once.
func (c *Client) Deliver(ctx context.Context, m outbox.Message) (ts string, err error) {
	op, err := opFor(m)
	if err != nil {
		return "", err
	}
	blocks, err := messageBlocks(op, m)
	if err != nil {
		return "", err
	}
	if op == opRespond {
		crash.Point("slack.respond.before")
		err = c.respond(ctx, m, blocks)
		crash.Point("slack.respond.after")
		return "", err
	}
	opts := []slackgo.MsgOption{slackgo.MsgOptionText(m.Text, false), slackgo.MsgOptionBlocks(blocks...)}
	if m.Thread != "" && m.Kind != outbox.Update {
		opts = append(opts, slackgo.MsgOptionTS(m.Thread))
	}
	if m.Kind != outbox.Update {
		// A security bot's messages should not fetch link previews.
		opts = append(opts, slackgo.MsgOptionDisableLinkUnfurl(), slackgo.MsgOptionDisableMediaUnfurl())
	}
	switch m.Kind {
	case outbox.Post, outbox.DM:
		crash.Point("slack.post_message.before")
		_, ts, err = c.api.PostMessageContext(ctx, m.Target, opts...)
		crash.Point("slack.post_message.after")
	case outbox.Ephemeral:
		crash.Point("slack.post_ephemeral.before")
		ts, err = c.api.PostEphemeralContext(ctx, m.Target, m.User, opts...)
		crash.Point("slack.post_ephemeral.after")
	case outbox.Update:
		crash.Point("slack.update_message.before")
		_, ts, _, err = c.api.UpdateMessageContext(ctx, m.Target, m.TS, opts...)
		crash.Point("slack.update_message.after")
	}
	if err != nil {
		return "", c.deliveryError(op, err)
	}
	return ts, nil
}

// opFor checks m has what its kind needs and names the Slack method.
func opFor(m outbox.Message) (string, error) {
	bad := func(op, why string) (string, error) {
		return "", &DeliveryError{Op: op, Code: "invalid_message", Err: errors.New(why)}
	}
	var op string
	switch m.Kind {
	case outbox.Respond:
		op = opRespond
	case outbox.Post, outbox.DM:
		op = "chat.postMessage"
	case outbox.Ephemeral:
		op = "chat.postEphemeral"
		if m.User == "" {
			return bad(op, "ephemeral message without a user")
		}
	case outbox.Update:
		op = "chat.update"
		if m.TS == "" {
			return bad(op, "update without the ts of the message to change")
		}
	default:
		return bad("deliver", fmt.Sprintf("unknown message kind %q", m.Kind))
	}
	if m.Target == "" {
		return bad(op, "message without a target")
	}
	if strings.TrimSpace(m.Text) == "" && len(m.Blocks) == 0 {
		return bad(op, "message without text or blocks")
	}
	return op, nil
}

// messageBlocks decodes m.Blocks (a JSON array, or an object holding one
// under "blocks"), or renders m.Text when there are none.
func messageBlocks(op string, m outbox.Message) ([]slackgo.Block, error) {
	raw := m.Blocks
	if len(raw) == 0 || string(raw) == "null" {
		return textBlocks(m.Text), nil
	}
	if trimmed := strings.TrimSpace(string(raw)); strings.HasPrefix(trimmed, "{") {
		var wrapper struct {
			Blocks json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal(raw, &wrapper); err != nil || len(wrapper.Blocks) == 0 {
			return nil, &DeliveryError{Op: op, Code: "invalid_blocks", Err: errors.New("blocks are neither a JSON array nor an object with \"blocks\"")}
		}
		raw = wrapper.Blocks
	}
	var bs slackgo.Blocks
	if err := json.Unmarshal(raw, &bs); err != nil {
		return nil, &DeliveryError{Op: op, Code: "invalid_blocks", Err: fmt.Errorf("decoding blocks: %w", err)}
	}
	if len(bs.BlockSet) == 0 {
		return textBlocks(m.Text), nil
	}
	return bs.BlockSet, nil
}

// deliveryError sorts a slack-go error into retryable or not.
func (c *Client) deliveryError(op string, err error) *DeliveryError {
	var (
		rl *slackgo.RateLimitedError
		sc slackgo.StatusCodeError
		se slackgo.SlackErrorResponse
	)
	de := &DeliveryError{Op: op, Err: c.scrub(err)}
	switch {
	case errors.As(err, &rl):
		de.Code, de.Retryable, de.RetryAfter = "rate_limited", true, rl.RetryAfter
	case errors.As(err, &sc):
		de.Code, de.Retryable = fmt.Sprintf("http_%d", sc.Code), retryableStatus(sc.Code)
	case errors.As(err, &se):
		de.Code, de.Retryable = c.redact(se.Err), transientCodes[se.Err]
		de.Err = nil // the code says it all
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// Our side gave up (shutdown, timeout): the message is still owed.
		de.Code, de.Retryable = "canceled", true
	default:
		// Transport failures, and answers that were not Slack JSON (a proxy's
		// HTML page, a cut connection): Slack may answer next time.
		de.Code, de.Retryable = "network", true
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			de.Code = "bad_response"
		}
	}
	return de
}

func retryableStatus(code int) bool {
	return code >= 500 || code == 429 || code == 408
}
