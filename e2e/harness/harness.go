// Package harness runs the real secretbot (internal/app.Run) against a fake
// Slack, fake PagerDuty and Jira, and a real in-process Vault, for
// end-to-end scenarios.
package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/secretbot/secretbot/e2e/fakejira"
	"github.com/secretbot/secretbot/e2e/fakepd"
	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/e2e/vaulttest"
	"github.com/secretbot/secretbot/internal/app"
)

// Options changes what Start sets up. The zero value is the full Lumi setup
// with a static Vault token.
type Options struct {
	// AppRole logs the bot in with VAULT_ROLE_ID and VAULT_SECRET_ID instead of VAULT_TOKEN.
	AppRole bool
	// NoPagerDuty and NoJira leave those integrations unconfigured.
	NoPagerDuty, NoJira bool
	// Env overrides environment variables; an empty value removes one.
	Env map[string]string
	// EditConfig changes the configuration document before it is written.
	EditConfig func(doc map[string]any)
	// Slack options for the fake Slack (e.g. ping interval).
	Slack []fakeslack.Option
	// NoRun sets everything up without starting the bot (for RunCLI tests).
	NoRun bool
	// NoWait returns without waiting for /readyz.
	NoWait bool
	// ReadyTimeout bounds WaitReady (default 30s).
	ReadyTimeout time.Duration
	// Vault, when set, is used instead of a Vault of the harness's own (one
	// Vault shared by many harnesses, seeded once with SeedVault).
	Vault *vaulttest.Vault
}

// Harness is one bot and the world around it.
type Harness struct {
	Slack *fakeslack.Server
	PD    *fakepd.Server
	Jira  *fakejira.Server
	Vault *vaulttest.Vault

	// Dir is the harness's temporary directory; ConfigPath and DBPath are in it.
	Dir        string
	ConfigPath string
	DBPath     string
	// OpsAddr is the bot's health/metrics listener (host:port).
	OpsAddr string

	t            testing.TB
	readyTimeout time.Duration
	logs         logBuffer

	mu      sync.Mutex
	env     map[string]string
	cancel  context.CancelFunc
	done    chan struct{}
	runErr  error
	running bool
}

// Start builds the world, writes the configuration and, unless NoRun,
// starts the bot and waits until /readyz answers 200.
func Start(t testing.TB, opts Options) *Harness {
	t.Helper()
	tok := randHex(8)
	slackOpts := append([]fakeslack.Option{fakeslack.WithTokens("xoxb-test-"+tok, "xapp-test-1-A0TEST-"+tok)}, opts.Slack...)
	h := &Harness{
		Slack:        fakeslack.New(t, slackOpts...),
		PD:           fakepd.New(t, fakepd.WithToken("pd-test-"+tok)),
		Jira:         fakejira.New(t, fakejira.WithBasic("secretbot@lumi.test", "jira-test-"+tok), fakejira.WithPAT("jira-test-pat-"+tok)),
		Vault:        opts.Vault,
		Dir:          t.TempDir(),
		t:            t,
		readyTimeout: opts.ReadyTimeout,
	}
	if h.readyTimeout == 0 {
		h.readyTimeout = 30 * time.Second
	}
	shared := h.Vault != nil
	if !shared {
		h.Vault = vaulttest.Start(t)
	}
	h.ConfigPath = filepath.Join(h.Dir, "secretbot.yaml")
	h.DBPath = filepath.Join(h.Dir, "data", "secretbot.db")
	h.OpsAddr = freeAddr(t)
	h.seed(!shared)
	h.env = h.baseEnv(opts)
	for k, v := range opts.Env {
		h.SetEnv(k, v)
	}
	if err := h.writeConfig(opts.EditConfig); err != nil {
		t.Fatalf("harness: write config: %v", err)
	}
	// Registered after the fakes, so it runs before they close.
	t.Cleanup(h.cleanup)
	if opts.NoRun {
		return h
	}
	h.StartBot()
	if !opts.NoWait {
		if err := h.WaitReady(); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func (h *Harness) baseEnv(opts Options) map[string]string {
	env := map[string]string{
		"SECRETBOT_CONFIG":    h.ConfigPath,
		"SLACK_APP_TOKEN":     h.Slack.AppToken(),
		"SLACK_BOT_TOKEN":     h.Slack.BotToken(),
		"SLACK_API_URL":       h.Slack.APIURL(),
		"VAULT_ADDR":          h.Vault.Addr,
		"VAULT_CACERT":        h.Vault.CACertPath,
		"SECRETBOT_AUDIT_KEY": "audit-test-key-" + randHex(16),
	}
	if opts.AppRole {
		env["VAULT_ROLE_ID"], env["VAULT_SECRET_ID"] = h.Vault.RoleID, h.Vault.SecretID
	} else {
		env["VAULT_TOKEN"] = h.Vault.BotToken
	}
	if !opts.NoPagerDuty {
		env["PAGERDUTY_TOKEN"], env["PAGERDUTY_API_URL"] = h.PD.Token(), h.PD.URL
	}
	if !opts.NoJira {
		env["JIRA_URL"], env["JIRA_EMAIL"], env["JIRA_API_TOKEN"] = h.Jira.URL, h.Jira.Email(), h.Jira.APIToken()
	}
	return env
}

// Getenv is the getenv the bot runs with.
func (h *Harness) Getenv(k string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.env[k]
}

// Env returns a copy of the bot's environment.
func (h *Harness) Env() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.env)
}

// SetEnv sets (or, with "", removes) a variable for the next start or CLI run.
func (h *Harness) SetEnv(k, v string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v == "" {
		delete(h.env, k)
		return
	}
	h.env[k] = v
}

// Secrets returns every credential value in play (the bot's and the
// fakes'), for scanning logs, messages and the database for leaks.
func (h *Harness) Secrets() []string {
	out := []string{h.Slack.AppToken(), h.Slack.BotToken(), h.Vault.BotToken, h.Vault.SecretID, h.Vault.RootToken,
		h.PD.Token(), h.Jira.APIToken(), h.Jira.PAT()}
	for _, k := range []string{"SECRETBOT_AUDIT_KEY", "VAULT_TOKEN", "VAULT_SECRET_ID", "JIRA_PAT"} {
		if v := h.Getenv(k); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// StartBot runs app.Run("run", "--config", ConfigPath) in a goroutine.
func (h *Harness) StartBot() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running {
		h.t.Fatal("harness: the bot is already running")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	h.cancel, h.done, h.runErr, h.running = cancel, done, nil, true
	go func() {
		err := app.Run(ctx, []string{"run", "--config", h.ConfigPath}, h.Getenv, &h.logs, &h.logs)
		h.mu.Lock()
		h.runErr = err
		h.mu.Unlock()
		close(done)
	}()
}

// WaitReady polls http://OpsAddr/readyz until it answers 200. It fails
// early when the bot exits.
func (h *Harness) WaitReady() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(h.readyTimeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if err, exited := h.WaitExit(0); exited {
			return fmt.Errorf("harness: the bot exited before it was ready: %v (code %d)\n%s", err, app.ExitCode(err), h.tail(30))
		}
		resp, err := client.Get("http://" + h.OpsAddr + "/readyz")
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b.String())
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("harness: /readyz not 200 after %v (last: %s)\n%s", h.readyTimeout, last, h.tail(30))
}

// WaitExit waits up to timeout for the bot to return on its own, and
// returns Run's error and whether it returned.
func (h *Harness) WaitExit(timeout time.Duration) (error, bool) {
	h.mu.Lock()
	done := h.done
	h.mu.Unlock()
	if done == nil {
		return nil, false
	}
	select {
	case <-done:
	default:
		if timeout <= 0 {
			return nil, false
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			return nil, false
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running = false
	return h.runErr, true
}

// Stop cancels the bot's context, waits for Run to return and returns its error.
func (h *Harness) Stop() error {
	h.mu.Lock()
	cancel, done := h.cancel, h.done
	h.mu.Unlock()
	if done == nil {
		return errors.New("harness: the bot was never started")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("harness: the bot did not stop within 30s\n%s", h.tail(30))
	}
	err, _ := h.WaitExit(0)
	return err
}

// Restart stops the bot (its error is returned), starts it again with the
// same configuration, database and environment, and waits until it is ready.
func (h *Harness) Restart() error {
	h.t.Helper()
	stopErr := h.Stop()
	h.StartBot()
	if err := h.WaitReady(); err != nil {
		return errors.Join(stopErr, err)
	}
	return stopErr
}

// RunCLI runs app.Run with args exactly as given (for example "check", or
// "audit", "verify") with the harness's environment, which names the
// configuration in SECRETBOT_CONFIG. It returns the output and exit code.
func (h *Harness) RunCLI(args ...string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	err := app.Run(ctx, args, h.Getenv, &out, &errb)
	return out.String(), errb.String(), app.ExitCode(err)
}

func (h *Harness) cleanup() {
	h.mu.Lock()
	running := h.running
	h.mu.Unlock()
	if running {
		if err := h.Stop(); err != nil && !errors.Is(err, context.Canceled) {
			h.t.Logf("harness: the bot stopped with: %v", err)
		}
	}
	if h.t.Failed() {
		h.t.Logf("harness: last bot output:\n%s", h.tail(60))
	}
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
