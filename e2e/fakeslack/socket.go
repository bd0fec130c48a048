package fakeslack

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/secretbot/secretbot/e2e/internal/watch"
)

// Envelope types.
const (
	TypeSlashCommands = "slash_commands"
	TypeInteractive   = "interactive"
	TypeEventsAPI     = "events_api"
)

// Ack is one acknowledgement the bot sent over the websocket.
type Ack struct {
	EnvelopeID string
	// Payload is the ack's optional "payload" (nil when absent).
	Payload json.RawMessage
	// Attempt is the envelope's retry_attempt the ack answered.
	Attempt int
	// Latency runs from writing the envelope to reading the ack.
	Latency time.Duration
	At      time.Time
	Conn    int
	// Size is the frame's length in bytes.
	Size int
}

// envelope is one Socket Mode request; raw, when set, is sent verbatim.
type envelope struct {
	EnvelopeID             string          `json:"envelope_id"`
	Type                   string          `json:"type"`
	Payload                json.RawMessage `json:"payload"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	RetryAttempt           int             `json:"retry_attempt"`
	RetryReason            string          `json:"retry_reason"`

	raw    []byte
	sentAt time.Time
	conn   int // the connection it was last written to
}

func (e *envelope) frame() []byte {
	if e.raw != nil {
		return e.raw
	}
	b, _ := json.Marshal(e)
	return b
}

type wsConn struct {
	id        int
	c         *websocket.Conn
	writeMu   sync.Mutex
	closeOnce sync.Once
	closed    chan struct{}
	// stalled: the connection is half-open. Nothing written to it arrives,
	// nothing it sends (acks, pongs) is read, no ping goes out; it ends
	// only when the client closes it.
	stalled atomic.Bool
}

func (w *wsConn) write(b []byte) error {
	if w.stalled.Load() {
		return nil // lost in the network
	}
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	_ = w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return w.c.WriteMessage(websocket.TextMessage, b)
}

// close sends a close frame, then closes the TCP connection.
func (w *wsConn) close() {
	w.closeOnce.Do(func() {
		_ = w.c.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
		close(w.closed)
		_ = w.c.Close()
	})
}

// drop closes the TCP connection without a close frame.
func (w *wsConn) drop() {
	w.closeOnce.Do(func() {
		close(w.closed)
		_ = w.c.NetConn().Close()
	})
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.tickets[ticket]
	delete(s.tickets, ticket) // each URL works once
	if s.closed || !valid {
		s.mu.Unlock()
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	conn := &wsConn{c: c, closed: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.close()
		return
	}
	s.opened++
	conn.id = s.opened
	s.conns[conn.id] = conn
	s.mu.Unlock()
	defer func() {
		conn.close()
		s.mu.Lock()
		delete(s.conns, conn.id)
		s.mu.Unlock()
		if s.cfg.redeliverAfter > 0 {
			s.redeliverUnacked(false, func(env *envelope) bool { return env.conn == conn.id })
		}
		s.changed.Fire()
	}()

	hello := fmt.Sprintf(`{"type":"hello","num_connections":%d,"debug_info":{"host":%q},"connection_info":{"app_id":%q}}`,
		s.Connections(), fakeSlackHost, DefaultAppID)
	if conn.write([]byte(hello)) != nil {
		return
	}
	s.changed.Fire()
	s.flushPending()

	if s.cfg.pingInterval > 0 {
		s.wg.Add(1)
		go s.pinger(conn)
	}
	c.SetPingHandler(func(data string) error {
		if conn.stalled.Load() {
			return nil // half-open: the ping never arrived
		}
		err := c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		if conn.stalled.Load() {
			continue // half-open: the ack never arrives
		}
		s.recordAck(conn.id, data)
	}
}

func (s *Server) pinger(conn *wsConn) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.pingInterval)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-conn.closed:
			return
		case <-s.done:
			return
		case <-t.C:
			if conn.stalled.Load() {
				continue
			}
			if conn.c.WriteControl(websocket.PingMessage, fmt.Appendf(nil, "ping-%d", n), time.Now().Add(time.Second)) != nil {
				return
			}
		}
	}
}

func (s *Server) recordAck(connID int, data []byte) {
	now := s.now()
	var a struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(data, &a) != nil || a.EnvelopeID == "" {
		return
	}
	s.mu.Lock()
	ack := Ack{EnvelopeID: a.EnvelopeID, Payload: a.Payload, At: now, Conn: connID, Size: len(data)}
	if env, ok := s.envs[a.EnvelopeID]; ok {
		ack.Attempt = env.RetryAttempt
		if !env.sentAt.IsZero() { // zero: a redelivery is queued; this answers an earlier one
			ack.Latency = now.Sub(env.sentAt)
		}
	}
	if len(data) >= maxSocketFrame {
		// Slack silently drops frames of 20 KB or more.
		s.dropped = append(s.dropped, ack)
	} else {
		s.acks[a.EnvelopeID] = append(s.acks[a.EnvelopeID], ack)
	}
	s.mu.Unlock()
	s.changed.Fire()
}

// Connections reports how many websockets are open.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Opened reports how many websockets were ever accepted.
func (s *Server) Opened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// WaitConnections waits until exactly n websockets are open.
func (s *Server) WaitConnections(n int, timeout time.Duration) error {
	if !watch.Until(&s.changed, timeout, func() bool { return s.Connections() == n }) {
		return fmt.Errorf("fakeslack: %d connections open after %v, want %d", s.Connections(), timeout, n)
	}
	return nil
}

// WaitOpened waits until at least n websockets were ever accepted.
func (s *Server) WaitOpened(n int, timeout time.Duration) error {
	if !watch.Until(&s.changed, timeout, func() bool { return s.Opened() >= n }) {
		return fmt.Errorf("fakeslack: %d connections opened after %v, want %d", s.Opened(), timeout, n)
	}
	return nil
}

// SendEnvelope pushes a raw frame as is (it may be malformed on purpose).
// It returns the frame's envelope_id when it has one. With no connection
// open the frame waits for the next one.
func (s *Server) SendEnvelope(raw json.RawMessage) string {
	var head struct {
		EnvelopeID   string `json:"envelope_id"`
		RetryAttempt int    `json:"retry_attempt"`
	}
	_ = json.Unmarshal(raw, &head)
	env := &envelope{EnvelopeID: head.EnvelopeID, RetryAttempt: head.RetryAttempt, raw: append([]byte(nil), raw...)}
	s.enqueue(env)
	return head.EnvelopeID
}

// Send wraps payload (marshalled to JSON) in a new envelope of type typ and
// pushes it; it returns the envelope id.
func (s *Server) Send(typ string, payload any, acceptsResponsePayload bool) string {
	b, err := json.Marshal(payload)
	if err != nil {
		panic(fmt.Sprintf("fakeslack: payload does not marshal: %v", err))
	}
	s.mu.Lock()
	id := fmt.Sprintf("%08x-5e2b-4c1d-9a7f-%012x", rand.Uint32(), s.nextID())
	s.mu.Unlock()
	s.enqueue(&envelope{EnvelopeID: id, Type: typ, Payload: b, AcceptsResponsePayload: acceptsResponsePayload})
	return id
}

// Redeliver sends the envelope again with retry_attempt+1 and
// retry_reason "timeout", as Slack does when an ack did not come in time.
func (s *Server) Redeliver(envID string) error {
	s.mu.Lock()
	env, ok := s.envs[envID]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("fakeslack: no envelope %q", envID)
	}
	if env.raw != nil {
		s.mu.Unlock()
		return fmt.Errorf("fakeslack: envelope %q was sent raw; send it again with SendEnvelope", envID)
	}
	again := *env
	again.RetryAttempt++
	again.RetryReason = "timeout"
	s.mu.Unlock()
	s.enqueue(&again)
	return nil
}

func (s *Server) enqueue(env *envelope) {
	s.mu.Lock()
	if env.EnvelopeID != "" {
		if _, seen := s.envs[env.EnvelopeID]; !seen {
			s.envOrder = append(s.envOrder, env.EnvelopeID)
		}
		s.envs[env.EnvelopeID] = env
	}
	s.pendingFrames = append(s.pendingFrames, env)
	s.mu.Unlock()
	s.flushPending()
}

// flushPending writes queued envelopes, each to one open connection chosen
// at random, as Slack does with several connections.
func (s *Server) flushPending() {
	for {
		s.mu.Lock()
		if len(s.pendingFrames) == 0 || len(s.conns) == 0 || s.closed {
			s.mu.Unlock()
			return
		}
		env := s.pendingFrames[0]
		s.pendingFrames = s.pendingFrames[1:]
		ids := make([]int, 0, len(s.conns))
		for id := range s.conns {
			ids = append(ids, id)
		}
		conn := s.conns[ids[rand.IntN(len(ids))]]
		env.sentAt = s.now()
		env.conn = conn.id
		frame := env.frame()
		s.mu.Unlock()
		if conn.write(frame) != nil {
			s.mu.Lock()
			s.pendingFrames = append([]*envelope{env}, s.pendingFrames...)
			s.mu.Unlock()
			conn.drop()
			return
		}
		s.changed.Fire()
	}
}

// Pending reports how many envelopes wait for a connection.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pendingFrames)
}

// WaitAck waits for the ack of the envelope's latest delivery and returns
// its payload (nil without one) and the time from send to ack.
func (s *Server) WaitAck(envID string, timeout time.Duration) (json.RawMessage, time.Duration, error) {
	var got Ack
	ok := watch.Until(&s.changed, timeout, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		env, known := s.envs[envID]
		for _, a := range s.acks[envID] {
			if !known || a.Attempt == env.RetryAttempt {
				got = a
				return true
			}
		}
		return false
	})
	if !ok {
		return nil, 0, fmt.Errorf("fakeslack: envelope %s not acked within %v", envID, timeout)
	}
	return got.Payload, got.Latency, nil
}

// Acks returns every ack received for an envelope, in order.
func (s *Server) Acks(envID string) []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks[envID]...)
}

// DroppedAcks returns acks of 20 KB or more, which Slack would have dropped.
func (s *Server) DroppedAcks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.dropped...)
}

// Disconnect sends {"type":"disconnect","reason":reason} on every open
// websocket and closes those the client leaves open after the grace period.
func (s *Server) Disconnect(reason string) {
	frame := fmt.Appendf(nil, `{"type":"disconnect","reason":%q,"debug_info":{"host":%q}}`, reason, fakeSlackHost)
	for _, c := range s.openConns() {
		_ = c.write(frame)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func(c *wsConn) {
			defer s.wg.Done()
			t := time.NewTimer(s.cfg.disconnectGrace)
			defer t.Stop()
			select {
			case <-t.C:
				c.close()
			case <-c.closed:
			case <-s.done:
			}
		}(c)
	}
}

// DropConnection closes every websocket's TCP connection without a close
// frame, like a network failure.
func (s *Server) DropConnection() {
	for _, c := range s.openConns() {
		c.drop()
	}
}

func (s *Server) openConns() []*wsConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*wsConn, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c)
	}
	return out
}

// SendHello sends another hello on every open websocket, as Slack sometimes
// does on a connection it already greeted.
func (s *Server) SendHello() {
	frame := fmt.Appendf(nil, `{"type":"hello","num_connections":%d,"debug_info":{"host":%q},"connection_info":{"app_id":%q}}`,
		s.Connections(), fakeSlackHost, DefaultAppID)
	for _, c := range s.openConns() {
		_ = c.write(frame)
	}
	s.changed.Fire()
}

// Stall makes every open websocket half-open, like a connection lost
// without a close: frames sent to it vanish, its acks and pongs are never
// read, no ping goes out. It ends when the client closes it.
func (s *Server) Stall() {
	for _, c := range s.openConns() {
		c.stalled.Store(true)
	}
}

// redeliverLoop sends again every envelope unacked after redeliverAfter.
func (s *Server) redeliverLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.redeliverAfter / 4)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			cutoff := s.now().Add(-s.cfg.redeliverAfter)
			s.redeliverUnacked(true, func(env *envelope) bool { return env.sentAt.Before(cutoff) })
		}
	}
}

// maxRetries is how often Slack retries an unacked envelope.
const maxRetries = 3

// redeliverUnacked sends again the envelopes that were written, never
// acked, are not waiting to be written, and match; with limited, only
// those retried fewer than maxRetries times (a connection that closed gets
// its unacked envelopes sent again however often they were).
func (s *Server) redeliverUnacked(limited bool, match func(*envelope) bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	queued := map[string]bool{}
	for _, env := range s.pendingFrames {
		queued[env.EnvelopeID] = true
	}
	var again []*envelope
	for _, id := range s.envOrder {
		env := s.envs[id]
		if env.raw != nil || env.sentAt.IsZero() || queued[id] || len(s.acks[id]) > 0 ||
			(limited && env.RetryAttempt >= maxRetries) || !match(env) {
			continue
		}
		next := *env
		next.RetryAttempt++
		next.RetryReason = "timeout"
		next.sentAt, next.conn = time.Time{}, 0
		s.envs[id] = &next
		s.pendingFrames = append(s.pendingFrames, &next)
		again = append(again, &next)
	}
	s.redelivered += len(again)
	s.mu.Unlock()
	if len(again) > 0 {
		s.flushPending()
	}
}

// Redelivered reports how many deliveries WithRedelivery repeated.
func (s *Server) Redelivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.redelivered
}
