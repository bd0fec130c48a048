package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/secretbot/secretbot/handlers"
	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/crash"
	"github.com/secretbot/secretbot/internal/outbox"
	"github.com/secretbot/secretbot/internal/rotation"
	"github.com/secretbot/secretbot/internal/store"
)

// maxAttempts bounds how often one envelope is tried (a crash or store error
// mid-way leaves it claimable again) before the person is told it failed.
const maxAttempts = 5

// inbox is the durable queue between the Socket Mode reader and the work:
// each envelope is stored before it is acked and processed from storage,
// because Slack never redelivers a command or a click once acked.
type inbox struct {
	db             *store.DB
	audit          *audit.Log
	handlers       *handlers.Handlers
	log            *slog.Logger
	metrics        *appMetrics
	now            func() time.Time
	command        string
	handlerTimeout time.Duration
	workers        int
	kickOutbox     func()

	// queue hands entries to the workers. Whoever sends on it first takes
	// a place in places (the same capacity), and a worker gives the place
	// back as it receives: a send never blocks. accept takes places for the
	// entries it stores claimed, before storing them, so that each is
	// certain to reach a worker once acked.
	queue  chan work
	places chan struct{}
	wg     sync.WaitGroup

	// values holds secret values typed into modals, by inbox dedup key,
	// between the ack and the KV write: in memory only, never stored. A
	// restart in between loses them, and the person is asked again.
	values sync.Map
}

// newInbox makes an inbox whose workers take at most depth entries ahead.
func newInbox(depth int) *inbox {
	return &inbox{queue: make(chan work, depth), places: make(chan struct{}, depth)}
}

// work is one entry for a worker: claimed on arrival (entry set: stored
// working, leased to this process), or found in storage (only id: the
// worker claims it).
type work struct {
	id    int64
	entry *store.InboxEntry
}

// lease is how long a worker holds an entry: the handler's time, and a
// margin for storing its outcome.
func (in *inbox) lease() time.Duration { return in.handlerTimeout + 30*time.Second }

// accepted is what storing one envelope gave: the ack's payload (nil for
// none) and a function to run once the ack is written (nil for none), or
// the error that kept it from being stored (it must not be acked).
type accepted struct {
	ack   json.RawMessage
	after func()
	err   error
}

// accept stores envs, all in one transaction. It runs on the socket's
// acker, before the acks; each returned after hands its entry to a worker,
// and must be run whether or not the ack could be written.
//
// An entry a worker has room for is stored already claimed (InboxPutBatch),
// so the worker starts on it without a commit of its own; the others are
// stored pending and found by the poller.
func (in *inbox) accept(ctx context.Context, envs []envelope) []accepted {
	out := make([]accepted, len(envs))
	type pending struct {
		i          int
		key, value string
		held       bool // the value was already held for an earlier delivery
		placed     bool // holds a place in the workers' queue
	}
	// A modal's validation may ask Slack (up to validationBudget): a batch's
	// run at once, so one slow lookup does not add up with the others.
	invalid := make([]json.RawMessage, len(envs))
	var validating sync.WaitGroup
	for i, env := range envs {
		if env.Type == "interactive" {
			validating.Go(func() { invalid[i] = in.validate(ctx, env) })
		}
	}
	validating.Wait()
	var todo []pending
	var entries []store.InboxEntry
	for i, env := range envs {
		in.metrics.received.Inc(env.Type)
		if ack := invalid[i]; ack != nil {
			// The modal stays open showing the field errors: nothing to store.
			out[i].ack = ack
			continue
		}
		key := env.EnvelopeID
		if env.Type == "events_api" {
			// Events have their own id, stable across redeliveries.
			var p struct {
				EventID string `json:"event_id"`
			}
			if json.Unmarshal(env.Payload, &p) == nil && p.EventID != "" {
				key = "event:" + p.EventID
			}
		}
		payload, value := sanitize(env.Payload)
		held := false
		if value != "" {
			// Held before the entry is stored, so no worker can see the entry
			// without its value.
			_, held = in.values.LoadOrStore(key, value)
		}
		now := in.now()
		e := store.InboxEntry{DedupKey: key, EnvelopeID: env.EnvelopeID, Type: env.Type, Payload: payload, ReceivedAt: now}
		placed := false
		select {
		case in.places <- struct{}{}:
			placed, e.LeaseUntil = true, now.Add(in.lease())
		default: // workers far behind: stored pending, for the poller
		}
		todo = append(todo, pending{i: i, key: key, value: value, held: held, placed: placed})
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return out
	}
	res, err := in.db.InboxPutBatch(ctx, entries)
	for j, p := range todo {
		inserted := err == nil && res[j].Inserted
		if p.value != "" && !p.held && !inserted {
			in.values.Delete(p.key) // nothing will consume it: do not keep a secret in memory
		}
		if p.placed && !inserted {
			<-in.places // nothing to hand over
		}
	}
	if err != nil {
		for _, p := range todo {
			out[p.i].err = err
		}
		return out
	}
	crash.Point("inbox.stored")
	for j, p := range todo {
		env := envs[p.i]
		if !res[j].Inserted {
			in.metrics.duplicates.Inc()
			in.log.Info("duplicate envelope acked, not processed again", "envelope_id", env.EnvelopeID, "retry_attempt", env.RetryAttempt)
			continue
		}
		if env.Type == "slash_commands" {
			var sc struct {
				Text string `json:"text"`
			}
			if json.Unmarshal(env.Payload, &sc) == nil {
				out[p.i].ack = handlers.AckSummary(sc.Text)
			}
		}
		w := work{id: res[j].ID}
		if p.placed {
			e := entries[j]
			e.ID, e.State, e.Attempts = w.id, store.InboxStateWorking, 1
			w.entry = &e
		}
		out[p.i].after = func() {
			if p.placed {
				in.queue <- w // never blocks: the place is taken
				return
			}
			select {
			case in.places <- struct{}{}:
				in.queue <- w
			default: // workers busy: the poller finds it in storage
			}
		}
	}
	return out
}

// sanitize drops from a payload, before it is stored, what the bot must not
// keep: Slack's legacy verification token (a credential the bot has no use
// for); in a click, the whole message clicked (a click on the I'm done button
// of a grant's DM carries that DM, wrapping token included; only the
// message's timestamps are needed); in a submitted modal, the secret value
// field, which is returned separately to be held in memory.
func sanitize(p json.RawMessage) (stored []byte, secretValue string) {
	var m map[string]json.RawMessage
	if json.Unmarshal(p, &m) != nil {
		return p, ""
	}
	// encoding/json matches struct fields without regard to case, so the
	// payload is read later under any spelling of these keys: drop them all.
	hasToken := len(takeFold(m, "token")) > 0
	msgs, views := takeFold(m, "message"), takeFold(m, "view")
	if !hasToken && len(msgs) == 0 && len(views) == 0 {
		return p, ""
	}
	msg, hasMessage := lastOf(msgs)
	view, hasView := lastOf(views)
	if hasMessage {
		var ts struct {
			TS       string `json:"ts,omitempty"`
			ThreadTS string `json:"thread_ts,omitempty"`
		}
		_ = json.Unmarshal(msg, &ts)
		m["message"], _ = json.Marshal(ts)
	}
	if hasView {
		m["view"] = view
		if v, value, ok := dropValueField(view); ok {
			m["view"], secretValue = v, value
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return p, ""
	}
	return b, secretValue
}

// takeFold removes from m every key equal to key without regard to case,
// returning their values in key order (the reader keeps the last).
func takeFold(m map[string]json.RawMessage, key string) []json.RawMessage {
	var keys []string
	for k := range m {
		if strings.EqualFold(k, key) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]json.RawMessage, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
		delete(m, k)
	}
	return out
}

func lastOf(vs []json.RawMessage) (json.RawMessage, bool) {
	if len(vs) == 0 {
		return nil, false
	}
	return vs[len(vs)-1], true
}

// dropValueField removes the state of the modal block named
// rotation.ValueKey (where secret values are typed) from a view.
func dropValueField(view json.RawMessage) (json.RawMessage, string, bool) {
	var v map[string]json.RawMessage
	if json.Unmarshal(view, &v) != nil {
		return nil, "", false
	}
	var state struct {
		Values map[string]map[string]json.RawMessage `json:"values"`
	}
	st, _ := lastOf(takeFold(v, "state"))
	if st == nil || json.Unmarshal(st, &state) != nil {
		return nil, "", false
	}
	block, ok := state.Values[rotation.ValueKey]
	if !ok {
		return nil, "", false
	}
	var field struct {
		Value string `json:"value"`
	}
	_ = json.Unmarshal(block[rotation.ValueKey], &field)
	delete(state.Values, rotation.ValueKey)
	v["state"], _ = json.Marshal(state)
	// A view's blocks never hold typed values, but its hash and initial
	// values could echo nothing secret; only state carries what was typed.
	out, err := json.Marshal(v)
	if err != nil {
		return nil, "", false
	}
	return out, field.Value, true
}

// start launches the workers and the poller that resumes stored work.
//
// Every lease still held in storage is a dead process's (the caller holds
// the database lock and no worker has started), so it is released first:
// what a crash or a stop left claimed is resumed at once, not when its
// lease would have run out.
func (in *inbox) start(ctx context.Context) error {
	n, err := in.db.InboxReleaseLeases(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		in.log.Info("resuming envelopes claimed by the previous run", "count", n)
	}
	for range in.workers {
		in.wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case w := <-in.queue:
					<-in.places
					in.process(ctx, w)
				}
			}
		})
	}
	in.wg.Go(func() { in.poll(ctx) })
	return nil
}

// poll feeds workers with stored entries that are pending, or whose worker
// died: at start (entries acked before a crash) and every few seconds.
func (in *inbox) poll(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		ids, err := in.db.InboxPending(ctx, in.now(), 100)
		if err != nil && ctx.Err() == nil {
			in.log.Error("inbox poll failed", "err", err)
		}
		for _, id := range ids {
			select {
			case in.places <- struct{}{}:
				in.queue <- work{id: id}
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// wait blocks until in-flight work is done or d passes.
func (in *inbox) wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() { in.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func (in *inbox) process(ctx context.Context, w work) {
	now := in.now()
	e, err := in.claim(ctx, w, now)
	if errors.Is(err, store.ErrNotClaimed) {
		return
	}
	if err != nil {
		if ctx.Err() == nil {
			in.log.Error("inbox claim failed", "inbox_id", w.id, "err", err)
		}
		return
	}
	crash.Point("inbox.claimed")
	// Work in flight finishes even when shutdown starts; the handler
	// timeout bounds it.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.handlerTimeout)
	defer cancel()
	log := in.log.With("inbox_id", e.ID, "envelope_id", e.EnvelopeID, "type", e.Type)

	var res handlers.Result
	state := "done"
	if e.Attempts > maxAttempts {
		ref := newRef()
		log.Error("envelope failed too often; giving up", "attempts", e.Attempts, "ref", ref)
		res, state = internalError(e, ref, "gave up after repeated failures"), "failed"
	} else {
		res, state = in.dispatch(hctx, log, e)
	}
	err = in.db.InTx(hctx, func(tx *store.Tx) error {
		for _, ev := range res.Audit {
			if _, err := in.audit.Append(hctx, tx, ev); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
		}
		for _, m := range res.Replies {
			if err := enqueue(hctx, tx, m, now); err != nil {
				return err
			}
		}
		return tx.InboxFinish(hctx, e.ID, state, "")
	})
	if err != nil {
		// The entry stays claimed; when its lease ends the poller retries it.
		log.Error("storing the outcome failed; will retry", "err", err)
		return
	}
	crash.Point("inbox.finished")
	in.kickOutbox()
}

// claim returns w's entry, claimed by this worker until at least the
// handler's time from now. An entry claimed on arrival needs no commit,
// unless it waited for a worker so long that its lease could end mid-way.
func (in *inbox) claim(ctx context.Context, w work, now time.Time) (store.InboxEntry, error) {
	if w.entry == nil {
		return in.db.InboxClaim(ctx, w.id, now, now.Add(in.lease()))
	}
	e := *w.entry
	if e.LeaseUntil.Sub(now) >= in.handlerTimeout+10*time.Second {
		return e, nil
	}
	until := now.Add(in.lease())
	if err := in.db.InboxRenew(ctx, e.ID, e.LeaseUntil, until); err != nil {
		return store.InboxEntry{}, err
	}
	e.LeaseUntil = until
	return e, nil
}

func enqueue(ctx context.Context, tx *store.Tx, m outbox.Message, now time.Time) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	_, err = tx.OutboxAdd(ctx, store.OutboxMessage{Lane: laneOf(m), Body: b, State: "pending", NextAttempt: now, CreatedAt: now})
	return err
}

// dispatch routes one entry to its handler. A panic is contained: logged
// with a reference the person is given, so support can find it.
func (in *inbox) dispatch(ctx context.Context, log *slog.Logger, e store.InboxEntry) (res handlers.Result, state string) {
	defer func() {
		if r := recover(); r != nil {
			ref := newRef()
			in.metrics.handlerErrors.Inc("panic")
			log.Error("handler panicked", "ref", ref, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			res, state = internalError(e, ref, "panic"), "failed"
		}
	}()
	switch e.Type {
	case "slash_commands":
		var sc slack.SlashCommand
		if err := json.Unmarshal(e.Payload, &sc); err != nil {
			in.metrics.handlerErrors.Inc("bad_payload")
			log.Warn("unparsable slash command", "err", err)
			return handlers.Result{}, "failed"
		}
		if sc.Command != in.command {
			log.Warn("slash command not ours; ignored", "command", sc.Command)
			return handlers.Result{}, "done"
		}
		return in.handlers.Command(ctx, handlers.Command{
			UserID: sc.UserID, ChannelID: sc.ChannelID, Command: sc.Command, Text: sc.Text,
			ResponseURL: sc.ResponseURL, TriggerID: sc.TriggerID,
		}), "done"
	case "interactive":
		var cb slack.InteractionCallback
		if err := json.Unmarshal(e.Payload, &cb); err != nil {
			in.metrics.handlerErrors.Inc("bad_payload")
			log.Warn("unparsable interaction", "err", err)
			return handlers.Result{}, "failed"
		}
		switch cb.Type {
		case slack.InteractionTypeBlockActions:
			var res handlers.Result
			for _, a := range cb.ActionCallback.BlockActions {
				r := in.handlers.Click(ctx, handlers.Click{
					UserID: cb.User.ID, ActionID: a.ActionID, Value: a.Value, ChannelID: cb.Channel.ID,
					MessageTS:   firstNonEmpty(cb.Container.MessageTs, cb.Message.Timestamp),
					ResponseURL: cb.ResponseURL, TriggerID: cb.TriggerID,
				})
				res.Replies = append(res.Replies, r.Replies...)
				res.Audit = append(res.Audit, r.Audit...)
			}
			return res, "done"
		case slack.InteractionTypeViewSubmission:
			sub := submission(cb)
			if v, ok := in.values.LoadAndDelete(e.DedupKey); ok {
				sub.Values[rotation.ValueKey] = map[string]string{rotation.ValueKey: v.(string)}
			}
			return in.handlers.Submit(ctx, sub), "done"
		}
		log.Debug("interaction not handled", "interaction", string(cb.Type))
		return handlers.Result{}, "done"
	case "events_api":
		var ev struct {
			Event struct {
				Type string `json:"type"`
				User string `json:"user"`
				Tab  string `json:"tab"`
			} `json:"event"`
		}
		if json.Unmarshal(e.Payload, &ev) == nil && ev.Event.Type == "app_home_opened" && ev.Event.Tab == "home" {
			in.handlers.Home(ctx, ev.Event.User)
		}
		return handlers.Result{}, "done"
	default:
		log.Debug("envelope type not handled", "type", e.Type)
		return handlers.Result{}, "done"
	}
}

// internalError tells the person something went wrong, with the reference
// under which the details were logged, and records it.
func internalError(e store.InboxEntry, ref, why string) handlers.Result {
	var p struct {
		UserID      string `json:"user_id"`
		ChannelID   string `json:"channel_id"`
		ResponseURL string `json:"response_url"`
		User        struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	_ = json.Unmarshal(e.Payload, &p)
	user := p.UserID
	if user == "" {
		user = p.User.ID
	}
	res := handlers.Result{Audit: []audit.Event{{
		Actor: user, Action: "internal_error", Outcome: "failed",
		Reason: why, Links: map[string]string{"ref": ref, "envelope": e.EnvelopeID},
	}}}
	text := fmt.Sprintf("Sorry, secretbot hit an internal error (ref %s). Nothing was changed; please try again, or quote the ref to the bot's operators.", ref)
	switch {
	case p.ResponseURL != "":
		res.Replies = append(res.Replies, outbox.Message{Kind: outbox.Respond, Target: p.ResponseURL, Text: text})
	case user != "":
		res.Replies = append(res.Replies, outbox.Message{Kind: outbox.DM, Target: user, Text: text})
	}
	return res
}

func newRef() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// submission reduces a view_submission to what handlers need.
func submission(cb slack.InteractionCallback) handlers.Submission {
	s := handlers.Submission{UserID: cb.User.ID, CallbackID: cb.View.CallbackID, PrivateMetadata: cb.View.PrivateMetadata,
		Values: map[string]map[string]string{}}
	if cb.View.State == nil {
		return s
	}
	for block, actions := range cb.View.State.Values {
		s.Values[block] = map[string]string{}
		for id, a := range actions {
			// Each input kind reports its value in its own field.
			v := firstNonEmpty(a.Value, a.SelectedOption.Value, a.SelectedUser, a.SelectedConversation, a.SelectedChannel)
			s.Values[block][id] = v
		}
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// validationBudget keeps a modal's validation inside Slack's 3-second ack.
const validationBudget = 1500 * time.Millisecond

// validate answers a submitted modal whose fields are wrong in the ack
// itself, as Slack requires; nil means store and ack as usual.
func (in *inbox) validate(ctx context.Context, env envelope) json.RawMessage {
	if env.Type != "interactive" {
		return nil
	}
	var cb slack.InteractionCallback
	if json.Unmarshal(env.Payload, &cb) != nil || cb.Type != slack.InteractionTypeViewSubmission {
		return nil
	}
	vctx, cancel := context.WithTimeout(ctx, validationBudget)
	defer cancel()
	errs := in.handlers.Validate(vctx, submission(cb))
	if len(errs) == 0 {
		return nil
	}
	b, _ := json.Marshal(map[string]any{"response_action": "errors", "errors": errs})
	return b
}
