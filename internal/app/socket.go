package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The Socket Mode client is our own, on gorilla/websocket (already a
// dependency of slack-go): slack-go's treats a `link_disabled` disconnect like
// any other and reconnects forever, and hides the envelope before the ack.

// envelope is one Socket Mode frame.
type envelope struct {
	Type                   string          `json:"type"`
	EnvelopeID             string          `json:"envelope_id"`
	Payload                json.RawMessage `json:"payload"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	RetryAttempt           int             `json:"retry_attempt"`
	RetryReason            string          `json:"retry_reason"`
	Reason                 string          `json:"reason"` // disconnect only
}

// FatalSlackError ends the bot: reconnecting cannot help.
type FatalSlackError struct{ Reason string }

func (e *FatalSlackError) Error() string {
	if e.Reason == "link_disabled" {
		return "Slack disabled Socket Mode for this app (link_disabled): turn Socket Mode back on in the app settings, then restart"
	}
	return fmt.Sprintf("Slack refused the bot's credentials (%s): check SLACK_APP_TOKEN and SLACK_BOT_TOKEN", e.Reason)
}

// fatalReasons are Slack answers after which retrying cannot succeed.
var fatalReasons = []string{"invalid_auth", "not_authed", "token_revoked", "account_inactive", "link_disabled", "token_expired", "not_allowed_token_type"}

func fatalReason(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	msg := err.Error()
	for _, r := range fatalReasons {
		if strings.Contains(msg, r) {
			return r, true
		}
	}
	return "", false
}

// socket keeps one Socket Mode connection open, reconnecting as needed.
type socket struct {
	open   func(ctx context.Context) (string, error) // apps.connections.open
	dialer *websocket.Dialer
	log    *slog.Logger
	// handle stores the envelope and returns the ack payload (nil for none)
	// and a function to run once the ack is written (nil for none). An error
	// means it could not be stored: the envelope is not acked, so Slack shows
	// the user an error (or redelivers an event) instead of the bot silently
	// dropping it.
	handle func(ctx context.Context, env envelope) (json.RawMessage, func(), error)
	// pingEvery is how often the client pings; a connection silent for
	// two intervals is considered dead (a socket dropped without a close).
	pingEvery time.Duration
	// acked is told each envelope's type and the time from read to ack.
	acked func(typ string, d time.Duration)

	connected atomic.Bool
	stopping  atomic.Bool
}

// run connects and serves until ctx ends (nil) or Slack says stop (fatal).
func (s *socket) run(ctx context.Context) error {
	backoff := newBackoff(500*time.Millisecond, 30*time.Second)
	for ctx.Err() == nil {
		reason, err := s.session(ctx)
		s.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if r, fatal := fatalReason(err); fatal {
			return &FatalSlackError{Reason: r}
		}
		if reason == "link_disabled" {
			return &FatalSlackError{Reason: reason}
		}
		if err != nil {
			wait := backoff.next()
			s.log.Warn("socket mode connection lost; reconnecting", "err", err, "retry_in", wait.String())
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			continue
		}
		// Slack asked us to reconnect (refresh_requested, warning): at once.
		s.log.Info("socket mode reconnecting at Slack's request", "reason", reason)
		backoff.reset()
	}
	return nil
}

// session runs one connection. It returns the disconnect reason Slack gave,
// or an error.
func (s *socket) session(ctx context.Context) (string, error) {
	url, err := s.open(ctx)
	if err != nil {
		return "", fmt.Errorf("apps.connections.open: %w", err)
	}
	conn, resp, err := s.dialer.DialContext(ctx, url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		// The URL is single-use and carries a ticket: never log it.
		return "", errors.New("websocket dial failed")
	}
	defer conn.Close()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wmu sync.Mutex // gorilla allows one writer at a time
	write := func(v any) error {
		wmu.Lock()
		defer wmu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return conn.WriteJSON(v)
	}
	// Envelopes are stored and acked concurrently, so one slow store (or a
	// modal's validation, up to validationBudget) does not hold back the
	// acks of those behind it. On leaving, the acks in flight are written
	// first: after a disconnect message the connection still works.
	var serving sync.WaitGroup
	defer serving.Wait()
	slots := make(chan struct{}, maxEnvelopesInFlight)
	// The client pings every pingEvery and a healthy peer answers before
	// the next ping; any frame counts. A connection silent for two intervals
	// is half-open (dropped without a close): the read fails, we reconnect.
	deadline := 2 * s.pingEvery
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(deadline)) })
	conn.SetPingHandler(func(data string) error {
		_ = conn.SetReadDeadline(time.Now().Add(deadline))
		wmu.Lock()
		defer wmu.Unlock()
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	go func() { // client pings, so a half-open connection is noticed
		t := time.NewTicker(s.pingEvery)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				_ = conn.Close() // unblocks the reader on shutdown
				return
			case <-t.C:
				wmu.Lock()
				err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second))
				wmu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()

	for {
		// Set before each read: time spent storing envelopes is not
		// silence from Slack.
		_ = conn.SetReadDeadline(time.Now().Add(deadline))
		_, data, err := conn.ReadMessage()
		received := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return "", nil
			}
			return "", fmt.Errorf("websocket read: %w", err)
		}
		var env envelope
		if err := json.Unmarshal(data, &env); err != nil {
			s.log.Warn("unparsable socket mode frame", "bytes", len(data))
			continue
		}
		switch env.Type {
		case "hello":
			// Slack may repeat hello on one connection; it changes nothing.
			s.connected.Store(true)
			s.log.Info("socket mode connected")
		case "disconnect":
			s.log.Info("slack asked to disconnect", "reason", env.Reason)
			return env.Reason, nil
		default:
			if env.EnvelopeID == "" {
				continue
			}
			if s.stopping.Load() {
				continue // shutting down: leave it unacked so Slack can retry elsewhere
			}
			slots <- struct{}{} // at most maxEnvelopesInFlight; then the reader waits
			serving.Go(func() {
				defer func() { <-slots }()
				if err := s.serve(ctx, env, received, write); err != nil {
					// The connection is broken: closing it ends the reader,
					// which reconnects; the envelope, stored but unacked,
					// comes again and is acked as a duplicate.
					s.log.Warn("ack not written; reconnecting", "envelope_id", env.EnvelopeID, "err", err)
					_ = conn.Close()
				}
			})
		}
	}
}

// maxEnvelopesInFlight bounds the envelopes being stored at once on one
// connection.
const maxEnvelopesInFlight = 16

// serve stores one envelope and acks it. Only a failed ack write is
// returned: an envelope that could not be stored is logged and left
// unacked, so Slack shows the user an error (or redelivers an event)
// instead of the bot silently dropping it.
func (s *socket) serve(ctx context.Context, env envelope, received time.Time, write func(any) error) error {
	payload, after, err := s.handle(ctx, env)
	if err != nil {
		s.log.Error("envelope not stored; leaving it unacked", "envelope_id", env.EnvelopeID, "type", env.Type, "err", err)
		return nil
	}
	ack := map[string]any{"envelope_id": env.EnvelopeID}
	if payload != nil {
		ack["payload"] = payload
	}
	if err := write(ack); err != nil {
		return fmt.Errorf("ack write: %w", err)
	}
	s.acked(env.Type, time.Since(received))
	if after != nil {
		after()
	}
	return nil
}

type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	// Full jitter keeps replicas from reconnecting in lockstep.
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }
