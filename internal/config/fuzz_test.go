package config

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// Fuzz targets of configuration loading. `go test` runs their seeds (f.Add
// and testdata/fuzz); `make fuzz` fuzzes each.

// fuzzEnv sets every credential, so every integration's checks run.
func fuzzEnv() map[string]string {
	env := goodEnv()
	env["PAGERDUTY_TOKEN"] = "pd-test-0123456789"
	env["JIRA_URL"] = "https://jira.test"
	env["JIRA_EMAIL"] = "bot@example.test"
	env["JIRA_API_TOKEN"] = "jira-test-0123456789"
	return env
}

// loadBytes is Load on a file holding data.
func loadBytes(data []byte, env map[string]string) (*Config, error) {
	getenv := func(k string) string { return env[k] }
	p := &collector{}
	cfg := &Config{}
	seen, ok := parseFile("secretbot.yaml", data, cfg, p)
	return finish(cfg, seen, ok, p, getenv, true)
}

// FuzzLoad: any file either loads into a configuration that holds what
// validation promises, or is refused with problems that each say what is
// wrong, and never repeat a credential from the environment.
func FuzzLoad(f *testing.F) {
	if example, err := os.ReadFile("../../secretbot.example.yaml"); err == nil {
		f.Add(example)
	}
	f.Add([]byte("slack: {command: /secrets}\nscopes: []\n"))
	f.Add([]byte("scopes:\n- name: x\n  max_ttl: 99999999999d\n  evidence: [approval]\n"))
	f.Add([]byte("slack:\n  command: xoxb-test-0000-abcdef\nvault: &a {wrap_ttl: 1m}\nops: *a\n"))
	f.Add([]byte("limits: {requests_per_user: -1, window: 0s}\n"))
	f.Add([]byte("a: [\n"))
	f.Add([]byte("---\n---\n"))
	env := fuzzEnv()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := loadBytes(data, env)
		if err != nil {
			if cfg != nil {
				t.Fatal("a refused configuration was returned")
			}
			var ps *Problems
			if !errors.As(err, &ps) || len(ps.List) == 0 {
				t.Fatalf("refusal is not a list of problems: %v", err)
			}
			for _, q := range ps.List {
				if strings.TrimSpace(q.Msg) == "" {
					t.Fatalf("a problem without a message: %+v", q)
				}
			}
			for k, v := range env {
				if strings.Contains(err.Error(), v) && !bytes.Contains(data, []byte(v)) {
					t.Fatalf("a problem repeats %s from the environment: %v", k, err)
				}
			}
			return
		}
		for i, s := range cfg.Scopes {
			if s.Name == "" || s.MaxTTL.D() <= 0 {
				t.Fatalf("scopes[%d] accepted with name %q, max_ttl %v", i, s.Name, s.MaxTTL)
			}
			if _, ok := cfg.Scope(s.Name); !ok {
				t.Fatalf("scopes[%d] %q cannot be found by name", i, s.Name)
			}
		}
		checkLoadedLimits(t, cfg)
	})
}

// FuzzParseDuration: an accepted duration is never negative, prints in a
// form that parses back to the same value, and a refusal says what is
// accepted.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30m", "2h", "1h30m", "90s", "7d", "1d12h", "1.5d", " 4h ", "0", "0.1d", "1d0.5s",
		"12h1d", "-1h", "99999999999d", "106751d23h47m16s", "2562047h47m16.854775807s", "1e3d", ".d", "5d2562047h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !strings.Contains(err.Error(), DurationAccepted) {
				t.Fatalf("ParseDuration(%q): %v does not say what is accepted", s, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v: negative", s, d)
		}
		str := Duration(d).String()
		back, err := ParseDuration(str)
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v, printed %q, parsed back %v, %v", s, d, str, back, err)
		}
		if d > 0 && d < time.Nanosecond {
			t.Fatalf("impossible %v", d)
		}
	})
}

// checkLoadedLimits asserts the limits of a loaded configuration are in the
// bounds validation promises.
func checkLoadedLimits(t *testing.T, cfg *Config) {
	t.Helper()
	l := cfg.Limits
	if l.RequestsPerUser < 1 || l.RequestsPerUser > maxPerUser || l.CommandsPerUser < 1 || l.CommandsPerUser > maxPerUser {
		t.Fatalf("limits accepted out of range: %+v", l)
	}
	if l.Window.D() < minWindow || l.Window.D() > maxWindow {
		t.Fatalf("limits.window accepted out of range: %v", l.Window)
	}
	if l.RequestOpenFor.D() < minWindow || l.RequestOpenFor.D() > 30*24*time.Hour {
		t.Fatalf("limits.request_open_for accepted out of range: %v", l.RequestOpenFor)
	}
}
