// Package audit is the append-only access log: every event is chained to
// the one before it by an HMAC-SHA256 keyed with SECRETBOT_AUDIT_KEY, so an
// edit, a deletion or a re-hash by someone without the key is detected by
// Verify. It knows nothing of where events are stored: callers hand it the
// small Tx and Scanner interfaces below (internal/store implements them).
package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sort"
	"time"
)

// Outcomes of an event.
const (
	OK      = "ok"
	Refused = "refused"
	Failed  = "failed"
)

// Record is one stored event.
type Record struct {
	Seq      int64
	Time     time.Time
	Actor    string            // Slack user id, or "secretbot"
	Action   string            // e.g. "whoami", "command.refused", "checkpoint"
	Scope    string            //
	Secret   string            //
	Outcome  string            // ok | refused | failed
	Reason   string            //
	Links    map[string]string // ticket, incident, slack_message, accessor, grant
	PrevHash string            // Hash of event Seq-1, "" for the first event
	Hash     string            // hex HMAC-SHA256 over everything above
}

// Event is what a caller fills in; Append adds the sequence, time and hashes.
type Event struct {
	Actor   string
	Action  string
	Scope   string
	Secret  string
	Outcome string
	Reason  string
	Links   map[string]string
}

// Tx is the part of a write transaction Append needs. AuditInsert must fail
// when Seq is already taken (a concurrent appender lost the race).
type Tx interface {
	AuditHead(ctx context.Context) (seq int64, hash string, err error)
	AuditInsert(ctx context.Context, r Record) error
}

// Scanner reads stored events in Seq order starting at fromSeq.
type Scanner interface {
	AuditScan(ctx context.Context, fromSeq int64, fn func(Record) error) error
}

// ErrInvalidEvent is returned by Append for an event missing a required
// field or carrying an unknown outcome.
var ErrInvalidEvent = errors.New("audit: invalid event")

// Log appends and verifies events with one key.
type Log struct {
	key []byte
	now func() time.Time
}

// New returns a Log hashing with key (SECRETBOT_AUDIT_KEY). now may be nil
// (time.Now).
func New(key []byte, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{key: append([]byte(nil), key...), now: now}
}

// Append writes e as the next event inside the caller's transaction, so the
// event commits or rolls back with the state change it records. It returns
// ErrCredential when any text looks like a token, ErrInvalidEvent for a
// malformed event, or the Tx's error.
func (l *Log) Append(ctx context.Context, tx Tx, e Event) (Record, error) {
	if len(l.key) == 0 {
		return Record{}, errors.New("audit: no key configured")
	}
	if err := validate(e); err != nil {
		return Record{}, err
	}
	if err := checkCredentials(e); err != nil {
		return Record{}, err
	}
	seq, prev, err := tx.AuditHead(ctx)
	if err != nil {
		return Record{}, fmt.Errorf("audit: read head: %w", err)
	}
	r := Record{
		Seq:      seq + 1,
		Time:     l.now().UTC(),
		Actor:    e.Actor,
		Action:   e.Action,
		Scope:    e.Scope,
		Secret:   e.Secret,
		Outcome:  e.Outcome,
		Reason:   e.Reason,
		Links:    copyLinks(e.Links),
		PrevHash: prev,
	}
	r.Hash = l.hash(r)
	if err := tx.AuditInsert(ctx, r); err != nil {
		return Record{}, fmt.Errorf("audit: insert event %d: %w", r.Seq, err)
	}
	return r, nil
}

func validate(e Event) error {
	switch {
	case e.Actor == "":
		return fmt.Errorf("%w: actor is empty", ErrInvalidEvent)
	case e.Action == "":
		return fmt.Errorf("%w: action is empty", ErrInvalidEvent)
	}
	switch e.Outcome {
	case OK, Refused, Failed:
	default:
		return fmt.Errorf("%w: outcome %q (accepted: ok, refused, failed)", ErrInvalidEvent, e.Outcome)
	}
	for k := range e.Links {
		if k == "" {
			return fmt.Errorf("%w: link with an empty name", ErrInvalidEvent)
		}
	}
	return nil
}

func copyLinks(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// hash returns the hex HMAC of r's canonical encoding.
func (l *Log) hash(r Record) string { return l.hasher().hash(r) }

// hasher keeps one HMAC and its buffers for hashing many records in a row
// (Verify): making a new HMAC per record was a tenth of verify's time.
// Not safe for concurrent use.
type hasher struct {
	mac  hash.Hash
	buf  []byte
	sum  []byte
	keys []string
}

func (l *Log) hasher() *hasher { return &hasher{mac: hmac.New(sha256.New, l.key)} }

// sumOf returns the raw HMAC of r's canonical encoding, valid until the next call.
func (h *hasher) sumOf(r Record) []byte {
	h.buf, h.keys = appendCanonical(h.buf[:0], h.keys[:0], r)
	h.mac.Reset()
	h.mac.Write(h.buf)
	h.sum = h.mac.Sum(h.sum[:0])
	return h.sum
}

func (h *hasher) hash(r Record) string { return hex.EncodeToString(h.sumOf(r)) }

// valid reports whether stored, a hex hash in either case, is r's HMAC.
func (h *hasher) valid(r Record, stored string) bool {
	want := h.sumOf(r)
	if len(stored) != hex.EncodedLen(len(want)) {
		return false
	}
	var got [sha256.Size]byte
	if _, err := hex.Decode(got[:len(want)], []byte(stored)); err != nil {
		return false
	}
	return hmac.Equal(got[:len(want)], want)
}

// canonical encodes every field of r but Hash unambiguously: a version tag,
// fixed-width integers, and each string prefixed with its length, so no two
// different records share an encoding (e.g. moving text between Reason and
// Secret, or between a link's key and value, changes the bytes). Links are
// sorted by key so map order does not matter.
func canonical(r Record) []byte {
	b, _ := appendCanonical(make([]byte, 0, 256), nil, r)
	return b
}

// appendCanonical appends canonical(r) to b, sorting the link keys in keys
// (scratch space, returned for reuse).
func appendCanonical(b []byte, keys []string, r Record) ([]byte, []string) {
	str := func(s string) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	str("secretbot-audit-v1")
	b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	str(r.Actor)
	str(r.Action)
	str(r.Scope)
	str(r.Secret)
	str(r.Outcome)
	str(r.Reason)
	for k := range r.Links {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = binary.BigEndian.AppendUint64(b, uint64(len(keys)))
	for _, k := range keys {
		str(k)
		str(r.Links[k])
	}
	str(r.PrevHash)
	return b, keys
}
