package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/secretbot/secretbot/integrations/jira"
	slackint "github.com/secretbot/secretbot/integrations/slack"
	"github.com/secretbot/secretbot/integrations/vault"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/check"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/logging"
	"github.com/secretbot/secretbot/internal/store"
)

// runCheck makes one harmless call per integration and prints a table.
func runCheck(ctx context.Context, path string, getenv func(string) string, stdout, stderr io.Writer) error {
	e, err := loadEnv(path, getenv, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var rs []check.Result
	rs = append(rs, slackint.New(e.cfg, e.httpClient("slack")).Check(ctx)...)

	if vc, err := vault.New(e.cfg, e.httpClient("vault"), e.log); err != nil {
		rs = append(rs, check.Result{Integration: "vault", Status: check.Fail, Detail: err.Error()})
	} else if err := vc.Login(ctx); err != nil {
		rs = append(rs, check.Result{Integration: "vault", Status: check.Fail, Detail: "login failed: " + err.Error()})
	} else {
		e.redactor.Add(vc.API().Token())
		rs = append(rs, vc.Check(ctx)...)
	}

	if pd := e.pagerDuty(); pd != nil {
		rs = append(rs, pd.Check(ctx)...)
	} else {
		rs = append(rs, check.Result{Integration: "pagerduty", Status: check.Skip,
			Detail: "not configured (PAGERDUTY_TOKEN unset): " + disabledBy(e.cfg, "PagerDuty")})
	}
	if e.cfg.JiraEnabled() {
		jc, err := jira.New(e.cfg, e.httpClient("jira"))
		if err != nil {
			rs = append(rs, check.Result{Integration: "jira", Status: check.Fail, Detail: err.Error()})
		} else {
			rs = append(rs, jc.Check(ctx)...)
		}
	} else {
		rs = append(rs, check.Result{Integration: "jira", Status: check.Skip,
			Detail: "not configured (JIRA_URL and credentials unset): " + disabledBy(e.cfg, "Jira")})
	}
	rs = append(rs, checkStore(ctx, e.cfg.Storage.Path))

	check.Render(e.redactor.Writer(stdout), rs)
	if check.Failed(rs) {
		return &silentError{code: ExitFailure}
	}
	return nil
}

// disabledBy names the scopes switched off because source is not configured.
func disabledBy(cfg *config.Config, source string) string {
	var names []string
	for _, s := range cfg.Scopes {
		if s.Disabled && containsFold(s.DisabledReason, source) {
			names = append(names, s.Name)
		}
	}
	if len(names) == 0 {
		return "no scope needs it"
	}
	return fmt.Sprintf("scopes disabled: %v", names)
}

// checkStore opens the database (creating it on first run) and pings it.
func checkStore(ctx context.Context, path string) check.Result {
	db, err := store.Open(ctx, path)
	if err != nil {
		return check.Result{Integration: "store", Status: check.Fail, Detail: err.Error()}
	}
	defer db.Close()
	if err := db.Ping(ctx); err != nil {
		return check.Result{Integration: "store", Status: check.Fail, Detail: err.Error()}
	}
	return check.Result{Integration: "store", Status: check.OK, Detail: "SQLite at " + path}
}

// runAuditVerify walks the audit log's hash chain.
func runAuditVerify(ctx context.Context, path string, cp *audit.Checkpoint, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.LoadForAudit(path, getenv)
	if err != nil {
		return err
	}
	if _, err := os.Stat(cfg.Storage.Path); err != nil {
		return fmt.Errorf("no database at %s (storage.path): %w", cfg.Storage.Path, err)
	}
	db, err := store.Open(ctx, cfg.Storage.Path)
	if err != nil {
		return err
	}
	defer db.Close()
	out := logging.NewRedactor(cfg.Creds.AuditKey).Writer(stdout)
	res, err := audit.New([]byte(cfg.Creds.AuditKey), time.Now).Verify(ctx, db, cp)
	if err != nil {
		fmt.Fprintf(out, "audit log BROKEN: %v\n", err)
		return &silentError{code: ExitFailure}
	}
	fmt.Fprintf(out, "audit log OK: %d events, head %s\n", res.Events, res.Head.String())
	return nil
}
