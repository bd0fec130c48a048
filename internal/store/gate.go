package store

import (
	"context"
	"slices"
	"sync"
)

// writeGate admits this process's write transactions one at a time, in
// arrival order, urgent ones first. Without it, writers contend inside
// SQLite, whose busy handler polls with sleeps of up to 100 ms: a writer
// waits far longer than the lock is held, and an unlucky one can lose for
// seconds. Under load that was the envelope insert an ack waits for, past
// Slack's 3-second limit. Queued here, each writer starts the moment the
// previous one ends; busy_timeout still covers other processes.
type writeGate struct {
	mu     sync.Mutex
	held   bool
	queues [2][]chan struct{} // urgent, then normal; FIFO each
}

// enter waits for the gate (or ctx). Each successful enter needs one leave.
func (g *writeGate) enter(ctx context.Context, urgent bool) error {
	g.mu.Lock()
	if !g.held {
		g.held = true
		g.mu.Unlock()
		return nil
	}
	q := 1
	if urgent {
		q = 0
	}
	ch := make(chan struct{})
	g.queues[q] = append(g.queues[q], ch)
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		if i := slices.Index(g.queues[q], ch); i >= 0 {
			g.queues[q] = slices.Delete(g.queues[q], i, i+1)
			g.mu.Unlock()
			return ctx.Err()
		}
		g.mu.Unlock()
		g.leave() // handed the gate just as ctx ended: pass it on
		return ctx.Err()
	}
}

// leave hands the gate to the next waiter, or opens it.
func (g *writeGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for q := range g.queues {
		if len(g.queues[q]) > 0 {
			ch := g.queues[q][0]
			g.queues[q] = g.queues[q][1:]
			close(ch) // held stays true: the gate passes to ch's owner
			return
		}
	}
	g.held = false
}
