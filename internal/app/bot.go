package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/secretbot/secretbot/handlers"
	"github.com/secretbot/secretbot/integrations/jira"
	"github.com/secretbot/secretbot/integrations/pagerduty"
	slackint "github.com/secretbot/secretbot/integrations/slack"
	"github.com/secretbot/secretbot/integrations/vault"
	"github.com/secretbot/secretbot/internal/access"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/logging"
	"github.com/secretbot/secretbot/internal/rotation"
	"github.com/secretbot/secretbot/internal/schedule"
	"github.com/secretbot/secretbot/internal/store"
)

// env loads the configuration and sets up the redacting logger every
// subcommand that talks to outside systems needs.
type env struct {
	cfg      *config.Config
	redactor *logging.Redactor
	log      *slog.Logger
	metrics  *appMetrics
}

func loadEnv(path string, getenv func(string) string, logOut io.Writer) (*env, error) {
	cfg, err := config.Load(path, getenv)
	if err != nil {
		return nil, err
	}
	r := logging.NewRedactor(cfg.Creds.Secrets()...)
	return &env{
		cfg:      cfg,
		redactor: r,
		log:      logging.New(logOut, cfg.Ops.LogLevel, r),
		metrics:  newAppMetrics(),
	}, nil
}

// httpClient returns a client whose calls are counted under integration.
func (e *env) httpClient(integration string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: e.metrics.calls.Transport(integration, nil)}
}

// pagerDuty returns the PagerDuty client, or nil when it is not configured.
func (e *env) pagerDuty() *pagerduty.Client {
	if !e.cfg.PagerDutyEnabled() {
		return nil
	}
	return pagerduty.New(e.cfg, e.httpClient("pagerduty"))
}

func runBot(ctx context.Context, path string, dryRun bool, getenv func(string) string, stderr io.Writer) error {
	e, err := loadEnv(path, getenv, stderr)
	if err != nil {
		return err
	}
	cfg, log := e.cfg, e.log
	log.Info("secretbot starting", "version", version, "command", cfg.Slack.Command,
		"pagerduty", cfg.PagerDutyEnabled(), "jira", cfg.JiraEnabled(), "dry_run", dryRun)
	for _, s := range cfg.Scopes {
		if s.Disabled {
			log.Warn("scope disabled", "scope", s.Name, "reason", s.DisabledReason)
		}
	}

	// One bot per database file, and no restore under a running bot.
	lock, err := store.TryLock(cfg.Storage.Path)
	if err != nil {
		return fmt.Errorf("%w: another secretbot runs on this database; stop it, or give this one its own storage.path", err)
	}
	defer lock.Release()

	ln, err := listen(cfg.Ops.Listen)
	if err != nil {
		return fmt.Errorf("ops listener: %w", err)
	}
	defer ln.Close() // also closed by the server's shutdown; a second close is harmless
	db, err := store.Open(ctx, cfg.Storage.Path)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer db.Close()

	sl := slackint.New(cfg, e.httpClient("slack"))
	if _, err := sl.API().AuthTestContext(ctx); err != nil {
		if r, fatal := fatalReason(err); fatal {
			return &FatalSlackError{Reason: r}
		}
		log.Warn("slack auth.test failed; continuing, the connection will retry", "err", err)
	}

	vc, err := vault.New(cfg, e.httpClient("vault"), log)
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	vc.OnNewToken(func(tok string) { e.redactor.Add(tok) })
	defer vc.Close()

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var bg sync.WaitGroup
	vaultUp := make(chan struct{})
	bg.Go(func() { e.keepVaultLoggedIn(runCtx, vc, vaultUp) })

	now := time.Now
	auditLog := audit.New([]byte(cfg.Creds.AuditKey), now)
	led := ledger{db: db, audit: auditLog, now: now}
	svc := &access.Service{
		Config: cfg, Store: accessStore{led}, Vault: vaultGrants{vc},
		Messenger: messenger{sl}, Directory: sl, Now: now, Log: log, DryRun: dryRun,
	}
	h := &handlers.Handlers{Config: cfg, Directory: sl, Access: svc, Views: views{sl}, Audit: auditReader{db}, Log: log, Now: now}
	if pd := e.pagerDuty(); pd != nil {
		h.OnCall = onCall{pd}
		svc.OnCall = onCallPD{pd: pd, cfg: cfg}
	}
	rot := &rotation.Service{
		Config: cfg, Store: rotationStore{led}, KV: kvStore{vc},
		Directory: sl, Grants: grantsReader{accessStore{led}}, Messenger: messenger{sl},
		People: people{sl: sl}, Now: now, Log: log,
	}
	h.Rotation, h.Files, h.Groups = rot, sl, sl
	if svc.OnCall != nil {
		rot.Incidents = svc.OnCall
		rot.People = people{sl: sl, pd: e.pagerDuty()}
	}
	sched := &schedule.Scheduler{
		Now: now, Store: scheduleStore{led}, Inventory: inventoryView{rot},
		Grants: grantsReader{accessStore{led}}, Directory: sl,
		Config: schedule.ConfigFrom(cfg), Log: log,
	}
	dl := newDeliverer(db, sl, log, e.metrics, now)
	dl.grants, dl.rotations = svc, rot
	if cfg.JiraEnabled() {
		jc, err := jira.New(cfg, e.httpClient("jira"))
		if err != nil {
			return fmt.Errorf("jira: %w", err)
		}
		svc.Tickets, rot.Tickets, dl.jira = tickets{jc}, tickets{jc}, jc // dl.jira stays a nil interface without Jira
	}
	in := newInbox(256)
	in.db, in.audit, in.handlers, in.log, in.metrics, in.now = db, auditLog, h, log, e.metrics, now
	in.command, in.handlerTimeout = cfg.Slack.Command, cfg.Runner.HandlerTimeout.D()
	in.workers, in.kickOutbox = cfg.Runner.Workers, dl.wake
	sock := &socket{
		open: func(ctx context.Context) (string, error) {
			_, url, err := sl.API().StartSocketModeContext(ctx)
			return url, err
		},
		dialer:    &websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: http.ProxyFromEnvironment},
		log:       log,
		handle:    in.accept,
		pingEvery: 5 * time.Second, // a half-open socket is noticed within 10s
		acked: func(typ string, d time.Duration) {
			e.metrics.acked.Inc(typ)
			e.metrics.ackLatency.Observe(d.Seconds())
		},
	}
	cp := &checkpointer{db: db, audit: auditLog, channel: cfg.Slack.SecurityChannel, log: log, now: now}

	srv := opsServer(e.metrics, func(ctx context.Context) string {
		if !sock.connected.Load() {
			return "socket mode not connected"
		}
		if err := db.Ping(ctx); err != nil {
			return "store unavailable"
		}
		return ""
	})
	bg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("ops listener stopped", "err", err)
		}
	})
	log.Info("ops listener up", "addr", ln.Addr().String())

	// Revocations that fell due while the bot was down happen first, before
	// the bot takes new work.
	select { // revoking needs Vault; if it is down, the periodic sweep retries
	case <-vaultUp:
	case <-time.After(10 * time.Second):
		log.Warn("vault not logged in yet; start-up revocations will be retried")
	}
	startSweep, cancelStartSweep := context.WithTimeout(runCtx, time.Minute)
	if err := svc.Sweep(startSweep); err != nil {
		log.Error("start-up sweep failed; the periodic sweep retries", "err", err)
	}
	if err := rot.SyncConfig(startSweep); err != nil {
		log.Error("inventory sync from the configuration failed", "err", err)
	}
	cancelStartSweep()
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	// Before the socket connects: no envelope is claimed by this run yet.
	if err := in.start(workCtx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	// Delivery outlives the signal: told to stop, it finishes the sends in
	// flight, cut off only at the shutdown deadline (a hanging Slack must
	// not hold the exit; a send cut off stays owed).
	deliverCtx, cancelDeliver := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDeliver()
	stopDeliver := make(chan struct{})
	var delivering sync.WaitGroup
	delivering.Go(func() { dl.run(deliverCtx, stopDeliver) })
	bg.Go(func() { cp.daily(runCtx, dl.wake) })
	if cfg.Backup.Enabled() {
		bu := newBackupper(db, cfg, log, e.metrics, now, dl.wake)
		bg.Go(func() { bu.run(runCtx) })
	}
	bg.Go(func() { sweep(runCtx, svc, 2*time.Second, log, dl.wake) })
	sched.Wake = dl.wake
	bg.Go(func() { sched.Run(runCtx) })
	bg.Go(func() { sweep(runCtx, rot, 10*time.Second, log, dl.wake) })
	// Vault drift: live grants checked against Vault now and every
	// vault.reconcile.every (internal/app/reconcile.go).
	rec := &access.Reconciler{Service: svc, Vault: vaultDrift{vc}, FullScan: cfg.Vault.Reconcile.FullScan}
	recMetrics := newReconcileMetrics(e.metrics.reg)
	bg.Go(func() { reconcileLoop(runCtx, rec, cfg.Vault.Reconcile.Every.D(), recMetrics, log, dl.wake) })

	sockErr := sock.run(runCtx)

	// Shutting down: take no new work, finish what is in flight (bounded),
	// post the audit checkpoint, deliver what is owed (bounded), then exit.
	log.Info("shutting down", "reason", shutdownReason(ctx, sockErr))
	sock.stopping.Store(true)
	deadline := time.Now().Add(cfg.Runner.ShutdownTimeout.D())
	stopWork()
	if !in.wait(time.Until(deadline)) {
		log.Warn("shutdown deadline passed with work in flight; it resumes from the inbox on next start")
	}
	if err := cp.post(context.WithoutCancel(ctx), "shutdown"); err != nil {
		log.Error("audit checkpoint at shutdown failed", "err", err)
	}
	close(stopDeliver)
	cutOff := time.AfterFunc(time.Until(deadline), cancelDeliver)
	delivering.Wait() // the last flush below must not race a send in flight
	cutOff.Stop()
	flushCtx, cancelFlush := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	dl.flush(flushCtx)
	cancelFlush()
	stopRun()
	shutCtx, cancelShut := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	_ = srv.Shutdown(shutCtx)
	cancelShut()
	bg.Wait()
	log.Info("secretbot stopped")
	return sockErr
}

func shutdownReason(ctx context.Context, err error) string {
	if err != nil {
		return err.Error()
	}
	if ctx.Err() != nil {
		return "signal"
	}
	return "socket closed"
}

// keepVaultLoggedIn logs in at start and again after failures; the Vault
// client keeps a successful login fresh itself. Vault being down does not
// stop the bot from answering: what needs Vault fails closed.
func (e *env) keepVaultLoggedIn(ctx context.Context, vc *vault.Client, up chan<- struct{}) {
	b := newBackoff(time.Second, time.Minute)
	for {
		err := vc.Login(ctx)
		if err == nil {
			e.log.Info("vault login ok")
			close(up)
			return
		}
		if ctx.Err() != nil {
			return
		}
		wait := b.next()
		e.log.Error("vault login failed; retrying", "err", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// onCall adapts the PagerDuty client to what handlers need.
type onCall struct{ pd *pagerduty.Client }

func (o onCall) OnCallNow(ctx context.Context, email string) (bool, string, error) {
	st, err := o.pd.OnCallStatus(ctx, email)
	if errors.Is(err, pagerduty.ErrUnknownUser) {
		return false, "", fmt.Errorf("no PagerDuty user has the e-mail %s", email)
	}
	if err != nil {
		return false, "", err
	}
	return st.OnCall, fmt.Sprint(st.Policies), nil
}

// sweeper is periodic domain work: the access service revokes what fell
// due and retries failed revokes; the rotation service flags unconfirmed
// rollouts and reminds.
type sweeper interface {
	Sweep(ctx context.Context) error
}

// sweep runs s every interval (which bounds how late an expiry is revoked).
func sweep(ctx context.Context, svc sweeper, every time.Duration, log *slog.Logger, wake func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := svc.Sweep(ctx); err != nil && ctx.Err() == nil {
			log.Error("sweep failed", "err", err)
		}
		wake()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
