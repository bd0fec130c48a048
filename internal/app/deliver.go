package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/secretbot/secretbot/integrations/jira"
	slackint "github.com/secretbot/secretbot/integrations/slack"
	"github.com/secretbot/secretbot/internal/crash"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/rotation"
	"github.com/secretbot/secretbot/internal/store"
)

// grantWork is the access service's part of delivery: the credential is
// made only when its message is sent, never stored in the outbox.
type grantWork interface {
	Deliver(ctx context.Context, grantID string) error
	OpenTicket(ctx context.Context, grantID string) error
}

// threadPoster posts a rotation's thread root, whose ts the rotation records.
type threadPoster interface {
	PostThread(ctx context.Context, rotationID string) error
}

// jiraComments adds the access log's comments to tickets.
type jiraComments interface {
	AddComment(ctx context.Context, key, body string) error
}

// sender delivers one message to Slack.
type sender interface {
	Deliver(ctx context.Context, m outbox.Message) (string, error)
}

// deliverer sends what the outbox holds. A failure that retrying can cure
// (outage, 5xx, 429) only delays a message; one that cannot (an expired
// response_url, a channel the bot is not in) is marked dead and logged.
//
// Delivery is concurrent by lane (laneOf): up to workers sends at once, at
// most one per lane, and a lane's messages strictly in outbox order. So a
// hanging call or a long Retry-After holds back only its own lane (one
// channel, DM, response_url or Jira ticket), never everyone's messages.
type deliverer struct {
	db        *store.DB
	slack     sender
	grants    grantWork    // nil in tests that deliver only Slack messages
	rotations threadPoster // idem
	jira      jiraComments // nil when Jira is not configured
	log       *slog.Logger
	metrics   *appMetrics
	now       func() time.Time
	kick      chan struct{}
	workers   int
}

// deliverWorkers bounds the sends in flight: enough that a few hanging
// targets leave room for the rest, few enough to stay far below Slack's
// per-method rate limits.
const deliverWorkers = 6

func newDeliverer(db *store.DB, s sender, log *slog.Logger, m *appMetrics, now func() time.Time) *deliverer {
	return &deliverer{db: db, slack: s, log: log, metrics: m, now: now, kick: make(chan struct{}, 1), workers: deliverWorkers}
}

// laneOf names the lane m is delivered in: the target whose messages must
// arrive in the order they were owed. Slack rate-limits chat.postMessage per
// channel, so a Retry-After (kept on the lane's head message) backs off that
// channel only; the per-method, workspace-wide limits are far above what the
// bot sends, and any lane that meets one honours its own Retry-After.
func laneOf(m outbox.Message) string {
	switch m.Kind {
	case outbox.Respond:
		return "url:" + m.Target
	case outbox.DM:
		return "dm:" + m.Target
	case outbox.Post, outbox.Ephemeral, outbox.Update:
		if strings.HasPrefix(m.Target, "U") || strings.HasPrefix(m.Target, "W") {
			return "dm:" + m.Target // a user id: Slack posts to the DM
		}
		return "ch:" + m.Target
	case outbox.DeliverGrant, outbox.JiraOpen:
		// The DM delivering a grant, then (enqueued by that delivery) the
		// ticket recording it: one grant's work in order.
		return "grant:" + m.Target
	case outbox.JiraComment:
		return "jira:" + m.Target
	}
	return m.Kind + ":" + m.Target
}

// wake asks for a delivery round soon; it never blocks.
func (d *deliverer) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// run delivers until stop is closed, then waits for the sends in flight:
// a send cut off mid-flight may have reached Slack, and sending it again
// on the next start would post it twice.
func (d *deliverer) run(ctx context.Context, stop <-chan struct{}) {
	d.pump(ctx, stop, false)
}

// flush delivers every message due now, lanes concurrently, until nothing
// is due and no send is in flight, or ctx ends (sends in flight are then
// cancelled and awaited; each stays due as it was).
func (d *deliverer) flush(ctx context.Context) {
	d.pump(ctx, nil, true)
}

func (d *deliverer) pump(ctx context.Context, stop <-chan struct{}, untilIdle bool) {
	done := make(chan string, d.workers)
	busy := map[string]bool{} // lanes with a send in flight
	var tick <-chan time.Time
	if !untilIdle {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	ctxDone := ctx.Done()
	stopped := false
	for {
		if !stopped {
			d.dispatch(ctx, busy, done)
		}
		if len(busy) == 0 && (stopped || untilIdle) {
			return
		}
		select {
		case lane := <-done:
			delete(busy, lane)
			for drained := false; !drained; { // take every finished send before reading again
				select {
				case lane := <-done:
					delete(busy, lane)
				default:
					drained = true
				}
			}
		case <-d.kick:
		case <-tick:
		case <-stop:
			stopped, stop = true, nil
		case <-ctxDone:
			stopped, ctxDone = true, nil
		}
	}
}

// dispatch starts a send for each due lane head whose lane is idle, while
// workers are free.
func (d *deliverer) dispatch(ctx context.Context, busy map[string]bool, done chan<- string) {
	free := d.workers - len(busy)
	if free <= 0 || ctx.Err() != nil {
		return
	}
	// Each busy lane's head is the message in flight (still pending), so
	// this limit always leaves room for free idle lanes.
	heads, err := d.db.OutboxDue(ctx, d.now(), d.workers+len(busy))
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("outbox read failed", "err", err)
		}
		return
	}
	for _, row := range heads {
		if free == 0 {
			return
		}
		lane := row.Lane
		if lane == "" {
			lane = fmt.Sprintf("id:%d", row.ID)
		}
		if busy[lane] {
			continue
		}
		busy[lane] = true
		free--
		go func() {
			d.deliver(ctx, row)
			done <- lane
		}()
	}
}

func (d *deliverer) deliver(ctx context.Context, row store.OutboxMessage) {
	log := d.log.With("outbox_id", row.ID)
	// Bookkeeping must land even when shutdown cancels ctx mid-send, or a
	// message Slack accepted would be sent again on the next start.
	bctx := context.WithoutCancel(ctx)
	m, err := outbox.Unmarshal(row.Body)
	if err != nil {
		log.Error("undecodable outbox message; marked dead", "err", err)
		_ = d.db.OutboxRetry(bctx, row.ID, d.now(), "undecodable", true)
		return
	}
	crash.Point("outbox.before_send")
	err = d.send(ctx, m)
	if err == nil {
		crash.Point("outbox.sent")
		d.metrics.delivered.Inc(m.Kind, "sent")
		if err := d.db.OutboxSent(bctx, row.ID, d.now()); err != nil {
			log.Error("outbox bookkeeping failed", "err", err)
		}
		return
	}
	if ctx.Err() != nil {
		return // interrupted, not failed: the message stays due as it was
	}
	var de *slackint.DeliveryError
	retryable, after := true, time.Duration(0)
	if errors.As(err, &de) {
		retryable, after = de.Retryable, de.RetryAfter
	}
	if !retryable {
		d.metrics.delivered.Inc(m.Kind, "dead")
		log.Error("message cannot be delivered; giving up", "kind", m.Kind, "err", err)
		_ = d.db.OutboxRetry(bctx, row.ID, d.now(), err.Error(), true)
		return
	}
	wait := max(after, retryDelay(row.Attempts))
	if m.Kind == outbox.DeliverGrant {
		wait = min(wait, grantRetryCap) // a grant waiting for Vault is issued soon after Vault is back
	}
	d.metrics.delivered.Inc(m.Kind, "retry")
	log.Warn("delivery failed; will retry", "kind", m.Kind, "attempt", row.Attempts+1, "retry_in", wait.String(), "err", err)
	_ = d.db.OutboxRetry(bctx, row.ID, d.now().Add(wait), err.Error(), false)
}

// grantRetryCap bounds the wait between attempts to deliver a grant: the
// requester was told it comes as soon as Vault is back.
const grantRetryCap = 30 * time.Second

// retryDelay grows with each attempt, up to five minutes.
func retryDelay(attempts int) time.Duration {
	d := time.Second << min(attempts, 9)
	return min(d, 5*time.Minute)
}

// errNoJira marks a Jira comment owed while Jira is not configured.
var errNoJira = errors.New("jira is not configured")

// send performs one outbox message: a Slack message, or work whose result
// is a message (a grant's DM, a Jira comment).
func (d *deliverer) send(ctx context.Context, m outbox.Message) error {
	switch m.Kind {
	case outbox.DeliverGrant:
		return d.grants.Deliver(ctx, m.Target)
	case outbox.JiraOpen:
		return d.grants.OpenTicket(ctx, m.Target)
	case rotation.ThreadKind:
		return d.rotations.PostThread(ctx, m.Target)
	case outbox.JiraComment:
		if d.jira == nil {
			return &slackint.DeliveryError{Op: "jira comment", Code: "not_configured", Err: errNoJira}
		}
		err := d.jira.AddComment(ctx, m.Target, m.Text)
		if errors.Is(err, jira.ErrNotFound) || errors.Is(err, jira.ErrInvalidKey) {
			return &slackint.DeliveryError{Op: "jira comment", Code: "not_found", Err: err}
		}
		// A refusal about this ticket (400, 403, 413, ...) will not change
		// with retrying, and would hold back every later comment on the
		// ticket (one lane). 401 is the bot's credentials: fixed by the
		// operator, so the comments wait for it, as they do for 429 and 5xx.
		var je *jira.Error
		if errors.As(err, &je) && !je.Retryable && je.Status >= 400 && je.Status < 500 && je.Status != http.StatusUnauthorized {
			return &slackint.DeliveryError{Op: "jira comment", Code: fmt.Sprintf("http_%d", je.Status), Err: err}
		}
		return err
	}
	_, err := d.slack.Deliver(ctx, m)
	return err
}
