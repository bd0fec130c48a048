//go:build !crashpoints

// Package crash names the points where a crash test may kill the process.
// In normal builds Point does nothing and costs nothing; the e2e tests build
// the binary with -tags crashpoints and pick a point with SECRETBOT_CRASH_AT.
package crash

// Point marks a named place in the code.
func Point(name string) {}

// Panic marks a place where a test may make a handler panic.
func Panic(name string) {}
