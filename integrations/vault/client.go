// Package vault is secretbot's adapter to HashiCorp Vault: the bot's own
// login, `secretbot check`, issuing, looking up and revoking grant tokens
// (and entity-group grants), and the KV v2 secrets that the inventory and
// rotations manage (kv.go).
//
// Everything is driven from config (credentials come from cfg.Creds, which the
// app fills from its getenv): this package never reads the process
// environment, so several bots can live in one process (the e2e tests).
package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/hashicorp/vault/api"

	"github.com/secretbot/secretbot/internal/config"
)

// Defaults mirroring api.DefaultConfig(), which we cannot call because it
// reads VAULT_* from the process environment.
const (
	defaultTimeout      = 60 * time.Second
	defaultMinRetryWait = 1000 * time.Millisecond
	defaultMaxRetryWait = 1500 * time.Millisecond
	defaultMaxRetries   = 2
	defaultWrapTTL      = 10 * time.Minute
)

// Client is the bot's Vault client. Safe for concurrent use.
type Client struct {
	cfg    *config.Config
	api    *api.Client
	log    *slog.Logger
	now    func() time.Time
	addr   string // for messages; userinfo stripped
	method string // "token" or "approle"

	// Re-login backoff bounds; tests shorten them.
	reloginMin, reloginMax time.Duration

	mu        sync.Mutex
	onToken   func(token string) // see OnNewToken
	stopWatch context.CancelFunc // stops the running renewal loop, if any
	watchDone chan struct{}      // closed when that loop has returned
}

// New builds the client from cfg.Creds (VaultAddr, VaultCACert, VaultToken or
// VaultRoleID+VaultSecretID) and cfg.Vault.Namespace. There is no default
// address. It does no network I/O.
//
// httpClient may be nil; it is copied, never modified. When VaultCACert is
// set the CA has to reach the TLS settings under httpClient's Transport:
//   - nil or an *http.Transport: cloned, with the CA added;
//   - a wrapping RoundTripper (e.g. metrics) with a method
//     WithBase(http.RoundTripper) http.RoundTripper: rebuilt around a
//     transport that trusts the CA, so the wrapper keeps working;
//   - any other RoundTripper cannot be taught a CA from outside: it is
//     replaced by a transport that trusts the CA, and a warning is logged
//     (its instrumentation is lost for Vault calls).
func New(cfg *config.Config, httpClient *http.Client, logger *slog.Logger) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("vault: no configuration")
	}
	cr := cfg.Creds
	if cr.VaultAddr == "" {
		return nil, errors.New("vault: VAULT_ADDR is not set (there is no default address)")
	}
	u, err := url.Parse(cr.VaultAddr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("vault: VAULT_ADDR must be an http(s) URL like https://vault.example.com:8200")
	}
	// VAULT_TOKEN wins when both are set (docs/configuration.md).
	method := ""
	switch {
	case cr.VaultToken != "":
		method = "token"
	case cr.VaultRoleID != "" && cr.VaultSecretID != "":
		method = "approle"
	default:
		return nil, errors.New("vault: no credentials: set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID")
	}

	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("integration", "vault")
	hc, replaced, err := buildHTTPClient(httpClient, cr.VaultCACert)
	if err != nil {
		return nil, err
	}
	if replaced != "" {
		logger.Warn("VAULT_CACERT is set but the HTTP client's transport cannot take a CA; vault calls use a plain transport trusting the CA",
			"transport", replaced)
	}
	conf := &api.Config{
		Address:      cr.VaultAddr,
		HttpClient:   hc,
		Timeout:      defaultTimeout,
		MinRetryWait: defaultMinRetryWait,
		MaxRetryWait: defaultMaxRetryWait,
		MaxRetries:   defaultMaxRetries,
		Backoff:      retryablehttp.RateLimitLinearJitterBackoff,
		// Clones (ours and API() users') keep namespace and token instead of
		// picking VAULT_NAMESPACE / VAULT_TOKEN up from the environment.
		CloneHeaders: true,
		CloneToken:   true,
	}
	ac, err := api.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("vault: %s", oneLine(scrub(err.Error(), cr.VaultToken, cr.VaultSecretID)))
	}
	// api.NewClient applies VAULT_TOKEN, VAULT_NAMESPACE and VAULT_HEADERS from
	// the process environment; undo all of it.
	ac.ClearToken()
	ac.SetHeaders(http.Header{api.RequestHeaderName: []string{"true"}})
	if ns := cfg.Vault.Namespace; ns != "" {
		ac.SetNamespace(ns)
	}
	// The default lookup honours VAULT_WRAP_TTL, which would wrap every reply
	// (the login included). Wrapping is only ever asked for per call.
	ac.SetWrappingLookupFunc(noWrap)

	red := *u
	red.User = nil
	return &Client{
		cfg:        cfg,
		api:        ac,
		log:        logger,
		now:        time.Now,
		addr:       red.String(),
		method:     method,
		reloginMin: time.Second,
		reloginMax: time.Minute,
	}, nil
}

// OnNewToken registers fn, called with every token a login installs (the
// first and each later one), so the app can add it to its log redactor.
// fn must not log or store the token anywhere else.
func (c *Client) OnNewToken(fn func(token string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onToken = fn
}

// setToken installs a freshly obtained token.
func (c *Client) setToken(tok string) {
	c.api.SetToken(tok)
	c.mu.Lock()
	fn := c.onToken
	c.mu.Unlock()
	if fn != nil {
		fn(tok)
	}
}

// API returns the underlying client for calls this package does not wrap
// yet. It carries the bot's token: never log its requests.
func (c *Client) API() *api.Client { return c.api }

func noWrap(_, _ string) string { return "" }

// rebaser is a wrapping RoundTripper that can be rebuilt around another base.
type rebaser interface {
	WithBase(base http.RoundTripper) http.RoundTripper
}

// buildHTTPClient copies the caller's client (so its CheckRedirect is not
// changed under it) and adds the CA, as api.DefaultConfig would. replaced
// names the caller's transport type when it had to be set aside.
func buildHTTPClient(given *http.Client, caCert string) (hc *http.Client, replaced string, err error) {
	hc = &http.Client{}
	if given != nil {
		*hc = *given
	}
	var pool *x509.CertPool
	if caCert != "" {
		if pool, err = loadCA(caCert); err != nil {
			return nil, "", err
		}
	}
	switch rt := hc.Transport.(type) {
	case nil:
		hc.Transport = newTransport(pool)
	case *http.Transport:
		if pool != nil {
			t := rt.Clone()
			if t.TLSClientConfig == nil {
				t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			t.TLSClientConfig.RootCAs = pool
			hc.Transport = t
		}
	case rebaser:
		if pool != nil {
			hc.Transport = rt.WithBase(newTransport(pool))
		}
	default:
		if pool != nil {
			hc.Transport = newTransport(pool)
			replaced = fmt.Sprintf("%T", rt)
		}
	}
	// Vault's client handles redirects itself (one hop, no downgrade).
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return hc, replaced, nil
}

// newTransport is api.DefaultConfig's transport: pooled, TLS 1.2+, with
// pool as the trusted roots (system roots when nil).
func newTransport(pool *x509.CertPool) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSHandshakeTimeout = 10 * time.Second
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	return t
}

func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vault: reading VAULT_CACERT: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("vault: VAULT_CACERT %s holds no PEM certificate", path)
	}
	return pool, nil
}

// clone returns a client sharing the HTTP client, namespace and current token
// of the main one, with wrapping off. Per-call settings (wrapping, no token,
// no namespace) go on a clone, never on the shared client.
func (c *Client) clone() (*api.Client, error) {
	cl, err := c.api.Clone()
	if err != nil {
		return nil, &Error{Op: "clone client", Detail: oneLine(c.scrub(err.Error())), kind: ErrUnavailable}
	}
	cl.SetWrappingLookupFunc(noWrap)
	return cl, nil
}

// scrub removes the bot's credentials from s.
func (c *Client) scrub(s string) string {
	return scrub(s, c.secrets()...)
}

func (c *Client) secrets() []string {
	return []string{c.api.Token(), c.cfg.Creds.VaultToken, c.cfg.Creds.VaultSecretID}
}

// fail wraps a library error for op, scrubbing the bot's credentials.
func (c *Client) fail(ctx context.Context, op string, err error, extra ...string) error {
	return wrapErr(ctx, op, err, append(c.secrets(), extra...)...)
}

func (c *Client) wrapTTL(req time.Duration) time.Duration {
	switch {
	case req > 0:
		return req
	case c.cfg.Vault.WrapTTL > 0:
		return c.cfg.Vault.WrapTTL.D()
	}
	return defaultWrapTTL
}
