package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/check"
	"github.com/secretbot/secretbot/internal/config"
)

const integration = "vault"

// probe is one capability the bot's policy must grant.
type probe struct {
	path string
	caps []string
}

// probes lists what the bot needs, on concrete paths under the configured
// mount and role (deploy/vault/secretbot-bot.hcl grants exactly these).
func (c *Client) probes() []probe {
	role := c.cfg.Vault.TokenRole
	kv := strings.Trim(c.cfg.Vault.KVMount, "/")
	if kv == "" {
		kv = "kv"
	}
	ps := []probe{
		{"sys/capabilities-self", []string{"update"}},
		{"auth/token/lookup-self", []string{"read"}},
		{"auth/token/create/" + role, []string{"update"}},
		{"auth/token/revoke-accessor", []string{"update"}},
		{"auth/token/lookup-accessor", []string{"update"}},
		{"auth/token/roles/" + role, []string{"read"}},
		{kv + "/data/secretbot-check", []string{"create", "read", "update"}},
		{kv + "/metadata/secretbot-check", []string{"create", "read", "update", "patch"}},
		{kv + "/delete/secretbot-check", []string{"update"}},
		{kv + "/undelete/secretbot-check", []string{"update"}},
		{kv + "/destroy/secretbot-check", []string{"update"}},
	}
	if c.method == "approle" {
		ps = append(ps, probe{"auth/token/renew-self", []string{"update"}})
	}
	if c.cfg.Vault.Reconcile.FullScan {
		// vault.reconcile.full_scan: deploy/vault/secretbot-reconcile.hcl.
		ps = append(ps, probe{accessorsPath, []string{"list", "sudo"}})
	}
	if c.usesEntityGroups() {
		ps = append(ps,
			probe{"sys/auth", []string{"read"}},
			probe{"identity/lookup/entity", []string{"update"}},
			probe{"identity/group", []string{"update"}},
			probe{"identity/group/name/secretbot-check", []string{"read", "delete"}},
		)
	}
	return ps
}

func (c *Client) usesEntityGroups() bool {
	for _, s := range c.cfg.Scopes {
		if s.Delivery == config.DeliveryEntityGroup && !s.Disabled {
			return true
		}
	}
	return false
}

// Check reports, one finding per line: whether Vault is reachable and
// unsealed; the bot token's policies and TTL (FAIL if root); every capability
// the bot needs that the token lacks ("token lacks update on
// auth/token/create/secretbot"); whether the KV mount is version 2; and
// whether the token role is orphan, non-renewable, with an explicit max TTL
// >= vault.token_role_max_ttl, allowing every wrapped-token scope's policies.
// No detail ever holds a credential.
func (c *Client) Check(ctx context.Context) []check.Result {
	var rs []check.Result
	add := func(status, format string, args ...any) {
		rs = append(rs, check.Result{Integration: integration, Status: status, Detail: c.scrub(fmt.Sprintf(format, args...))})
	}

	if !c.checkHealth(ctx, add) {
		return rs
	}
	if err := c.ensureToken(ctx); err != nil {
		add(check.Fail, "login (%s) failed: %s", c.method, errDetail(err))
		return rs
	}
	if !c.checkSelf(ctx, add) {
		return rs
	}
	c.checkCapabilities(ctx, add)
	c.checkKVMount(ctx, add)
	c.checkRole(ctx, add)
	return rs
}

type addFunc func(status, format string, args ...any)

func (c *Client) checkHealth(ctx context.Context, add addFunc) bool {
	cl, err := c.clone()
	if err != nil {
		add(check.Fail, "%s", errDetail(err))
		return false
	}
	// sys/health lives in the root namespace and needs no token.
	cl.ClearNamespace()
	cl.ClearToken()
	h, err := cl.Sys().HealthWithContext(ctx)
	switch {
	case err != nil:
		add(check.Fail, "cannot reach Vault at %s: %s", c.addr, errDetail(c.fail(ctx, "health", err)))
		return false
	case !h.Initialized:
		add(check.Fail, "Vault at %s is not initialized", c.addr)
		return false
	case h.Sealed:
		add(check.Fail, "Vault at %s is sealed", c.addr)
		return false
	}
	add(check.OK, "Vault %s at %s is reachable and unsealed", h.Version, c.addr)
	return true
}

func (c *Client) checkSelf(ctx context.Context, add addFunc) bool {
	self, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		add(check.Fail, "token lookup-self failed (%s): %s", c.method, errDetail(c.fail(ctx, "lookup-self", err)))
		return false
	}
	if self == nil || self.Data == nil {
		add(check.Fail, "token lookup-self returned nothing")
		return false
	}
	info := parseTokenInfo(self)
	ttl := "no expiry"
	if info.TTL > 0 {
		ttl = "ttl " + fmtDur(info.TTL)
		if info.Renewable {
			ttl += ", renewable"
		}
	}
	if slices.Contains(info.Policies, "root") {
		add(check.Fail, "bot token must not be root (policies: %s)", strings.Join(info.Policies, ", "))
		return true
	}
	add(check.OK, "token (%s) policies: %s; %s", c.method, strings.Join(info.Policies, ", "), ttl)
	return true
}

func (c *Client) checkCapabilities(ctx context.Context, add addFunc) {
	ps := c.probes()
	paths := make([]string, len(ps))
	for i, p := range ps {
		paths[i] = p.path
	}
	secret, err := c.api.Logical().WriteWithContext(ctx, "sys/capabilities-self", map[string]any{"paths": paths})
	if err != nil {
		werr := c.fail(ctx, "capabilities-self", err)
		if errors.Is(werr, ErrPermissionDenied) {
			add(check.Fail, "token lacks update on sys/capabilities-self")
			return
		}
		add(check.Fail, "sys/capabilities-self failed: %s", errDetail(werr))
		return
	}
	if secret == nil || secret.Data == nil {
		add(check.Fail, "sys/capabilities-self returned nothing")
		return
	}
	missing, scanMissing := 0, 0
	for _, p := range ps {
		have := strs(secret.Data[p.path])
		if slices.Contains(have, "root") {
			continue
		}
		for _, want := range p.caps {
			// "deny" overrides everything else on a path.
			if !slices.Contains(have, want) || slices.Contains(have, "deny") {
				add(check.Fail, "token lacks %s on %s", want, p.path)
				missing++
				if p.path == accessorsPath {
					scanMissing++
				}
			}
		}
	}
	if c.cfg.Vault.Reconcile.FullScan {
		if scanMissing > 0 {
			add(check.Fail, "vault.reconcile.full_scan is on but the token may not list %s: apply deploy/vault/secretbot-reconcile.hcl (see deploy/vault/README.md)", accessorsPath)
		} else {
			add(check.OK, "vault.reconcile.full_scan: the token may list %s (sudo)", accessorsPath)
		}
	}
	if missing == 0 {
		n := 0
		for _, p := range ps {
			n += len(p.caps)
		}
		add(check.OK, "token has all %d capabilities the bot needs on %d paths", n, len(ps))
	}
}

// checkKVMount asks sys/internal/ui/mounts/<kv> (answered for any token with a
// capability under the mount) whether the mount is KV version 2.
func (c *Client) checkKVMount(ctx context.Context, add addFunc) {
	kv := strings.Trim(c.cfg.Vault.KVMount, "/")
	if kv == "" {
		kv = "kv"
	}
	secret, err := c.api.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+kv)
	if err != nil {
		add(check.Fail, "no KV mount at %s/ visible to the token: %s", kv, errDetail(c.fail(ctx, "read mount", err)))
		return
	}
	if secret == nil || secret.Data == nil {
		add(check.Fail, "no KV mount at %s/", kv)
		return
	}
	opts, _ := secret.Data["options"].(map[string]any)
	typ, ver := str(secret.Data["type"]), str(opts["version"])
	if typ != "kv" || ver != "2" {
		add(check.Fail, "mount %s/ is %s version %q, want kv version 2 (vault secrets enable -path=%s kv-v2)", kv, typ, ver, kv)
		return
	}
	add(check.OK, "%s/ is a KV version 2 mount", kv)
}

func (c *Client) checkRole(ctx context.Context, add addFunc) {
	role := c.cfg.Vault.TokenRole
	secret, err := c.api.Logical().ReadWithContext(ctx, "auth/token/roles/"+role)
	if err != nil {
		werr := c.fail(ctx, "read token role", err)
		if errors.Is(werr, ErrPermissionDenied) {
			add(check.Fail, "token lacks read on auth/token/roles/%s: cannot verify the token role", role)
			return
		}
		add(check.Fail, "reading token role %s failed: %s", role, errDetail(werr))
		return
	}
	if secret == nil || secret.Data == nil {
		add(check.Fail, "token role %s does not exist (see deploy/vault/README.md)", role)
		return
	}
	d := secret.Data
	bad := 0
	fail := func(format string, args ...any) {
		add(check.Fail, "token role %s: "+format, append([]any{role}, args...)...)
		bad++
	}
	if !boolean(d["orphan"]) {
		fail("orphan must be true (grants must not die with the bot's token)")
	}
	if boolean(d["renewable"]) {
		fail("renewable must be false (grants must not outlive their TTL)")
	}
	maxTTL := time.Duration(num(d["token_explicit_max_ttl"])) * time.Second
	if maxTTL == 0 {
		maxTTL = time.Duration(num(d["explicit_max_ttl"])) * time.Second
	}
	want := c.cfg.Vault.TokenRoleMaxTTL.D()
	switch {
	case maxTTL == 0:
		fail("token_explicit_max_ttl is not set (want %s)", fmtDur(want))
	case maxTTL < want:
		fail("token_explicit_max_ttl %s is below vault.token_role_max_ttl %s", fmtDur(maxTTL), fmtDur(want))
	}
	if t := str(d["token_type"]); strings.Contains(t, "batch") {
		fail("token_type is %s; grants need service tokens (batch tokens have no accessor to revoke)", t)
	}
	allowed, allowedGlob := strs(d["allowed_policies"]), strs(d["allowed_policies_glob"])
	denied, deniedGlob := strs(d["disallowed_policies"]), strs(d["disallowed_policies_glob"])
	for _, s := range c.cfg.Scopes {
		if s.Disabled || (s.Delivery != "" && s.Delivery != config.DeliveryWrappedToken) {
			continue
		}
		for _, p := range s.VaultPolicies {
			if (!slices.Contains(allowed, p) && !globAny(allowedGlob, p)) || slices.Contains(denied, p) || globAny(deniedGlob, p) {
				fail("does not allow policy %s (scope %s)", p, s.Name)
			}
		}
	}
	if bad == 0 {
		add(check.OK, "token role %s: orphan, not renewable, explicit max ttl %s, allows %s",
			role, fmtDur(maxTTL), strings.Join(append(allowed, allowedGlob...), ", "))
	}
}

// globAny matches Vault's policy globs ("*" matches any run of characters).
func globAny(globs []string, s string) bool {
	for _, g := range globs {
		if glob(g, s) {
			return true
		}
	}
	return false
}

func glob(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last)
}

// errDetail gives an error's one-line detail without the "vault: op:" prefix
// when it is ours.
func errDetail(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Detail
	}
	return oneLine(err.Error())
}
