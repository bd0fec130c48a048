package store

import "github.com/secretbot/secretbot/internal/crash"

// op names what a write transaction changed, for its crash points. A
// transaction that writes several tables is named by its main write: the
// higher op wins (an audit event or an owed message rides along with the
// state change that caused it).
type op uint8

const (
	opNone op = iota // read only: no crash point
	opAuditAppend
	opOutboxAdd
	opMetaSet
	opInboxPut
	opInboxClaim
	opInboxFinish
	opOutboxSent
	opOutboxRetry
	opJournalAdd
	opSecretInsert
	opRotationInsert
	opRotationUpdate
	opSecretUpdate // above rotation: a completed rotation is named by its registry update
	opGrantInsert
	opGrantUpdate
	opMigrate
)

// wrote records that tx made a write of kind o.
func (tx *Tx) wrote(o op) {
	if o > tx.op {
		tx.op = o
	}
}

// commitPoint names the crash points on either side of a write
// transaction's commit. The names are literals so that the crash test can
// find every one of them in the source; in normal builds crash.Point is
// empty and this switch does nothing worth measuring.
func commitPoint(o op, after bool) {
	switch o {
	case opNone:
	case opAuditAppend:
		if after {
			crash.Point("store.audit.append.after_commit")
		} else {
			crash.Point("store.audit.append.before_commit")
		}
	case opOutboxAdd:
		if after {
			crash.Point("store.outbox.add.after_commit")
		} else {
			crash.Point("store.outbox.add.before_commit")
		}
	case opMetaSet:
		if after {
			crash.Point("store.meta.set.after_commit")
		} else {
			crash.Point("store.meta.set.before_commit")
		}
	case opInboxPut:
		if after {
			crash.Point("store.inbox.put.after_commit")
		} else {
			crash.Point("store.inbox.put.before_commit")
		}
	case opInboxClaim:
		if after {
			crash.Point("store.inbox.claim.after_commit")
		} else {
			crash.Point("store.inbox.claim.before_commit")
		}
	case opInboxFinish:
		if after {
			crash.Point("store.inbox.finish.after_commit")
		} else {
			crash.Point("store.inbox.finish.before_commit")
		}
	case opOutboxSent:
		if after {
			crash.Point("store.outbox.sent.after_commit")
		} else {
			crash.Point("store.outbox.sent.before_commit")
		}
	case opOutboxRetry:
		if after {
			crash.Point("store.outbox.retry.after_commit")
		} else {
			crash.Point("store.outbox.retry.before_commit")
		}
	case opJournalAdd:
		if after {
			crash.Point("store.journal.add.after_commit")
		} else {
			crash.Point("store.journal.add.before_commit")
		}
	case opSecretInsert:
		if after {
			crash.Point("store.secret.insert.after_commit")
		} else {
			crash.Point("store.secret.insert.before_commit")
		}
	case opSecretUpdate:
		if after {
			crash.Point("store.secret.update.after_commit")
		} else {
			crash.Point("store.secret.update.before_commit")
		}
	case opRotationInsert:
		if after {
			crash.Point("store.rotation.insert.after_commit")
		} else {
			crash.Point("store.rotation.insert.before_commit")
		}
	case opRotationUpdate:
		if after {
			crash.Point("store.rotation.update.after_commit")
		} else {
			crash.Point("store.rotation.update.before_commit")
		}
	case opGrantInsert:
		if after {
			crash.Point("store.grant.insert.after_commit")
		} else {
			crash.Point("store.grant.insert.before_commit")
		}
	case opGrantUpdate:
		if after {
			crash.Point("store.grant.update.after_commit")
		} else {
			crash.Point("store.grant.update.before_commit")
		}
	case opMigrate:
		if after {
			crash.Point("store.migrate.after_commit")
		} else {
			crash.Point("store.migrate.before_commit")
		}
	}
}
