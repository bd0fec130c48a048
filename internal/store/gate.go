package store

import (
	"context"
	"slices"
	"sync"
)

// writeGate lets one write transaction of this process at a time reach
// SQLite, and hands the turn over in order, urgent waiters first.
//
// Without it, concurrent writers collide on SQLite's write lock and the
// loser waits in the busy handler, which sleeps 1, 2, 5, 10 ... 100 ms
// between tries whatever happens meanwhile: the socket reader's inbox write,
// on which every ack waits, slept tens of milliseconds behind the workers.
// With it a waiter is woken the moment the lock is free, and the inbox
// write (urgent) goes before the workers' queued ones. The busy handler
// remains for other processes (a CLI, a second replica).
type writeGate struct {
	mu     sync.Mutex
	held   bool
	urgent []chan struct{}
	normal []chan struct{}
}

// acquire waits for the turn. On a nil error the caller must release.
func (g *writeGate) acquire(ctx context.Context, urgent bool) error {
	g.mu.Lock()
	if !g.held {
		g.held = true
		g.mu.Unlock()
		return nil
	}
	turn := make(chan struct{})
	if urgent {
		g.urgent = append(g.urgent, turn)
	} else {
		g.normal = append(g.normal, turn)
	}
	g.mu.Unlock()
	select {
	case <-turn:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	if i := slices.Index(g.urgent, turn); i >= 0 {
		g.urgent = slices.Delete(g.urgent, i, i+1)
		g.mu.Unlock()
		return ctx.Err()
	}
	if i := slices.Index(g.normal, turn); i >= 0 {
		g.normal = slices.Delete(g.normal, i, i+1)
		g.mu.Unlock()
		return ctx.Err()
	}
	g.mu.Unlock()
	// The turn was handed over as ctx ended: pass it on.
	g.release()
	return ctx.Err()
}

// release hands the turn to the next waiter, urgent ones first.
func (g *writeGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	var next chan struct{}
	switch {
	case len(g.urgent) > 0:
		next, g.urgent = g.urgent[0], g.urgent[1:]
	case len(g.normal) > 0:
		next, g.normal = g.normal[0], g.normal[1:]
	default:
		g.held = false
		return
	}
	close(next) // held stays true: the turn passes directly
}
