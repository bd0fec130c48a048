//go:build crashpoints

package crash

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

var (
	at    = os.Getenv("SECRETBOT_CRASH_AT")
	trace = os.Getenv("SECRETBOT_CRASH_TRACE")

	traceMu   sync.Mutex
	traceSeen = map[string]bool{}
)

// Point kills the process with SIGKILL when name is the chosen point, the way
// a power cut would: no deferred function, no flush, no goodbye. With
// SECRETBOT_CRASH_TRACE set to a file, each point passed is appended to it
// once (so a test can tell which points a flow reaches).
func Point(name string) {
	if trace != "" {
		record(name)
	}
	if name == at {
		fmt.Fprintf(os.Stderr, "crashpoint %s reached\n", name)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

func record(name string) {
	traceMu.Lock()
	defer traceMu.Unlock()
	if traceSeen[name] {
		return
	}
	traceSeen[name] = true
	f, err := os.OpenFile(trace, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	fmt.Fprintln(f, name)
	f.Close()
}

// Panic panics when name is the point chosen with SECRETBOT_PANIC_AT, so a
// test can prove a handler's panic is contained.
func Panic(name string) {
	if name == os.Getenv("SECRETBOT_PANIC_AT") {
		panic("crashpoint panic at " + name)
	}
}
