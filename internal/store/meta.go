package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// MetaGet reads a meta value; ok=false when the key is absent.
func (tx *Tx) MetaGet(ctx context.Context, key string) (value string, ok bool, err error) {
	err = tx.tx.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: meta get %s: %w", key, err)
	}
	return value, true, nil
}

// MetaSet writes a meta value unconditionally. Within InTx, MetaGet then
// MetaSet is already atomic on SQLite (the write lock is taken at BEGIN);
// MetaCAS is the form that stays atomic on a shared server database.
func (tx *Tx) MetaSet(ctx context.Context, key, value string) error {
	tx.wrote(opMetaSet)
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("store: meta set %s: %w", key, err)
	}
	return nil
}

// MetaCAS sets key to value only if its current value is old; old "" also
// matches an absent key. swapped reports whether it changed anything.
func (tx *Tx) MetaCAS(ctx context.Context, key, old, value string) (swapped bool, err error) {
	tx.wrote(opMetaSet)
	var res sql.Result
	if old == "" {
		res, err = tx.tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE meta.value = ''`, key, value)
	} else {
		res, err = tx.tx.ExecContext(ctx, "UPDATE meta SET value = ? WHERE key = ? AND value = ?", value, key, old)
	}
	if err != nil {
		return false, fmt.Errorf("store: meta cas %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: meta cas %s: %w", key, err)
	}
	return n == 1, nil
}
