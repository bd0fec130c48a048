package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/secretbot/secretbot/e2e/internal/watch"
)

// logBuffer collects what the bot writes to stdout and stderr.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed watch.Notifier
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.buf.Write(p)
	b.mu.Unlock()
	b.changed.Fire()
	return n, err
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Output returns everything the bot wrote (all runs, stdout and stderr).
func (h *Harness) Output() string { return h.logs.String() }

// Logs returns the bot's output lines (JSON log lines, and any plain text).
func (h *Harness) Logs() []string {
	var out []string
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// LogEntries returns the JSON log lines, decoded; other lines are skipped.
func (h *Harness) LogEntries() []map[string]any {
	var out []map[string]any
	for _, l := range h.Logs() {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// WaitLog waits for a JSON log entry that match accepts.
func (h *Harness) WaitLog(match func(map[string]any) bool, timeout time.Duration) (map[string]any, error) {
	var got map[string]any
	ok := watch.Until(&h.logs.changed, timeout, func() bool {
		for _, e := range h.LogEntries() {
			if match(e) {
				got = e
				return true
			}
		}
		return false
	})
	if !ok {
		return nil, fmt.Errorf("harness: no matching log entry within %v", timeout)
	}
	return got, nil
}

// Msg matches log entries by their "msg".
func Msg(msg string) func(map[string]any) bool {
	return func(e map[string]any) bool { return e["msg"] == msg }
}

// tail returns the last n output lines, for failure reports.
func (h *Harness) tail(n int) string {
	lines := h.Logs()
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
