package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/secretbot/secretbot/e2e/fakejira"
	"github.com/secretbot/secretbot/e2e/fakeslack"
	"github.com/secretbot/secretbot/integrations/jira"
	"github.com/secretbot/secretbot/integrations/pagerduty"
	"github.com/secretbot/secretbot/integrations/vault"
	"github.com/secretbot/secretbot/internal/config"
)

// Injected latency on every HTTP call to the fakes (issue 6, part 2).
const (
	pdLatency   = 150 * time.Millisecond
	jiraLatency = 250 * time.Millisecond
)

// lowerBound holds the bot's own clients, called directly: the floor the
// grant path cannot beat.
type lowerBound struct {
	pd *pagerduty.Client
	jc *jira.Client
	vc *vault.Client
}

func newLowerBound(w *world) (*lowerBound, error) {
	cfg, err := config.Load(w.ConfigPath, w.Getenv)
	if err != nil {
		return nil, err
	}
	hc := func() *http.Client { return &http.Client{Timeout: 30 * time.Second} }
	lb := &lowerBound{pd: pagerduty.New(cfg, hc())}
	if lb.jc, err = jira.New(cfg, hc()); err != nil {
		return nil, err
	}
	if lb.vc, err = vault.New(cfg, hc(), nil); err != nil {
		return nil, err
	}
	return lb, nil
}

// both runs a and b at once and returns when both are done.
func both(a, b func() error) error {
	var wg sync.WaitGroup
	var ea, eb error
	wg.Go(func() { ea = a() })
	wg.Go(func() { eb = b() })
	wg.Wait()
	if ea != nil {
		return ea
	}
	return eb
}

// jiraCheck makes the Jira check's calls as the bot does (access.checkJira:
// the ticket and the requester's account at once).
func (lb *lowerBound) jiraCheck(ctx context.Context, i int) (time.Duration, error) {
	start := time.Now()
	err := both(
		func() error { _, err := lb.jc.Ticket(ctx, grantTicket(i)); return err },
		func() error { _, err := lb.jc.UserByEmail(ctx, carol.Email); return err },
	)
	return time.Since(start), err
}

// pdCheck makes the two PagerDuty checks' calls as the bot does
// (access.checkOnCall and checkIncident at once; the incident is on a
// configured policy's service, so it needs no user look-up).
func (lb *lowerBound) pdCheck(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	err := both(
		func() error {
			st, err := lb.pd.OnCallStatus(ctx, carol.Email)
			if err == nil && !st.OnCall {
				err = fmt.Errorf("carol is not on call")
			}
			return err
		},
		func() error { _, err := lb.pd.Incident(ctx, grantIncident); return err },
	)
	return time.Since(start), err
}

// vaultCalls issues a wrapped token as the bot's delivery does (one
// wrapped create on the token role); it is revoked afterwards, untimed.
func (lb *lowerBound) vaultCalls(ctx context.Context, i int) (time.Duration, error) {
	start := time.Now()
	wt, err := lb.vc.IssueWrapped(ctx, vault.IssueRequest{Policies: []string{"platform-ro"}, TTL: time.Hour,
		Metadata:    map[string]string{"grant": "GBENCHLB0", "user": carol.Slack, "email": carol.Email, "scope": grantScope(i)},
		DisplayName: "secretbot-" + carol.Name})
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	for _, a := range []string{wt.TokenAccessor, wt.WrapAccessor} {
		_ = lb.vc.RevokeAccessor(ctx, a)
	}
	return d, nil
}

// grantPath sends the request for scope i as Carol and returns the time
// from sending the envelope to the fake Slack receiving the DM that
// carries the wrapping token.
func grantPath(w *world, i int) (time.Duration, error) {
	scope, ticket := grantScope(i), grantTicket(i)
	text := fmt.Sprintf("request %s --ttl 1h --ticket %s --incident %s --reason %q", scope, ticket, grantIncident, "benchmark")
	start := time.Now()
	_, url := w.Slack.SendSlashCommand(carol.Slack, text)
	dm, err := w.Slack.WaitMessage(func(m fakeslack.Message) bool {
		all := m.Text + string(m.Blocks)
		return fakeslack.InChannel(carol.Slack)(m) && strings.Contains(all, "vault unwrap") && strings.Contains(all, "`"+scope+"`")
	}, 30*time.Second)
	if err != nil {
		var said []string
		for _, r := range w.Slack.Responses(url) {
			said = append(said, r.Text)
		}
		return 0, fmt.Errorf("grant %s: no DM with the wrapped token: %v; the bot said: %s", scope, err, strings.Join(said, " | "))
	}
	path := dm.PostedAt.Sub(start)
	// Let the delivery's follow-up work (the security notice, the Jira
	// comment: 250 ms each way) finish, so it does not delay the next round.
	if _, err := w.Jira.WaitComment(ticket, func(fakejira.Comment) bool { return true }, 30*time.Second); err != nil {
		return 0, fmt.Errorf("grant %s: the Jira comment after delivery never came: %v", scope, err)
	}
	return path, nil
}

// runGrant is part 2: rounds grant paths, each paired with a lower-bound
// measurement (order alternating), after one unmeasured warm-up round.
func runGrant(ctx context.Context, w *world, log func(string, ...any)) ([]figure, error) {
	lb, err := newLowerBound(w)
	if err != nil {
		return nil, err
	}
	w.PD.SetDelay("/", pdLatency)
	w.Jira.SetDelay("/", jiraLatency)
	defer w.PD.SetDelay("/", 0)
	defer w.Jira.SetDelay("/", 0)

	var paths, lowers, jiras, pds, vaults []float64
	for i := range w.grants {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var path, jd, pd, vd time.Duration
		measurePath := func() error { var err error; path, err = grantPath(w, i); return err }
		measureLower := func() error {
			var err error
			if jd, err = lb.jiraCheck(ctx, i); err != nil {
				return fmt.Errorf("lower bound, jira: %w", err)
			}
			if pd, err = lb.pdCheck(ctx); err != nil {
				return fmt.Errorf("lower bound, pagerduty: %w", err)
			}
			if vd, err = lb.vaultCalls(ctx, i); err != nil {
				return fmt.Errorf("lower bound, vault: %w", err)
			}
			return nil
		}
		steps := []func() error{measurePath, measureLower}
		if i%2 == 1 {
			steps = []func() error{measureLower, measurePath}
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return nil, err
			}
		}
		lower := max(jd, pd) + vd
		log("grant round %d%s: path %.1f ms, lower bound %.1f ms (jira %.1f, pagerduty %.1f, vault %.1f), ratio %.3f",
			i, map[bool]string{true: " (warm-up)", false: ""}[i == 0], ms(path), ms(lower), ms(jd), ms(pd), ms(vd), ms(path)/ms(lower))
		if i == 0 {
			continue // connections, caches and the first Vault token role use warm up here
		}
		paths, lowers = append(paths, ms(path)), append(lowers, ms(lower))
		jiras, pds, vaults = append(jiras, ms(jd)), append(pds, ms(pd)), append(vaults, ms(vd))
	}
	return []figure{
		{"grant_path_ms", round3(median(paths)), "ms", "request envelope sent to the DM with the wrapped token (jira+oncall+incident, no click)"},
		{"grant_lower_ms", round3(median(lowers)), "ms", "slower check alone + Vault calls alone, same clients, same run"},
		{"grant_jira_check_ms", round3(median(jiras)), "ms", "the Jira check's calls alone (250 ms injected per call)"},
		{"grant_pd_check_ms", round3(median(pds)), "ms", "the PagerDuty checks' calls alone (150 ms injected per call)"},
		{"grant_vault_ms", round3(median(vaults)), "ms", "the Vault calls of a delivery alone (wrapped token create)"},
		{"grant_path_ratio", round3(median(paths) / median(lowers)), "ratio", "grant_path_ms / grant_lower_ms"},
	}, nil
}
