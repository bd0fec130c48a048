package schedule

import (
	"context"
	"fmt"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
)

// restoreTest posts the restore-test reminder once per restore-test month,
// on the first daily run of that month (or, after downtime, on the first
// tick after it).
func (s *Scheduler) restoreTest(ctx context.Context, now time.Time, c clock) (bool, error) {
	at, ok := latestRestore(now, s.Config.RestoreTestMonths, c)
	if !ok {
		return false, nil
	}
	period := at.Format(monthLayout)
	if seeded, err := s.seed(ctx, KeyRestoreTest, period); err != nil || seeded {
		return false, err
	}
	if due, err := s.pending(ctx, KeyRestoreTest, period); err != nil || !due {
		return false, err
	}
	cmd := s.command() + " journal restore-test passed|failed \"<notes>\""
	text := fmt.Sprintf(":floppy_disk: *Quarterly restore test due* (%s): restore a recent Vault snapshot into a scratch cluster, check that the secrets read back, and record the outcome with %s.",
		at.Format("January 2006"), access.Code(cmd))
	list := access.Code(s.command() + " journal")
	m := outbox.Message{Kind: outbox.Post, Target: s.Config.SecurityChannel, Text: text,
		Blocks: access.Blocks(access.Section(text), access.Context("Past results: "+list))}
	return s.commit(ctx, KeyRestoreTest, period, func(tx Tx) error {
		if err := tx.Send(ctx, m, "schedule:restore-test:"+period); err != nil {
			return err
		}
		return tx.Audit(ctx, audit.Event{Actor: actor, Action: ActRestoreTestReminded, Outcome: audit.OK,
			Reason: "restore-test reminder for " + period, Links: map[string]string{"period": period}})
	})
}
