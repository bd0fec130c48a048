package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// waitQueued waits until the gate has n waiters.
func waitQueued(t *testing.T, g *writeGate, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		g.mu.Lock()
		got := len(g.urgent) + len(g.normal)
		g.mu.Unlock()
		if got == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the gate never had %d waiters", n)
}

func TestWriteGateUrgentFirstThenInOrder(t *testing.T) {
	var g writeGate
	ctx := context.Background()
	if err := g.acquire(ctx, false); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	enter := func(name string, urgent bool) {
		wg.Go(func() {
			if err := g.acquire(ctx, urgent); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			g.release()
		})
	}
	enter("normal-1", false)
	waitQueued(t, &g, 1)
	enter("normal-2", false)
	waitQueued(t, &g, 2)
	enter("urgent-1", true)
	waitQueued(t, &g, 3)
	enter("urgent-2", true)
	waitQueued(t, &g, 4)
	g.release()
	wg.Wait()
	want := []string{"urgent-1", "urgent-2", "normal-1", "normal-2"}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
	// Free again: the next acquire does not wait.
	if err := g.acquire(ctx, false); err != nil {
		t.Fatal(err)
	}
	g.release()
}

func TestWriteGateGiveUpWhileWaiting(t *testing.T) {
	var g writeGate
	if err := g.acquire(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.acquire(ctx, true) }()
	waitQueued(t, &g, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire = %v, want canceled", err)
	}
	waitQueued(t, &g, 0)
	g.release()
	// The gate is free: nobody holds a turn the canceled waiter left behind.
	got := make(chan error, 1)
	go func() { got <- g.acquire(context.Background(), false) }()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the gate stayed held after a waiter gave up")
	}
}

// Many writers at once never see SQLite's busy handler: each waits for the
// gate instead, and every transaction commits.
func TestConcurrentWritersAllCommit(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			_, _, err := db.InboxPut(ctx, InboxEntry{DedupKey: "env-" + string(rune('A'+i%26)) + string(rune('a'+i/26)),
				EnvelopeID: "e", Type: "slash_commands", Payload: []byte(`{}`)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ids, err := db.InboxPending(ctx, time.Now(), 1000)
	if err != nil || len(ids) != 64 {
		t.Fatalf("%d pending entries (%v), want 64", len(ids), err)
	}
}
