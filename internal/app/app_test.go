package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/secretbot/secretbot/handlers"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/store"
)

func TestSubcommandsAndExitCodes(t *testing.T) {
	env := func(string) string { return "" }
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, ExitOK, "secretbot dev"},
		{[]string{"--help"}, ExitOK, "Usage:"},
		{[]string{"check", "--help"}, ExitOK, "-config PATH"},
		{[]string{"run", "-h"}, ExitOK, "-config PATH"},
		{[]string{"audit", "verify", "--help"}, ExitOK, "--checkpoint"},
		{[]string{"frobnicate"}, ExitUsage, ""},
		{[]string{"audit"}, ExitUsage, ""},
		{[]string{"audit", "verify", "--checkpoint", "nonsense"}, ExitUsage, ""},
		{[]string{"run", "extra"}, ExitUsage, ""},
		{[]string{"run", "--config", "/nonexistent/secretbot.yaml"}, ExitUsage, ""},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		err := Run(context.Background(), tt.args, env, &out, &errOut)
		if got := ExitCode(err); got != tt.code {
			t.Errorf("%v: exit %d, want %d (err %v)", tt.args, got, tt.code, err)
		}
		if !strings.Contains(out.String(), tt.out) {
			t.Errorf("%v: stdout lacks %q:\n%s", tt.args, tt.out, out.String())
		}
		if strings.Contains(errOut.String(), "goroutine ") {
			t.Errorf("%v: stack trace on stderr", tt.args)
		}
	}
	if ExitCode(&FatalSlackError{Reason: "invalid_auth"}) != ExitSlack {
		t.Error("fatal Slack error must map to its own status")
	}
}

func TestSanitize(t *testing.T) {
	b, _ := sanitize(json.RawMessage(`{"token":"verif-test-1","user_id":"U1"}`))
	got := string(b)
	if strings.Contains(got, "verif-test-1") || !strings.Contains(got, `"user_id":"U1"`) {
		t.Errorf("sanitize = %s", got)
	}
	click := `{"type":"block_actions","message":{"ts":"1.2","text":"vault unwrap hvs.TESTwrap","blocks":[{"text":"hvs.TESTwrap"}]},"container":{"message_ts":"1.2"}}`
	b, _ = sanitize(json.RawMessage(click))
	got = string(b)
	if strings.Contains(got, "hvs.TESTwrap") || !strings.Contains(got, `"message":{"ts":"1.2"}`) || !strings.Contains(got, `"message_ts":"1.2"`) {
		t.Errorf("a clicked message must be reduced to its ts: %s", got)
	}
	modal := `{"type":"view_submission","view":{"callback_id":"rotate_value_modal","state":{"values":{"value":{"value":{"type":"plain_text_input","value":"sk_test_pasted"}},"x":{"x":{"value":"kept"}}}}}}`
	b, v := sanitize(json.RawMessage(modal))
	if v != "sk_test_pasted" || strings.Contains(string(b), "sk_test_pasted") || !strings.Contains(string(b), "kept") {
		t.Errorf("a pasted secret must be returned, not stored: %s (value %q)", b, v)
	}
	if b, _ := sanitize(json.RawMessage(`[1]`)); string(b) != `[1]` {
		t.Errorf("non-object payload changed: %s", b)
	}
}

func TestRetryDelayGrowsAndCaps(t *testing.T) {
	if retryDelay(0) != time.Second || retryDelay(3) != 8*time.Second || retryDelay(50) != 5*time.Minute {
		t.Errorf("retryDelay: %v %v %v", retryDelay(0), retryDelay(3), retryDelay(50))
	}
}

// socketServer is a minimal Socket Mode peer: hello, the frames given, and
// the acks it reads.
func socketServer(t *testing.T, frames ...string) (url string, acks chan map[string]any) {
	acks = make(chan map[string]any, 10)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		go func() {
			for {
				var ack map[string]any
				if c.ReadJSON(&ack) != nil {
					return
				}
				acks <- ack
			}
		}()
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","num_connections":1}`))
		for _, f := range frames {
			time.Sleep(50 * time.Millisecond) // let each ack come back in order
			_ = c.WriteMessage(websocket.TextMessage, []byte(f))
		}
		time.Sleep(100 * time.Millisecond)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), acks
}

// testSocket serves handle one envelope at a time (the batches are then
// whatever arrived together).
func testSocket(url string, handle func(context.Context, envelope) (json.RawMessage, func(), error)) *socket {
	return &socket{
		open:   func(context.Context) (string, error) { return url, nil },
		dialer: websocket.DefaultDialer,
		log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		handle: func(ctx context.Context, envs []envelope) []accepted {
			out := make([]accepted, len(envs))
			for i, env := range envs {
				out[i].ack, out[i].after, out[i].err = handle(ctx, env)
			}
			return out
		},
		pingEvery: time.Second,
		acked:     func(string, time.Duration) {},
	}
}

func TestSocketAcksAfterStoringAndStopsOnLinkDisabled(t *testing.T) {
	url, acks := socketServer(t,
		`{"type":"slash_commands","envelope_id":"e1","payload":{"command":"/secrets"}}`,
		`{"type":"slash_commands","envelope_id":"e2","payload":{}}`,
		`{"type":"disconnect","reason":"link_disabled"}`)
	var mu sync.Mutex // envelopes are served concurrently
	var order []string
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	s := testSocket(url, func(_ context.Context, env envelope) (json.RawMessage, func(), error) {
		note("stored " + env.EnvelopeID)
		if env.EnvelopeID == "e2" {
			return nil, nil, errors.New("disk full") // not stored: must not be acked
		}
		return nil, func() { note("after ack " + env.EnvelopeID) }, nil
	})
	err := s.run(context.Background())
	var fe *FatalSlackError
	if !errors.As(err, &fe) || fe.Reason != "link_disabled" {
		t.Fatalf("run = %v, want a fatal link_disabled error", err)
	}
	select {
	case ack := <-acks:
		if ack["envelope_id"] != "e1" {
			t.Errorf("first ack = %v", ack)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stored envelope was not acked")
	}
	select {
	case ack := <-acks:
		t.Errorf("an envelope that could not be stored was acked: %v", ack)
	default:
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, ",") != "stored e1,after ack e1,stored e2" {
		t.Errorf("order = %v", order)
	}
}

func TestFatalOpenErrors(t *testing.T) {
	for _, reason := range []string{"invalid_auth", "token_revoked", "account_inactive", "not_authed"} {
		s := testSocket("", nil)
		s.open = func(context.Context) (string, error) { return "", errors.New(reason) }
		var fe *FatalSlackError
		if err := s.run(context.Background()); !errors.As(err, &fe) || fe.Reason != reason {
			t.Errorf("%s: run = %v", reason, err)
		}
	}
	// Anything else is retried until the context ends.
	s := testSocket("", nil)
	tries := 0
	s.open = func(context.Context) (string, error) { tries++; return "", errors.New("connection refused") }
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := s.run(ctx); err != nil || tries < 2 {
		t.Errorf("transient errors: run = %v after %d tries", err, tries)
	}
}

func TestPastedValueHeldInMemoryOnly(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir()+"/bot.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	in := newInbox(4)
	in.db, in.log, in.metrics, in.now = db, slog.New(slog.NewTextHandler(io.Discard, nil)), newAppMetrics(), time.Now
	in.handlers = &handlers.Handlers{}
	env := envelope{Type: "interactive", EnvelopeID: "e1", Payload: json.RawMessage(
		`{"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"rotate_value_modal","state":{"values":{"value":{"value":{"type":"plain_text_input","value":"sk_test_pasted"}}}}}}`)}
	// Validation needs no Slack here: the value is present, the modal valid.
	in.handlers.Config = &config.Config{}
	if err := in.accept(ctx, []envelope{env})[0].err; err != nil {
		t.Fatal(err)
	}
	ids, _ := db.InboxPending(ctx, time.Now().Add(time.Minute), 10)
	e, err := db.InboxGet(ctx, ids[0])
	if err != nil || strings.Contains(string(e.Payload), "sk_test_pasted") {
		t.Fatalf("stored payload %s (%v)", e.Payload, err)
	}
	if v, ok := in.values.Load("e1"); !ok || v != "sk_test_pasted" {
		t.Fatalf("value not held for the worker: %v", v)
	}
	// A redelivery while the first is pending keeps the held value.
	if err := in.accept(ctx, []envelope{env})[0].err; err != nil {
		t.Fatal(err)
	}
	if _, ok := in.values.Load("e1"); !ok {
		t.Fatal("a redelivery dropped the pending entry's value")
	}
	// Once consumed, a late redelivery must not leave the value in memory.
	in.values.Delete("e1")
	if err := in.accept(ctx, []envelope{env})[0].err; err != nil {
		t.Fatal(err)
	}
	if _, ok := in.values.Load("e1"); ok {
		t.Fatal("a late redelivery left a secret in memory")
	}
}

func TestSocketSlowEnvelopeDoesNotHoldBackOthers(t *testing.T) {
	url, acks := socketServer(t,
		`{"type":"interactive","envelope_id":"slow","payload":{}}`,
		`{"type":"slash_commands","envelope_id":"quick","payload":{}}`)
	release := make(chan struct{})
	s := testSocket(url, func(_ context.Context, env envelope) (json.RawMessage, func(), error) {
		if env.EnvelopeID == "slow" {
			<-release // a modal's validation, or a store waiting for its lock
		}
		return nil, nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	select {
	case ack := <-acks:
		if ack["envelope_id"] != "quick" {
			t.Fatalf("first ack = %v, want the quick envelope's", ack)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the quick envelope waited for the slow one")
	}
	close(release)
	select {
	case ack := <-acks:
		if ack["envelope_id"] != "slow" {
			t.Fatalf("second ack = %v", ack)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the slow envelope was never acked")
	}
}

func TestSocketHalfOpenConnectionReplaced(t *testing.T) {
	// The peer says hello, then neither reads nor writes: no pong ever
	// comes, as when a connection is lost without a close.
	var mu sync.Mutex
	conns := 0
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		mu.Lock()
		conns++
		mu.Unlock()
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello"}`))
		<-r.Context().Done()
	}))
	defer srv.Close()
	s := testSocket("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	s.pingEvery = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := conns
		mu.Unlock()
		if n >= 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the half-open connection was never replaced")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
