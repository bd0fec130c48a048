package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// benchTB lets the e2e harness, the fakes and vaulttest (which all take a
// testing.TB, as vault.NewTestCluster does) run in this plain program.
//
// Why a shim and not `go test`: the benchmark runs the bot as a child
// process and times it from outside; as a program it has its own flags,
// prints as it goes, and no test timeout or -count caching gets in the way.
// testing.TB has an unexported method, so the interface is embedded (nil)
// to satisfy it; every exported method is defined here, so the nil is
// never called.
type benchTB struct {
	testing.TB

	root    string // every TempDir is under it; removed by cleanup
	verbose bool

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	n        int
	ctx      context.Context
	cancel   context.CancelFunc
}

// tbFatal is the panic FailNow raises; run recovers it.
type tbFatal struct{ msg string }

func newTB(root string, verbose bool) *benchTB {
	ctx, cancel := context.WithCancel(context.Background())
	return &benchTB{root: root, verbose: verbose, ctx: ctx, cancel: cancel}
}

// run calls fn and turns a Fatal inside it into an error.
func (t *benchTB) run(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(tbFatal)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%s", f.msg)
		}
	}()
	fn()
	return nil
}

// cleanup runs the registered cleanups, last first, as testing does.
func (t *benchTB) cleanup() {
	t.cancel()
	for {
		t.mu.Lock()
		if len(t.cleanups) == 0 {
			t.mu.Unlock()
			return
		}
		f := t.cleanups[len(t.cleanups)-1]
		t.cleanups = t.cleanups[:len(t.cleanups)-1]
		t.mu.Unlock()
		func() {
			defer func() {
				if r := recover(); r != nil {
					fmt.Fprintf(os.Stderr, "bench: a cleanup failed: %v\n", r)
				}
			}()
			f()
		}()
	}
}

func (t *benchTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *benchTB) Error(args ...any) {
	t.Log(args...)
	t.Fail()
}

func (t *benchTB) Errorf(format string, args ...any) {
	t.Logf(format, args...)
	t.Fail()
}

func (t *benchTB) Fail() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
}

func (t *benchTB) FailNow() {
	t.Fail()
	panic(tbFatal{msg: "setup failed (see the messages above)"})
}

func (t *benchTB) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *benchTB) Fatal(args ...any) {
	t.Fail()
	panic(tbFatal{msg: fmt.Sprint(args...)})
}

func (t *benchTB) Fatalf(format string, args ...any) {
	t.Fail()
	panic(tbFatal{msg: fmt.Sprintf(format, args...)})
}

func (t *benchTB) Helper() {}

func (t *benchTB) Log(args ...any) {
	if t.verbose {
		fmt.Fprintln(os.Stderr, append([]any{"bench:"}, args...)...)
	}
}

func (t *benchTB) Logf(format string, args ...any) {
	if t.verbose {
		fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	}
}

func (t *benchTB) Name() string { return "bench" }

func (t *benchTB) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	if err := os.Setenv(key, value); err != nil {
		t.Fatalf("setenv %s: %v", key, err)
	}
	t.Cleanup(func() {
		if had {
			_ = os.Setenv(key, old)
		} else {
			_ = os.Unsetenv(key)
		}
	})
}

func (t *benchTB) Chdir(dir string) {
	old, err := os.Getwd()
	if err != nil {
		t.Fatalf("chdir: %v", err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatalf("chdir: %v", err)
	}
	t.Cleanup(func() { _ = os.Chdir(old) })
}

// Skip has no meaning here: what the harness would skip, the bench cannot do.
func (t *benchTB) Skip(args ...any) { t.Fatal(append([]any{"skipped: "}, args...)...) }
func (t *benchTB) SkipNow()         { t.Fatal("skipped") }
func (t *benchTB) Skipf(format string, args ...any) {
	t.Fatalf("skipped: "+format, args...)
}
func (t *benchTB) Skipped() bool { return false }

func (t *benchTB) TempDir() string {
	t.mu.Lock()
	t.n++
	n := t.n
	t.mu.Unlock()
	dir, err := os.MkdirTemp(t.root, fmt.Sprintf("tb%03d-", n))
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	return dir
}

func (t *benchTB) ArtifactDir() string         { return t.TempDir() }
func (t *benchTB) Attr(key, value string)      {}
func (t *benchTB) Context() context.Context    { return t.ctx }
func (t *benchTB) Output() io.Writer           { return tbOutput{t} }
func (o tbOutput) Write(p []byte) (int, error) { o.t.Log(string(p)); return len(p), nil }

type tbOutput struct{ t *benchTB }
