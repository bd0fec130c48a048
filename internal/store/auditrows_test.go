package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
)

var auditKey = []byte("test-audit-key-0123456789abcdef-0123456789")

func appendN(t *testing.T, db *DB, l *audit.Log, n int) []audit.Record {
	t.Helper()
	ctx := context.Background()
	var recs []audit.Record
	for i := range n {
		err := db.InTx(ctx, func(tx *Tx) error {
			r, err := l.Append(ctx, tx, audit.Event{
				Actor: "U0TEST", Action: "access.grant", Scope: "platform-ro", Outcome: audit.OK,
				Reason: fmt.Sprint("event ", i+1), Links: map[string]string{"ticket": "SEC-1", "grant": fmt.Sprint(i + 1)},
			})
			if err == nil {
				recs = append(recs, r)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return recs
}

func TestAuditRoundTrip(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	now := time.Date(2025, 3, 1, 9, 0, 0, 123456789, time.FixedZone("CET", 3600))
	l := audit.New(auditKey, func() time.Time { return now })
	recs := appendN(t, db, l, 3)
	var got []audit.Record
	if err := db.AuditScan(ctx, 2, func(r audit.Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Seq != 2 || got[1].Hash != recs[2].Hash || got[0].Links["grant"] != "2" ||
		!got[0].Time.Equal(now) {
		t.Fatalf("scan from 2 = %+v", got)
	}
	res, err := l.Verify(ctx, db, nil)
	if err != nil || res.Events != 3 || res.Head.Hash != recs[2].Hash {
		t.Fatalf("verify: %+v %v", res, err)
	}
	err = db.InTx(ctx, func(tx *Tx) error { return tx.AuditInsert(ctx, recs[0]) })
	if !errors.Is(err, ErrSeqTaken) {
		t.Fatalf("duplicate seq: %v, want ErrSeqTaken", err)
	}
}

func TestAuditConcurrentAppends(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	l := audit.New(auditKey, time.Now)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := db.InTx(ctx, func(tx *Tx) error {
					_, err := l.Append(ctx, tx, audit.Event{Actor: fmt.Sprint("U", w), Action: "whoami", Outcome: audit.OK, Reason: fmt.Sprint(i)})
					return err
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	res, err := l.Verify(ctx, db, nil)
	if err != nil || res.Events != writers*each {
		t.Fatalf("verify after concurrent appends: %+v %v", res, err)
	}
}

// TestAuditTamperingWithSQL edits audit_events the way an intruder (and the
// e2e tests) would, through the documented columns.
func TestAuditTamperingWithSQL(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		cp   bool // verify against a checkpoint taken before tampering
		want string
	}{
		{"edit reason", "UPDATE audit_events SET reason = 'nothing happened' WHERE seq = 7", false, "event 7 was altered"},
		{"edit links", `UPDATE audit_events SET links = '{"ticket":"SEC-2"}' WHERE seq = 4`, false, "event 4 was altered"},
		{"break links json", `UPDATE audit_events SET links = 'oops' WHERE seq = 4`, false, "event 4 was altered"},
		{"edit time", "UPDATE audit_events SET time_ns = time_ns + 1 WHERE seq = 2", false, "event 2 was altered"},
		{"delete", "DELETE FROM audit_events WHERE seq = 5", false, "event 5 is missing (deleted)"},
		{"replace hash", "UPDATE audit_events SET hash = '" + fmt.Sprintf("%064d", 0) + "' WHERE seq = 3", false,
			"event 3 hash does not match: re-hashed without the key or wrong SECRETBOT_AUDIT_KEY"},
		{"truncate", "DELETE FROM audit_events WHERE seq >= 8", true, "log ends at 7, checkpoint 9: truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t)
			ctx := context.Background()
			l := audit.New(auditKey, time.Now)
			recs := appendN(t, db, l, 9)
			cp := audit.Checkpoint{Seq: 9, Hash: recs[8].Hash}
			if _, err := db.sql.ExecContext(ctx, tt.sql); err != nil {
				t.Fatal(err)
			}
			var cpp *audit.Checkpoint
			if tt.cp {
				cpp = &cp
			}
			_, err := l.Verify(ctx, db, cpp)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Verify = %v\nwant     %s", err, tt.want)
			}
		})
	}
}
