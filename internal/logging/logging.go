// Package logging builds the bot's structured logger and the redaction that
// keeps credentials out of everything it writes.
package logging

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
)

// Redacted replaces a credential wherever it would have been written.
const Redacted = "[REDACTED]"

// minSecretLen keeps short values (an empty-ish test string, "x") from
// turning every log line into confetti; real credentials are far longer.
const minSecretLen = 8

// Redactor rewrites every known credential, in the encodings a log line or
// error could carry it: as is, JSON-escaped, URL-encoded and base64.
type Redactor struct {
	mu       sync.RWMutex
	patterns [][]byte
}

// NewRedactor returns a redactor for secrets.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Add registers more secrets (for example a token obtained by logging in).
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range r.patterns {
		seen[string(p)] = true
	}
	for _, s := range secrets {
		if len(s) < minSecretLen {
			continue
		}
		for _, v := range variants(s) {
			if len(v) >= minSecretLen && !seen[v] {
				seen[v] = true
				r.patterns = append(r.patterns, []byte(v))
			}
		}
	}
}

func variants(s string) []string {
	js, _ := json.Marshal(s)
	out := []string{
		s,
		string(js[1 : len(js)-1]),
		url.QueryEscape(s),
		url.PathEscape(s),
		base64.StdEncoding.EncodeToString([]byte(s)),
		base64.URLEncoding.EncodeToString([]byte(s)),
		base64.RawStdEncoding.EncodeToString([]byte(s)),
		base64.RawURLEncoding.EncodeToString([]byte(s)),
	}
	// A secret inside a longer base64 run (e.g. "user:token" in Basic auth)
	// is encoded at one of three alignments; the middle of each is stable.
	for pad := 0; pad < 3; pad++ {
		enc := base64.StdEncoding.EncodeToString(append(bytes.Repeat([]byte{0}, pad), s...))
		skip := (pad*4 + 2) / 3
		if len(enc) > skip+8 {
			out = append(out, strings.TrimRight(enc[skip+2:len(enc)-4], "="))
		}
	}
	return out
}

// Bytes returns b with every secret replaced.
func (r *Redactor) Bytes(b []byte) []byte {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, p := range r.patterns {
		if bytes.Contains(b, p) {
			b = bytes.ReplaceAll(b, p, []byte(Redacted))
		}
	}
	return b
}

// String returns s with every secret replaced.
func (r *Redactor) String(s string) string { return string(r.Bytes([]byte(s))) }

// Writer wraps w so whatever is written through it is redacted first.
func (r *Redactor) Writer(w io.Writer) io.Writer { return &redactWriter{r: r, w: w} }

type redactWriter struct {
	r *Redactor
	w io.Writer
}

func (rw *redactWriter) Write(p []byte) (int, error) {
	if _, err := rw.w.Write(rw.r.Bytes(append([]byte(nil), p...))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// New returns a JSON logger at level writing through the redactor. slog's
// JSON handler writes each record with a single Write, so whole lines are
// redacted, whatever attribute or error carried the secret.
func New(w io.Writer, level string, r *Redactor) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(r.Writer(w), &slog.HandlerOptions{Level: lv}))
}
