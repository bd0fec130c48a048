package store

import (
	"context"
	"slices"
	"sync"
	"time"
)

// writeGate admits this process's write transactions one at a time, in
// arrival order, urgent ones first. Without it, writers contend inside
// SQLite, whose busy handler polls with sleeps of up to 100 ms: a writer
// waits far longer than the lock is held, and an unlucky one can lose for
// seconds. Under load that was the envelope insert an ack waits for, past
// Slack's 3-second limit. Queued here, each writer starts the moment the
// previous one ends; busy_timeout still covers other processes.
//
// A writer that has waited busyWait (the busy_timeout) goes on without the
// gate, to SQLite's own locking: so a transaction that, against InTx's
// rule, writes through the DB from inside another fails as it did before
// the gate (SQLITE_BUSY) instead of waiting forever.
type writeGate struct {
	mu     sync.Mutex
	held   bool
	queues [2][]chan struct{} // urgent, then normal; FIFO each
	wait   time.Duration      // 0: busyWait
}

const busyWait = 5 * time.Second // as busy_timeout in dsnParams

// enter waits for the gate, until ctx ends or the wait runs out. held
// reports whether the caller has the gate (and must leave it); without it
// the caller goes on unless err is set.
func (g *writeGate) enter(ctx context.Context, urgent bool) (held bool, err error) {
	g.mu.Lock()
	if !g.held {
		g.held = true
		g.mu.Unlock()
		return true, nil
	}
	q := 1
	if urgent {
		q = 0
	}
	ch := make(chan struct{})
	g.queues[q] = append(g.queues[q], ch)
	wait := g.wait
	if wait == 0 {
		wait = busyWait
	}
	g.mu.Unlock()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ch:
		return true, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
	}
	g.mu.Lock()
	if i := slices.Index(g.queues[q], ch); i >= 0 {
		g.queues[q] = slices.Delete(g.queues[q], i, i+1)
		g.mu.Unlock()
		return false, err
	}
	g.mu.Unlock()
	if err != nil {
		g.leave() // handed the gate just as ctx ended: pass it on
		return false, err
	}
	return true, nil // handed the gate just as the wait ran out
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
