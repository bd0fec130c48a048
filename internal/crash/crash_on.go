//go:build crashpoints

package crash

import (
	"fmt"
	"os"
	"syscall"
)

var at = os.Getenv("SECRETBOT_CRASH_AT")

// Point kills the process with SIGKILL when name is the chosen point, the way
// a power cut would: no deferred function, no flush, no goodbye.
func Point(name string) {
	if name == at {
		fmt.Fprintf(os.Stderr, "crashpoint %s reached\n", name)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

// Panic panics when name is the point chosen with SECRETBOT_PANIC_AT, so a
// test can prove a handler's panic is contained.
func Panic(name string) {
	if name == os.Getenv("SECRETBOT_PANIC_AT") {
		panic("crashpoint panic at " + name)
	}
}
