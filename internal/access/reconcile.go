package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/outbox"
)

// The drift reconciler: the store and Vault must agree on which access is
// live. Every live grant is checked against Vault; one Vault no longer
// knows (its token revoked, its group deleted or emptied outside secretbot)
// is marked revoked ("gone-from-vault") and reported. The opt-in full scan
// lists every token and revokes those the bot's token role created that no
// live grant holds. Vault unreachable means "unknown": nothing is concluded
// from an error, ever.

// EndGone is the end reason of a grant Vault no longer knew.
const EndGone = "gone-from-vault"

// Audit actions of the reconciler.
const (
	ActGone                = "grant.gone_from_vault"
	ActUnknownTokenRevoked = "vault.unknown_token_revoked"
)

// expiryMargin: a grant this close to its expiry is left to Sweep, so an
// expiry is never reported as drift.
const expiryMargin = time.Minute

// ErrTokenGone is returned by VaultDrift.LookupToken when no token has the
// accessor.
var ErrTokenGone = errors.New("access: no token with this accessor")

// TokenFacts is what a look-up by accessor tells the full scan (never the
// token itself).
type TokenFacts struct {
	Accessor  string
	Role      string // the token role it was created through ("" for none)
	Path      string // the path that created it, e.g. auth/token/create/secretbot
	Meta      map[string]string
	CreatedAt time.Time // zero when Vault did not say
}

// VaultDrift is what the reconciler asks Vault beyond Vault.AccessorAlive.
type VaultDrift interface {
	// GroupHasMember reports whether the group exists and the entity of the
	// person with that e-mail is a member (false when either is missing).
	GroupHasMember(ctx context.Context, group, email string) (bool, error)
	// TokenAccessors lists every token accessor (sudo on auth/token/accessors).
	TokenAccessors(ctx context.Context) ([]string, error)
	// LookupToken looks a token up by accessor; ErrTokenGone when none.
	LookupToken(ctx context.Context, accessor string) (TokenFacts, error)
}

// Reconciler checks the store against Vault. Service and Vault are
// required; FullScan adds the token scan.
type Reconciler struct {
	Service  *Service
	Vault    VaultDrift
	FullScan bool
}

// RevokedToken is a token the full scan revoked: its accessor, the grant
// its metadata named (may be empty) and why it had no live grant.
type RevokedToken struct {
	Accessor, Grant, Why string
}

// ReconcileReport is what one pass found.
type ReconcileReport struct {
	Checked int      // live grants checked against Vault
	Gone    []string // grants Vault no longer knew, now ended
	Unknown int      // grants or tokens that could not be checked (Vault or store errors)
	Scanned int      // tokens of the bot's role the full scan looked at
	Revoked []RevokedToken
}

// Reconcile runs one pass: every issued, delivered grant without a pending
// revoke is checked (a wrapped token by its accessor, an entity group by
// existence and membership); then, with FullScan, the token scan. A grant
// that changed while it was being checked is left for the next pass. The
// error joins everything that could not be checked; the report is valid
// with it.
func (r *Reconciler) Reconcile(ctx context.Context) (ReconcileReport, error) {
	s := r.Service
	var rep ReconcileReport
	var issued []Grant
	err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		issued, err = tx.GrantsByState(ctx, StateIssued)
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("access: reconcile: %w", err)
	}
	if s.Vault == nil || r.Vault == nil {
		return rep, errors.New("access: reconcile: Vault is not configured")
	}
	var errs []error
	for _, g := range issued {
		if ctx.Err() != nil {
			break
		}
		// Being delivered (the issue window), being revoked or about to
		// expire (Sweep's: Vault's own TTL may end the token a moment before
		// the recorded expiry), or never in Vault: not the reconciler's
		// business.
		if g.DeliveredAt.IsZero() || g.RevokePending || g.TokenAccessor == AccessorDryRun ||
			(g.VaultGroup == "" && g.TokenAccessor == "") ||
			(!g.ExpiresAt.IsZero() && !s.now().Before(g.ExpiresAt.Add(-expiryMargin))) {
			continue
		}
		rep.Checked++
		known, detail, err := r.known(ctx, g)
		if err != nil {
			rep.Unknown++
			errs = append(errs, fmt.Errorf("access: reconcile %s: %s", g.ID, errText(err)))
			continue
		}
		if known {
			continue
		}
		ended, err := r.endGone(ctx, g, detail)
		if err != nil {
			rep.Unknown++
			errs = append(errs, err)
			continue
		}
		if ended {
			rep.Gone = append(rep.Gone, g.ID)
		}
	}
	if r.FullScan && ctx.Err() == nil {
		if err := r.scan(ctx, &rep); err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// known asks Vault whether g's access still exists there.
func (r *Reconciler) known(ctx context.Context, g Grant) (bool, string, error) {
	if g.VaultGroup != "" {
		ok, err := r.Vault.GroupHasMember(ctx, g.VaultGroup, g.Email)
		return ok, fmt.Sprintf("the Vault group %s is gone or no longer holds %s", g.VaultGroup, g.Email), err
	}
	ok, err := r.Service.Vault.AccessorAlive(ctx, g.TokenAccessor)
	return ok, "Vault has no token with accessor " + g.TokenAccessor, err
}

// endGone ends g, which Vault no longer knows, unless it changed since it
// was read: what is left of its access is taken back (a group emptied
// behind the bot's back is deleted), then the grant is revoked with reason
// EndGone, audited, and the requester and the security channel told.
func (r *Reconciler) endGone(ctx context.Context, g Grant, detail string) (bool, error) {
	s := r.Service
	cur, err := s.get(ctx, g.ID)
	if err != nil {
		return false, fmt.Errorf("access: reconcile %s: %w", g.ID, err)
	}
	if cur.Version != g.Version {
		return false, nil // moved on meanwhile: look again next pass
	}
	if err := s.takeBack(ctx, g); err != nil {
		return false, fmt.Errorf("access: reconcile %s: %s", g.ID, errText(err))
	}
	ended := false
	_, err = s.change(context.WithoutCancel(ctx), g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		ended = false
		if cur.Version != g.Version {
			return cur, false, nil
		}
		ng, err := cur.End(EndGone, s.now())
		if err != nil {
			return cur, false, err
		}
		if err := tx.Audit(ctx, event(actorBot, ActGone, audit.OK, detail, ng)); err != nil {
			return cur, false, err
		}
		ended = true
		return ng, true, s.sendEnded(ctx, tx, cur, ng)
	})
	if err != nil {
		return false, fmt.Errorf("access: reconcile: record end of %s: %w", g.ID, err)
	}
	if ended {
		s.log().Warn("access: grant gone from Vault; marked revoked", "grant", g.ID, "detail", detail)
	}
	return ended, nil
}

// scan lists every token, keeps those created through the bot's token role
// and revokes each that no live grant holds. One security-channel message
// lists what was revoked.
func (r *Reconciler) scan(ctx context.Context, rep *ReconcileReport) error {
	s := r.Service
	accessors, err := r.Vault.TokenAccessors(ctx)
	if err != nil {
		rep.Unknown++
		return fmt.Errorf("access: full scan: listing token accessors: %s", errText(err))
	}
	role := s.Config.Vault.TokenRole
	var errs []error
	for _, a := range accessors {
		if ctx.Err() != nil {
			break
		}
		t, err := r.Vault.LookupToken(ctx, a)
		if errors.Is(err, ErrTokenGone) {
			continue // expired or revoked since the list
		}
		if err != nil {
			rep.Unknown++
			errs = append(errs, fmt.Errorf("access: full scan: look up %s: %s", a, errText(err)))
			continue
		}
		if role == "" || (t.Role != role && t.Path != "auth/token/create/"+role) {
			continue
		}
		rep.Scanned++
		if t.Accessor == "" {
			t.Accessor = a
		}
		why, stray, err := r.stray(ctx, t)
		if err != nil {
			rep.Unknown++
			errs = append(errs, err)
			continue
		}
		if !stray {
			continue
		}
		if s.DryRun {
			s.log().Warn("access: dry run: full scan would revoke a token without a live grant", "accessor", a, "why", why)
			continue
		}
		if err := s.Vault.RevokeAccessor(ctx, a); err != nil {
			rep.Unknown++
			errs = append(errs, fmt.Errorf("access: full scan: revoke %s: %s", a, errText(err)))
			continue
		}
		rep.Revoked = append(rep.Revoked, RevokedToken{Accessor: a, Grant: Truncate(t.Meta["grant"], 40), Why: why})
	}
	if len(rep.Revoked) > 0 {
		if err := r.recordRevoked(ctx, rep.Revoked); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stray reports whether token t (made through the bot's role) has no live
// grant, reading the grant its metadata names now, not from a snapshot.
// Live: a grant issued with t's accessor. A grant still approved is being
// delivered: its token may exist a moment before it is recorded, so such a
// token is spared for deliverLease after its creation. A store error is
// never read as "no grant".
func (r *Reconciler) stray(ctx context.Context, t TokenFacts) (string, bool, error) {
	s := r.Service
	id := t.Meta["grant"]
	if id == "" {
		return "no grant in its metadata: not made by secretbot", true, nil
	}
	g, err := s.get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return "its grant " + Truncate(id, 40) + " is unknown to secretbot", true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("access: full scan: read grant %s: %w", Truncate(id, 40), err)
	}
	switch {
	case g.State == StateIssued && g.TokenAccessor == t.Accessor:
		return "", false, nil
	case g.State == StateApproved && (t.CreatedAt.IsZero() || s.now().Sub(t.CreatedAt) < s.deliverLease()):
		return "", false, nil
	case g.State == StateIssued:
		return "its grant " + g.ID + " holds another token", true, nil
	}
	return fmt.Sprintf("its grant %s is %s", g.ID, g.State), true, nil
}

// recordRevoked audits each revoked token and sends one alert.
func (r *Reconciler) recordRevoked(ctx context.Context, revoked []RevokedToken) error {
	s := r.Service
	err := s.Store.InTx(context.WithoutCancel(ctx), func(tx Tx) error {
		for _, t := range revoked {
			links := map[string]string{"accessor": t.Accessor}
			if t.Grant != "" {
				links["grant"] = t.Grant
			}
			if err := tx.Audit(ctx, audit.Event{Actor: actorBot, Action: ActUnknownTokenRevoked, Outcome: audit.OK,
				Reason: audit.Redact(t.Why), Links: links}); err != nil {
				return err
			}
		}
		if ch := s.Config.Slack.SecurityChannel; ch != "" {
			return tx.Send(ctx, scanAlert(ch, s.Config.Vault.TokenRole, revoked))
		}
		return nil
	})
	if err != nil {
		accs := make([]string, len(revoked))
		for i, t := range revoked {
			accs[i] = t.Accessor
		}
		s.log().Error("access: full scan revoked tokens but could not record it", "accessors", strings.Join(accs, ","), "err", errText(err))
		return fmt.Errorf("access: full scan: record revoked tokens: %w", err)
	}
	return nil
}

// maxAlertLines bounds the alert; the audit log has every token.
const maxAlertLines = 20

func scanAlert(channel, role string, revoked []RevokedToken) outbox.Message {
	head := fmt.Sprintf(":rotating_light: *Vault full scan* revoked %d token(s) created through the token role %s without a live grant:",
		len(revoked), Code(role))
	lines := make([]string, 0, min(len(revoked), maxAlertLines)+1)
	for i, t := range revoked {
		if i == maxAlertLines {
			lines = append(lines, fmt.Sprintf("…and %d more (see the audit log, action %s).", len(revoked)-i, ActUnknownTokenRevoked))
			break
		}
		grant := "no grant"
		if t.Grant != "" {
			grant = "grant " + Code(t.Grant)
		}
		lines = append(lines, fmt.Sprintf("• accessor %s (%s): %s", Code(t.Accessor), grant, Escape(t.Why)))
	}
	body := strings.Join(lines, "\n")
	return outbox.Message{Kind: outbox.Post, Target: channel, Text: Plain(head, body), Blocks: Blocks(Section(head), Section(body))}
}
