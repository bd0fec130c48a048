package audit

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Checkpoint is a (seq, hash) pair recorded outside the database (e.g.
// posted to the security channel), so a truncated or rewritten tail is
// detected even though the chain itself still links.
type Checkpoint struct {
	Seq  int64
	Hash string
}

// String formats c as "SEQ:HASH", the form ParseCheckpoint reads.
func (c Checkpoint) String() string { return strconv.FormatInt(c.Seq, 10) + ":" + c.Hash }

// ParseCheckpoint reads "SEQ:HASH" (SEQ >= 1, HASH 64 hex digits).
func ParseCheckpoint(s string) (Checkpoint, error) {
	seqText, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Checkpoint{}, errors.New("checkpoint must look like SEQ:HASH (e.g. 12:3fa4...)")
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil || seq < 1 {
		return Checkpoint{}, fmt.Errorf("checkpoint sequence %q must be a whole number >= 1", seqText)
	}
	hash = strings.ToLower(hash)
	if b, err := hex.DecodeString(hash); err != nil || len(b) != 32 {
		return Checkpoint{}, errors.New("checkpoint hash must be 64 hexadecimal digits")
	}
	return Checkpoint{Seq: seq, Hash: hash}, nil
}

// Why values of BrokenError.
const (
	WhyAltered    = "was altered"
	WhyMissing    = "is missing (deleted)"
	WhyRehashed   = "hash does not match: re-hashed without the key or wrong SECRETBOT_AUDIT_KEY"
	WhyUnchained  = "does not follow the event before it (prev_hash mismatch): an event was deleted or replaced"
	WhyCheckpoint = "differs from checkpoint"
)

// BrokenError names the first event where the chain fails and why (one of
// the Why constants).
type BrokenError struct {
	Seq int64
	Why string
}

func (e *BrokenError) Error() string { return fmt.Sprintf("event %d %s", e.Seq, e.Why) }

// TruncatedError says the log ends before a checkpoint it should contain.
type TruncatedError struct {
	End        int64 // last seq in the log (0 when empty)
	Checkpoint int64
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("log ends at %d, checkpoint %d: truncated", e.End, e.Checkpoint)
}

// Result summarises a verified log.
type Result struct {
	Events int64      // events verified
	Head   Checkpoint // the last verified event (zero when none)
}

// errStop ends a scan early once the first break has been classified.
var errStop = errors.New("stop")

// Verify walks the whole chain from event 1. It returns a *BrokenError for
// the first broken event, a *TruncatedError when cp is given and the log ends
// before it, or a scan error. Result covers the events verified before any
// break.
//
// A failed HMAC is told apart by the next event: if it still verifies and
// links to the stored hash, only the content was changed ("was altered");
// if the stored hash no longer matches the next event's prev_hash, or the
// next event fails too, hashes were recomputed without our key, or our key
// is the wrong one (WhyRehashed).
func (l *Log) Verify(ctx context.Context, s Scanner, cp *Checkpoint) (Result, error) {
	if len(l.key) == 0 {
		return Result{}, errors.New("audit: no key configured")
	}
	var (
		res     Result
		prev    string  // hash of the last verified event
		suspect *Record // first event whose HMAC failed, awaiting the next one
		broken  error
		h       = l.hasher()
	)
	err := s.AuditScan(ctx, 1, func(r Record) error {
		if suspect != nil {
			broken = l.classify(h, *suspect, &r)
			return errStop
		}
		want := res.Head.Seq + 1
		switch {
		case r.Seq > want:
			broken = &BrokenError{Seq: want, Why: WhyMissing}
			return errStop
		case r.Seq < want: // a scanner bug, not tampering
			return fmt.Errorf("audit: scan returned event %d after %d", r.Seq, res.Head.Seq)
		}
		if !h.valid(r, r.Hash) {
			suspect = &r
			return nil
		}
		if !hmac.Equal([]byte(r.PrevHash), []byte(prev)) {
			broken = &BrokenError{Seq: r.Seq, Why: WhyUnchained}
			return errStop
		}
		if cp != nil && r.Seq == cp.Seq && !hmac.Equal([]byte(r.Hash), []byte(strings.ToLower(cp.Hash))) {
			broken = &BrokenError{Seq: r.Seq, Why: WhyCheckpoint}
			return errStop
		}
		prev = r.Hash
		res.Events++
		res.Head = Checkpoint{Seq: r.Seq, Hash: r.Hash}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return res, fmt.Errorf("audit: scan: %w", err)
	}
	if broken == nil && suspect != nil {
		broken = l.classify(h, *suspect, nil)
	}
	if broken != nil {
		return res, broken
	}
	if cp != nil && res.Head.Seq < cp.Seq {
		return res, &TruncatedError{End: res.Head.Seq, Checkpoint: cp.Seq}
	}
	return res, nil
}

// classify explains why suspect's HMAC failed, using the event after it
// (nil at the end of the log).
func (l *Log) classify(h *hasher, suspect Record, next *Record) error {
	why := WhyAltered
	switch {
	case next == nil || next.Seq != suspect.Seq+1:
		// Nothing to compare with. With no verified event before it either,
		// a wrong key is as likely as an edit: say both.
		if suspect.Seq == 1 {
			why = WhyRehashed
		}
	case !hmac.Equal([]byte(next.PrevHash), []byte(suspect.Hash)):
		why = WhyRehashed // the stored hash itself was replaced
	case !h.valid(*next, next.Hash):
		why = WhyRehashed // the chain goes on failing: not our key
	}
	return &BrokenError{Seq: suspect.Seq, Why: why}
}
