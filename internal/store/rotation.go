package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/rotation"
)

// The inventory registry, rotations and the journal: the rows behind
// internal/rotation. The app adapts *Tx to rotation.Tx (adding Audit and
// Send, and mapping ErrNotFound and ErrConflict to rotation's errors).
// Never a secret value: rotation keeps values out of every row, and each
// write refuses text shaped like a credential (defence in depth).

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// setClause is "c2 = ?, c3 = ?, ..." for every column but the first (the key).
func setClause(columns string) string {
	cols := strings.Split(columns, ",")
	set := make([]string, 0, len(cols)-1)
	for _, c := range cols[1:] {
		set = append(set, strings.TrimSpace(c)+" = ?")
	}
	return strings.Join(set, ", ")
}

// casUpdate runs an UPDATE ... WHERE key = ? AND version = ? and tells a
// missing row (ErrNotFound) from one that moved on (ErrConflict).
func (tx *Tx) casUpdate(ctx context.Context, table, keyCol, key string, query string, args []any, from int64) error {
	res, err := tx.tx.ExecContext(ctx, query, args...)
	if err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("store: %s update %s: %w", table, key, ErrConflict)
		}
		return fmt.Errorf("store: %s update %s: %w", table, key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s update %s: %w", table, key, err)
	}
	if n == 1 {
		return nil
	}
	var count int
	if err := tx.tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE "+keyCol+" = ?", key).Scan(&count); err != nil {
		return fmt.Errorf("store: %s update %s: %w", table, key, err)
	}
	if count == 0 {
		return fmt.Errorf("%w: %s %s", ErrNotFound, table, key)
	}
	return fmt.Errorf("%w: %s %s is no longer at version %d", ErrConflict, table, key, from)
}

func noCredential(what string, text ...string) error {
	if audit.LooksLikeCredential(strings.Join(text, "\n")) {
		return fmt.Errorf("store: %s: %w", what, audit.ErrCredential)
	}
	return nil
}

// ---------------------------------------------------------------- secrets

const secretColumns = `name, environment, owner_team, owner_contact, mount, path, interval_ns, generate_length,
	generate_alphabet, provided, last_rotated_at, last_operator, last_ticket, last_version, source, version,
	created_at, updated_at`

const secretColumnCount = 18

func secretValues(s rotation.Secret) []any {
	return []any{s.Name, s.Environment, s.OwnerTeam, s.OwnerContact, s.Mount, s.Path, int64(s.Interval),
		s.Generate.Length, s.Generate.Alphabet, boolInt(s.Provided), nanos(s.LastRotatedAt), s.LastOperator,
		s.LastTicket, s.LastVersion, s.Source, s.Version, nanos(s.CreatedAt), nanos(s.UpdatedAt)}
}

func scanSecret(row interface{ Scan(...any) error }) (rotation.Secret, error) {
	var (
		s                         rotation.Secret
		interval                  int64
		provided                  int
		rotated, created, updated int64
	)
	err := row.Scan(&s.Name, &s.Environment, &s.OwnerTeam, &s.OwnerContact, &s.Mount, &s.Path, &interval,
		&s.Generate.Length, &s.Generate.Alphabet, &provided, &rotated, &s.LastOperator, &s.LastTicket,
		&s.LastVersion, &s.Source, &s.Version, &created, &updated)
	if err != nil {
		return rotation.Secret{}, err
	}
	s.Interval, s.Provided = time.Duration(interval), provided != 0
	s.LastRotatedAt, s.CreatedAt, s.UpdatedAt = fromNanos(rotated), fromNanos(created), fromNanos(updated)
	return s, nil
}

func checkSecret(s rotation.Secret) error {
	if s.Name == "" || s.Mount == "" || s.Path == "" || s.Source == "" {
		return errors.New("secret needs name, mount, path and source")
	}
	return noCredential("secret "+s.Name, s.Name, s.Environment, s.OwnerTeam, s.OwnerContact, s.Mount, s.Path,
		s.Generate.Alphabet, s.LastOperator, s.LastTicket)
}

// SecretInsert adds a registry entry. ErrConflict when the name, or the
// mount and path, is already registered.
func (tx *Tx) SecretInsert(ctx context.Context, s rotation.Secret) error {
	if err := checkSecret(s); err != nil {
		return fmt.Errorf("store: secret insert: %w", err)
	}
	tx.wrote(opSecretInsert)
	_, err := tx.tx.ExecContext(ctx, "INSERT INTO secrets ("+secretColumns+") VALUES ("+placeholders(secretColumnCount)+")",
		secretValues(s)...)
	if isUniqueViolation(err) {
		return fmt.Errorf("store: secret insert %s: %w", s.Name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: secret insert %s: %w", s.Name, err)
	}
	return nil
}

// SecretGet reads one registry entry; ErrNotFound when absent.
func (tx *Tx) SecretGet(ctx context.Context, name string) (rotation.Secret, error) {
	s, err := scanSecret(tx.tx.QueryRowContext(ctx, "SELECT "+secretColumns+" FROM secrets WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return rotation.Secret{}, fmt.Errorf("%w: secret %s", ErrNotFound, name)
	}
	if err != nil {
		return rotation.Secret{}, fmt.Errorf("store: secret get: %w", err)
	}
	return s, nil
}

// SecretList lists the registry by name.
func (tx *Tx) SecretList(ctx context.Context) ([]rotation.Secret, error) {
	rows, err := tx.tx.QueryContext(ctx, "SELECT "+secretColumns+" FROM secrets ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("store: secret list: %w", err)
	}
	defer rows.Close()
	var out []rotation.Secret
	for rows.Next() {
		s, err := scanSecret(rows)
		if err != nil {
			return nil, fmt.Errorf("store: secret list: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: secret list: %w", err)
	}
	return out, nil
}

// SecretUpdate writes s over its row only if the row is still at
// fromVersion (compare-and-set); s.Version must be newer. ErrConflict when
// the row moved on (or the new mount and path belong to another entry),
// ErrNotFound when absent.
func (tx *Tx) SecretUpdate(ctx context.Context, s rotation.Secret, fromVersion int64) error {
	if s.Version <= fromVersion {
		return fmt.Errorf("store: secret update %s: version %d must be newer than %d", s.Name, s.Version, fromVersion)
	}
	if err := checkSecret(s); err != nil {
		return fmt.Errorf("store: secret update: %w", err)
	}
	vals := secretValues(s)
	args := append(vals[1:], s.Name, fromVersion)
	tx.wrote(opSecretUpdate)
	return tx.casUpdate(ctx, "secrets", "name", s.Name,
		"UPDATE secrets SET "+setClause(secretColumns)+" WHERE name = ? AND version = ?", args, fromVersion)
}

// ---------------------------------------------------------------- rotations

const rotationColumns = `id, secret, operator, ticket, incident, commander, emergency, state, from_version,
	to_version, thread_channel, thread_ts, staging_by, staging_at, production_by, production_at, rolled_back_by,
	rollback_version, flagged, reminders, last_error, started_at, completed_at, version, updated_at`

const rotationColumnCount = 25

func rotationValues(r rotation.Rotation) []any {
	return []any{r.ID, r.Secret, r.Operator, r.Ticket, r.Incident, r.Commander, boolInt(r.Emergency), string(r.State),
		r.FromVersion, r.ToVersion, r.ThreadChannel, r.ThreadTS, r.StagingBy, nanos(r.StagingAt), r.ProductionBy,
		nanos(r.ProductionAt), r.RolledBackBy, r.RollbackVersion, boolInt(r.Flagged), r.Reminders,
		errorText(r.LastError), nanos(r.StartedAt), nanos(r.CompletedAt), r.Version, nanos(r.UpdatedAt)}
}

func scanRotation(row interface{ Scan(...any) error }) (rotation.Rotation, error) {
	var (
		r                                         rotation.Rotation
		state                                     string
		emergency, flagged                        int
		stagingAt, prodAt, started, done, updated int64
	)
	err := row.Scan(&r.ID, &r.Secret, &r.Operator, &r.Ticket, &r.Incident, &r.Commander, &emergency, &state,
		&r.FromVersion, &r.ToVersion, &r.ThreadChannel, &r.ThreadTS, &r.StagingBy, &stagingAt, &r.ProductionBy,
		&prodAt, &r.RolledBackBy, &r.RollbackVersion, &flagged, &r.Reminders, &r.LastError, &started, &done,
		&r.Version, &updated)
	if err != nil {
		return rotation.Rotation{}, err
	}
	r.State, r.Emergency, r.Flagged = rotation.State(state), emergency != 0, flagged != 0
	r.StagingAt, r.ProductionAt, r.StartedAt = fromNanos(stagingAt), fromNanos(prodAt), fromNanos(started)
	r.CompletedAt, r.UpdatedAt = fromNanos(done), fromNanos(updated)
	return r, nil
}

func checkRotation(r rotation.Rotation) error {
	if r.ID == "" || r.Secret == "" || r.Operator == "" || r.State == "" {
		return errors.New("rotation needs id, secret, operator and state")
	}
	return noCredential("rotation "+r.ID, r.ID, r.Secret, r.Operator, r.Ticket, r.Incident, r.Commander,
		r.ThreadChannel, r.ThreadTS, r.StagingBy, r.ProductionBy, r.RolledBackBy, r.LastError)
}

// RotationInsert stores a new rotation; ErrConflict when the id exists.
func (tx *Tx) RotationInsert(ctx context.Context, r rotation.Rotation) error {
	if err := checkRotation(r); err != nil {
		return fmt.Errorf("store: rotation insert: %w", err)
	}
	tx.wrote(opRotationInsert)
	_, err := tx.tx.ExecContext(ctx, "INSERT INTO rotations ("+rotationColumns+") VALUES ("+placeholders(rotationColumnCount)+")",
		rotationValues(r)...)
	if isUniqueViolation(err) {
		return fmt.Errorf("store: rotation insert %s: %w", r.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: rotation insert %s: %w", r.ID, err)
	}
	return nil
}

// RotationGet reads one rotation; ErrNotFound when absent.
func (tx *Tx) RotationGet(ctx context.Context, id string) (rotation.Rotation, error) {
	r, err := scanRotation(tx.tx.QueryRowContext(ctx, "SELECT "+rotationColumns+" FROM rotations WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return rotation.Rotation{}, fmt.Errorf("%w: rotation %s", ErrNotFound, id)
	}
	if err != nil {
		return rotation.Rotation{}, fmt.Errorf("store: rotation get: %w", err)
	}
	return r, nil
}

// RotationUpdate writes r over its row only if the row is still at
// fromVersion (compare-and-set); r.Version must be newer. ErrConflict when
// the row moved on, ErrNotFound when absent.
func (tx *Tx) RotationUpdate(ctx context.Context, r rotation.Rotation, fromVersion int64) error {
	if r.Version <= fromVersion {
		return fmt.Errorf("store: rotation update %s: version %d must be newer than %d", r.ID, r.Version, fromVersion)
	}
	if err := checkRotation(r); err != nil {
		return fmt.Errorf("store: rotation update: %w", err)
	}
	vals := rotationValues(r)
	args := append(vals[1:], r.ID, fromVersion)
	tx.wrote(opRotationUpdate)
	return tx.casUpdate(ctx, "rotations", "id", r.ID,
		"UPDATE rotations SET "+setClause(rotationColumns)+" WHERE id = ? AND version = ?", args, fromVersion)
}

// RotationsByState lists rotations in any of states (all when none is
// given), oldest first.
func (tx *Tx) RotationsByState(ctx context.Context, states ...rotation.State) ([]rotation.Rotation, error) {
	where := ""
	args := make([]any, len(states))
	for i, s := range states {
		args[i] = string(s)
	}
	if len(states) > 0 {
		where = " WHERE state IN (" + placeholders(len(states)) + ")"
	}
	rows, err := tx.tx.QueryContext(ctx, "SELECT "+rotationColumns+" FROM rotations"+where+" ORDER BY started_at, id", args...)
	if err != nil {
		return nil, fmt.Errorf("store: rotations by state: %w", err)
	}
	defer rows.Close()
	var out []rotation.Rotation
	for rows.Next() {
		r, err := scanRotation(rows)
		if err != nil {
			return nil, fmt.Errorf("store: rotations by state: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: rotations by state: %w", err)
	}
	return out, nil
}

// ---------------------------------------------------------------- journal

// JournalAdd records an entry; ErrConflict when the id exists.
func (tx *Tx) JournalAdd(ctx context.Context, e rotation.JournalEntry) error {
	if e.ID == "" || e.Kind == "" || e.Author == "" {
		return errors.New("store: journal add: an entry needs id, kind and author")
	}
	fields := e.Fields
	if fields == nil {
		fields = map[string]string{}
	}
	fj, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("store: journal add %s: %w", e.ID, err)
	}
	if err := noCredential("journal "+e.ID, e.Outcome, e.Notes, e.Author, e.Rotation, string(fj)); err != nil {
		return err
	}
	tx.wrote(opJournalAdd)
	_, err = tx.tx.ExecContext(ctx, "INSERT INTO journal (id, kind, outcome, notes, author, rotation, at, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		e.ID, e.Kind, e.Outcome, e.Notes, e.Author, e.Rotation, nanos(e.At), string(fj))
	if isUniqueViolation(err) {
		return fmt.Errorf("store: journal add %s: %w", e.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: journal add %s: %w", e.ID, err)
	}
	return nil
}

// JournalList lists entries of kind ("" for all), newest first, at most
// limit (0: every one).
func (tx *Tx) JournalList(ctx context.Context, kind string, limit int) ([]rotation.JournalEntry, error) {
	q := "SELECT id, kind, outcome, notes, author, rotation, at, fields FROM journal"
	var args []any
	if kind != "" {
		q += " WHERE kind = ?"
		args = append(args, kind)
	}
	q += " ORDER BY at DESC, id DESC"
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := tx.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: journal list: %w", err)
	}
	defer rows.Close()
	var out []rotation.JournalEntry
	for rows.Next() {
		var (
			e      rotation.JournalEntry
			at     int64
			fields string
		)
		if err := rows.Scan(&e.ID, &e.Kind, &e.Outcome, &e.Notes, &e.Author, &e.Rotation, &at, &fields); err != nil {
			return nil, fmt.Errorf("store: journal list: %w", err)
		}
		e.At = fromNanos(at)
		if err := json.Unmarshal([]byte(fields), &e.Fields); err != nil {
			return nil, fmt.Errorf("store: journal %s: fields: %w", e.ID, err)
		}
		if len(e.Fields) == 0 {
			e.Fields = nil
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: journal list: %w", err)
	}
	return out, nil
}
