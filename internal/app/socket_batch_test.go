package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"
)

func queued(ids ...string) chan received {
	q := make(chan received, len(ids))
	for _, id := range ids {
		q <- received{env: envelope{Type: "slash_commands", EnvelopeID: id}, at: time.Now()}
	}
	close(q)
	return q
}

// What waits in the queue is stored in one call (one transaction) and acked
// in arrival order, each ack before its after; what could not be stored is
// not acked.
func TestAckLoopStoresWhatWaitsAsOneBatch(t *testing.T) {
	var batches [][]string
	var events []string
	s := &socket{log: slog.New(slog.NewTextHandler(io.Discard, nil)), acked: func(string, time.Duration) {}}
	s.handle = func(_ context.Context, envs []envelope) []accepted {
		var ids []string
		out := make([]accepted, len(envs))
		for i, e := range envs {
			ids = append(ids, e.EnvelopeID)
			if e.EnvelopeID == "e2" {
				out[i].err = errors.New("disk full")
				continue
			}
			id := e.EnvelopeID
			out[i].after = func() { events = append(events, "after "+id) }
		}
		batches = append(batches, ids)
		return out
	}
	write := func(v any) error {
		events = append(events, fmt.Sprint("ack ", v.(map[string]any)["envelope_id"]))
		return nil
	}
	if err := s.ackLoop(context.Background(), queued("e1", "e2", "e3"), write); err != nil {
		t.Fatal(err)
	}
	if len(batches) != 1 || !slices.Equal(batches[0], []string{"e1", "e2", "e3"}) {
		t.Errorf("batches %v, want one of e1, e2, e3", batches)
	}
	if want := []string{"ack e1", "after e1", "ack e3", "after e3"}; !slices.Equal(events, want) {
		t.Errorf("events %v, want %v", events, want)
	}
}

// Once an ack cannot be written the connection is gone: nothing more is
// acked, the queue is drained and the error returned; but what was stored
// is still handed to a worker (it may be claimed for one already).
func TestAckLoopStopsAtAFailedAck(t *testing.T) {
	var afters, writes int
	s := &socket{log: slog.New(slog.NewTextHandler(io.Discard, nil)), acked: func(string, time.Duration) {}}
	s.handle = func(_ context.Context, envs []envelope) []accepted {
		out := make([]accepted, len(envs))
		for i := range out {
			out[i].after = func() { afters++ }
		}
		return out
	}
	write := func(any) error { writes++; return errors.New("broken pipe") }
	err := s.ackLoop(context.Background(), queued("e1", "e2"), write)
	if err == nil || writes != 1 || afters != 2 {
		t.Fatalf("err %v after %d writes and %d afters, want an error after 1 write and both stored handed on", err, writes, afters)
	}
}
