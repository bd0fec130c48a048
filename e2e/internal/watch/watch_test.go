package watch

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	var n Notifier
	var v atomic.Int32
	go func() {
		time.Sleep(20 * time.Millisecond)
		v.Store(1)
		n.Fire()
	}()
	if !Until(&n, time.Second, func() bool { return v.Load() == 1 }) {
		t.Error("change not seen")
	}
	start := time.Now()
	if Until(&n, 100*time.Millisecond, func() bool { return false }) || time.Since(start) < 100*time.Millisecond {
		t.Error("timeout not honoured")
	}
}
