package store

import (
	"context"
	"testing"
)

func TestMeta(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	steps := []struct {
		name     string
		do       func(tx *Tx) (bool, error)
		wantSwap bool
		want     string // value after; "-" for absent
	}{
		{"absent", func(*Tx) (bool, error) { return false, nil }, false, "-"},
		{"cas from wrong value on absent", func(tx *Tx) (bool, error) { return tx.MetaCAS(ctx, "k", "x", "1") }, false, "-"},
		{"cas from absent", func(tx *Tx) (bool, error) { return tx.MetaCAS(ctx, "k", "", "1") }, true, "1"},
		{"cas from absent again", func(tx *Tx) (bool, error) { return tx.MetaCAS(ctx, "k", "", "2") }, false, "1"},
		{"cas stale", func(tx *Tx) (bool, error) { return tx.MetaCAS(ctx, "k", "0", "2") }, false, "1"},
		{"cas current", func(tx *Tx) (bool, error) { return tx.MetaCAS(ctx, "k", "1", "2") }, true, "2"},
		{"set", func(tx *Tx) (bool, error) { return false, tx.MetaSet(ctx, "k", "") }, false, ""},
		{"cas from empty", func(tx *Tx) (bool, error) { return tx.MetaCAS(ctx, "k", "", "3") }, true, "3"},
		{"set overwrites", func(tx *Tx) (bool, error) { return false, tx.MetaSet(ctx, "k", "4") }, false, "4"},
	}
	for _, s := range steps {
		err := db.InTx(ctx, func(tx *Tx) error {
			swapped, err := s.do(tx)
			if err != nil {
				return err
			}
			if swapped != s.wantSwap {
				t.Errorf("%s: swapped = %v", s.name, swapped)
			}
			v, ok, err := tx.MetaGet(ctx, "k")
			if got := map[bool]string{true: v, false: "-"}[ok]; got != s.want {
				t.Errorf("%s: value %q, want %q", s.name, got, s.want)
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
}
