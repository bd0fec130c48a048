package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/store"
)

// checkpointer posts the audit log's head to the security channel, daily and
// at shutdown. Anyone holding a posted checkpoint can prove that nothing
// before it was cut off: `secretbot audit verify --checkpoint SEQ:HASH`.
type checkpointer struct {
	db      *store.DB
	audit   *audit.Log
	channel string
	log     *slog.Logger
	now     func() time.Time
}

const checkpointDayKey = "audit.checkpoint.day"

// daily posts one checkpoint per UTC day, whichever replica gets there
// first; the day is recorded in the same transaction as the message.
func (c *checkpointer) daily(ctx context.Context, wake func()) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		day := c.now().UTC().Format("2006-01-02")
		posted := false
		err := c.db.InTx(ctx, func(tx *store.Tx) error {
			last, _, err := tx.MetaGet(ctx, checkpointDayKey)
			if err != nil || last == day {
				return err
			}
			if posted, err = c.enqueue(ctx, tx, "daily"); err != nil || !posted {
				return err // an empty log has nothing to checkpoint yet: try again later today
			}
			return tx.MetaSet(ctx, checkpointDayKey, day)
		})
		if err != nil && ctx.Err() == nil {
			c.log.Error("daily audit checkpoint failed", "err", err)
		}
		if posted {
			wake()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// post enqueues a checkpoint now.
func (c *checkpointer) post(ctx context.Context, why string) error {
	return c.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := c.enqueue(ctx, tx, why)
		return err
	})
}

func (c *checkpointer) enqueue(ctx context.Context, tx *store.Tx, why string) (bool, error) {
	seq, hash, err := tx.AuditHead(ctx)
	if err != nil || seq == 0 {
		return false, err
	}
	cp := audit.Checkpoint{Seq: seq, Hash: hash}
	text := fmt.Sprintf(":lock: Audit checkpoint (%s): event %d, head `%s`.\nVerify with `secretbot audit verify --checkpoint %s`",
		why, seq, hash, cp.String())
	return true, enqueue(ctx, tx, outbox.Message{Kind: outbox.Post, Target: c.channel, Text: text}, c.now())
}
