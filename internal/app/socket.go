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

	"github.com/secretbot/secretbot/internal/crash"
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
	// handle stores a batch of envelopes (in one transaction) and returns,
	// for each, the ack payload (nil for none), a function to run once the
	// ack is written (nil for none), or an error: an envelope that could not
	// be stored is not acked, so Slack shows the user an error (or
	// redelivers an event) instead of the bot silently dropping it.
	handle func(ctx context.Context, envs []envelope) []accepted
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
	// A connection that cannot be written is done: closing it at once ends
	// the reader, which reconnects, instead of reading envelopes on a
	// connection that can no longer ack them.
	write := func(v any) error {
		wmu.Lock()
		defer wmu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		err := conn.WriteJSON(v)
		if err != nil {
			_ = conn.Close()
		}
		return err
	}
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
					_ = conn.Close() // as for a failed ack: end the session
					return
				}
			}
		}
	}()

	// Interactive envelopes in flight; on leaving, their acks are written
	// first (after a disconnect message the connection still works).
	var serving sync.WaitGroup
	defer serving.Wait()
	slots := make(chan struct{}, maxInteractiveInFlight)

	// The reader hands envelopes to the acker and reads on while they are
	// stored: whatever arrives during one commit is stored by the next, in
	// one transaction (group commit), and acked in arrival order.
	queue := make(chan received, maxBatch)
	ackerDone := make(chan error, 1)
	go func() {
		err := s.ackLoop(ctx, queue, write)
		if err != nil {
			cancel() // closes the connection, which ends the reader
		}
		ackerDone <- err
	}()
	finish := func() error { // acks what was read, then reports the acker's error
		close(queue)
		return <-ackerDone
	}
	for {
		// Set before each read: time spent storing envelopes is not
		// silence from Slack.
		_ = conn.SetReadDeadline(time.Now().Add(deadline))
		_, data, err := conn.ReadMessage()
		readAt := time.Now()
		if err != nil {
			ackErr := finish()
			if ctx.Err() != nil {
				return "", nil
			}
			if ackErr != nil {
				return "", ackErr
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
			if err := finish(); err != nil {
				return "", err
			}
			return env.Reason, nil
		default:
			if env.EnvelopeID == "" {
				continue
			}
			if s.stopping.Load() {
				continue // shutting down: leave it unacked so Slack can retry elsewhere
			}
			if env.Type == "interactive" {
				// A submitted modal is validated before its ack (up to
				// validationBudget): stored and acked on its own, so it
				// never holds back the commands batched behind it.
				slots <- struct{}{}
				serving.Go(func() {
					defer func() { <-slots }()
					if err := s.ackBatch(ctx, []received{{env: env, at: readAt}}, write); err != nil {
						// write closed the connection: the reader ends and
						// reconnects. The envelope is stored, so it is
						// processed; if Slack sends it again it is acked
						// as a duplicate.
						s.log.Warn("ack not written; reconnecting", "envelope_id", env.EnvelopeID, "err", err)
					}
				})
				continue
			}
			queue <- received{env: env, at: readAt}
		}
	}
}

// maxBatch bounds how many envelopes one inbox transaction stores.
const maxBatch = 128

// received is an envelope and when it was read.
type received struct {
	env envelope
	at  time.Time
}

// ackLoop stores what the reader queued, a batch at a time (everything
// waiting, up to maxBatch), and acks each stored envelope in order. After
// an ack cannot be written (write closed the connection) it only drains the
// queue: what was stored is processed even though its ack was lost, and what
// was not stored is left to Slack (events come again; a command or click
// shows the person an error).
func (s *socket) ackLoop(ctx context.Context, queue <-chan received, write func(any) error) error {
	var failed error
	batch := make([]received, 0, maxBatch)
	for r := range queue {
		if failed != nil {
			continue
		}
		batch = append(batch[:0], r)
	more:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-queue:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		failed = s.ackBatch(ctx, batch, write)
	}
	return failed
}

// ackBatch stores batch in one transaction and acks each stored envelope,
// in order; it returns the error of an ack that could not be written. Every
// stored envelope is handed on (its after), acked or not: it is processed
// either way, and Slack's redelivery of an unacked one is a duplicate.
func (s *socket) ackBatch(ctx context.Context, batch []received, write func(any) error) error {
	envs := make([]envelope, len(batch))
	for i, r := range batch {
		envs[i] = r.env
	}
	var failed error
	for i, a := range s.handle(ctx, envs) {
		env := envs[i]
		if a.err != nil {
			s.log.Error("envelope not stored; leaving it unacked", "envelope_id", env.EnvelopeID, "type", env.Type, "err", a.err)
			continue
		}
		if failed == nil {
			ack := map[string]any{"envelope_id": env.EnvelopeID}
			if a.ack != nil {
				ack["payload"] = a.ack
			}
			if err := write(ack); err != nil {
				failed = fmt.Errorf("ack write: %w", err)
			} else {
				s.acked(env.Type, time.Since(batch[i].at))
			}
		}
		if a.after != nil {
			if failed == nil {
				crash.Point("inbox.acked")
			}
			a.after()
		}
	}
	return failed
}

// maxInteractiveInFlight bounds the interactive envelopes being stored (and
// validated) at once on one connection; then the reader waits.
const maxInteractiveInFlight = 16

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
