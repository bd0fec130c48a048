package vault

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
)

// Login authenticates the bot and keeps its token alive until ctx ends.
//
// With VAULT_TOKEN (which wins when the AppRole pair is set too) it checks
// the token (lookup-self) and renews it while Vault allows; a static token
// cannot be replaced, so when it can no longer be renewed that is logged.
// With VAULT_ROLE_ID+VAULT_SECRET_ID it logs in through AppRole and starts a
// lifetime watcher that renews the token; shortly before the max TTL, or when
// renewal ends, it logs in again, with backoff, until ctx ends.
//
// The first attempt's failure is returned (an *Error: ErrPermissionDenied for
// bad credentials, ErrUnavailable when Vault cannot be reached). Calling Login
// again replaces the previous renewal loop. Never logs a credential.
func (c *Client) Login(ctx context.Context) error {
	var (
		secret *api.Secret
		err    error
	)
	if c.method == "approle" {
		secret, err = c.loginAppRole(ctx)
	} else {
		secret, err = c.loginToken(ctx)
	}
	if err != nil {
		return err
	}
	c.log.Info("vault login ok", "method", c.method, "policies", secret.Auth.Policies,
		"ttl", (time.Duration(secret.Auth.LeaseDuration) * time.Second).String(), "renewable", secret.Auth.Renewable)

	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c.mu.Lock()
	prevStop, prevDone := c.stopWatch, c.watchDone
	c.stopWatch, c.watchDone = cancel, done
	c.mu.Unlock()
	if prevStop != nil {
		prevStop()
		<-prevDone
	}
	go func() {
		defer close(done)
		c.keepAlive(wctx, secret)
	}()
	return nil
}

// loginAppRole logs in on a token-less clone (so an expired token in the
// shared client is not sent along) and installs the new token.
func (c *Client) loginAppRole(ctx context.Context) (*api.Secret, error) {
	cr := c.cfg.Creds
	auth, err := approle.NewAppRoleAuth(cr.VaultRoleID, &approle.SecretID{FromString: cr.VaultSecretID})
	if err != nil {
		return nil, &Error{Op: "approle login", Detail: oneLine(c.scrub(err.Error())), kind: ErrNotLoggedIn}
	}
	cl, err := c.clone()
	if err != nil {
		return nil, err
	}
	cl.ClearToken()
	secret, err := cl.Auth().Login(ctx, auth)
	if err != nil {
		return nil, c.fail(ctx, "approle login", err, cr.VaultRoleID)
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return nil, &Error{Op: "approle login", Detail: "vault returned no token", kind: ErrNotLoggedIn}
	}
	c.setToken(secret.Auth.ClientToken)
	return secret, nil
}

// loginToken installs VAULT_TOKEN and looks it up, so a bad token fails here
// and the renewal loop knows its TTL.
func (c *Client) loginToken(ctx context.Context) (*api.Secret, error) {
	tok := c.cfg.Creds.VaultToken
	c.setToken(tok)
	self, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, c.fail(ctx, "token lookup-self", err)
	}
	info := parseTokenInfo(self)
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken:   tok,
		Accessor:      info.Accessor,
		Policies:      info.Policies,
		LeaseDuration: int(info.TTL / time.Second),
		Renewable:     info.Renewable,
	}}, nil
}

// keepAlive renews the token through a lifetime watcher; when the watcher
// gives up it logs in again (AppRole) until ctx ends.
func (c *Client) keepAlive(ctx context.Context, secret *api.Secret) {
	for {
		if !c.watch(ctx, secret) {
			return
		}
		if c.method != "approle" {
			c.log.Warn("vault token can no longer be renewed and VAULT_TOKEN cannot be replaced; vault calls will fail once it expires")
			return
		}
		secret = c.reloginWithBackoff(ctx)
		if secret == nil {
			return
		}
	}
}

// watch runs one lifetime watcher. It returns false when ctx ended, true when
// the token's lifetime is over (or it never had one to manage).
func (c *Client) watch(ctx context.Context, secret *api.Secret) bool {
	if secret.Auth.LeaseDuration <= 0 {
		// A token without a TTL never expires: nothing to renew.
		<-ctx.Done()
		return false
	}
	w, err := c.api.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		c.log.Error("vault lifetime watcher", "error", oneLine(c.scrub(err.Error())))
		return ctx.Err() == nil
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case err := <-w.DoneCh():
			if err != nil {
				c.log.Warn("vault token renewal ended", "error", oneLine(c.scrub(err.Error())))
			} else {
				c.log.Info("vault token reached the end of its lifetime")
			}
			return ctx.Err() == nil
		case r := <-w.RenewCh():
			if r == nil || r.Secret == nil || r.Secret.Auth == nil {
				continue
			}
			lease := r.Secret.Auth.LeaseDuration
			c.log.Debug("vault token renewed", "ttl", (time.Duration(lease) * time.Second).String())
			if c.method == "approle" && 2*lease < secret.Auth.LeaseDuration {
				// Clamped by the max TTL to under half a lease: log in again
				// now, while this token still works, rather than at the
				// watcher's last moment. (A fresh token renews to about a full
				// lease, so this cannot loop.)
				c.log.Info("vault token nears its max TTL; logging in again")
				return true
			}
		}
	}
}

// reloginWithBackoff retries the AppRole login with capped, jittered
// exponential backoff. Returns nil when ctx ends first.
func (c *Client) reloginWithBackoff(ctx context.Context) *api.Secret {
	delay := c.reloginMin
	for attempt := 1; ; attempt++ {
		secret, err := c.loginAppRole(ctx)
		if err == nil {
			c.log.Info("vault login ok", "method", c.method, "attempt", attempt,
				"ttl", (time.Duration(secret.Auth.LeaseDuration) * time.Second).String())
			return secret
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := delay/2 + rand.N(delay/2+1)
		c.log.Warn("vault login failed, retrying", "attempt", attempt, "retry_in", wait.String(), "error", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(delay*2, c.reloginMax)
	}
}

// Close stops the renewal loop started by Login and waits for it. Optional:
// ending Login's ctx does the same.
func (c *Client) Close() {
	c.mu.Lock()
	stop, done := c.stopWatch, c.watchDone
	c.stopWatch, c.watchDone = nil, nil
	c.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// ensureToken logs in once (no renewal loop) when nothing has yet, so
// `secretbot check` works without a prior Login.
func (c *Client) ensureToken(ctx context.Context) error {
	if c.api.Token() != "" {
		return nil
	}
	var err error
	if c.method == "approle" {
		_, err = c.loginAppRole(ctx)
	} else {
		c.setToken(c.cfg.Creds.VaultToken)
	}
	return err
}
