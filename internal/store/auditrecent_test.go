package store

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
)

// auditRecentByScan is what `/secrets audit` did before AuditRecent: read
// the whole log and keep the newest matching events (newest first here).
func auditRecentByScan(t *testing.T, db *DB, since time.Time, actor string, limit int) []audit.Record {
	t.Helper()
	var out []audit.Record
	err := db.AuditScan(context.Background(), 0, func(r audit.Record) error {
		if !r.Time.Before(since) && (actor == "" || r.Actor == actor) {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var rev []audit.Record
	for i := len(out) - 1; i >= 0 && len(rev) < limit; i-- {
		rev = append(rev, out[i])
	}
	return rev
}

func TestAuditRecentMatchesAFullScan(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// Times mostly rise with seq, but not always (two replicas' clocks).
	offsets := []int{0, 5, 3, 9, 9, 12, 11, 20, 25, 24, 30, 31, 29, 40, 41, 45, 44, 50}
	i := 0
	log := audit.New([]byte("k"), func() time.Time { return base.Add(time.Duration(offsets[i]) * time.Hour) })
	for i = range offsets {
		e := audit.Event{Actor: []string{"U1", "U2", "U3"}[i%3], Action: "whoami", Outcome: audit.OK,
			Links: map[string]string{"n": fmt.Sprint(i)}}
		if err := db.InTx(ctx, func(tx *Tx) error { _, err := log.Append(ctx, tx, e); return err }); err != nil {
			t.Fatal(err)
		}
	}
	for _, since := range []time.Time{base.Add(-time.Hour), base, base.Add(9 * time.Hour), base.Add(10 * time.Hour),
		base.Add(29 * time.Hour), base.Add(50 * time.Hour), base.Add(51 * time.Hour), time.Time{}, base.AddDate(-500, 0, 0)} {
		for _, actor := range []string{"", "U1", "U2", "U9"} {
			for _, limit := range []int{1, 3, 41} {
				got, err := db.AuditRecent(ctx, since, actor, limit)
				if err != nil {
					t.Fatal(err)
				}
				want := auditRecentByScan(t, db, since, actor, limit)
				if len(got) == 0 && len(want) == 0 {
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("since %s actor %q limit %d: got seqs %v, want %v", since, actor, limit, seqs(got), seqs(want))
				}
			}
		}
	}
	if got, err := db.AuditRecent(ctx, base, "", 0); err != nil || len(got) != 0 {
		t.Errorf("limit 0: %v, %v", got, err)
	}
}

func seqs(rs []audit.Record) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

// Neither form of the query reads the whole log: each searches an index.
func TestAuditRecentUsesIndexes(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	for _, actor := range []string{"", "U1"} {
		q, args := auditRecentQuery(time.Now().Add(-time.Hour), actor, 41)
		rows, err := db.sql.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		t.Logf("%q", plan)
		for _, step := range plan {
			// "SEARCH audit_events" alone is a scan in rowid order (it was,
			// for a MIN(seq) subquery); each step must name what it searches.
			if strings.Contains(step, "audit_events") && !strings.Contains(step, " USING ") {
				t.Errorf("query %s\nplan %q reads the log beyond an index", q, plan)
			}
		}
	}
}
