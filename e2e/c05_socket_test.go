package e2e

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/harness"
)

// Slack connection faults, issue 5 item 5 (F05 covers the plain reconnects;
// here envelopes are in flight when the fault comes). For each: no envelope
// is processed twice, none is lost (an unacked one comes again, as Slack
// redelivers, and is processed once), and the bot reconnects.

// c05World is a bot whose fake Slack redelivers unacked envelopes after a
// second, and the commands sent to it.
type c05World struct {
	*harness.Harness
	t    *testing.T
	sent []c05Command
}

type c05Command struct {
	who      harness.Person
	env, url string
}

// whoami sends n whoami commands from different people without waiting.
func (w *c05World) whoami(n int) {
	people := []harness.Person{harness.Alice, harness.Bob, harness.Sam, harness.Carol, harness.Dave, harness.Eve}
	for i := range n {
		p := people[(len(w.sent)+i)%len(people)]
		env, url := w.Slack.SendSlashCommand(p.Slack, "whoami")
		w.sent = append(w.sent, c05Command{who: p, env: env, url: url})
	}
}

// answeredOnce waits until every command sent so far is answered, then
// checks each was answered exactly once, by its own person's identity, and
// stored once.
func (w *c05World) answeredOnce(what string) {
	w.t.Helper()
	if !until(time.Minute, func() bool {
		for _, c := range w.sent {
			if len(w.Slack.Responses(c.url)) == 0 {
				return false
			}
		}
		return true
	}) {
		missing := 0
		for _, c := range w.sent {
			if len(w.Slack.Responses(c.url)) == 0 {
				missing++
			}
		}
		w.t.Fatalf("%s: %d of %d commands never answered (lost)", what, missing, len(w.sent))
	}
	time.Sleep(time.Second) // let a double processing show itself
	db := openDB(w.t, w.DBPath)
	for _, c := range w.sent {
		rs := w.Slack.Responses(c.url)
		if len(rs) != 1 {
			w.t.Errorf("%s: %s's command %s answered %d times, want once", what, c.who.Name, c.env, len(rs))
		} else if !strings.Contains(rs[0].Text, c.who.Email) {
			w.t.Errorf("%s: %s's answer is not theirs: %s", what, c.who.Name, rs[0].Text)
		}
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM inbox WHERE envelope_id = ?`, c.env).Scan(&n); err != nil || n != 1 {
			w.t.Errorf("%s: envelope %s stored %d times (%v), want once", what, c.env, n, err)
		}
	}
	if n := auditCount(w.t, w.Harness, "whoami"); n != len(w.sent) {
		w.t.Errorf("%s: %d whoami audit events for %d commands", what, n, len(w.sent))
	}
}

// reconnected waits for the bot's connection number n and readiness.
func (w *c05World) reconnected(what string, n int) {
	w.t.Helper()
	if err := w.Slack.WaitOpened(n, 30*time.Second); err != nil {
		w.t.Fatalf("%s: the bot did not reconnect: %v", what, err)
	}
	if err := w.Slack.WaitConnections(1, 30*time.Second); err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
	if err := w.WaitReady(); err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

// holdWriteLock takes the database's write lock for d, as a slow disk or a
// long transaction would: the bot's envelope inserts, so its acks, wait.
func holdWriteLock(t *testing.T, path string, d time.Duration) <-chan struct{} {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(d)
		_, _ = conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
		db.Close()
	}()
	return released
}

func TestC05_ConnectionFaults(t *testing.T) {
	h := harness.Start(t, harness.Options{Slack: []fakeslack.Option{
		fakeslack.WithRedelivery(time.Second), fakeslack.WithDisconnectGrace(2 * time.Second)},
		// A few people send hundreds of commands here: this test is about
		// the socket, so the per-person command limit (C07) is lifted.
		EditConfig: func(doc map[string]any) {
			doc["limits"] = map[string]any{"commands_per_user": 10000}
		}})
	w := &c05World{Harness: h, t: t}
	opened := 1

	for _, reason := range []string{"refresh_requested", "warning"} {
		t.Run(reason, func(t *testing.T) {
			w.t = t
			// Envelopes before and right after the disconnect message: some
			// reach the old connection as it closes, the rest wait for the new.
			w.whoami(10)
			h.Slack.Disconnect(reason)
			w.whoami(10)
			opened++
			w.reconnected(reason, opened)
			w.answeredOnce(reason)
		})
	}

	t.Run("dropped without a close frame", func(t *testing.T) {
		w.t = t
		w.whoami(10)
		h.Slack.DropConnection()
		w.whoami(10)
		opened++
		w.reconnected("dropped socket", opened)
		w.answeredOnce("dropped socket")
	})

	t.Run("half-open", func(t *testing.T) {
		w.t = t
		// Nothing crosses the connection any more, pongs included; the
		// envelopes sent meanwhile are lost in it. The bot must notice the
		// silence, reconnect, and get them again.
		h.Slack.Stall()
		before := h.Slack.Redelivered()
		w.whoami(10)
		opened++
		w.reconnected("half-open socket", opened)
		w.answeredOnce("half-open socket")
		if h.Slack.Redelivered() == before {
			t.Error("no envelope was redelivered: the stall lost nothing?")
		}
	})

	t.Run("slow ack", func(t *testing.T) {
		w.t = t
		// The store is slow: acks come after the fake's 1 s redelivery, so
		// every envelope comes at least twice.
		before := h.Slack.Redelivered()
		released := holdWriteLock(t, h.DBPath, 2500*time.Millisecond)
		from := len(w.sent)
		w.whoami(10)
		<-released
		w.answeredOnce("slow ack")
		if h.Slack.Redelivered() == before {
			t.Error("no envelope was redelivered although acks waited for the store")
		}
		for _, c := range w.sent[from:] {
			if _, _, err := h.Slack.WaitAck(c.env, wait); err != nil {
				t.Errorf("the latest delivery of %s was not acked: %v", c.env, err)
			}
		}
	})

	t.Run("sender faster than the reader", func(t *testing.T) {
		w.t = t
		// 300 envelopes written as fast as the fake can: the bot reads them
		// at its own pace; whatever is late is redelivered.
		w.whoami(300)
		w.answeredOnce("burst")
	})

	t.Run("repeated hello", func(t *testing.T) {
		w.t = t
		for range 3 {
			h.Slack.SendHello()
		}
		w.whoami(5)
		w.answeredOnce("repeated hello")
		if n := h.Slack.Opened(); n != opened {
			t.Errorf("%d connections opened after repeated hellos, want %d (no reconnect)", n, opened)
		}
		if err := h.WaitReady(); err != nil {
			t.Error(err)
		}
	})
	w.t = t
	dups := metric(t, h, "secretbot_envelopes_duplicate_total")
	t.Logf("C05: %d commands, %d redeliveries by the fake, %v recognised as duplicates, %d connections",
		len(w.sent), h.Slack.Redelivered(), dups, h.Slack.Opened())
}
