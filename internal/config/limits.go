package config

import (
	"fmt"
	"time"
)

// Limits bound what one person may ask of the bot in a window, so a
// script, a stuck key or a prank cannot flood approvers with cards, burn
// the bot's Slack, Jira and PagerDuty API budget, or crowd others out.
type Limits struct {
	// RequestsPerUser is how many access requests one person may make per
	// Window, counted from the grants stored (so every replica sharing the
	// database counts the same ones): the slash command and the request
	// form alike.
	RequestsPerUser int `yaml:"requests_per_user"`
	// CommandsPerUser is how many slash commands of any kind one person may
	// send per Window. Counted in memory by each bot process.
	CommandsPerUser int `yaml:"commands_per_user"`
	// Window is the sliding window both limits count over.
	Window Duration `yaml:"window"`
	// RequestOpenFor is how long a request waits for an approver's decision;
	// then it expires, and its card's buttons go. An approval is given
	// while the evidence is fresh, never weeks later.
	RequestOpenFor Duration `yaml:"request_open_for"`
}

// Defaults of the limits.
const (
	DefaultRequestsPerUser = 5
	DefaultCommandsPerUser = 30
	DefaultLimitWindow     = time.Minute
	DefaultRequestOpenFor  = 24 * time.Hour

	maxPerUser  = 10000
	minWindow   = time.Second
	maxWindow   = 24 * time.Hour
	acceptCount = "a whole number from 1 to 10000"
)

func defaultLimits(l *Limits, seen map[string]bool) {
	if !seen["limits.requests_per_user"] {
		l.RequestsPerUser = DefaultRequestsPerUser
	}
	if !seen["limits.commands_per_user"] {
		l.CommandsPerUser = DefaultCommandsPerUser
	}
	if !seen["limits.window"] {
		l.Window = Duration(DefaultLimitWindow)
	}
	if !seen["limits.request_open_for"] {
		l.RequestOpenFor = Duration(DefaultRequestOpenFor)
	}
}

func validateLimits(l *Limits, p *collector) {
	count := func(key string, n int) {
		if n < 1 || n > maxPerUser {
			p.add(key, fmt.Sprintf("%d is out of range", n), acceptCount)
		}
	}
	count("limits.requests_per_user", l.RequestsPerUser)
	count("limits.commands_per_user", l.CommandsPerUser)
	if w := l.Window.D(); w < minWindow || w > maxWindow {
		p.add("limits.window", fmt.Sprintf("%s is out of range", l.Window), "a duration from 1s to 1d, like 1m or 1h")
	}
	if w := l.RequestOpenFor.D(); w < minWindow || w > 30*24*time.Hour {
		p.add("limits.request_open_for", fmt.Sprintf("%s is out of range", l.RequestOpenFor), "a duration from 1s to 30d, like 1d")
	}
}
