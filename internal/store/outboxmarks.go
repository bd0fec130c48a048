package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// markDelay bounds how long a sent mark waits for a transaction to ride on
// before it is committed on its own.
const markDelay = 10 * time.Millisecond

// sentMarks holds the "sent" marks of outbox messages until the next write
// transaction of this process commits them with its own writes.
//
// Every message sent used to cost a commit of its own, one sync to disk,
// and each such commit was one more that an envelope's insert (an ack) could
// find in progress and wait for. A mark riding on the next transaction
// (usually a worker storing the next outcome) costs no sync; when nothing
// else commits within markDelay it is committed alone. OutboxSent still
// returns only once its mark is committed, so the deliverer keeps a lane
// busy until then and never sends the same message twice; a crash in
// between sends it again, as it always could. Urgent transactions (the
// inbox insert an ack waits for) carry none.
type sentMarks struct {
	mu      sync.Mutex
	pending []*sentMark
	armed   bool // a flush is scheduled
	closed  bool
	delay   time.Duration // 0: markDelay
	flush   func()        // commits what is due (DB.flushMarks); set by Open
}

type sentMark struct {
	id     int64
	at     time.Time // the message's sent_at
	queued time.Time // when it began to wait
	err    error     // set before done closes
	done   chan struct{}
}

var errClosed = errors.New("store: database closed")

// OutboxSent marks a pending message sent, and returns once the mark is
// committed (see sentMarks). Returns ErrConflict when it is no longer
// pending (already sent or dead), ErrNotFound when absent.
func (db *DB) OutboxSent(ctx context.Context, id int64, now time.Time) error {
	m := &sentMark{id: id, at: now, queued: time.Now(), done: make(chan struct{})}
	if !db.marks.add(m) {
		return fmt.Errorf("store: outbox sent: %w", errClosed)
	}
	select {
	case <-m.done:
		if m.err != nil {
			return fmt.Errorf("store: outbox sent: %w", m.err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err() // the mark is still committed with the next transaction
	}
}

// add queues m; false once closed.
func (s *sentMarks) add(m *sentMark) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.pending = append(s.pending, m)
	s.arm()
	return true
}

// arm schedules a flush unless one is scheduled; s.mu is held.
func (s *sentMarks) arm() {
	if s.armed {
		return
	}
	s.armed = true
	time.AfterFunc(s.wait(), s.flush)
}

func (s *sentMarks) wait() time.Duration {
	if s.delay == 0 {
		return markDelay
	}
	return s.delay
}

// due says whether the oldest queued mark has waited its markDelay; if not,
// it schedules a flush for then. s.mu is held, and a flush is armed.
func (s *sentMarks) due() bool {
	if len(s.pending) == 0 {
		s.armed = false
		return false
	}
	if left := s.wait() - time.Since(s.pending[0].queued); left > 0 {
		time.AfterFunc(left, s.flush) // the marks it was armed for rode on a transaction
		return false
	}
	s.armed = false
	return true
}

// take removes and returns every queued mark.
func (s *sentMarks) take() []*sentMark {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.pending
	s.pending = nil
	return ms
}

// putBack queues ms again, first, after the transaction carrying them
// failed: the next transaction, or a flush, commits them.
func (s *sentMarks) putBack(ms []*sentMark) {
	if len(ms) == 0 {
		return
	}
	for _, m := range ms {
		m.err = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(ms, s.pending...)
	s.arm()
}

// rideMarks takes the queued marks into tx, before its commit, and returns
// them. They are written under a savepoint: a mark never fails the
// transaction it rides on. If they fail (the statement, not a conflict,
// which is the mark's own answer), they are undone and their waiters get
// the error at once, as from a failed commit of their own: the messages
// stay pending and are sent again.
func (db *DB) rideMarks(ctx context.Context, tx *Tx) []*sentMark {
	ms := db.marks.take()
	if len(ms) == 0 {
		return nil
	}
	err := func() error {
		if _, err := tx.exec(ctx, "SAVEPOINT sent_marks"); err != nil {
			return err
		}
		if err := applyMarks(ctx, tx, ms); err != nil {
			_, _ = tx.exec(ctx, "ROLLBACK TO sent_marks")
			return err
		}
		if _, err := tx.exec(ctx, "RELEASE sent_marks"); err != nil {
			_, _ = tx.exec(ctx, "ROLLBACK TO sent_marks")
			return err
		}
		return nil
	}()
	if err != nil {
		for _, m := range ms {
			m.err = err
		}
		finishMarks(ms)
		return nil
	}
	return ms
}

// finishMarks reports each mark's outcome to its waiter.
func finishMarks(ms []*sentMark) {
	for _, m := range ms {
		close(m.done)
	}
}

// applyMarks writes ms in tx. A mark that finds its message no longer
// pending gets its own error; a failing statement fails the transaction.
func applyMarks(ctx context.Context, tx *Tx, ms []*sentMark) error {
	for _, m := range ms {
		res, err := tx.exec(ctx, `UPDATE outbox SET state = 'sent', attempts = attempts + 1, last_error = '', sent_at = ?
			WHERE id = ? AND state = 'pending'`, nanos(m.at), m.id)
		if err != nil {
			return err
		}
		switch err := changedOne(ctx, tx, res, "outbox", m.id, ErrConflict); {
		case errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound):
			m.err = err // the mark's own answer
		case err != nil:
			return err
		}
	}
	return nil
}

// flushMarks commits the queued marks in a transaction of their own. On
// failure each waiter gets the error: its message stays pending and is sent
// again, as after any failed bookkeeping.
func (db *DB) flushMarks() {
	db.marks.mu.Lock()
	due := db.marks.due()
	db.marks.mu.Unlock()
	if !due {
		return
	}
	ms := db.marks.take()
	if len(ms) == 0 {
		return // they rode on another transaction meanwhile
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := db.inTx(ctx, false, func(tx *Tx) error {
		tx.wrote(opOutboxSent)
		for _, m := range ms {
			m.err = nil // from an earlier try of this transaction
		}
		return applyMarks(ctx, tx, ms)
	})
	for _, m := range ms {
		if err != nil {
			m.err = err
		}
	}
	finishMarks(ms)
}

// closeMarks refuses new marks and commits those queued, at once.
func (db *DB) closeMarks() {
	db.marks.mu.Lock()
	db.marks.closed, db.marks.delay = true, time.Nanosecond
	db.marks.mu.Unlock()
	db.flushMarks()
}
