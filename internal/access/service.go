package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/policy"
)

// Service runs access requests. Config and Store are required; Tickets and
// OnCall are nil when Jira or PagerDuty is not configured (scopes needing
// them are then disabled by config, and the service refuses them anyway).
// Vault may be nil only in dry-run mode. Now defaults to time.Now, Log to
// slog.Default(). DryRun makes no Vault writes: DMs say what would have
// been issued, and the grant records the accessor "dry-run".
//
// A Service is safe for concurrent use.
type Service struct {
	Config    *config.Config
	Store     Store
	Tickets   Tickets
	OnCall    OnCall
	Vault     Vault
	Messenger Messenger
	Directory Directory
	Now       func() time.Time
	Log       *slog.Logger
	DryRun    bool

	// CheckTimeout bounds each evidence check (default 10s).
	CheckTimeout time.Duration

	mu       sync.Mutex
	lastPoll map[string]time.Time // grant id -> last incident poll
}

// Actor of events the service does on its own.
const actorBot = "secretbot"

// Audit actions.
const (
	ActRequested       = "grant.requested"
	ActRequestRefused  = "grant.request_refused" // refused before anything was stored
	ActRefused         = "grant.refused"         // the evidence refused it
	ActChecksPassed    = "grant.checks_passed"
	ActApproved        = "grant.approved"
	ActDenied          = "grant.denied"
	ActDecideRefused   = "grant.decide_refused"
	ActIssued          = "grant.issued"
	ActDelivered       = "grant.delivered"
	ActUndelivered     = "grant.undelivered"
	ActFailed          = "grant.failed"
	ActRevoked         = "grant.revoked"
	ActExpired         = "grant.expired"
	ActRevokeFailed    = "grant.revoke_failed"
	ActRevokeRefused   = "grant.revoke_refused"
	ActUnwrapped       = "grant.unwrapped"
	ActTicketOpened    = "grant.ticket_opened"
	defaultCheckTO     = 10 * time.Second
	deliverLease       = 2 * time.Minute  // an issued grant not yet DMed is left alone this long
	abandonedDelivery  = 10 * time.Minute // Sweep takes back a token undelivered this long
	staleChecks        = 5 * time.Minute  // pending grants still checking after this were interrupted
	wrapCheckLead      = time.Minute      // look the wrapping token up this long before it expires
	maxConflictRetries = 5
)

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Service) checkTimeout() time.Duration {
	if s.CheckTimeout > 0 {
		return s.CheckTimeout
	}
	return defaultCheckTO
}

func (s *Service) approvalsChannel() string {
	if c := s.Config.Slack.ApprovalsChannel; c != "" {
		return c
	}
	return s.Config.Slack.SecurityChannel
}

// errText makes an error fit for a person, a row or an audit event: no
// credential, one line, bounded.
func errText(err error) string {
	if err == nil {
		return ""
	}
	t := audit.Redact(err.Error())
	t = strings.Join(strings.Fields(t), " ")
	return Truncate(t, 300)
}

// event builds an audit event about g.
func event(actor, action, outcome, reason string, g Grant) audit.Event {
	links := map[string]string{"grant": g.ID}
	if g.Ticket != "" {
		links["ticket"] = g.Ticket
	}
	if g.Incident != "" {
		links["incident"] = g.Incident
	}
	if g.TokenAccessor != "" {
		links["accessor"] = g.TokenAccessor
	}
	if g.VaultGroup != "" {
		links["vault_group"] = g.VaultGroup
	}
	if actor == "" {
		actor = actorBot
	}
	return audit.Event{Actor: actor, Action: action, Scope: g.Scope, Outcome: outcome,
		Reason: audit.Redact(Truncate(reason, 1000)), Links: links}
}

// errStop aborts a change whose grant moved on; the caller cleans up.
var errStop = errors.New("access: stop")

// change reads grant id inside one transaction, lets fn decide what to
// write (and write the audit events and messages of the change through tx),
// and writes fn's grant with a compare-and-set on the version read. When
// write is false nothing is written to the grant, but what fn sent and
// audited commits. A conflict re-runs the whole transaction.
func (s *Service) change(ctx context.Context, id string, fn func(tx Tx, g Grant) (Grant, bool, error)) (Grant, error) {
	var out Grant
	var err error
	for range maxConflictRetries {
		err = s.Store.InTx(ctx, func(tx Tx) error {
			cur, err := tx.GrantGet(ctx, id)
			if err != nil {
				return err
			}
			ng, write, err := fn(tx, cur)
			if err != nil {
				return err
			}
			out = cur
			if write {
				if err := tx.GrantUpdate(ctx, ng, cur.Version); err != nil {
					return err
				}
				out = ng
			}
			return nil
		})
		if !errors.Is(err, ErrConflict) {
			return out, err
		}
	}
	return out, err
}

func (s *Service) get(ctx context.Context, id string) (Grant, error) {
	var g Grant
	err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		g, err = tx.GrantGet(ctx, id)
		return err
	})
	return g, err
}

// auditRefusal records a refusal in its own transaction and marks ue audited.
func (s *Service) auditRefusal(ctx context.Context, ue *UserError, e audit.Event) error {
	err := s.Store.InTx(ctx, func(tx Tx) error { return tx.Audit(ctx, e) })
	if err != nil {
		s.log().Error("access: could not audit a refusal", "action", e.Action, "err", errText(err))
	} else {
		ue.Audited = true
	}
	return ue
}

func (s *Service) scope(name string) (*config.Scope, bool) { return s.Config.Scope(name) }

// ---------------------------------------------------------------- Request

// Request validates a, stores a pending grant (audit "grant.requested",
// summary to responseURL, or by DM when there is none), runs the evidence
// checks in parallel, each with a timeout, updating the summary as each
// lands, and then refuses (state failed, audit "grant.refused"), posts the
// approval card (audit "grant.checks_passed"), or approves automatically
// and queues delivery (audit "grant.approved"). Every check must pass; a
// check that cannot be made refuses, naming the check and why.
//
// It returns the grant as it stands. Refusals are *UserError: those found
// before anything is stored (Told false), and a refusal by the evidence
// (Told true: the summary already says why).
func (s *Service) Request(ctx context.Context, p policy.Person, a RequestArgs, responseURL string) (Grant, error) {
	asked := a.Scope
	a, err := ValidateRequest(s.Config, p, a)
	if err != nil {
		ue, ok := IsUserError(err)
		if !ok {
			return Grant{}, err
		}
		return Grant{}, s.auditRefusal(ctx, ue, audit.Event{Actor: orBot(p.SlackID), Action: ActRequestRefused,
			Scope: Truncate(asked, 100), Outcome: audit.Refused, Reason: audit.Redact(ue.Msg)})
	}
	sc, _ := s.scope(a.Scope)
	now := s.now()
	g := Grant{
		Requester: p.SlackID, Email: strings.TrimSpace(p.Email), RequesterName: p.Name, Scope: sc.Name,
		TTL: a.TTL, Ticket: a.Ticket, Incident: a.Incident, Reason: a.Reason,
		State: StatePending, Version: 1, Delivery: sc.Delivery, ResponseURL: responseURL,
		CreatedAt: now, UpdatedAt: now,
	}
	if g.Delivery == "" {
		g.Delivery = config.DeliveryWrappedToken
	}
	for _, kind := range sc.Evidence {
		if kind != config.EvidenceApproval {
			g.Evidence = append(g.Evidence, Evidence{Kind: kind, Status: EvidenceChecking})
		}
	}

	var dup *Grant
	for attempt := 0; ; attempt++ {
		g.ID = NewGrantID()
		dup = nil
		err = s.Store.InTx(ctx, func(tx Tx) error {
			dup = nil
			mine, err := tx.GrantsByRequester(ctx, p.SlackID, ActiveStates...)
			if err != nil {
				return err
			}
			for _, m := range mine {
				if m.Scope == g.Scope {
					dup = &m
					return nil
				}
			}
			if err := tx.GrantInsert(ctx, g); err != nil {
				return err
			}
			if err := tx.Audit(ctx, event(p.SlackID, ActRequested, audit.OK, g.Reason, g)); err != nil {
				return err
			}
			return tx.Send(ctx, requesterMessage(g, "", true))
		})
		if !errors.Is(err, ErrConflict) || attempt >= 3 { // a conflict on insert: the id was taken
			break
		}
	}
	if err != nil {
		return Grant{}, fmt.Errorf("access: store request: %w", err)
	}
	if dup != nil {
		ue := userErr("scope", "you already have %s for %s (%s): wait for it, or end it with `revoke %s`, before asking again",
			Code(dup.ID), Code(dup.Scope), dup.State, dup.ID)
		return Grant{}, s.auditRefusal(ctx, ue, event(p.SlackID, ActRequestRefused, audit.Refused, ue.Msg, Grant{ID: dup.ID, Scope: dup.Scope}))
	}

	// The checks, in parallel; results land one at a time, here.
	results := s.runChecks(ctx, g)
	for i := range len(g.Evidence) {
		r := <-results
		last := i == len(g.Evidence)-1
		var landed Grant
		landed, err = s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
			if cur.State != StatePending {
				return cur, false, nil
			}
			ng := cur.next(s.now())
			for j := range ng.Evidence {
				if ng.Evidence[j].Kind == r.ev.Kind {
					ng.Evidence[j] = r.ev
				}
			}
			if r.ev.Status == EvidenceOK && !r.notAfter.IsZero() {
				ng.NotAfter = r.notAfter
			}
			if r.incidentID != "" && r.ev.Status == EvidenceOK {
				ng.Incident = r.incidentID
			}
			if !last && ng.ResponseURL != "" { // the outcome message follows the last one
				if err := tx.Send(ctx, requesterMessage(ng, "", false)); err != nil {
					return cur, false, err
				}
			}
			return ng, true, nil
		})
		if err != nil {
			// The channel is buffered: the other checks finish without a
			// reader. Sweep fails the grant once its checks are stale.
			return g, fmt.Errorf("access: record a check of %s: %w", g.ID, err)
		}
		g = landed
	}
	return s.concludeChecks(ctx, g, sc)
}

func orBot(id string) string {
	if id == "" {
		return actorBot
	}
	return id
}

// refusalText says why the evidence refused g ("" when every check passed).
func refusalText(g Grant) string {
	var parts []string
	for _, e := range g.Evidence {
		switch e.Status {
		case EvidenceOK:
		case EvidenceError:
			parts = append(parts, fmt.Sprintf("the %s check could not be made (%s)", evidenceLabel(e.Kind), e.Detail))
		case EvidenceChecking:
			parts = append(parts, fmt.Sprintf("the %s check did not finish", evidenceLabel(e.Kind)))
		default:
			parts = append(parts, fmt.Sprintf("the %s check failed (%s)", evidenceLabel(e.Kind), e.Detail))
		}
	}
	return strings.Join(parts, "; ")
}

func (s *Service) concludeChecks(ctx context.Context, g Grant, sc *config.Scope) (Grant, error) {
	var refusal string
	needsClick := hasEvidence(sc, config.EvidenceApproval)
	g, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		refusal = ""
		if cur.State != StatePending {
			return cur, false, nil // cancelled while checking
		}
		now := s.now()
		if refusal = refusalText(cur); refusal != "" {
			ng, err := cur.Fail("refused: "+refusal, now)
			if err != nil {
				return cur, false, err
			}
			if err := tx.Audit(ctx, event(cur.Requester, ActRefused, audit.Refused, refusal, ng)); err != nil {
				return cur, false, err
			}
			final := ":x: *Refused*: " + Escape(refusal) + ". Nothing was granted."
			return ng, true, tx.Send(ctx, requesterMessage(ng, final, false))
		}
		if needsClick {
			ch := s.approvalsChannel()
			if ch == "" {
				return cur, false, errors.New("access: no approvals channel is configured (slack.approvals_channel or slack.security_channel)")
			}
			if err := tx.Audit(ctx, event(cur.Requester, ActChecksPassed, audit.OK, "waiting for an approver", cur)); err != nil {
				return cur, false, err
			}
			if err := tx.Send(ctx, approvalCard(cur, sc, ch)); err != nil {
				return cur, false, err
			}
			final := ":hourglass_flowing_sand: Checks passed. Waiting for an approver: " + peopleText(sc.Approvers) + "."
			return cur, false, tx.Send(ctx, requesterMessage(cur, final, false))
		}
		ng, err := cur.AutoApprove(now)
		if err != nil {
			return cur, false, err
		}
		if err := tx.Audit(ctx, event(actorBot, ActApproved, audit.OK, "the evidence passed and the scope needs no approver click", ng)); err != nil {
			return cur, false, err
		}
		if err := tx.Send(ctx, outbox.Message{Kind: outbox.DeliverGrant, Target: ng.ID}); err != nil {
			return cur, false, err
		}
		final := ":white_check_mark: Checks passed; approved automatically. Your access is on its way by direct message."
		return ng, true, tx.Send(ctx, requesterMessage(ng, final, false))
	})
	if err != nil {
		return g, fmt.Errorf("access: conclude checks of %s: %w", g.ID, err)
	}
	if refusal != "" {
		return g, &UserError{Msg: "Refused: " + refusal + ". Nothing was granted.", Audited: true, Told: true}
	}
	return g, nil
}

type checkResult struct {
	ev         Evidence
	notAfter   time.Time
	incidentID string
}

// pdUser looks the requester up in PagerDuty once for both PagerDuty checks.
type pdUser struct {
	once   sync.Once
	on     bool
	detail string
	id     string
	err    error
}

func (u *pdUser) get(ctx context.Context, oc OnCall, email string) (bool, string, string, error) {
	u.once.Do(func() { u.on, u.detail, u.id, u.err = oc.OnCallNow(ctx, email) })
	return u.on, u.detail, u.id, u.err
}

// runChecks starts one goroutine per check; each result arrives on the
// returned channel (buffered: nobody blocks).
func (s *Service) runChecks(ctx context.Context, g Grant) <-chan checkResult {
	out := make(chan checkResult, len(g.Evidence))
	pd := &pdUser{}
	pdCtx, cancelPD := context.WithTimeout(context.WithoutCancel(ctx), s.checkTimeout())
	var wg sync.WaitGroup
	for _, e := range g.Evidence {
		wg.Add(1)
		go func(kind string) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, s.checkTimeout())
			defer cancel()
			var r checkResult
			func() {
				defer func() {
					if p := recover(); p != nil {
						s.log().Error("access: evidence check panicked", "kind", kind, "grant", g.ID, "panic", fmt.Sprint(p))
						r = checkResult{ev: Evidence{Kind: kind, Status: EvidenceError, Detail: "internal error while checking"}}
					}
				}()
				switch kind {
				case config.EvidenceJira:
					r = s.checkJira(cctx, g)
				case config.EvidenceOnCall:
					r = s.checkOnCall(cctx, pdCtx, g, pd)
				case config.EvidenceIncident:
					r = s.checkIncident(cctx, pdCtx, g, pd)
				default:
					r = checkResult{ev: Evidence{Kind: kind, Status: EvidenceError, Detail: "unknown kind of evidence " + kind}}
				}
			}()
			if r.ev.Status == EvidenceError && cctx.Err() != nil && ctx.Err() == nil {
				r.ev.Detail = fmt.Sprintf("%s (no answer within %s)", r.ev.Detail, s.checkTimeout())
			}
			out <- r
		}(e.Kind)
	}
	go func() { wg.Wait(); cancelPD() }()
	return out
}

func (s *Service) checkJira(ctx context.Context, g Grant) checkResult {
	ev := Evidence{Kind: config.EvidenceJira, Status: EvidenceError}
	if s.Tickets == nil {
		ev.Detail = "Jira could not be checked: Jira is not configured"
		return checkResult{ev: ev}
	}
	var (
		wg           sync.WaitGroup
		facts        TicketFacts
		ferr         error
		account      string
		aerr         error
		ticketTarget = g.Ticket
	)
	wg.Add(2)
	go func() { defer wg.Done(); facts, ferr = s.Tickets.Ticket(ctx, ticketTarget) }()
	go func() { defer wg.Done(); account, aerr = s.Tickets.AccountByEmail(ctx, g.Email) }()
	wg.Wait()
	switch {
	case errors.Is(ferr, ErrTicketNotFound):
		ev.Status, ev.Detail = EvidenceFailed, g.Ticket+" does not exist, or the bot may not see it"
		return checkResult{ev: ev}
	case ferr != nil:
		ev.Detail = "Jira could not be checked (reading " + g.Ticket + "): " + errText(ferr)
		return checkResult{ev: ev}
	case errors.Is(aerr, ErrUnknownJiraUser):
		ev.Status = EvidenceFailed
		ev.Detail = "no Jira account with your e-mail " + g.Email + " is visible to the bot, so self-approval cannot be ruled out"
		return checkResult{ev: ev}
	case aerr != nil:
		ev.Detail = "Jira could not be checked (finding your Jira account): " + errText(aerr)
		return checkResult{ev: ev}
	case strings.TrimSpace(account) == "":
		ev.Status, ev.Detail = EvidenceFailed, "your Jira account could not be identified, so self-approval cannot be ruled out"
		return checkResult{ev: ev}
	}
	if facts.Key == "" {
		facts.Key = g.Ticket
	}
	v := JiraVerdict(facts, s.Config, JiraUser{AccountID: account, Email: g.Email}, g.Scope, s.now())
	r := checkResult{ev: v}
	if v.Status == EvidenceOK {
		r.notAfter = facts.Expiry
	}
	return r
}

func (s *Service) checkOnCall(ctx, pdCtx context.Context, g Grant, pd *pdUser) checkResult {
	ev := Evidence{Kind: config.EvidenceOnCall, Status: EvidenceError}
	if s.OnCall == nil {
		ev.Detail = "PagerDuty could not be checked: PagerDuty is not configured"
		return checkResult{ev: ev}
	}
	on, detail, _, err := awaitPD(ctx, pdCtx, s.OnCall, g.Email, pd)
	switch {
	case err != nil:
		ev.Detail = "PagerDuty could not be checked: " + errText(err)
	case !on:
		ev.Status, ev.Detail = EvidenceFailed, "you are not on call now"
		if detail != "" {
			ev.Detail += ": " + detail
		}
	default:
		ev.Status, ev.Detail = EvidenceOK, "on call now"
		if detail != "" {
			ev.Detail += ": " + detail
		}
	}
	return checkResult{ev: ev}
}

// awaitPD runs the shared PagerDuty user look-up under pdCtx (shared by both
// checks) but gives up when this check's own ctx ends.
func awaitPD(ctx, pdCtx context.Context, oc OnCall, email string, pd *pdUser) (bool, string, string, error) {
	type res struct {
		on         bool
		detail, id string
		err        error
	}
	ch := make(chan res, 1)
	go func() {
		on, d, id, err := pd.get(pdCtx, oc, email)
		ch <- res{on, d, id, err}
	}()
	select {
	case r := <-ch:
		return r.on, r.detail, r.id, r.err
	case <-ctx.Done():
		return false, "", "", ctx.Err()
	}
}

func (s *Service) checkIncident(ctx, pdCtx context.Context, g Grant, pd *pdUser) checkResult {
	ev := Evidence{Kind: config.EvidenceIncident, Status: EvidenceError}
	if s.OnCall == nil {
		ev.Detail = "PagerDuty could not be checked: PagerDuty is not configured"
		return checkResult{ev: ev}
	}
	inc, err := s.OnCall.Incident(ctx, g.Incident)
	switch {
	case errors.Is(err, ErrIncidentNotFound):
		ev.Status, ev.Detail = EvidenceFailed, "no PagerDuty incident "+g.Incident
		return checkResult{ev: ev}
	case err != nil:
		ev.Detail = "PagerDuty could not be checked (incident " + g.Incident + "): " + errText(err)
		return checkResult{ev: ev}
	}
	ev.Link = inc.URL
	name := incidentName(inc, g.Incident)
	if !inc.Open() {
		ev.Status, ev.Detail = EvidenceFailed, fmt.Sprintf("incident %s is %s, not triggered or acknowledged", name, orUnknown(inc.Status))
		return checkResult{ev: ev}
	}
	if inc.InPolicyServices {
		ev.Status, ev.Detail = EvidenceOK, fmt.Sprintf("incident %s is %s on a service of the configured escalation policies", name, inc.Status)
		return checkResult{ev: ev, incidentID: inc.ID}
	}
	_, _, userID, err := awaitPD(ctx, pdCtx, s.OnCall, g.Email, pd)
	if err != nil {
		ev.Detail = "PagerDuty could not be checked (your PagerDuty user): " + errText(err)
		return checkResult{ev: ev}
	}
	for _, a := range inc.AssigneeIDs {
		if userID != "" && a == userID {
			ev.Status, ev.Detail = EvidenceOK, fmt.Sprintf("incident %s is %s and assigned to you", name, inc.Status)
			return checkResult{ev: ev, incidentID: inc.ID}
		}
	}
	ev.Status = EvidenceFailed
	ev.Detail = fmt.Sprintf("incident %s is neither on a service of the configured escalation policies nor assigned to you", name)
	return checkResult{ev: ev}
}

func incidentName(inc Incident, ref string) string {
	n := ref
	if inc.Number != "" && inc.Number != "0" {
		n = "#" + strings.TrimPrefix(inc.Number, "#")
	} else if inc.ID != "" {
		n = inc.ID
	}
	if inc.Title != "" {
		n += " (" + Truncate(inc.Title, 80) + ")"
	}
	return n
}

func orUnknown(s string) string {
	if s == "" {
		return "in an unknown state"
	}
	return s
}

// ---------------------------------------------------------------- Decide

// Decide records an approver's click on the card (card is where the click
// came from; it is updated to show the outcome). clicker is the person as
// Slack reports them now: their rights are checked now. The requester never
// decides, only the scope's approvers do, and the first decision wins: a
// later click gets a *UserError saying who decided and when. A deny needs a
// reason. Every refusal is audited.
func (s *Service) Decide(ctx context.Context, clicker policy.Person, grantID string, approve bool, reason string, card CardRef) error {
	id, ok := NormalizeGrantID(grantID)
	if !ok {
		return userErr("", "%s is not a grant id (accepted: G followed by 8 letters and digits, e.g. GK3D9QX2A)", Code(Truncate(grantID, 20)))
	}
	reason = strings.TrimSpace(reason)
	if !approve && reason == "" {
		return userErr("reason", "give a reason for the denial (at most %d characters)", MaxReasonLen)
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	var refusal *UserError
	var decided Grant
	_, err := s.change(ctx, id, func(tx Tx, g Grant) (Grant, bool, error) {
		refusal = nil
		refuse := func(format string, args ...any) (Grant, bool, error) {
			refusal = &UserError{Msg: fmt.Sprintf(format, args...), Audited: true}
			return g, false, tx.Audit(ctx, event(orBot(clicker.SlackID), ActDecideRefused, audit.Refused, refusal.Msg, g))
		}
		if err := policy.Refusal(clicker); err != nil {
			return refuse("%s: you cannot decide access requests.", upperFirst(err.Error()))
		}
		sc, ok := s.scope(g.Scope)
		if !ok {
			return refuse("The scope %s is no longer configured: nobody can decide %s.", Code(g.Scope), Code(g.ID))
		}
		if g.State != StatePending {
			return refuse("%s", alreadyDecided(g))
		}
		now := s.now()
		var ng Grant
		var err error
		if approve {
			if !g.NotAfter.IsZero() && !now.Before(g.NotAfter) {
				// The ticket ran out while the request waited.
				ng, err = g.Fail(fmt.Sprintf("ticket %s expired at %s before approval", g.Ticket, fmtTime(g.NotAfter)), now)
				if err != nil {
					return g, false, err
				}
				ng.CardChannel, ng.CardTS = cardOr(g, card)
				refusal = &UserError{Msg: fmt.Sprintf("%s cannot be approved: %s. The requester must request again.", Code(g.ID), Escape(ng.LastError)), Audited: true}
				if err := s.sendDecision(ctx, tx, ng, event(actorBot, ActFailed, audit.Failed, ng.LastError, ng)); err != nil {
					return g, false, err
				}
				return ng, true, nil
			}
			ng, err = g.Approve(clicker, sc, now)
		} else {
			ng, err = g.Deny(clicker, sc, reason, now)
		}
		switch {
		case errors.Is(err, ErrSelfApproval):
			return refuse("You asked for %s: someone else among its approvers (%s) must decide.", Code(g.ID), peopleText(sc.Approvers))
		case errors.Is(err, ErrNotApprover):
			return refuse("Only the approvers of %s may decide: %s.", Code(g.Scope), peopleText(sc.Approvers))
		case errors.Is(err, ErrWrongState):
			return refuse("%s cannot be approved yet: %s.", Code(g.ID), Escape(strings.TrimPrefix(err.Error(), ErrWrongState.Error()+": ")))
		case err != nil:
			return g, false, err
		}
		ng.CardChannel, ng.CardTS = cardOr(g, card)
		action := ActApproved
		if !approve {
			action = ActDenied
		}
		if err := s.sendDecision(ctx, tx, ng, event(clicker.SlackID, action, audit.OK, reason, ng)); err != nil {
			return g, false, err
		}
		if approve {
			if err := tx.Send(ctx, outbox.Message{Kind: outbox.DeliverGrant, Target: ng.ID}); err != nil {
				return g, false, err
			}
		}
		decided = ng
		return ng, true, nil
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return userErr("", "There is no grant %s.", Code(id))
	case err != nil:
		return fmt.Errorf("access: decide %s: %w", id, err)
	case refusal != nil:
		return refusal
	}
	s.log().Info("access: decided", "grant", decided.ID, "state", string(decided.State), "by", clicker.SlackID)
	return nil
}

func cardOr(g Grant, card CardRef) (string, string) {
	if card.Channel != "" && card.TS != "" {
		return card.Channel, card.TS
	}
	return g.CardChannel, g.CardTS
}

// sendDecision writes the audit event of a decision and the messages it owes:
// the card updated, the requester's DM, the Jira comment.
func (s *Service) sendDecision(ctx context.Context, tx Tx, g Grant, e audit.Event) error {
	if err := tx.Audit(ctx, e); err != nil {
		return err
	}
	if g.CardChannel != "" && g.CardTS != "" {
		if err := tx.Send(ctx, decidedCard(g, g.CardChannel, g.CardTS)); err != nil {
			return err
		}
	}
	if err := tx.Send(ctx, decisionDM(g)); err != nil {
		return err
	}
	if g.Ticket != "" && s.Tickets != nil {
		return tx.Send(ctx, jiraComment(g.Ticket, jiraDecision(g)))
	}
	return nil
}

func alreadyDecided(g Grant) string {
	switch g.State {
	case StateApproved, StateIssued:
		return fmt.Sprintf("%s was already approved by %s at %s.", Code(g.ID), actorText(g.Approver), fmtTime(g.DecidedAt))
	case StateDenied:
		return fmt.Sprintf("%s was already denied by %s at %s.", Code(g.ID), actorText(g.Approver), fmtTime(g.DecidedAt))
	case StateExpired, StateRevoked:
		if !g.DecidedAt.IsZero() {
			return fmt.Sprintf("%s was approved by %s at %s and has since ended (%s).", Code(g.ID), actorText(g.Approver), fmtTime(g.DecidedAt), endText(g.EndReason))
		}
		return fmt.Sprintf("%s was cancelled (%s): nothing to decide.", Code(g.ID), endText(g.EndReason))
	}
	return fmt.Sprintf("%s is %s: nothing to decide.", Code(g.ID), g.State)
}

// ---------------------------------------------------------------- Deliver

// Deliver issues an approved grant and tells the requester (the outbox kind
// deliver-grant calls it). nil means done or nothing left to do; an error
// means try again later (and never holds a credential).
//
// wrapped-token: the token is created (response-wrapped) only now; the grant
// moves to issued with its accessors (audit "grant.issued"), then the DM
// with the wrapping token goes out through Messenger.SendNow; if that fails
// the token is revoked and the grant is approved again, so a retry issues a
// fresh one. An issued grant whose DM was never confirmed (a crash in
// between) is treated the same way once deliverLease has passed.
// entity-group: the requester's entity joins the grant's group; the DM goes
// through the outbox with the state change. DryRun: no Vault write.
func (s *Service) Deliver(ctx context.Context, grantID string) error {
	g, err := s.get(ctx, grantID)
	if errors.Is(err, ErrNotFound) {
		s.log().Warn("access: deliver: no such grant", "grant", grantID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("access: deliver %s: %w", grantID, err)
	}
	now := s.now()
	switch g.State {
	case StateApproved:
	case StateIssued:
		if !g.DeliveredAt.IsZero() {
			return nil // already delivered
		}
		if g.RevokePending && g.EndReason != EndUndelivered {
			return nil // being ended: Sweep finishes it
		}
		if !g.ExpiresAt.IsZero() && !now.Before(g.ExpiresAt) {
			return nil // over before it was delivered: Sweep ends it
		}
		if !g.RevokePending && now.Sub(g.IssuedAt) < deliverLease {
			return fmt.Errorf("access: delivery of %s is in progress (issued %s ago); try again later", g.ID, now.Sub(g.IssuedAt).Round(time.Second))
		}
		// Issued but never confirmed delivered: take the token back, then
		// issue a fresh one.
		if g, err = s.undeliver(ctx, g, "its delivery was not confirmed"); err != nil {
			return err
		}
		if g.State != StateApproved {
			return nil
		}
	default:
		return nil // denied, failed, revoked, ...: nothing to deliver
	}
	sc, ok := s.scope(g.Scope)
	if !ok {
		return s.failApproved(ctx, g, fmt.Sprintf("the scope %s is no longer configured", g.Scope))
	}
	ttl := g.TTL
	if !g.NotAfter.IsZero() {
		if left := g.NotAfter.Sub(now); left < ttl {
			ttl = left
		}
	}
	if ttl < MinTTL {
		return s.failApproved(ctx, g, fmt.Sprintf("ticket %s expires at %s: too soon to issue access", g.Ticket, fmtTime(g.NotAfter)))
	}
	if !s.DryRun && s.Vault == nil {
		return errors.New("access: deliver: Vault is not configured")
	}
	if g.Delivery == config.DeliveryEntityGroup {
		return s.deliverGroup(ctx, g, sc)
	}
	return s.deliverWrapped(ctx, g, sc, ttl)
}

func (s *Service) failApproved(ctx context.Context, g Grant, why string) error {
	_, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StateApproved {
			return cur, false, nil
		}
		ng, err := cur.Fail(why, s.now())
		if err != nil {
			return cur, false, err
		}
		return ng, true, s.sendDecision(ctx, tx, ng, event(actorBot, ActFailed, audit.Failed, why, ng))
	})
	if err != nil {
		return fmt.Errorf("access: fail %s: %w", g.ID, err)
	}
	return nil
}

func (s *Service) grantMetadata(g Grant) map[string]string {
	m := map[string]string{"grant": g.ID, "user": g.Requester, "email": g.Email, "scope": g.Scope}
	if g.Ticket != "" {
		m["ticket"] = g.Ticket
	}
	if g.Incident != "" {
		m["incident"] = g.Incident
	}
	return m
}

// displayName is "secretbot-<slack name or e-mail>", reduced to characters
// Vault keeps in a display name.
func displayName(g Grant) string {
	n := g.RequesterName
	if n == "" {
		n = g.Email
	}
	if n == "" {
		n = g.Requester
	}
	n = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-', r == '@':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '-'
	}, n)
	return Truncate("secretbot-"+n, 64)
}

func (s *Service) deliverWrapped(ctx context.Context, g Grant, sc *config.Scope, ttl time.Duration) error {
	var w Wrapped
	if s.DryRun {
		w = Wrapped{TokenAccessor: AccessorDryRun}
	} else {
		var err error
		w, err = s.Vault.IssueWrapped(ctx, IssueRequest{Policies: append([]string(nil), sc.VaultPolicies...), TTL: ttl,
			Metadata: s.grantMetadata(g), DisplayName: displayName(g)})
		if err != nil {
			return fmt.Errorf("access: issue %s: %s", g.ID, scrub(errText(err), w.WrapToken))
		}
		if w.WrapToken == "" || w.TokenAccessor == "" {
			s.revokeQuietly(ctx, w)
			return fmt.Errorf("access: issue %s: Vault returned no wrapping token or accessor", g.ID)
		}
	}
	// A token exists from here on: finish the bookkeeping even if the
	// caller gives up (shutdown), or the token could be left unrecorded.
	ctx = context.WithoutCancel(ctx)
	issued, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StateApproved {
			return cur, false, errStop // ended, or delivered by someone else, meanwhile
		}
		ng, err := cur.Issued(w, "", s.now())
		if err != nil {
			return cur, false, err
		}
		if s.DryRun {
			ng.DeliveredAt = ng.IssuedAt
			if err := s.sendIssued(ctx, tx, ng, "dry run: nothing was written to Vault"); err != nil {
				return cur, false, err
			}
			return ng, true, tx.Send(ctx, dryRunDM(ng, sc))
		}
		return ng, true, tx.Audit(ctx, event(actorBot, ActIssued, audit.OK, fmt.Sprintf("wrapped token, ttl %s", config.Duration(ttl)), ng))
	})
	if err != nil {
		if !s.DryRun {
			s.revokeQuietly(ctx, w)
		}
		if errors.Is(err, errStop) {
			return nil
		}
		return fmt.Errorf("access: record issue of %s: %w", g.ID, err)
	}
	if s.DryRun {
		return nil
	}

	// The one message that carries the wrapping token.
	ts, sendErr := s.sendNow(ctx, issuedDM(issued, w.WrapToken, s.Config.Creds.VaultAddr, s.Config.Vault.Namespace))
	if sendErr != nil {
		why := "the DM could not be sent: " + scrub(errText(sendErr), w.WrapToken)
		if _, err := s.undeliver(ctx, issued, why); err != nil {
			return fmt.Errorf("access: deliver %s: %s; %w", g.ID, why, err)
		}
		return fmt.Errorf("access: deliver %s: %s; the token was revoked and will be issued afresh", g.ID, why)
	}
	_, err = s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StateIssued || cur.TokenAccessor != w.TokenAccessor {
			return cur, false, nil // ended meanwhile: nothing to record
		}
		ng, err := cur.Delivered(s.now())
		if err != nil {
			return cur, false, err
		}
		return ng, true, s.sendIssued(ctx, tx, ng, "DM sent (message "+ts+")")
	})
	if err != nil {
		// The DM went out; recording it failed. A retry finds the grant
		// undelivered after deliverLease and re-issues (revoking this token).
		return fmt.Errorf("access: record delivery of %s: %w", g.ID, err)
	}
	return nil
}

// sendIssued audits "grant.delivered" and sends the security notice and the
// Jira record (a comment, or a ticket opened for scopes that need none).
func (s *Service) sendIssued(ctx context.Context, tx Tx, g Grant, reason string) error {
	if err := tx.Audit(ctx, event(actorBot, ActDelivered, audit.OK, reason, g)); err != nil {
		return err
	}
	if ch := s.Config.Slack.SecurityChannel; ch != "" {
		if err := tx.Send(ctx, issuedNotice(ch, g)); err != nil {
			return err
		}
	}
	if s.Tickets == nil {
		return nil
	}
	if g.Ticket != "" {
		return tx.Send(ctx, jiraComment(g.Ticket, jiraIssued(g)))
	}
	return tx.Send(ctx, outbox.Message{Kind: outbox.JiraOpen, Target: g.ID})
}

// sendNow sends the DM carrying a credential. Its error never repeats the
// message.
func (s *Service) sendNow(ctx context.Context, m outbox.Message) (string, error) {
	if s.Messenger == nil {
		return "", errors.New("no messenger is configured")
	}
	return s.Messenger.SendNow(ctx, m)
}

// scrub removes secret from text (defence in depth: errText already masks
// token shapes).
func scrub(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, redacted)
}

// revokeQuietly takes back a token nobody will ever hold (an issue that
// could not be recorded). A failure is logged: the token then dies at its TTL.
func (s *Service) revokeQuietly(ctx context.Context, w Wrapped) {
	if s.Vault == nil {
		return
	}
	for _, a := range []string{w.TokenAccessor, w.WrapAccessor} {
		if a == "" || a == AccessorDryRun {
			continue
		}
		if err := s.Vault.RevokeAccessor(context.WithoutCancel(ctx), a); err != nil {
			s.log().Error("access: could not revoke an unrecorded token; it ends at its TTL", "accessor", a, "err", errText(err))
		}
	}
}

// undeliver takes back the token of an issued grant whose DM did not go out
// and moves it back to approved (audit "grant.undelivered"). When the token
// cannot be revoked the grant stays issued with RevokePending (reason
// "undelivered"), and Deliver or Sweep tries again.
func (s *Service) undeliver(ctx context.Context, g Grant, why string) (Grant, error) {
	if err := s.takeBack(ctx, g); err != nil {
		msg := "revoking the undelivered token failed: " + errText(err)
		g2, cerr := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
			if cur.State != StateIssued || cur.TokenAccessor != g.TokenAccessor {
				return cur, false, nil
			}
			first := !cur.RevokePending
			ng, err := cur.RevokeFailed(EndUndelivered, msg, s.now())
			if err != nil {
				return cur, false, err
			}
			if first {
				if err := tx.Audit(ctx, event(actorBot, ActRevokeFailed, audit.Failed, why+"; "+msg, ng)); err != nil {
					return cur, false, err
				}
			}
			return ng, first || cur.LastError != msg, nil
		})
		if cerr != nil {
			return g2, fmt.Errorf("access: %s; recording it failed: %w", msg, cerr)
		}
		return g2, fmt.Errorf("access: %s", msg)
	}
	g2, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StateIssued || cur.TokenAccessor != g.TokenAccessor {
			return cur, false, nil
		}
		ng, err := cur.Undelivered(s.now())
		if err != nil {
			return cur, false, err
		}
		ev := event(actorBot, ActUndelivered, audit.Failed, why+"; the token was revoked", cur)
		return ng, true, tx.Audit(ctx, ev)
	})
	if err != nil {
		return g2, fmt.Errorf("access: record undelivered %s: %w", g.ID, err)
	}
	return g2, nil
}

func (s *Service) deliverGroup(ctx context.Context, g Grant, sc *config.Scope) error {
	group := "secretbot-" + g.ID
	if s.DryRun {
		group = ""
	} else if err := s.Vault.JoinGroup(ctx, group, append([]string(nil), sc.VaultPolicies...), g.Email, s.grantMetadata(g)); err != nil {
		return fmt.Errorf("access: deliver %s (group): %s", g.ID, errText(err))
	}
	ctx = context.WithoutCancel(ctx) // the group exists: finish the bookkeeping
	_, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StateApproved {
			return cur, false, errStop
		}
		w := Wrapped{}
		if s.DryRun {
			w.TokenAccessor = AccessorDryRun
		}
		ng, err := cur.Issued(w, group, s.now())
		if err != nil {
			return cur, false, err
		}
		ng.DeliveredAt = ng.IssuedAt
		how := "entity-group " + group
		if s.DryRun {
			how = "dry run: nothing was written to Vault"
		}
		if err := tx.Audit(ctx, event(actorBot, ActIssued, audit.OK, how, ng)); err != nil {
			return cur, false, err
		}
		if err := s.sendIssued(ctx, tx, ng, how); err != nil {
			return cur, false, err
		}
		if s.DryRun {
			return ng, true, tx.Send(ctx, dryRunDM(ng, sc))
		}
		return ng, true, tx.Send(ctx, groupDM(ng, sc))
	})
	if err != nil {
		if !s.DryRun && group != "" {
			if derr := s.Vault.DeleteGroup(context.WithoutCancel(ctx), group); derr != nil {
				s.log().Error("access: could not delete an unrecorded grant group", "group", group, "err", errText(derr))
			}
		}
		if errors.Is(err, errStop) {
			return nil
		}
		return fmt.Errorf("access: record issue of %s: %w", g.ID, err)
	}
	return nil
}

// ---------------------------------------------------------------- OpenTicket

// OpenTicket opens the Jira access-log ticket of a grant whose scope needs no
// ticket (the outbox kind jira-open calls it), recording the grant, its
// incident and, if it already ended, its end; the key is stored in
// Grant.Ticket, and later records become comments on it. nil when done or
// when there is nothing to do; an error means try again.
func (s *Service) OpenTicket(ctx context.Context, grantID string) error {
	if s.Tickets == nil {
		return nil
	}
	g, err := s.get(ctx, grantID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("access: open ticket for %s: %w", grantID, err)
	}
	if g.Ticket != "" {
		return nil
	}
	summary, body := jiraOpenBody(g)
	key, err := s.Tickets.Open(ctx, summary, body)
	if err != nil {
		return fmt.Errorf("access: open ticket for %s: %s", g.ID, errText(err))
	}
	_, err = s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.Ticket != "" {
			return cur, false, nil
		}
		ng := cur.next(s.now())
		ng.Ticket = key
		if err := tx.Audit(ctx, event(actorBot, ActTicketOpened, audit.OK, "access-log ticket opened", ng)); err != nil {
			return cur, false, err
		}
		if cur.State.Final() && !g.State.Final() { // it ended while the ticket was being opened
			if err := tx.Send(ctx, jiraComment(key, jiraEnded(cur))); err != nil {
				return cur, false, err
			}
		}
		return ng, true, nil
	})
	if err != nil {
		return fmt.Errorf("access: record ticket %s of %s: %w", key, g.ID, err)
	}
	return nil
}

// ---------------------------------------------------------------- Revoke

// Revoke ends a grant at once, at the request of Slack user by: its holder,
// an approver of its scope, or Platform Security (rights as Slack reports
// them now, through Directory). A pending or approved grant is cancelled; an
// issued one has its token revoked (by accessor, confirmed by a look-up) or
// its group deleted. If that fails, the grant is marked RevokePending and
// Sweep retries, and the person gets a *UserError saying so. why is free
// text for the record (may be empty).
func (s *Service) Revoke(ctx context.Context, grantID, by, why string) error {
	id, ok := NormalizeGrantID(grantID)
	if !ok {
		return userErr("", "%s is not a grant id (accepted: G followed by 8 letters and digits, e.g. GK3D9QX2A; see `grants`)", Code(Truncate(grantID, 20)))
	}
	why = strings.TrimSpace(why)
	if err := checkReason(why); err != nil {
		return err
	}
	if s.Directory == nil {
		return errors.New("access: revoke: no directory to check rights with")
	}
	who, err := s.Directory.Person(ctx, by)
	if err != nil {
		return &UserError{Msg: "Slack could not say who you are, so your rights could not be checked: nothing was revoked. Try again."}
	}
	if who.SlackID == "" {
		who.SlackID = by
	}
	g, err := s.get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return userErr("", "There is no grant %s (see `grants`).", Code(id))
	}
	if err != nil {
		return fmt.Errorf("access: revoke %s: %w", id, err)
	}
	sc, _ := s.scope(g.Scope)
	holder := g.Requester == who.SlackID
	if !holder && !(sc != nil && policy.CanApprove(sc, who)) && !policy.PlatformSecurity(s.Config, who) {
		ue := userErr("", "Only the holder of %s, an approver of %s or Platform Security may revoke it.", Code(g.ID), Code(g.Scope))
		return s.auditRefusal(ctx, ue, event(who.SlackID, ActRevokeRefused, audit.Refused, ue.Msg, g))
	}
	if g.State.Final() {
		return userErr("", "%s has already ended (%s).", Code(g.ID), describeEnd(g))
	}
	reason := RevokedBy(who.SlackID)
	if holder {
		reason = EndDone
	}
	ended, err := s.end(ctx, g, reason, who.SlackID, why)
	if err != nil {
		if ended.RevokePending {
			return &UserError{Msg: fmt.Sprintf("%s could not be revoked yet: %s. It is marked revoke pending and retried until it succeeds.",
				Code(g.ID), Escape(ended.LastError)), Audited: true}
		}
		return err
	}
	return nil
}

func describeEnd(g Grant) string {
	switch g.State {
	case StateDenied:
		return "denied"
	case StateFailed:
		return "failed: " + Escape(g.LastError)
	}
	return endText(g.EndReason)
}

// takeBack removes the access an issued grant carries in Vault. Revoking a
// token is confirmed by looking its accessor up.
func (s *Service) takeBack(ctx context.Context, g Grant) error {
	if g.State != StateIssued || g.TokenAccessor == AccessorDryRun {
		return nil
	}
	if s.Vault == nil {
		return errors.New("Vault is not configured")
	}
	if g.VaultGroup != "" {
		if err := s.Vault.DeleteGroup(ctx, g.VaultGroup); err != nil {
			return fmt.Errorf("deleting Vault group %s: %w", g.VaultGroup, err)
		}
		return nil
	}
	if g.TokenAccessor == "" {
		return nil
	}
	err := s.Vault.RevokeAccessor(ctx, g.TokenAccessor)
	if g.WrapAccessor != "" && g.WrapStatus != WrapUsed {
		if werr := s.Vault.RevokeAccessor(ctx, g.WrapAccessor); werr != nil {
			s.log().Warn("access: could not revoke a wrapping token (it expires on its own)", "grant", g.ID, "err", errText(werr))
		}
	}
	if err != nil {
		return fmt.Errorf("revoking the token: %w", err)
	}
	alive, err := s.Vault.AccessorAlive(ctx, g.TokenAccessor)
	if err != nil {
		return fmt.Errorf("confirming the revoke: %w", err)
	}
	if alive {
		return errors.New("the token is still alive after revoking it")
	}
	return nil
}

// end takes g's access back and records the end (state expired or revoked,
// audit, DM, security notice, Jira comment). When taking back fails, the
// grant is marked RevokePending (audited the first time) and the error is
// returned with the grant as marked.
func (s *Service) end(ctx context.Context, g Grant, reason, actor, why string) (Grant, error) {
	for range maxConflictRetries {
		if err := s.takeBack(ctx, g); err != nil {
			msg := errText(err)
			marked, cerr := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
				if cur.State != StateIssued {
					return cur, false, nil
				}
				first := !cur.RevokePending
				ng, err := cur.RevokeFailed(reason, msg, s.now())
				if err != nil {
					return cur, false, err
				}
				if first {
					if err := tx.Audit(ctx, event(actor, ActRevokeFailed, audit.Failed, endText(reason)+": "+msg, ng)); err != nil {
						return cur, false, err
					}
				}
				return ng, first || cur.LastError != msg || cur.EndReason != reason, nil
			})
			if cerr != nil {
				return marked, fmt.Errorf("access: revoke %s: %s; recording it failed: %w", g.ID, msg, cerr)
			}
			return marked, fmt.Errorf("access: revoke %s: %s", g.ID, msg)
		}
		var again *Grant
		ended, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
			again = nil
			if cur.State.Final() {
				return cur, false, nil // someone else ended it
			}
			if cur.State == StateIssued && (g.State != StateIssued || cur.TokenAccessor != g.TokenAccessor || cur.VaultGroup != g.VaultGroup) {
				again = &cur // issued (again) since we took back: take that back too
				return cur, false, nil
			}
			ng, err := cur.End(reason, s.now())
			if err != nil {
				return cur, false, err
			}
			action := ActRevoked
			if ng.State == StateExpired {
				action = ActExpired
			}
			text := endText(reason)
			if why != "" {
				text += ": " + why
			}
			if err := tx.Audit(ctx, event(actor, action, audit.OK, text, ng)); err != nil {
				return cur, false, err
			}
			return ng, true, s.sendEnded(ctx, tx, cur, ng)
		})
		if err != nil {
			return ended, fmt.Errorf("access: record end of %s: %w", g.ID, err)
		}
		if again == nil {
			return ended, nil
		}
		g = *again
	}
	return g, fmt.Errorf("access: end %s: the grant kept changing", g.ID)
}

// sendEnded sends what an end owes: the requester's DM, the security notice
// (for access that was issued), the card (for a request ended before a
// decision), the Jira comment.
func (s *Service) sendEnded(ctx context.Context, tx Tx, before, g Grant) error {
	if err := tx.Send(ctx, endedDM(g)); err != nil {
		return err
	}
	if before.State == StateIssued {
		if ch := s.Config.Slack.SecurityChannel; ch != "" {
			if err := tx.Send(ctx, endedNotice(ch, g)); err != nil {
				return err
			}
		}
	}
	if before.State == StatePending && g.CardChannel != "" && g.CardTS != "" {
		if err := tx.Send(ctx, decidedCard(g, g.CardChannel, g.CardTS)); err != nil {
			return err
		}
	}
	if g.Ticket != "" && s.Tickets != nil {
		return tx.Send(ctx, jiraComment(g.Ticket, jiraEnded(g)))
	}
	return nil
}

// ---------------------------------------------------------------- Sweep

// Sweep does the time-driven work, in this order: retries of failed revokes,
// expiries (ExpiresAt <= now: revoked, state expired), unused wrapping
// tokens (looked up in the last minute before they expire; still unused at
// expiry: the grant is revoked as "wrap-unused" and the requester told),
// resolved incidents (scopes that end with their incident: polled every
// pagerduty.incident_poll_interval; resolved or gone: revoked), and requests
// whose checks were interrupted (failed). Call it at start, before anything
// else, and then every few seconds. It carries on past a failing grant and
// returns every error it met.
func (s *Service) Sweep(ctx context.Context) error {
	var issued, pending []Grant
	err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		if issued, err = tx.GrantsByState(ctx, StateIssued); err != nil {
			return err
		}
		pending, err = tx.GrantsByState(ctx, StatePending)
		return err
	})
	if err != nil {
		return fmt.Errorf("access: sweep: %w", err)
	}
	var errs []error
	now := s.now()
	live := map[string]bool{}
	for _, g := range issued {
		live[g.ID] = true
		if ctx.Err() != nil {
			break
		}
		if err := s.sweepOne(ctx, g, now); err != nil {
			errs = append(errs, err)
		}
	}
	for _, g := range pending {
		if ctx.Err() != nil {
			break
		}
		if err := s.sweepPending(ctx, g, now); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	for id := range s.lastPoll {
		if !live[id] {
			delete(s.lastPoll, id)
		}
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

func (s *Service) sweepOne(ctx context.Context, g Grant, now time.Time) error {
	switch {
	case g.RevokePending && g.EndReason == EndUndelivered:
		_, err := s.undeliver(ctx, g, "retrying the revoke of an undelivered token")
		return err
	case g.RevokePending:
		reason := g.EndReason
		if reason == "" {
			reason = EndExpired
		}
		_, err := s.end(ctx, g, reason, actorBot, "retry")
		return err
	case !g.ExpiresAt.IsZero() && !now.Before(g.ExpiresAt):
		_, err := s.end(ctx, g, g.ExpiryReason(), actorBot, "")
		return err
	case g.DeliveredAt.IsZero() && now.Sub(g.IssuedAt) >= abandonedDelivery:
		// Issued long ago and never delivered (a crash, and the delivery
		// message given up): a token nobody can reach. Take it back; the
		// grant is approved again, for a delivery retry.
		_, err := s.undeliver(ctx, g, "its delivery was abandoned")
		return err
	case g.DeliveredAt.IsZero():
		return nil // Deliver's business
	}
	if err := s.sweepWrap(ctx, g, now); err != nil || ctx.Err() != nil {
		return err
	}
	return s.sweepIncident(ctx, g, now)
}

func (s *Service) sweepWrap(ctx context.Context, g Grant, now time.Time) error {
	if g.Delivery == config.DeliveryEntityGroup || g.WrapAccessor == "" || g.TokenAccessor == AccessorDryRun ||
		g.WrapStatus == WrapUsed || g.WrapExpires.IsZero() || now.Before(g.WrapExpires.Add(-wrapCheckLead)) {
		return nil
	}
	if s.Vault == nil {
		return errors.New("access: sweep: Vault is not configured")
	}
	if !now.Before(g.WrapExpires) {
		// Expired without a look-up that saw it unwrapped: fail closed.
		_, err := s.end(ctx, g, EndWrapUnused, actorBot, "")
		return err
	}
	alive, err := s.Vault.AccessorAlive(ctx, g.WrapAccessor)
	if err != nil {
		return fmt.Errorf("access: look up the wrapping token of %s: %s", g.ID, errText(err))
	}
	status := WrapUsed
	if alive {
		status = WrapUnused
	}
	if status == g.WrapStatus {
		return nil
	}
	_, err = s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StateIssued || cur.WrapAccessor != g.WrapAccessor || cur.WrapStatus == WrapUsed {
			return cur, false, nil
		}
		ng, err := cur.WithWrapStatus(status, s.now())
		if err != nil {
			return cur, false, err
		}
		if status == WrapUsed {
			if err := tx.Audit(ctx, event(actorBot, ActUnwrapped, audit.OK, "the wrapping token was used", ng)); err != nil {
				return cur, false, err
			}
		}
		return ng, true, nil
	})
	return err
}

func (s *Service) sweepIncident(ctx context.Context, g Grant, now time.Time) error {
	sc, ok := s.scope(g.Scope)
	if !ok || !sc.EndsWithIncident || g.Incident == "" {
		return nil
	}
	if s.OnCall == nil {
		s.log().Warn("access: cannot poll the incident of a grant: PagerDuty is not configured", "grant", g.ID)
		return nil
	}
	interval := s.Config.PagerDuty.IncidentPollInterval.D()
	if interval <= 0 {
		interval = config.DefaultIncidentPollInterval
	}
	s.mu.Lock()
	if s.lastPoll == nil {
		s.lastPoll = map[string]time.Time{}
	}
	last, polled := s.lastPoll[g.ID]
	if polled && now.Sub(last) < interval {
		s.mu.Unlock()
		return nil
	}
	s.lastPoll[g.ID] = now
	s.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, s.checkTimeout())
	defer cancel()
	inc, err := s.OnCall.Incident(cctx, g.Incident)
	switch {
	case errors.Is(err, ErrIncidentNotFound):
	case err != nil:
		return fmt.Errorf("access: poll incident %s of %s: %s", g.Incident, g.ID, errText(err))
	case inc.Open():
		return nil
	}
	_, err = s.end(ctx, g, EndIncidentResolved, actorBot, "incident "+g.Incident)
	return err
}

func (s *Service) sweepPending(ctx context.Context, g Grant, now time.Time) error {
	checking := false
	for _, e := range g.Evidence {
		checking = checking || e.Status == EvidenceChecking
	}
	if !checking || now.Sub(g.CreatedAt) < staleChecks {
		return nil
	}
	why := "the checks were interrupted (the bot restarted); request again"
	_, err := s.change(ctx, g.ID, func(tx Tx, cur Grant) (Grant, bool, error) {
		if cur.State != StatePending || cur.Version != g.Version {
			return cur, false, nil
		}
		ng, err := cur.Fail(why, s.now())
		if err != nil {
			return cur, false, err
		}
		if err := tx.Audit(ctx, event(actorBot, ActFailed, audit.Failed, why, ng)); err != nil {
			return cur, false, err
		}
		return ng, true, tx.Send(ctx, dm(ng, fmt.Sprintf("Your access request %s for %s failed: %s.", Code(ng.ID), Code(ng.Scope), why)))
	})
	return err
}

// ---------------------------------------------------------------- Views

// Grants lists what p may see, oldest first: their own active grants; for
// approvers also the active grants of the scopes they approve; for Platform
// Security every active grant. (A grant with a revoke pending is issued,
// hence active.)
func (s *Service) Grants(ctx context.Context, p policy.Person) ([]Grant, error) {
	var all []Grant
	err := s.Store.InTx(ctx, func(tx Tx) error {
		var err error
		all, err = tx.GrantsByState(ctx, ActiveStates...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("access: grants: %w", err)
	}
	security := policy.PlatformSecurity(s.Config, p)
	var out []Grant
	for _, g := range all {
		sc, _ := s.scope(g.Scope)
		if g.Requester == p.SlackID || security || (sc != nil && policy.CanApprove(sc, p)) {
			out = append(out, g)
		}
	}
	return out, nil
}

// Explain is a dry run for target on scope, in mrkdwn: whether target may
// request it, the evidence needed, who approves, how it is delivered, and
// whether the checks that need no argument (on call) pass now. Nothing is
// stored. asker may explain themself; approvers of the scope and Platform
// Security may explain anyone.
func (s *Service) Explain(ctx context.Context, asker, target policy.Person, scope string) (string, error) {
	sc, ok := s.scope(strings.TrimSpace(scope))
	if !ok {
		names := make([]string, 0, len(s.Config.Scopes))
		for _, c := range s.Config.Scopes {
			names = append(names, c.Name)
		}
		return "", userErr("scope", "%s is not a scope. Scopes: %s", Code(Truncate(scope, 40)), strings.Join(names, ", "))
	}
	self := asker.SlackID != "" && asker.SlackID == target.SlackID
	if !self && !policy.CanApprove(sc, asker) && !policy.PlatformSecurity(s.Config, asker) {
		return "", userErr("", "You may explain %s for yourself; only its approvers and Platform Security may explain it for others.", Code(sc.Name))
	}
	lines := []string{fmt.Sprintf("*%s for <@%s>*", Code(sc.Name), Escape(target.SlackID))}
	if sc.Description != "" {
		lines = append(lines, Escape(sc.Description))
	}
	wouldPass := true
	switch {
	case policy.Refusal(target) != nil:
		lines = append(lines, ":x: Cannot request: "+Escape(policy.Refusal(target).Error()))
		wouldPass = false
	case !policy.Eligible(sc, target):
		lines = append(lines, ":x: Not eligible: not among "+peopleText(sc.Eligible))
		wouldPass = false
	default:
		lines = append(lines, ":white_check_mark: Eligible")
	}
	if sc.Disabled {
		lines = append(lines, ":x: Switched off: "+Escape(sc.DisabledReason))
		wouldPass = false
	}
	lines = append(lines, fmt.Sprintf("Maximum TTL %s; delivered as %s%s.", config.Duration(sc.MaxTTL.D()), sc.Delivery,
		map[bool]string{true: "; ends when its incident resolves", false: ""}[sc.EndsWithIncident]))
	var needsArg []string
	for _, kind := range sc.Evidence {
		switch kind {
		case config.EvidenceJira:
			lines = append(lines, fmt.Sprintf("• *Jira*: `--ticket %s-123`, in project %s, with owner, scope (naming %s), justification and a future expiry, approved by a Security Lead other than the requester.",
				projectOr(s.Config), projectOr(s.Config), Code(sc.Name)))
			needsArg = append(needsArg, "an approved ticket")
		case config.EvidenceIncident:
			lines = append(lines, "• *PagerDuty incident*: `--incident`, triggered or acknowledged, on a service of the configured escalation policies or assigned to the requester.")
			needsArg = append(needsArg, "an open incident")
		case config.EvidenceApproval:
			lines = append(lines, "• *Approval*: a click by one of "+peopleText(sc.Approvers)+" (never the requester).")
			needsArg = append(needsArg, "an approver's click")
		case config.EvidenceOnCall:
			line := "• *PagerDuty on-call*: on call now on a configured escalation policy. "
			switch {
			case s.OnCall == nil:
				line += ":warning: PagerDuty is not configured: cannot be checked."
				wouldPass = false
			case target.Email == "":
				line += ":x: Slack shows no e-mail for this person."
				wouldPass = false
			default:
				cctx, cancel := context.WithTimeout(ctx, s.checkTimeout())
				on, detail, _, err := s.OnCall.OnCallNow(cctx, target.Email)
				cancel()
				switch {
				case err != nil:
					line += ":warning: PagerDuty could not be checked: " + Escape(errText(err))
					wouldPass = false
				case on:
					line += ":white_check_mark: on call now"
				default:
					line += ":x: not on call now"
					wouldPass = false
				}
				if detail != "" {
					line += " (" + Escape(detail) + ")"
				}
			}
			lines = append(lines, line)
		}
	}
	if !hasEvidence(sc, config.EvidenceApproval) {
		lines = append(lines, "No approver click: the evidence is the approval.")
	}
	verdict := "*Would pass now*: "
	switch {
	case !wouldPass:
		verdict += "no."
	case len(needsArg) > 0:
		verdict += "yes, given " + strings.Join(needsArg, ", ") + "."
	default:
		verdict += "yes."
	}
	lines = append(lines, verdict)
	return strings.Join(lines, "\n"), nil
}
