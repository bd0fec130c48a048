package rotation

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/policy"
)

// Filter narrows the inventory. Env matches the environment and Owner the
// owning team (or the contact's Slack id), without regard to case.
type Filter struct {
	Overdue bool
	Env     string
	Owner   string
}

// Item is one inventory line: the secret, its due date and its marks.
type Item struct {
	Secret
	Due     time.Time
	Overdue bool
	DueSoon bool // due within inventory.due_soon, not overdue
}

// Inventory lists the registry, filtered, sorted by due date (then name),
// each marked overdue or due soon at now.
func (s *Service) Inventory(ctx context.Context, f Filter) ([]Item, error) {
	var all []Secret
	if err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		all, err = tx.SecretList(ctx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("rotation: inventory: %w", err)
	}
	return Items(all, f, s.now(), s.Config.Inventory.DueSoon.D()), nil
}

// Items filters, marks and sorts secrets (pure; Inventory's core).
func Items(all []Secret, f Filter, now time.Time, dueSoon time.Duration) []Item {
	out := make([]Item, 0, len(all))
	for _, sec := range all {
		it := Item{Secret: sec, Due: sec.Due(), Overdue: sec.Overdue(now), DueSoon: sec.DueSoon(now, dueSoon)}
		if f.Overdue && !it.Overdue {
			continue
		}
		if f.Env != "" && !strings.EqualFold(f.Env, sec.Environment) {
			continue
		}
		if f.Owner != "" && !strings.EqualFold(f.Owner, sec.OwnerTeam) && f.Owner != sec.OwnerContact {
			continue
		}
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b Item) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// CSVHeader is the first line of the export.
var CSVHeader = []string{"name", "environment", "owner", "rotationDue", "interval", "lastRotatedAt", "lastOperator",
	"lastTicket", "lastVersion", "path"}

// ExportCSV renders the filtered inventory as CSV (header CSVHeader, one row
// per secret, in Inventory's order; times RFC 3339 UTC, "" when never;
// path as mount/path). Text a spreadsheet would run as a formula is
// prefixed with '. The export is audited with p as the actor.
func (s *Service) ExportCSV(ctx context.Context, p policy.Person, f Filter) ([]byte, error) {
	items, err := s.Inventory(ctx, f)
	if err != nil {
		return nil, err
	}
	b := CSV(items)
	_ = s.audited(ctx, nil, secretEvent(p.SlackID, ActExported, audit.OK, fmt.Sprintf("%d secrets exported as CSV", len(items)), "", nil))
	return b, nil
}

// CSV renders items (pure; ExportCSV's core).
func CSV(items []Item) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(CSVHeader)
	for _, it := range items {
		rotated := ""
		if !it.LastRotatedAt.IsZero() {
			rotated = it.LastRotatedAt.UTC().Format(time.RFC3339)
		}
		_ = w.Write([]string{cell(it.Name), cell(it.Environment), cell(it.OwnerTeam), it.Due.UTC().Format(time.RFC3339),
			config.Duration(it.Interval).String(), rotated, cell(it.LastOperator), cell(it.LastTicket),
			strconv.Itoa(it.LastVersion), cell(it.Mount + "/" + it.Path)})
	}
	w.Flush()
	return buf.Bytes()
}

// cell defuses spreadsheet formulas (CSV injection).
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Drift is a difference between a registry entry and its KV custom_metadata.
type Drift struct {
	Secret string
	// Fields: metadata key -> the registry's value and Vault's.
	Fields map[string][2]string
	// Missing: the secret does not exist in Vault.
	Missing bool
	// Err: Vault could not be read (the entry was not compared).
	Err string
}

// Drift compares every registry entry with its KV custom_metadata and
// lists the differences (entries that agree are left out). A difference
// found is audited once per call.
func (s *Service) Drift(ctx context.Context) ([]Drift, error) {
	var all []Secret
	if err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		all, err = tx.SecretList(ctx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("rotation: drift: %w", err)
	}
	var out []Drift
	for _, sec := range all {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		custom, _, err := s.KV.Metadata(ctx, sec.Mount, sec.Path)
		switch {
		case errors.Is(err, ErrKVNotFound):
			out = append(out, Drift{Secret: sec.Name, Missing: true})
			continue
		case err != nil:
			out = append(out, Drift{Secret: sec.Name, Err: errText(err)})
			continue
		}
		want := Metadata(sec)
		d := Drift{Secret: sec.Name, Fields: map[string][2]string{}}
		for _, k := range MetadataKeys {
			if custom[k] != want[k] {
				d.Fields[k] = [2]string{want[k], custom[k]}
			}
		}
		if len(d.Fields) > 0 {
			out = append(out, d)
		}
	}
	if len(out) > 0 {
		names := make([]string, 0, len(out))
		for _, d := range out {
			names = append(names, d.Secret)
		}
		_ = s.audited(ctx, nil, secretEvent(actorBot, ActDrift, audit.Failed,
			"registry and Vault custom_metadata differ for "+strings.Join(names, ", "), "", nil))
	}
	return out, nil
}
