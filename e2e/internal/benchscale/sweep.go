package benchscale

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/access/accesstest"
	"github.com/secretbot/secretbot/internal/app"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/store"
)

// countingVault is access.Vault for the sweep figure: it only counts calls.
// The figure is the bot's own work per tick; a grant that is not due must
// not cost a Vault call at all, which the count proves.
type countingVault struct{ calls atomic.Int64 }

var errNoVault = errors.New("benchscale: the sweep called Vault for a grant that is not due")

func (v *countingVault) IssueWrapped(context.Context, access.IssueRequest) (access.Wrapped, error) {
	v.calls.Add(1)
	return access.Wrapped{}, errNoVault
}

func (v *countingVault) RevokeAccessor(context.Context, string) error {
	v.calls.Add(1)
	return errNoVault
}

func (v *countingVault) AccessorAlive(context.Context, string) (bool, error) {
	v.calls.Add(1)
	return false, errNoVault
}

func (v *countingVault) JoinGroup(context.Context, string, []string, string, map[string]string) error {
	v.calls.Add(1)
	return errNoVault
}

func (v *countingVault) DeleteGroup(context.Context, string) error { v.calls.Add(1); return errNoVault }

// openGrants creates a database with n issued, delivered grants that are
// not due: half wrapped tokens already unwrapped, half entity-group
// memberships, expiring in 1 to 8 hours.
func openGrants(ctx context.Context, path string, n int) (*store.DB, *access.Service, *countingVault, error) {
	db, err := store.Open(ctx, path)
	if err != nil {
		return nil, nil, nil, err
	}
	now := func() time.Time { return epoch }
	led := app.NewLedger(db, audit.New([]byte(benchKey), now), now)
	v := &countingVault{}
	svc := &access.Service{Config: accesstest.Lumi(), Store: led.AccessStore(), Vault: v, Directory: directory{},
		Now: now, Log: quietLog()}
	const batch = 500
	for start := 0; start < n; start += batch {
		err := led.AccessStore().InTx(ctx, func(tx access.Tx) error {
			for i := start; i < min(start+batch, n); i++ {
				issued := epoch.Add(-time.Hour)
				g := access.Grant{
					ID: fmt.Sprintf("G%08d", i), Requester: fmt.Sprintf("UREQ%04d", i%300), RequesterName: "requester",
					Email: fmt.Sprintf("req%d@lumi.example", i%300), TTL: 8 * time.Hour, Ticket: fmt.Sprintf("SEC-%d", i),
					Reason: "scheduled maintenance of the payments database", State: access.StateIssued, Version: 5,
					Evidence: []access.Evidence{{Kind: config.EvidenceJira, Status: "ok", Detail: "approved by Lee"},
						{Kind: config.EvidenceApproval, Status: "ok", Detail: "approved by Kim"}},
					Approver: "UKIM", DecidedAt: issued, IssuedAt: issued, DeliveredAt: issued.Add(time.Second),
					ExpiresAt: epoch.Add(time.Hour + time.Duration(i%420)*time.Minute),
					CreatedAt: issued.Add(-time.Minute), UpdatedAt: issued.Add(time.Second),
				}
				if i%2 == 0 {
					g.Scope, g.Delivery = "payments-rw", config.DeliveryWrappedToken
					g.TokenAccessor, g.WrapAccessor = fmt.Sprintf("acc%08d", i), fmt.Sprintf("wacc%08d", i)
					g.WrapExpires, g.WrapStatus = issued.Add(10*time.Minute), access.WrapUsed
				} else {
					g.Scope, g.Delivery = "platform-rw", config.DeliveryEntityGroup
					g.VaultGroup = fmt.Sprintf("secretbot-%s", g.ID)
				}
				if err := tx.GrantInsert(ctx, g); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			db.Close()
			return nil, nil, nil, fmt.Errorf("fill the grants: %w", err)
		}
	}
	return db, svc, v, nil
}

func runSweep(ctx context.Context, sz sizes, dir string) ([]Figure, error) {
	measure := func(n int) (time.Duration, error) {
		db, svc, v, err := openGrants(ctx, filepath.Join(dir, fmt.Sprintf("grants-%d.db", n)), n)
		if err != nil {
			return 0, err
		}
		defer db.Close()
		if err := svc.Sweep(ctx); err != nil { // warm
			return 0, err
		}
		d, err := median(sz.repeats*3, func() error { return svc.Sweep(ctx) })
		if err != nil {
			return 0, err
		}
		if c := v.calls.Load(); c != 0 {
			return 0, fmt.Errorf("%d Vault calls for %d grants that are not due", c, n)
		}
		return d, nil
	}
	small, err := measure(sz.grantSmall)
	if err != nil {
		return nil, err
	}
	big, err := measure(sz.grantBig)
	if err != nil {
		return nil, err
	}
	what := "one access sweep tick (access.Service.Sweep over the real store) with %d active grants, none due; fake Vault, 0 calls made (median of %d)"
	return []Figure{
		{Name: "sweep_500_ms", Value: ms(small), Unit: "ms", What: fmt.Sprintf(what, sz.grantSmall, sz.repeats*3)},
		{Name: "sweep_1k_ms", Value: ms(big), Unit: "ms", What: fmt.Sprintf(what, sz.grantBig, sz.repeats*3)},
		{Name: "sweep_growth", Value: growth(small, big, sz.grantSmall, sz.grantBig), Unit: "ratio",
			What: "sweep tick time per grant, big over small size (1.0 = linear)"},
	}, nil
}
