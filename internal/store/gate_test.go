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
	if err := g.enter(ctx, false); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	queued := 0
	queue := func(name string, urgent bool) {
		wg.Go(func() {
			if err := g.enter(ctx, urgent); err != nil {
				t.Error(err)
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
	go func() { gaveUp <- g.enter(cctx, true) }()
	for countQueued(&g) != 5 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-gaveUp; err == nil {
		t.Fatal("enter returned nil after its context ended")
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
