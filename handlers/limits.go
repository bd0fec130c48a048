package handlers

import (
	"fmt"
	"sync"
	"time"

	"github.com/secretbot/secretbot/internal/audit"
	"github.com/secretbot/secretbot/internal/config"
	"github.com/secretbot/secretbot/internal/outbox"
)

// commandLimiter counts each person's slash commands over a sliding window
// (limits.commands_per_user per limits.window), in memory: it guards this
// process's Slack, Jira and PagerDuty API budget. With several replicas each
// counts its own; the access-request limit, counted in the store, is the one
// that holds across replicas (internal/access). Its zero value is ready.
type commandLimiter struct {
	mu    sync.Mutex
	hits  map[string][]time.Time // user -> times of their commands in the window, oldest first
	calls int
}

// allow records a command by user at now unless they already sent max in
// the window; then it returns false and when one more fits.
func (l *commandLimiter) allow(user string, now time.Time, max int, window time.Duration) (bool, int, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hits == nil {
		l.hits = map[string][]time.Time{}
	}
	cut := now.Add(-window)
	if l.calls++; l.calls%1000 == 0 { // forget people who went quiet, so memory stays bounded
		for u, ts := range l.hits {
			if len(ts) == 0 || !ts[len(ts)-1].After(cut) {
				delete(l.hits, u)
			}
		}
	}
	ts := l.hits[user]
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) >= max {
		l.hits[user] = ts
		return false, len(ts), ts[len(ts)-max].Add(window)
	}
	l.hits[user] = append(ts, now)
	return true, len(ts) + 1, time.Time{}
}

// commandLimit refuses c when its sender is over limits.commands_per_user.
// It runs before anything else, the identity lookup included: a flood must
// not spend the API calls it is refused to protect.
func (h *Handlers) commandLimit(c Command, sub string) (Result, bool) {
	l := h.Config.Limits
	if l.CommandsPerUser <= 0 || l.Window.D() <= 0 {
		return Result{}, false
	}
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	ok, n, again := h.limiter.allow(c.UserID, now, l.CommandsPerUser, l.Window.D())
	if ok {
		return Result{}, false
	}
	wait := max(again.Sub(now).Round(time.Second), time.Second)
	text := fmt.Sprintf("You have sent %d commands in the last %s: the limit is %d per %s per person, so nothing was done. Try again in %s (after %s).",
		n, config.Duration(l.Window.D()), l.CommandsPerUser, config.Duration(l.Window.D()), config.Duration(wait), again.UTC().Format("15:04:05 UTC"))
	h.Log.Info("command refused by the rate limit", "user", c.UserID, "subcommand", Truncate(sub, 40))
	return Result{
		Replies: []outbox.Message{reply(c, text)},
		Audit: []audit.Event{{Actor: c.UserID, Action: "command.rate_limited", Outcome: audit.Refused,
			Reason: fmt.Sprintf("over %d commands per %s", l.CommandsPerUser, config.Duration(l.Window.D())),
			Links:  map[string]string{"subcommand": Truncate(sub, 40)}}},
	}, true
}
