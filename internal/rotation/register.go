package rotation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/policy"
)

// metaMirrorPending holds the names (comma separated) whose KV metadata
// mirror is owed: set in the transaction that changes the entry, cleared
// once PatchMetadata succeeds, retried by Sweep.
const metaMirrorPending = "rotation.mirror_pending"

// FromConfig turns a file entry into a registry entry (Source config).
func FromConfig(c config.InventorySecret) Secret {
	sec := Secret{Name: c.Name, Environment: c.Environment, OwnerTeam: c.Owner.Team, OwnerContact: c.Owner.Contact,
		Mount: c.Mount, Path: c.Path, Interval: c.Interval.D(), Provided: c.Provided, Source: SourceConfig}
	if !c.Provided {
		sec.Generate = Generate{Length: c.Generate.Length, Alphabet: c.Generate.Alphabet}
	}
	return sec
}

// describes reports whether a and b differ in what the file describes (not
// in the last rotation).
func sameDescription(a, b Secret) bool {
	return a.Environment == b.Environment && a.OwnerTeam == b.OwnerTeam && a.OwnerContact == b.OwnerContact &&
		a.Mount == b.Mount && a.Path == b.Path && a.Interval == b.Interval && a.Generate == b.Generate && a.Provided == b.Provided
}

// SyncConfig brings the file's inventory.secrets into the registry: a new
// entry is added (its due date counts from now when it was never rotated
// by the bot), a changed one has its description updated (its last
// rotation kept). A registered entry of the same name is left alone and
// reported. Entries removed from the file stay in the registry. Call it at
// start. Each change is audited and its metadata mirror queued.
func (s *Service) SyncConfig(ctx context.Context) error {
	var errs []error
	for _, c := range s.Config.Inventory.Secrets {
		want := FromConfig(c)
		var changed bool
		err := s.retry(ctx, func(tx Tx) error {
			changed = false
			cur, err := tx.SecretGet(ctx, want.Name)
			now := s.now()
			switch {
			case errors.Is(err, ErrNotFound):
				ns := want
				ns.Version, ns.CreatedAt, ns.UpdatedAt = 1, now, now
				if err := tx.SecretInsert(ctx, ns); err != nil {
					return err
				}
				changed = true
				return s.synced(ctx, tx, ns, "added from the configuration file")
			case err != nil:
				return err
			case cur.Source != SourceConfig:
				return fmt.Errorf("inventory.secrets %s: a registered entry of that name exists; the file's entry is ignored", want.Name)
			case sameDescription(cur, want):
				return nil
			}
			ns := cur
			ns.Environment, ns.OwnerTeam, ns.OwnerContact = want.Environment, want.OwnerTeam, want.OwnerContact
			ns.Mount, ns.Path, ns.Interval, ns.Generate, ns.Provided = want.Mount, want.Path, want.Interval, want.Generate, want.Provided
			ns.Version, ns.UpdatedAt = cur.Version+1, now
			if err := tx.SecretUpdate(ctx, ns, cur.Version); err != nil {
				return err
			}
			changed = true
			return s.synced(ctx, tx, ns, "updated from the configuration file")
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("rotation: sync %s: %w", want.Name, err))
			continue
		}
		if changed {
			s.mirror(ctx, want.Name)
		}
	}
	return errors.Join(errs...)
}

func (s *Service) synced(ctx context.Context, tx Tx, sec Secret, why string) error {
	if err := tx.Audit(ctx, secretEvent(actorBot, ActSynced, audit.OK, why, sec.Name, nil)); err != nil {
		return err
	}
	return addPending(ctx, tx, sec.Name)
}

// retry runs fn in a transaction, again on a conflict.
func (s *Service) retry(ctx context.Context, fn func(Tx) error) error {
	var err error
	for range maxConflictRetries {
		err = s.Store.InTx(ctx, fn)
		if !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return err
}

// Secret returns a registry entry; a *UserError when there is none.
func (s *Service) Secret(ctx context.Context, name string) (Secret, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	sec, err := s.getSecret(ctx, n)
	if errors.Is(err, ErrNotFound) {
		return Secret{}, userErr("secret", "there is no secret %s in the inventory (`inventory` lists them)", access.Code(access.Truncate(name, 70)))
	}
	if err != nil {
		return Secret{}, fmt.Errorf("rotation: read %s: %w", n, err)
	}
	return sec, nil
}

// Register adds an existing Vault secret to the registry (the register
// modal): only rotators; the entry is validated (ValidateSecret), its name
// and KV path must be new to the registry, and the secret must exist in
// Vault (a new secret is provisioned instead). The current KV version is
// recorded, the change audited, and the registry mirrored into the KV
// custom_metadata.
func (s *Service) Register(ctx context.Context, p policy.Person, sec Secret) (Secret, error) {
	who, err := s.rotator(ctx, p, "register secrets", ActRegisterRefused, sec.Name)
	if err != nil {
		return Secret{}, err
	}
	refuse := func(err error) (Secret, error) {
		if ue, ok := IsUserError(err); ok {
			return Secret{}, s.audited(ctx, ue, secretEvent(who.SlackID, ActRegisterRefused, audit.Refused, ue.Msg, sec.Name, nil))
		}
		return Secret{}, err
	}
	sec, err = ValidateSecret(s.Config, sec)
	if err != nil {
		return refuse(err)
	}
	if err := s.unregistered(ctx, sec); err != nil {
		return refuse(err)
	}
	_, current, err := s.KV.Metadata(ctx, sec.Mount, sec.Path)
	switch {
	case errors.Is(err, ErrKVNotFound) || (err == nil && current == 0):
		return refuse(userErr("path", "there is no secret at %s in Vault: use `provision` to create it", access.Code(sec.Mount+"/"+sec.Path)))
	case err != nil:
		return Secret{}, s.audited(ctx, fmt.Errorf("rotation: register %s: reading Vault: %s", sec.Name, errText(err)),
			secretEvent(who.SlackID, ActRegisterRefused, audit.Failed, "Vault could not be read: "+errText(err), sec.Name, nil))
	}
	now := s.now()
	sec.Source, sec.Version, sec.CreatedAt, sec.UpdatedAt = SourceRegistered, 1, now, now
	sec.LastRotatedAt, sec.LastOperator, sec.LastTicket, sec.LastVersion = time.Time{}, "", "", current
	err = s.Store.InTx(ctx, func(tx Tx) error {
		if err := tx.SecretInsert(ctx, sec); err != nil {
			return err
		}
		reason := fmt.Sprintf("registered %s/%s at version %d, owner %s, every %s", sec.Mount, sec.Path, current, sec.OwnerTeam, config.Duration(sec.Interval))
		if err := tx.Audit(ctx, secretEvent(who.SlackID, ActRegistered, audit.OK, reason, sec.Name, nil)); err != nil {
			return err
		}
		if err := tx.Send(ctx, notice(s.securityChannel(), fmt.Sprintf(":card_index: %s registered %s: owner %s (%s), %s, rotated every %s, due %s.",
			mention(who.SlackID), secretRef(sec), access.Escape(sec.OwnerTeam), mention(sec.OwnerContact), access.Escape(sec.Environment),
			config.Duration(sec.Interval), fmtTime(sec.Due())))); err != nil {
			return err
		}
		return addPending(ctx, tx, sec.Name)
	})
	if errors.Is(err, ErrConflict) {
		return refuse(userErr("name", "%s, or its path, was registered a moment ago by someone else", access.Code(sec.Name)))
	}
	if err != nil {
		return Secret{}, fmt.Errorf("rotation: register %s: %w", sec.Name, err)
	}
	s.mirror(ctx, sec.Name)
	return sec, nil
}

// unregistered refuses a name or KV path already in the registry.
func (s *Service) unregistered(ctx context.Context, sec Secret) error {
	var all []Secret
	if err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		all, err = tx.SecretList(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("rotation: read the registry: %w", err)
	}
	for _, o := range all {
		if o.Name == sec.Name {
			return userErr("name", "%s is already in the inventory (%s): choose another name", access.Code(sec.Name), access.Code(o.Mount+"/"+o.Path))
		}
		if o.Mount == sec.Mount && o.Path == sec.Path {
			return userErr("path", "%s is already registered as %s", access.Code(sec.Mount+"/"+sec.Path), access.Code(o.Name))
		}
	}
	return nil
}

// ---- the metadata mirror ----

func pendingList(v string) []string {
	var out []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

func addPending(ctx context.Context, tx Tx, name string) error {
	v, _, err := tx.MetaGet(ctx, metaMirrorPending)
	if err != nil {
		return err
	}
	list := pendingList(v)
	if slices.Contains(list, name) {
		return nil
	}
	return tx.MetaSet(ctx, metaMirrorPending, strings.Join(append(list, name), ","))
}

func removePending(ctx context.Context, tx Tx, name string) error {
	v, _, err := tx.MetaGet(ctx, metaMirrorPending)
	if err != nil {
		return err
	}
	list := pendingList(v)
	i := slices.Index(list, name)
	if i < 0 {
		return nil
	}
	return tx.MetaSet(ctx, metaMirrorPending, strings.Join(slices.Delete(list, i, i+1), ","))
}

// mirror writes the registry entry into the secret's KV custom_metadata and
// clears its pending mark; a failure is audited and left for Sweep.
func (s *Service) mirror(ctx context.Context, name string) {
	if err := s.mirrorOne(ctx, name); err != nil {
		s.log().Warn("rotation: metadata mirror failed; Sweep retries it", "secret", name, "err", errText(err))
	}
}

func (s *Service) mirrorOne(ctx context.Context, name string) error {
	sec, err := s.getSecret(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return s.Store.InTx(ctx, func(tx Tx) error { return removePending(ctx, tx, name) })
	}
	if err != nil {
		return err
	}
	if perr := s.KV.PatchMetadata(ctx, sec.Mount, sec.Path, Metadata(sec)); perr != nil {
		_ = s.audited(ctx, nil, secretEvent(actorBot, ActMetadataFailed, audit.Failed,
			"mirroring the registry into custom_metadata failed: "+errText(perr), name, nil))
		return perr
	}
	return s.Store.InTx(ctx, func(tx Tx) error { return removePending(ctx, tx, name) })
}

// retryMirrors retries every owed mirror (Sweep).
func (s *Service) retryMirrors(ctx context.Context) error {
	var v string
	if err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		v, _, err = tx.MetaGet(ctx, metaMirrorPending)
		return err
	}); err != nil {
		return err
	}
	var errs []error
	for _, n := range pendingList(v) {
		if ctx.Err() != nil {
			break
		}
		if err := s.mirrorOne(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("rotation: mirror %s: %s", n, errText(err)))
		}
	}
	return errors.Join(errs...)
}
