// Package watch lets test helpers wait for a fake server's state to change
// without polling in a tight loop.
package watch

import (
	"sync"
	"time"
)

// Notifier wakes every waiter when something changed.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// C returns a channel closed by the next Fire.
func (n *Notifier) C() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// Fire wakes the current waiters.
func (n *Notifier) Fire() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// Until calls check each time n fires (and at least every 50ms, for state
// that changes by the clock) until it returns true or timeout passes.
// It reports whether check succeeded.
func Until(n *Notifier, timeout time.Duration, check func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		// Take the channel before checking so a change between the two is not missed.
		c := n.C()
		if check() {
			return true
		}
		select {
		case <-c:
		case <-tick.C:
		case <-deadline.C:
			return check()
		}
	}
}
