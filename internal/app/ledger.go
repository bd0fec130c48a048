package app

import (
	"time"

	"github.com/secretbot/secretbot/handlers"
	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/rotation"
	"github.com/secretbot/secretbot/internal/schedule"
	"github.com/secretbot/secretbot/internal/store"
)

// Ledger exposes the store adapters runBot wires, for code that runs the
// domain in process without Slack (the scale benchmark in
// e2e/internal/benchscale): it measures the bot's own adapters, not a copy.
type Ledger struct{ l ledger }

// NewLedger returns the ledger over db, appending audit events with log.
func NewLedger(db *store.DB, log *audit.Log, now func() time.Time) Ledger {
	return Ledger{ledger{db: db, audit: log, now: now}}
}

// AccessStore is the access service's store.
func (l Ledger) AccessStore() access.Store { return accessStore{l.l} }

// RotationStore is the rotation service's store.
func (l Ledger) RotationStore() rotation.Store { return rotationStore{l.l} }

// ScheduleStore is the scheduler's store.
func (l Ledger) ScheduleStore() schedule.Store { return scheduleStore{l.l} }

// ScheduleGrants is the scheduler's view of the grants.
func (l Ledger) ScheduleGrants() schedule.Grants { return grantsReader{accessStore{l.l}} }

// RotationGrants is the rotation service's view of the grants.
func (l Ledger) RotationGrants() rotation.Grants { return grantsReader{accessStore{l.l}} }

// AuditReader is what `/secrets audit` reads.
func (l Ledger) AuditReader() handlers.AuditLog { return auditReader{l.l.db} }

// InventoryView is the scheduler's view of the registry kept by rot.
func InventoryView(rot *rotation.Service) schedule.Inventory { return inventoryView{rot} }
