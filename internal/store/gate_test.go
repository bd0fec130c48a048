package store

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestWriteGateOrder(t *testing.T) {
	var g writeGate
	ctx := context.Background()
	if held, err := g.enter(ctx, false); !held || err != nil {
		t.Fatal(held, err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	queued := 0
	queue := func(name string, urgent bool) {
		wg.Go(func() {
			if held, err := g.enter(ctx, urgent); !held || err != nil {
				t.Error(held, err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			g.leave()
		})
		// Wait until it is queued, so arrival order is known.
		for countQueued(&g) != queued+1 {
			time.Sleep(time.Millisecond)
		}
		queued++
	}
	queue("normal-1", false)
	queue("normal-2", false)
	queue("urgent-1", true)
	queue("urgent-2", true)
	// A waiter whose context ends leaves the queue without the gate.
	cctx, cancel := context.WithCancel(ctx)
	gaveUp := make(chan error)
	go func() {
		held, err := g.enter(cctx, true)
		if held {
			err = nil
		}
		gaveUp <- err
	}()
	for countQueued(&g) != 5 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-gaveUp; err == nil {
		t.Fatal("enter held the gate or returned nil after its context ended")
	}
	g.leave()
	wg.Wait()
	if want := []string{"urgent-1", "urgent-2", "normal-1", "normal-2"}; !slices.Equal(order, want) {
		t.Errorf("admitted %v, want %v", order, want)
	}
	if g.held || countQueued(&g) != 0 {
		t.Errorf("gate left held=%v with %d queued", g.held, countQueued(&g))
	}
}

func countQueued(g *writeGate) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queues[0]) + len(g.queues[1])
}

func TestWriteGateWaitRunsOut(t *testing.T) {
	g := writeGate{wait: 50 * time.Millisecond}
	ctx := context.Background()
	if held, err := g.enter(ctx, false); !held || err != nil {
		t.Fatal(held, err)
	}
	// A nested write (against InTx's rule) goes on without the gate after
	// the wait, to fail in SQLite as before rather than wait forever.
	held, err := g.enter(ctx, true)
	if held || err != nil {
		t.Fatalf("after the wait: held=%v err=%v, want to go on without the gate", held, err)
	}
	if countQueued(&g) != 0 {
		t.Fatal("the waiter stayed queued")
	}
	g.leave()
	if g.held {
		t.Fatal("the gate stayed held")
	}
}
