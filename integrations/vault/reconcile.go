package vault

import (
	"context"
	"errors"
	"net/http"
)

// accessorsPath lists every token accessor; Vault requires sudo on it
// (deploy/vault/secretbot-reconcile.hcl).
const accessorsPath = "auth/token/accessors"

// TokenAccessors lists the accessor of every token in the bot's namespace
// (the drift reconciler's full scan). An empty store answers an empty list.
//
// Errors: *Error with ErrPermissionDenied (no sudo on auth/token/accessors),
// ErrUnavailable, or a context error.
func (c *Client) TokenAccessors(ctx context.Context) ([]string, error) {
	if err := c.ensureToken(ctx); err != nil {
		return nil, err
	}
	sec, err := c.api.Logical().ListWithContext(ctx, accessorsPath)
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return nil, nil // Vault answers a LIST with nothing in it with 404
		}
		return nil, c.fail(ctx, "list token accessors", err)
	}
	if sec == nil || sec.Data == nil {
		return nil, nil
	}
	keys := strs(sec.Data["keys"])
	if keys == nil && sec.Data["keys"] != nil {
		return nil, &Error{Op: "list token accessors", Detail: "unreadable reply", kind: ErrUnavailable}
	}
	return keys, nil
}

// LookupToken is LookupAccessor for the reconciler: ok false when no token
// has the accessor (gone), an error only when Vault could not say.
func (c *Client) LookupToken(ctx context.Context, accessor string) (info TokenInfo, ok bool, err error) {
	info, err = c.LookupAccessor(ctx, accessor)
	switch {
	case err == nil:
		return info, true, nil
	case errors.Is(err, ErrNotFound):
		return TokenInfo{}, false, nil
	}
	return TokenInfo{}, false, err
}
