package rotation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/policy"
)

// Exposure is who held a grant covering a secret's path since its last rotation.
type Exposure struct {
	Secret Secret
	// Since is the last rotation; zero when the bot never rotated it (every
	// grant counts then).
	Since  time.Time
	Scopes []string       // the scopes whose kv_paths cover the secret's path, in config order
	Grants []access.Grant // issued grants of those scopes live at some point since Since, oldest first
}

// Exposure lists who held a grant whose scope covers secret's path since
// its last rotation (`/secrets exposure`): only rotators. A scope covers the
// path when one of its kv_paths matches it as a Vault policy path would
// (`*` at the end: any suffix; `+`: one path segment), written relative to
// the mount or with the mount in front. A grant counts when it was issued
// and had not ended before Since. Audited.
func (s *Service) Exposure(ctx context.Context, p policy.Person, secret string) (Exposure, error) {
	name := strings.ToLower(strings.TrimSpace(secret))
	op, err := s.rotator(ctx, p, "see who was exposed to a secret", ActExposure, name)
	if err != nil {
		return Exposure{}, err
	}
	sec, err := s.Secret(ctx, name)
	if err != nil {
		if ue, ok := IsUserError(err); ok {
			return Exposure{}, s.audited(ctx, ue, secretEvent(op.SlackID, ActExposure, audit.Refused, ue.Msg, name, nil))
		}
		return Exposure{}, err
	}
	if s.Grants == nil {
		return Exposure{}, fmt.Errorf("rotation: exposure: no grants reader is configured")
	}
	x := Exposure{Secret: sec, Since: sec.LastRotatedAt, Scopes: CoveringScopes(s.Config, sec)}
	if len(x.Scopes) > 0 {
		gs, err := s.Grants.GrantsSince(ctx, x.Since)
		if err != nil {
			return Exposure{}, fmt.Errorf("rotation: exposure of %s: %w", sec.Name, err)
		}
		x.Grants = ExposedGrants(gs, x.Scopes, x.Since)
	}
	_ = s.audited(ctx, nil, secretEvent(op.SlackID, ActExposure, audit.OK,
		fmt.Sprintf("%d grants of %d covering scopes since %s", len(x.Grants), len(x.Scopes), fmtTime(x.Since)), sec.Name, nil))
	return x, nil
}

// CoveringScopes lists the scopes whose kv_paths cover sec's path.
func CoveringScopes(cfg *config.Config, sec Secret) []string {
	var out []string
	for _, sc := range cfg.Scopes {
		for _, pat := range sc.KVPaths {
			if Covers(pat, sec.Mount, sec.Path) {
				out = append(out, sc.Name)
				break
			}
		}
	}
	return out
}

// ExposedGrants keeps the grants of scopes that were issued and had not
// ended before since, oldest first.
func ExposedGrants(gs []access.Grant, scopes []string, since time.Time) []access.Grant {
	var out []access.Grant
	for _, g := range gs {
		if !slices.Contains(scopes, g.Scope) || g.IssuedAt.IsZero() {
			continue
		}
		if !g.EndedAt.IsZero() && g.EndedAt.Before(since) {
			continue
		}
		out = append(out, g)
	}
	slices.SortStableFunc(out, func(a, b access.Grant) int { return a.IssuedAt.Compare(b.IssuedAt) })
	return out
}

// Covers reports whether a scope's kv_paths entry covers the KV v2 secret
// mount/path. pattern is relative to the mount ("platform/*"), or starts
// with the mount ("kv/platform/*", "kv/data/platform/*").
func Covers(pattern, mount, path string) bool {
	pattern = strings.TrimPrefix(strings.TrimSpace(pattern), "/")
	for _, candidate := range []string{path, mount + "/" + path, mount + "/data/" + path} {
		if globMatch(pattern, candidate) {
			return true
		}
	}
	return false
}

// globMatch matches like a Vault policy path: "+" is exactly one segment,
// a trailing "*" any suffix (including none), and a pattern ending in "/"
// covers everything under it.
func globMatch(pattern, path string) bool {
	if strings.HasSuffix(pattern, "/") {
		pattern += "*"
	}
	pp := strings.Split(pattern, "/")
	sp := strings.Split(path, "/")
	for i, seg := range pp {
		last := i == len(pp)-1
		if last && strings.HasSuffix(seg, "*") {
			prefix := strings.TrimSuffix(seg, "*")
			if len(sp) < i+1 {
				return false
			}
			return matchSeg(prefix, sp[i], true)
		}
		if i >= len(sp) {
			return false
		}
		if !matchSeg(seg, sp[i], false) {
			return false
		}
		if last {
			return len(sp) == len(pp)
		}
	}
	return false
}

func matchSeg(seg, s string, prefix bool) bool {
	if seg == "+" && !prefix {
		return s != ""
	}
	if prefix {
		return strings.HasPrefix(s, seg)
	}
	return seg == s
}
