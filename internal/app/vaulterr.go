package app

import (
	"errors"

	"github.com/secretbot/secretbot/integrations/vault"
	"github.com/secretbot/secretbot/internal/access"
)

// vaultUnavailable keeps a Vault error's text and marks it as one retrying
// can cure, for the access domain (which knows no Vault client).
type vaultUnavailable struct{ error }

func (e vaultUnavailable) Unwrap() error        { return e.error }
func (e vaultUnavailable) Is(target error) bool { return target == access.ErrVaultUnavailable }

// vaultErr marks Vault outages (unreachable, sealed, 5xx, 429, not logged
// in yet) as access.ErrVaultUnavailable.
func vaultErr(err error) error {
	if errors.Is(err, vault.ErrUnavailable) || errors.Is(err, vault.ErrNotLoggedIn) {
		return vaultUnavailable{err}
	}
	return err
}
