package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretbot/secretbot/internal/crash"
)

// IssueRequest describes one grant token.
type IssueRequest struct {
	// Policies the token carries; the token role must allow them.
	Policies []string
	// TTL is the token's lifetime; also set as its explicit max TTL, so Vault
	// enforces it even if the role would allow more. Must not exceed
	// vault.token_role_max_ttl.
	TTL time.Duration
	// Metadata names the grant, user, ticket and incident (visible in Vault's
	// audit log and token lookups). Never a credential.
	Metadata map[string]string
	// DisplayName shows up in Vault as "token-<DisplayName>".
	DisplayName string
	// WrapTTL is the wrapping token's lifetime; 0 means vault.wrap_ttl.
	WrapTTL time.Duration
}

// WrappedToken is an issued grant token, response-wrapped. Only WrapToken is a
// credential: it goes into the requester's DM and nowhere else (it is hidden
// from fmt, slog and JSON). Store the accessors.
type WrappedToken struct {
	WrapToken     string `json:"-"`
	WrapAccessor  string `json:"wrap_accessor"`  // the wrapping token's: lookup tells whether it was unwrapped
	TokenAccessor string `json:"token_accessor"` // the grant token's: revoke it with this
	// ExpiresAt is the latest the grant token can live (its explicit max TTL,
	// counted from just before the request).
	ExpiresAt time.Time `json:"expires_at"`
	// WrapExpiresAt is when the unused wrapping token dies.
	WrapExpiresAt time.Time `json:"wrap_expires_at"`
}

// String hides WrapToken.
func (w WrappedToken) String() string {
	return fmt.Sprintf("vault.WrappedToken{WrapAccessor:%s TokenAccessor:%s ExpiresAt:%s}",
		w.WrapAccessor, w.TokenAccessor, w.ExpiresAt.Format(time.RFC3339))
}

// GoString hides WrapToken from %#v.
func (w WrappedToken) GoString() string { return w.String() }

// LogValue hides WrapToken from slog.
func (w WrappedToken) LogValue() slog.Value {
	return slog.GroupValue(slog.String("wrap_accessor", w.WrapAccessor),
		slog.String("token_accessor", w.TokenAccessor), slog.Time("expires_at", w.ExpiresAt))
}

// TokenInfo is what a token lookup reports (never the token itself).
type TokenInfo struct {
	Accessor     string
	DisplayName  string
	Policies     []string
	Meta         map[string]string
	Role         string
	Path         string // the path that created it, e.g. auth/token/create/secretbot
	Type         string // service | batch
	Orphan       bool
	Renewable    bool
	NumUses      int           // remaining uses, 0 = unlimited
	TTL          time.Duration // remaining
	CreationTime time.Time
	ExpireTime   time.Time // zero when the token has no expiry
	EntityID     string
}

// IssueWrapped creates a token through the configured token role and returns
// it response-wrapped (single use, WrapTTL), so the bot itself never sees the
// grant token. If Vault answers with an unwrapped token anyway, that token is
// revoked at once and an error returned.
//
// Errors: *Error with ErrPermissionDenied (policy, or the role does not allow
// the policies), ErrUnavailable, or a context error; plain errors for invalid
// requests.
func (c *Client) IssueWrapped(ctx context.Context, req IssueRequest) (WrappedToken, error) {
	role := c.cfg.Vault.TokenRole
	switch {
	case role == "":
		return WrappedToken{}, errors.New("vault: vault.token_role is not configured")
	case len(req.Policies) == 0:
		return WrappedToken{}, errors.New("vault: issue: no policies")
	case req.TTL < time.Second:
		return WrappedToken{}, errors.New("vault: issue: TTL must be at least 1s")
	case c.cfg.Vault.TokenRoleMaxTTL > 0 && req.TTL > c.cfg.Vault.TokenRoleMaxTTL.D():
		return WrappedToken{}, fmt.Errorf("vault: issue: TTL %s exceeds vault.token_role_max_ttl %s",
			fmtDur(req.TTL), fmtDur(c.cfg.Vault.TokenRoleMaxTTL.D()))
	}
	if err := c.ensureToken(ctx); err != nil {
		return WrappedToken{}, err
	}
	wrapTTL := c.wrapTTL(req.WrapTTL)
	createPath := "auth/token/create/" + role
	wc, err := c.clone()
	if err != nil {
		return WrappedToken{}, err
	}
	// Only this call on this private clone is wrapped.
	wc.SetWrappingLookupFunc(func(_, path string) string {
		if path == createPath {
			return secs(wrapTTL)
		}
		return ""
	})
	renewable := false
	start := c.now()
	crash.Point("vault.issue_wrapped.before")
	secret, err := wc.Auth().Token().CreateWithRoleWithContext(ctx, &api.TokenCreateRequest{
		Policies:       req.Policies,
		Metadata:       req.Metadata,
		TTL:            secs(req.TTL),
		ExplicitMaxTTL: secs(req.TTL),
		Renewable:      &renewable,
		DisplayName:    req.DisplayName,
	}, role)
	crash.Point("vault.issue_wrapped.after")
	if err != nil {
		werr := c.fail(ctx, "create token with role "+role, err)
		if hasMessage(err, http.StatusBadRequest, "allowed policies") {
			werr.(*Error).kind = ErrPermissionDenied
		}
		return WrappedToken{}, werr
	}
	if secret == nil || secret.WrapInfo == nil {
		if secret != nil && secret.Auth != nil && secret.Auth.Accessor != "" {
			// A bare token reached us: it must not live on.
			if rerr := c.RevokeAccessor(ctx, secret.Auth.Accessor); rerr != nil {
				c.log.Error("revoking an unwrapped grant token failed", "token_accessor", secret.Auth.Accessor, "error", rerr.Error())
			}
		}
		return WrappedToken{}, &Error{Op: "create token with role " + role,
			Detail: "vault did not wrap the reply (token revoked if one was made)", kind: ErrUnavailable}
	}
	wi := secret.WrapInfo
	if wi.Token == "" || wi.Accessor == "" || wi.WrappedAccessor == "" {
		return WrappedToken{}, &Error{Op: "create token with role " + role,
			Detail: "wrapped reply lacks token or accessors", kind: ErrUnavailable}
	}
	created := wi.CreationTime
	if created.IsZero() {
		created = start
	}
	wttl := time.Duration(wi.TTL) * time.Second
	if wttl <= 0 {
		wttl = wrapTTL
	}
	return WrappedToken{
		WrapToken:     wi.Token,
		WrapAccessor:  wi.Accessor,
		TokenAccessor: wi.WrappedAccessor,
		ExpiresAt:     start.Add(req.TTL),
		WrapExpiresAt: created.Add(wttl),
	}, nil
}

// RevokeAccessor revokes the token behind accessor (and, for a service
// token, its children). A token already gone (expired, revoked, unwrapped) is
// success: the outcome the caller wants holds.
//
// Errors: *Error with ErrPermissionDenied, ErrUnavailable, or a context error.
func (c *Client) RevokeAccessor(ctx context.Context, accessor string) error {
	if accessor == "" {
		return errors.New("vault: revoke: empty accessor")
	}
	if err := c.ensureToken(ctx); err != nil {
		return err
	}
	crash.Point("vault.revoke_accessor.before")
	err := c.api.Auth().Token().RevokeAccessorWithContext(ctx, accessor)
	crash.Point("vault.revoke_accessor.after")
	if err == nil || isGone(err) {
		return nil
	}
	return c.fail(ctx, "revoke accessor", err)
}

// LookupAccessor reports the token behind accessor without holding it. For a
// wrapping token's accessor, ErrNotFound means it was unwrapped or expired. A
// token Vault is revoking (num_uses -1: its last use spent, as right after an
// unwrap) counts as not found.
//
// Errors: *Error with ErrNotFound (invalid or gone accessor),
// ErrPermissionDenied, ErrUnavailable, or a context error.
func (c *Client) LookupAccessor(ctx context.Context, accessor string) (TokenInfo, error) {
	if accessor == "" {
		return TokenInfo{}, errors.New("vault: lookup: empty accessor")
	}
	if err := c.ensureToken(ctx); err != nil {
		return TokenInfo{}, err
	}
	crash.Point("vault.lookup_accessor.before")
	secret, err := c.api.Auth().Token().LookupAccessorWithContext(ctx, accessor)
	crash.Point("vault.lookup_accessor.after")
	if err != nil {
		if isGone(err) {
			return TokenInfo{}, &Error{Op: "lookup accessor", StatusCode: http.StatusBadRequest, Detail: "no token with this accessor", kind: ErrNotFound}
		}
		return TokenInfo{}, c.fail(ctx, "lookup accessor", err)
	}
	if secret == nil || secret.Data == nil {
		return TokenInfo{}, &Error{Op: "lookup accessor", Detail: "empty reply", kind: ErrNotFound}
	}
	info := parseTokenInfo(secret)
	if info.NumUses < 0 {
		// num_uses -1: Vault is revoking the token (its last use is spent, e.g.
		// a wrapping token just unwrapped, or a revoke is in progress); the
		// revocation finishes in the background, and lookups still find it
		// for a moment. It can no longer be used.
		return TokenInfo{}, &Error{Op: "lookup accessor", StatusCode: http.StatusOK, Detail: "token used up, being revoked", kind: ErrNotFound}
	}
	return info, nil
}

// isGone recognises Vault's answers for an accessor whose token no longer
// exists: 400 "invalid accessor" (no such accessor), 400 "token not found"
// (revoke of an accessor whose token just died), 403 "bad token" (lookup of
// one whose token just died).
func isGone(err error) bool {
	return hasMessage(err, http.StatusBadRequest, "invalid accessor") ||
		hasMessage(err, http.StatusBadRequest, "token not found") ||
		hasMessage(err, http.StatusForbidden, "bad token")
}

// parseTokenInfo reads a lookup reply's data. The "id" field (the token
// itself, on lookup-self) is deliberately never read.
func parseTokenInfo(s *api.Secret) TokenInfo {
	d := s.Data
	info := TokenInfo{
		Accessor:    str(d["accessor"]),
		DisplayName: str(d["display_name"]),
		Policies:    strs(d["policies"]),
		Role:        str(d["role"]),
		Path:        str(d["path"]),
		Type:        str(d["type"]),
		Orphan:      boolean(d["orphan"]),
		Renewable:   boolean(d["renewable"]),
		NumUses:     int(num(d["num_uses"])),
		TTL:         time.Duration(num(d["ttl"])) * time.Second,
		EntityID:    str(d["entity_id"]),
	}
	if ct := num(d["creation_time"]); ct > 0 {
		info.CreationTime = time.Unix(ct, 0).UTC()
	}
	if et, err := time.Parse(time.RFC3339Nano, str(d["expire_time"])); err == nil {
		info.ExpireTime = et
	}
	if m, ok := d["meta"].(map[string]any); ok {
		info.Meta = make(map[string]string, len(m))
		for k, v := range m {
			info.Meta[k] = str(v)
		}
	}
	return info
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func boolean(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		r, _ := strconv.ParseBool(b)
		return r
	}
	return false
}

// num reads Vault's numbers (json.Number from the api decoder; float64 or
// strings elsewhere), 0 when absent.
func num(v any) int64 {
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i
		}
		f, _ := n.Float64()
		return int64(f)
	case float64:
		return int64(n)
	case int:
		return int64(n)
	case int64:
		return n
	case string:
		i, _ := strconv.ParseInt(n, 10, 64)
		return i
	}
	return 0
}

// secs formats d for Vault as whole seconds ("600s"): unambiguous for every
// Vault duration field.
func secs(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// fmtDur prints 12h, 1h30m, 45s instead of 12h0m0s.
func fmtDur(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
