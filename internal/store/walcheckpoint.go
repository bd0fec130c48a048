package store

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// checkpointEvery is how often committed WAL frames are copied into the
// database file.
const checkpointEvery = 250 * time.Millisecond

// checkpointer copies the WAL into the database file off the commit path.
//
// SQLite's automatic checkpoint runs inside whichever commit takes the WAL
// past 1,000 pages and, with synchronous=FULL, syncs the database file too:
// that commit (an inbox write an ack waits for, or a worker's that the inbox
// write then queues behind) took milliseconds longer. Connections are opened
// with wal_autocheckpoint(0) and this goroutine runs PASSIVE checkpoints,
// which never wait for or block readers and writers. Durability does not
// change: a transaction is durable once its WAL frames are synced at commit.
type checkpointer struct {
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func startCheckpointer(db *sql.DB, every time.Duration) *checkpointer {
	c := &checkpointer{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-c.quit:
				return
			case <-t.C:
			}
			// A failure (the disk, a database being closed) is retried at the
			// next tick; SQLite also checkpoints when the last connection closes.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			var busy, frames, copied int
			_ = db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
			cancel()
		}
	}()
	return c
}

func (c *checkpointer) stop() {
	if c == nil {
		return
	}
	c.once.Do(func() { close(c.quit) })
	<-c.done
}
