package store

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// Commits never checkpoint (wal_autocheckpoint is 0 on every connection);
// the background checkpointer copies the WAL into the database file.
func TestCheckpointsRunInTheBackground(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	var auto int
	if err := db.sql.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("wal_autocheckpoint = %d (%v), want 0", auto, err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"text":"` + strings.Repeat("x", 4000) + `"}`)
	for i := range 300 { // about 1.2 MB: it can only reach the file through a checkpoint
		if _, _, err := db.InboxPut(ctx, InboxEntry{DedupKey: "env-" + time.Duration(i).String(), EnvelopeID: "e",
			Type: "slash_commands", Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > before.Size()+1<<20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database file is still %d bytes (was %d): nothing was checkpointed", fi.Size(), before.Size())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
