package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// settleDisk writes back everything dirty in the page cache, system-wide,
// and says how long that took. The benchmark's own setup leaves tens of
// megabytes dirty (the bench program and the bot binary just linked, the
// Vault cluster's files); the kernel writes them back 30 s later
// (vm.dirty_expire_centisecs), and that burst held up the bot's WAL syncs
// for 40 to 100 ms in whichever round it fell: a cost of the benchmark, not
// of the bot, so it is paid before measuring.
func settleDisk() time.Duration {
	start := time.Now()
	syscall.Sync()
	return time.Since(start)
}

// syncProbe appends 4 KiB and fsyncs a file in dir (the bot's file system)
// every interval until ctx ends, and returns how long each sync took: what
// a durable commit (one WAL write and its sync) costs on this machine at
// that moment, with no SQLite in it. It runs during the baseline rounds,
// while the bot is idle.
func syncProbe(ctx context.Context, dir string, interval time.Duration) []time.Duration {
	f, err := os.CreateTemp(dir, "sync-probe-")
	if err != nil {
		return nil
	}
	defer os.Remove(filepath.Clean(f.Name()))
	defer f.Close()
	page := make([]byte, 4096)
	var out []time.Duration
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
		if n%256 == 0 { // keep the file small
			if err := f.Truncate(0); err != nil {
				return out
			}
		}
		start := time.Now()
		if _, err := f.Write(page); err != nil {
			return out
		}
		if err := f.Sync(); err != nil {
			return out
		}
		out = append(out, time.Since(start))
	}
}
