// Package benchscale measures how secretbot's own work grows with its data
// (issue 6, part 4 "Scale"): the inventory answer and the daily reminder
// scan over 10,000 registry entries, the access expiry sweep over 1,000
// active grants, and appending to and verifying an audit log of 1,000,000
// events. Everything runs in process over a real SQLite store in a scratch
// directory, through the product's code: internal/store, internal/audit,
// internal/rotation, internal/access, internal/schedule, the handlers, and
// the store adapters internal/app wires (app.Ledger). Only the outside
// systems are fakes (Slack's user directory; Vault for the sweep, because
// the sweep figure is the bot's own work per tick).
//
// Each figure is measured at two sizes, and a growth figure compares them:
// for a time, time(big)/time(small) divided by big/small, so 1.0 is exactly
// linear and anything up to about 1.2 is linear within the noise.
package benchscale

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// Figure is one measured number.
type Figure struct {
	Name  string
	Value float64
	Unit  string
	What  string
}

// sizes of one run.
type sizes struct {
	invSmall, invBig     int // inventory entries
	grantSmall, grantBig int // active grants
	auditSmall, auditBig int // audit events
	appendSample         int // events appended one transaction each, per size
	repeats              int // timings per figure; the median is reported
}

var (
	full  = sizes{5000, 10000, 500, 1000, 100_000, 1_000_000, 500, 7}
	smoke = sizes{200, 400, 20, 40, 2000, 4000, 20, 3}
)

// Run measures the scale figures; smoke uses small sizes and finishes in a few seconds.
func Run(ctx context.Context, smokeRun bool, dir string) ([]Figure, error) {
	sz := full
	if smokeRun {
		sz = smoke
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("benchscale: %w", err)
	}
	var out []Figure
	for _, step := range []struct {
		name string
		run  func(context.Context, sizes, string) ([]Figure, error)
	}{
		{"inventory", runInventory},
		{"sweep", runSweep},
		{"audit", runAudit},
	} {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		sub := filepath.Join(dir, step.name)
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return out, fmt.Errorf("benchscale: %w", err)
		}
		figs, err := step.run(ctx, sz, sub)
		out = append(out, figs...)
		if err != nil {
			return out, fmt.Errorf("benchscale: %s: %w", step.name, err)
		}
	}
	return out, nil
}

// median runs fn n times and returns the median wall time.
func median(n int, fn func() error) (time.Duration, error) {
	wall, _, err := medians(n, fn)
	return wall, err
}

// medians runs fn n times and returns the median wall time and the median
// CPU time of the process (user + system, every thread: GC included). On a
// loaded machine the wall time includes waiting for a core; the CPU time
// does not, so it says what the work costs where a core is free.
func medians(n int, fn func() error) (wall, cpu time.Duration, err error) {
	ws := make([]time.Duration, 0, n)
	cs := make([]time.Duration, 0, n)
	for range n {
		c0 := cpuTime()
		start := time.Now()
		if err := fn(); err != nil {
			return 0, 0, err
		}
		ws = append(ws, time.Since(start))
		cs = append(cs, cpuTime()-c0)
	}
	slices.Sort(ws)
	slices.Sort(cs)
	return ws[len(ws)/2], cs[len(cs)/2], nil
}

// cpuTime is the process's CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// growth is time(big)/time(small) per unit of size: 1.0 is linear.
func growth(small, big time.Duration, nSmall, nBig int) float64 {
	if small <= 0 {
		return 0
	}
	return (float64(big) / float64(small)) / (float64(nBig) / float64(nSmall))
}

// label names a size the way the figures do: 500, 5k, 10k, 1m.
func label(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dm", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
